//! Template status/quality and phone-number/account updates, stored in the directory so
//! intake and the sender refuse a paused or disabled template before anything is sent.

use super::{ApplyError, Context};
use crate::app::sender::DEFAULT_HOLD_PROBE_INTERVAL;
use crate::domain::account_state::{self, AccountAction};
use crate::domain::events::template_status_changed;
use crate::domain::template::{TemplateCategory, TemplateStatus};
use crate::domain::tenant::TenantHold;
use crate::domain::webhook::{
    AccountUpdate, PhoneNumberQualityUpdate, TemplateCategoryUpdate, TemplateQualityUpdate,
    TemplateStatusUpdate,
};
use crate::domain::{TenantId, Timestamp};
use crate::ports::AccountSignal;
use tracing::{info, warn};

pub(super) async fn template_status(
    ctx: &mut Context<'_>,
    update: &TemplateStatusUpdate,
) -> Result<(), ApplyError> {
    let Some((tenants, name, language)) = template_target(
        ctx,
        &update.waba_id,
        update.name.as_deref(),
        update.language.as_deref(),
    )
    .await?
    else {
        return Ok(());
    };
    let status = TemplateStatus::from(update.event.clone());
    let at = at_or_now(ctx, update.time);
    for tenant in tenants {
        let known = ctx
            .deps
            .ports
            .directory
            .update_template_status(&tenant, name, language, &status, at)
            .await?;
        if known {
            let event = template_status_changed(
                &tenant,
                name,
                language,
                &status,
                update.reason.as_deref(),
                at,
            );
            ctx.deps.ports.events.append(&[event]).await?;
        }
        stored(
            ctx,
            known,
            &tenant,
            name,
            language,
            "status",
            status.as_str(),
        );
    }
    Ok(())
}

/// A completed category change (`new_category`) is stored: the catalog's category
/// decides marketing rules and pricing. The advance notice (`correct_category`, taking
/// effect at `category_update_timestamp`) changes nothing yet; it is logged.
pub(super) async fn template_category(
    ctx: &mut Context<'_>,
    update: &TemplateCategoryUpdate,
) -> Result<(), ApplyError> {
    let Some(new_category) = update.new_category.as_deref() else {
        info!(waba_id = %update.waba_id, template = ?update.name,
            correct_category = ?update.correct_category,
            takes_effect = ?update.category_update_timestamp, "template category change announced");
        ctx.report.ignored += 1;
        return Ok(());
    };
    let Some((tenants, name, language)) = template_target(
        ctx,
        &update.waba_id,
        update.name.as_deref(),
        update.language.as_deref(),
    )
    .await?
    else {
        return Ok(());
    };
    let category = TemplateCategory::from(new_category.to_owned());
    let at = at_or_now(ctx, update.time);
    for tenant in tenants {
        let known = ctx
            .deps
            .ports
            .directory
            .update_template_category(&tenant, name, language, &category, at)
            .await?;
        stored(
            ctx,
            known,
            &tenant,
            name,
            language,
            "category",
            category.as_str(),
        );
    }
    Ok(())
}

pub(super) async fn template_quality(
    ctx: &mut Context<'_>,
    update: &TemplateQualityUpdate,
) -> Result<(), ApplyError> {
    let Some((tenants, name, language)) = template_target(
        ctx,
        &update.waba_id,
        update.name.as_deref(),
        update.language.as_deref(),
    )
    .await?
    else {
        return Ok(());
    };
    let at = at_or_now(ctx, update.time);
    let quality = update.new_quality_score.as_str();
    for tenant in tenants {
        let known = ctx
            .deps
            .ports
            .directory
            .update_template_quality(&tenant, name, language, quality, at)
            .await?;
        stored(ctx, known, &tenant, name, language, "quality", quality);
    }
    Ok(())
}

pub(super) async fn phone_quality(
    ctx: &mut Context<'_>,
    update: &PhoneNumberQualityUpdate,
) -> Result<(), ApplyError> {
    let tier = update
        .max_daily_conversations_per_business
        .as_deref()
        .or(update.current_limit.as_deref());
    let value = match tier {
        Some(tier) => format!("{} {tier}", update.event),
        None => update.event.clone(),
    };
    let action = account_state::quality_action(&update.event);
    account_signal(
        ctx,
        &update.waba_id,
        update.time,
        AccountSignal::PhoneQuality,
        &value,
        action,
        None,
    )
    .await
}

pub(super) async fn account_update(
    ctx: &mut Context<'_>,
    update: &AccountUpdate,
) -> Result<(), ApplyError> {
    let action = account_state::account_action(&update.event);
    let detail = update
        .ban_info
        .as_ref()
        .or(update.violation_info.as_ref())
        .map(|v| v.to_string())
        .or_else(|| {
            (!update.restrictions.is_empty()).then(|| format!("{:?}", update.restrictions))
        });
    account_signal(
        ctx,
        &update.waba_id,
        update.time,
        AccountSignal::AccountEvent,
        &update.event,
        action,
        detail,
    )
    .await
}

/// Store an account signal of every tenant on the WABA (an ordered partial write: an
/// older update changes nothing, and it cannot undo a concurrent `wa tenants suspend`),
/// then act on it as the account-state table says: alarm, and hold the tenant.
async fn account_signal(
    ctx: &mut Context<'_>,
    waba_id: &str,
    time: Option<Timestamp>,
    signal: AccountSignal,
    value: &str,
    action: AccountAction,
    detail: Option<String>,
) -> Result<(), ApplyError> {
    for tenant in ctx.tenants_by_waba(waba_id).await? {
        tenant_signal(ctx, &tenant, time, signal, value, action, detail.clone()).await?;
    }
    Ok(())
}

/// [`account_signal`] for one tenant.
async fn tenant_signal(
    ctx: &mut Context<'_>,
    tenant: &TenantId,
    time: Option<Timestamp>,
    signal: AccountSignal,
    value: &str,
    action: AccountAction,
    detail: Option<String>,
) -> Result<(), ApplyError> {
    let tenant = tenant.clone();
    let at = at_or_now(ctx, time);
    let directory = &ctx.deps.ports.directory;
    if !directory
        .set_account_signal(&tenant, signal, value, at)
        .await?
    {
        info!(tenant = %tenant, value, "account signal older than the stored one (or no profile): ignored");
        ctx.report.ignored += 1;
        return Ok(());
    }
    info!(tenant = %tenant, ?signal, value, "account signal stored");
    ctx.forget_profile(&tenant);
    ctx.report.directory_updates += 1;
    if action.alarm {
        warn!(tenant = %tenant, ?signal, value, hold_marketing = action.hold_marketing,
            hold_tenant = action.hold_tenant, "account signal needs an operator");
        ctx.deps.ports.metrics.count(
            "AccountAlert",
            &[
                ("Tenant", tenant.as_str()),
                ("Signal", value.split_whitespace().next().unwrap_or(value)),
            ],
        );
    }
    if action.hold_tenant {
        let now = ctx.deps.ports.clock.now();
        let interval = i64::try_from(DEFAULT_HOLD_PROBE_INTERVAL.as_millis()).unwrap_or(i64::MAX);
        let hold = TenantHold {
            code: None,
            reason: format!("account_update {value}"),
            detail,
            since: now,
            probe_at: now.plus_millis(interval),
        };
        if directory.place_hold(&tenant, &hold).await? {
            warn!(tenant = %tenant, value, "tenant put on hold by an account update");
            ctx.deps
                .ports
                .metrics
                .count("TenantHeld", &[("Tenant", tenant.as_str())]);
        }
    }
    Ok(())
}

/// The tenants a template update applies to (every tenant on the WABA: each keeps
/// its own catalog) with the template's name and language.
async fn template_target<'u>(
    ctx: &mut Context<'_>,
    waba_id: &str,
    name: Option<&'u str>,
    language: Option<&'u str>,
) -> Result<Option<(Vec<TenantId>, &'u str, &'u str)>, ApplyError> {
    let tenants = ctx.tenants_by_waba(waba_id).await?;
    if tenants.is_empty() {
        return Ok(None);
    }
    let (Some(name), Some(language)) = (name, language) else {
        warn!(
            waba_id,
            "template update without name or language; not stored"
        );
        ctx.report.ignored += 1;
        return Ok(None);
    };
    Ok(Some((tenants, name, language)))
}

fn stored(
    ctx: &mut Context<'_>,
    known: bool,
    tenant: &TenantId,
    name: &str,
    language: &str,
    what: &str,
    value: &str,
) {
    if known {
        ctx.report.directory_updates += 1;
        info!(tenant = %tenant, template = name, language, what, value, "template updated from webhook");
    } else {
        // A template created outside our catalog: nothing to refuse sends of.
        warn!(tenant = %tenant, template = name, language, what, value, "template update for a template we do not have");
        ctx.report.ignored += 1;
    }
}

fn at_or_now(ctx: &Context<'_>, time: Option<Timestamp>) -> Timestamp {
    time.unwrap_or_else(|| ctx.deps.ports.clock.now())
}
