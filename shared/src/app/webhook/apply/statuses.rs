//! Status webhooks: find the message (callback data, else wamid), check that its tenant
//! owns the phone number the status came from, and record the status through the
//! lifecycle (one conditional write; a lower rank is a timestamp-only write).
//!
//! The ownership check (DESIGN §11 invariant) is what keeps a signed webhook of tenant
//! A's number, or of a number nobody owns, from changing tenant B's message: callback
//! data and wamids are not secrets, so they cannot vouch for the sender.

use super::{ApplyError, Context};
use crate::domain::costs::PricedStatus;
use crate::domain::failure::{Failure, FailureClass, FailureSource};
use crate::domain::graph::{CallbackData, excerpt, rule_for};
use crate::domain::lifecycle::{
    Decision, EventKind, LifecycleEvent, ProviderStatus, ProviderStatusKind,
};
use crate::domain::series;
use crate::domain::webhook::{DeliveryStatus, StatusUpdate, WebhookError};
use crate::domain::{Message, MessageId, MessageState, TenantId};
use crate::ports::{Recorded, record_event};
use serde_json::{Value, json};
use tracing::{info, warn};

pub(super) async fn apply(ctx: &mut Context<'_>, status: &StatusUpdate) -> Result<(), ApplyError> {
    let Some(kind) = provider_kind(&status.status) else {
        info!(wamid = %status.wamid, status = status.status.as_str(), "status value not handled");
        ctx.report.ignored += 1;
        return Ok(());
    };
    let deps = ctx.deps;
    // An unknown or missing number is counted and logged as unrouted by the lookup.
    let Some(owner) = ctx.tenant_by_phone(status.phone_number_id.as_ref()).await? else {
        return Ok(());
    };
    let Some((tenant, id)) = locate(ctx, status).await? else {
        unknown(ctx, status);
        return Ok(());
    };
    if owner != tenant {
        let number = status.phone_number_id.as_ref().map_or("", |p| p.as_str());
        warn!(message_tenant = %tenant, number_tenant = %owner, phone_number_id = number, message_id = %id, wamid = %status.wamid, "status from a phone number the message's tenant does not own; ignored");
        deps.ports
            .metrics
            .count("MisroutedWebhook", &[("Tenant", owner.as_str())]);
        ctx.report.misrouted += 1;
        return Ok(());
    }
    let now = deps.ports.clock.now();
    let provider = ProviderStatus {
        wamid: status.wamid.clone(),
        status: kind,
        occurred_at: status.timestamp.unwrap_or(now),
        failure: (kind == ProviderStatusKind::Failed).then(|| webhook_failure(&status.errors)),
        detail: history_detail(status),
    };
    let limit_until = marketing_limit_until(status, kind, now);
    let event = LifecycleEvent::new(
        now,
        match limit_until {
            // Meta's per-user marketing limit: the send waits and is retried, or is
            // exhausted when the wait passes its max age (the lifecycle decides).
            Some(not_before) => EventKind::MarketingLimited {
                status: provider,
                not_before,
            },
            None => EventKind::Provider(provider),
        },
    );
    // A 131050 by webhook: the user stopped marketing from us (see the sender).
    if kind == ProviderStatusKind::Failed
        && status.errors.iter().any(|e| e.code == Some(131050))
        && let Some(who) = status
            .recipient_id
            .as_deref()
            .and_then(|digits| crate::domain::PhoneNumber::from_wa_id(digits).ok())
    {
        let at = status.timestamp.unwrap_or(now);
        deps.ports
            .directory
            .set_marketing_opt_out(&tenant, &who, true, at)
            .await?;
    }
    // A 131049 by webhook: Meta's per-user marketing limit. The recipient's other
    // MARKETING templates wait out its 24 h in the sender, and so does this message.
    if let Some(until) = limit_until
        && let Some(who) = recipient(status)
    {
        deps.ports
            .directory
            .set_marketing_limit(&tenant, &who, until)
            .await?;
    }
    let recorded = record_event(
        &*deps.ports.store,
        &tenant,
        &id,
        &event,
        &deps.ports.lifecycle,
    )
    .await?;
    let dims = [("Tenant", tenant.as_str())];
    // The status is stored: now its price, whatever the decision (a duplicate too, so
    // a body replayed after the ledger failed counts what it could not count then).
    if let Some(message) = recorded_message(&recorded) {
        count_pricing(ctx, status, message, now).await?;
    }
    match recorded {
        Recorded::Written { decision, message } => match *decision {
            Decision::Advance(_) => {
                ctx.report.advanced += 1;
                count_advance(ctx, kind, &message, &event.fingerprint());
                let points = series::advanced(&message, kind, status.timestamp, now);
                crate::app::series::record(&deps.ports, &points).await;
                info!(tenant = %tenant, message_id = %id, wamid = %status.wamid, state = message.state.as_str(), "status applied");
            }
            Decision::FillTimestamp(_) => {
                ctx.report.timestamps_filled += 1;
                deps.ports.metrics.count("OutOfOrderWebhook", &dims);
                info!(tenant = %tenant, message_id = %id, status = kind.as_str(), state = message.state.as_str(), "late status filled its timestamp");
                let points: Vec<_> = series::lag(&tenant, status.timestamp, now)
                    .into_iter()
                    .collect();
                crate::app::series::record(&deps.ports, &points).await;
            }
            Decision::Anomaly(_) | Decision::Duplicate => {
                ctx.report.anomalies += 1;
                deps.ports.metrics.count("OutOfOrderWebhook", &dims);
                warn!(tenant = %tenant, message_id = %id, status = kind.as_str(), state = message.state.as_str(), flags = ?message.flags, "status contradicts the stored state; recorded as an anomaly");
            }
        },
        Recorded::Duplicate(_) => {
            ctx.report.duplicates += 1;
            deps.ports.metrics.count("DuplicateWebhook", &dims);
        }
        Recorded::NotFound => unknown(ctx, status),
    }
    Ok(())
}

/// Meta's per-user marketing limit ("healthy ecosystem").
const PER_USER_MARKETING_LIMIT: i64 = 131049;

/// The message a recorded status found (none when it found nothing).
fn recorded_message(recorded: &Recorded) -> Option<&Message> {
    match recorded {
        Recorded::Written { message, .. } | Recorded::Duplicate(message) => Some(message),
        Recorded::NotFound => None,
    }
}

/// Count the status's `pricing` in the cost ledger, once per message and category
/// (the ledger makes a repeat count nothing). A ledger failure is the batch's error,
/// like the store's: the body is parked and replayed, and the replay counts it
/// (docs/decisions.md, "A cost ledger failure parks the body").
async fn count_pricing(
    ctx: &Context<'_>,
    status: &StatusUpdate,
    message: &Message,
    now: crate::domain::Timestamp,
) -> Result<(), ApplyError> {
    let Some(pricing) = &status.pricing else {
        return Ok(());
    };
    let deps = ctx.deps;
    let at = status.timestamp.unwrap_or(now);
    let priced = PricedStatus::new(&message.tenant, &message.id, &message.to, pricing, at);
    match deps.costs.record_pricing(&priced).await {
        Ok(true) => {
            if priced.billable {
                deps.ports.metrics.count(
                    "BillableMessages",
                    &[
                        ("Tenant", priced.tenant.as_str()),
                        ("Category", priced.category.as_str()),
                    ],
                );
            }
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(e) => {
            warn!(tenant = %priced.tenant, message_id = %priced.message_id, wamid = %status.wamid, category = %priced.category, day = %priced.day.key(), error = %e, source = ?std::error::Error::source(&e), "cost ledger failed; the body will be parked and replayed");
            deps.ports
                .metrics
                .count("CostLedgerFailed", &[("Tenant", priced.tenant.as_str())]);
            Err(ApplyError::Costs(e))
        }
    }
}

/// For a `failed` status with Meta's per-user marketing limit (131049): when the
/// recipient's marketing may be sent again (the status's time plus Meta's 24 h).
fn marketing_limit_until(
    status: &StatusUpdate,
    kind: ProviderStatusKind,
    now: crate::domain::Timestamp,
) -> Option<crate::domain::Timestamp> {
    let limited = kind == ProviderStatusKind::Failed
        && status
            .errors
            .iter()
            .any(|e| e.code == Some(PER_USER_MARKETING_LIMIT));
    if !limited {
        return None;
    }
    let wait = rule_for(PER_USER_MARKETING_LIMIT)
        .and_then(|rule| rule.min_delay)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Some(status.timestamp.unwrap_or(now).plus_millis(wait))
}

/// The class of our own failure guess this write corrected: the entry before it (by
/// time) is the reconciler's `unconfirmed` or `ambiguous_failed`.
fn corrected_guess(message: &Message, fingerprint: &str) -> Option<&'static str> {
    let (_, previous) = message
        .history
        .iter()
        .filter(|(key, _)| key.as_str() != fingerprint)
        .max_by_key(|(_, entry)| entry.at)?;
    match previous.event.as_str() {
        "reconciler.unconfirmed" => Some("unconfirmed"),
        "reconciler.ambiguous_failed" => Some("ambiguous"),
        _ => None,
    }
}

/// The status's recipient (`recipient_id`, digits) as a phone number.
fn recipient(status: &StatusUpdate) -> Option<crate::domain::PhoneNumber> {
    let digits = status.recipient_id.as_deref()?;
    crate::domain::PhoneNumber::from_wa_id(digits).ok()
}

fn provider_kind(status: &DeliveryStatus) -> Option<ProviderStatusKind> {
    Some(match status {
        DeliveryStatus::Sent => ProviderStatusKind::Sent,
        DeliveryStatus::Delivered => ProviderStatusKind::Delivered,
        DeliveryStatus::Read => ProviderStatusKind::Read,
        DeliveryStatus::Played => ProviderStatusKind::Played,
        DeliveryStatus::Failed => ProviderStatusKind::Failed,
        DeliveryStatus::Unknown(_) => return None,
    })
}

/// Our callback data names the message without a lookup (and matches a send whose
/// answer was lost, which has no wamid stored); other statuses go through the index.
async fn locate(
    ctx: &mut Context<'_>,
    status: &StatusUpdate,
) -> Result<Option<(TenantId, MessageId)>, ApplyError> {
    if let Some(data) = status.biz_opaque_callback_data.as_deref() {
        match CallbackData::decode(data) {
            Ok(cb) => return Ok(Some((cb.tenant, cb.message_id))),
            Err(e) => {
                info!(wamid = %status.wamid, error = %e, "callback data not ours; looking up the wamid")
            }
        }
    }
    Ok(ctx.deps.ports.store.find_by_wamid(&status.wamid).await?)
}

fn unknown(ctx: &mut Context<'_>, status: &StatusUpdate) {
    info!(wamid = %status.wamid, status = status.status.as_str(), "status for a message we do not know");
    ctx.deps.ports.metrics.count("UnknownMessageStatus", &[]);
    ctx.report.unknown_messages += 1;
}

/// Meta's first error, classified by its code. A `failed` webhook has no HTTP status to
/// fall back on: an unlisted code means this recipient could not be reached, and no
/// error at all means the message was refused.
fn webhook_failure(errors: &[WebhookError]) -> Failure {
    let Some(error) = errors.first() else {
        return Failure {
            class: FailureClass::Rejected,
            code: None,
            title: "failed status webhook without error details".into(),
            detail: None,
            source: FailureSource::Webhook,
        };
    };
    let rule = error.code.and_then(rule_for);
    let title = error
        .title
        .as_deref()
        .or(error.message.as_deref())
        .map(excerpt)
        .or_else(|| rule.map(|r| r.reason.to_owned()))
        .unwrap_or_else(|| "failed status webhook".into());
    Failure {
        class: rule.map_or(FailureClass::Recipient, |r| r.class),
        code: error.code,
        title,
        detail: error
            .details
            .as_deref()
            .or(error.message.as_deref())
            .map(excerpt),
        source: FailureSource::Webhook,
    }
}

/// What the history entry keeps besides the status: pricing, conversation and Meta's
/// raw errors (every one of them, not just the one classified).
fn history_detail(status: &StatusUpdate) -> Option<Value> {
    let mut detail = serde_json::Map::new();
    if let Some(p) = &status.pricing {
        detail.insert(
            "pricing".into(),
            json!({"billable": p.billable, "pricing_model": p.pricing_model,
                   "type": p.pricing_type, "category": p.category}),
        );
    }
    if let Some(c) = &status.conversation {
        detail.insert("conversation".into(), c.clone());
    }
    if !status.errors.is_empty() {
        let errors: Vec<Value> = status
            .errors
            .iter()
            .map(|e| {
                json!({"code": e.code, "title": e.title, "message": e.message,
                            "details": e.details, "href": e.href})
            })
            .collect();
        detail.insert("errors".into(), Value::Array(errors));
    }
    (!detail.is_empty()).then_some(Value::Object(detail))
}

/// Count what happened, not only the state reached: a message Meta reports `read`
/// (or `delivered`) without the lower statuses was also sent (and delivered), so each
/// milestone is counted once, when first reached, whichever status shows it (a late
/// lower status only fills its timestamp and counts nothing). A provider status that
/// corrects our own guess (`unconfirmed`, `ambiguous`: counted under their own names,
/// never as `Failed`) counts `FailureCorrected`.
fn count_advance(
    ctx: &Context<'_>,
    kind: ProviderStatusKind,
    message: &Message,
    fingerprint: &str,
) {
    let metrics = &ctx.deps.ports.metrics;
    let tenant = message.tenant.as_str();
    let t = &message.timestamps;
    let reached = |rank: u8| message.state != MessageState::Failed && message.rank >= rank;
    if reached(MessageState::Sent.rank(None)) {
        if let Some(class) = corrected_guess(message, fingerprint) {
            metrics.count("FailureCorrected", &[("Tenant", tenant), ("Class", class)]);
        }
        // Lower milestones Meta skipped: implied by this one, counted now.
        if message.state != MessageState::Sent && t.sent_at.is_none() {
            metrics.count("Sent", &[("Tenant", tenant)]);
        }
        if message.state == MessageState::Read && t.delivered_at.is_none() {
            metrics.count("Delivered", &[("Tenant", tenant)]);
        }
    }
    match message.state {
        MessageState::Sent => metrics.count("Sent", &[("Tenant", tenant)]),
        MessageState::Delivered => metrics.count("Delivered", &[("Tenant", tenant)]),
        MessageState::Read => metrics.count("Read", &[("Tenant", tenant)]),
        // Back to `queued` after a 131049: it waits Meta's 24 h, then goes again.
        MessageState::Queued => metrics.count("MarketingLimitRetry", &[("Tenant", tenant)]),
        MessageState::Failed => {
            let class = message
                .failure
                .as_ref()
                .map_or("rejected", |f| f.class.as_str());
            metrics.count("Failed", &[("Tenant", tenant), ("Class", class)]);
        }
        _ => {}
    }
    if kind == ProviderStatusKind::Delivered {
        let t = &message.timestamps;
        if let (Some(accepted), Some(delivered)) = (t.accepted_at, t.delivered_at) {
            metrics.millis(
                "AcceptedToDeliveredMs",
                delivered.millis_since(accepted),
                &[("Tenant", tenant)],
            );
        }
    }
}
