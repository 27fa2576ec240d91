//! Inbound messages: the contact's last inbound time (the 24-hour window), its
//! opt-out/opt-in keywords, per tenant, and the events they emit (`message.received`,
//! `contact.opted_out`/`contact.opted_in`). Events are logged after the directory
//! write they describe and are idempotent by id, so a replayed body (Meta's retry, the
//! inbox) logs nothing twice and a failure before logging is retried whole.

use super::{ApplyError, Context};
use crate::domain::PhoneNumber;
use crate::domain::events::{contact_opt_change, message_received};
use crate::domain::tenant::KeywordAction;
use crate::domain::webhook::{InboundMessage, UserPreferenceUpdate};
use tracing::{info, warn};

pub(super) async fn apply(
    ctx: &mut Context<'_>,
    message: &InboundMessage,
) -> Result<(), ApplyError> {
    let Some(tenant) = ctx
        .tenant_by_phone(message.phone_number_id.as_ref())
        .await?
    else {
        return Ok(());
    };
    // Contacts are keyed by E.164 number; Meta writes `from` as its wa_id (digits,
    // which may differ from the number a caller writes: `PhoneNumber::from_wa_id`). A
    // username-only user (BSUID, no number) cannot be one of our recipients yet.
    let Some(who) = message
        .from
        .as_deref()
        .and_then(|digits| PhoneNumber::from_wa_id(digits).ok())
    else {
        warn!(tenant = %tenant, "inbound message without a usable phone number; not recorded");
        ctx.report.ignored += 1;
        return Ok(());
    };
    let deps = ctx.deps;
    let at = message.timestamp.unwrap_or_else(|| deps.ports.clock.now());
    deps.ports
        .directory
        .record_inbound(&tenant, &who, at)
        .await?;
    ctx.report.inbound += 1;
    let mut events = Vec::new();
    match message
        .phone_number_id
        .as_ref()
        .map(|phone| message_received(&tenant, phone, message))
    {
        Some(Ok(event)) => events.push(event),
        Some(Err(e)) => warn!(tenant = %tenant, error = %e, "inbound message emits no event"),
        None => {}
    }
    let Some(text) = message.text() else {
        deps.ports.events.append(&events).await?;
        return Ok(());
    };
    let Some(profile) = ctx.profile(&tenant).await? else {
        warn!(tenant = %tenant, "tenant routed by phone number has no profile; keywords not checked");
        return Ok(());
    };
    if let Some(action) = profile.keyword_action(text) {
        let opted_out = action == KeywordAction::OptOut;
        deps.ports
            .directory
            .set_opt_out(&tenant, &who, opted_out, at)
            .await?;
        ctx.report.keyword_changes += 1;
        info!(tenant = %tenant, contact = %who.masked(), opted_out, "contact changed its opt-out");
        let cause = message
            .id
            .as_ref()
            .map_or_else(|| at.as_millis().to_string(), |id| id.as_str().to_owned());
        events.push(contact_opt_change(&tenant, &who, opted_out, at, &cause));
    }
    deps.ports.events.append(&events).await?;
    Ok(())
}

/// A `user_preferences` change: the user stopped (or resumed) marketing messages from
/// the tenant's number. MARKETING templates to them are then suppressed before sending
/// (`marketing_opted_out`); other templates and replies are not affected.
pub(super) async fn user_preference(
    ctx: &mut Context<'_>,
    update: &UserPreferenceUpdate,
) -> Result<(), ApplyError> {
    let Some(tenant) = ctx.tenant_by_phone(update.phone_number_id.as_ref()).await? else {
        return Ok(());
    };
    let (Some(opted_out), Some(who)) = (
        update.marketing_opted_out(),
        update
            .wa_id
            .as_deref()
            .and_then(|digits| PhoneNumber::from_wa_id(digits).ok()),
    ) else {
        info!(tenant = %tenant, category = ?update.category, value = ?update.value, "user preference not about marketing, or without a usable wa_id; ignored");
        ctx.report.ignored += 1;
        return Ok(());
    };
    let deps = ctx.deps;
    let at = update.time.unwrap_or_else(|| deps.ports.clock.now());
    deps.ports
        .directory
        .set_marketing_opt_out(&tenant, &who, opted_out, at)
        .await?;
    ctx.report.keyword_changes += 1;
    info!(tenant = %tenant, contact = %who.masked(), marketing_opted_out = opted_out, "contact changed its marketing preference");
    Ok(())
}
