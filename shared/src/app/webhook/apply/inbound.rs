//! Inbound messages: the contact's last inbound time (the 24-hour window) and its
//! opt-out/opt-in keywords, per tenant.

use super::{ApplyError, Context};
use crate::domain::PhoneNumber;
use crate::domain::tenant::KeywordAction;
use crate::domain::webhook::InboundMessage;
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
    // Contacts are keyed by E.164 number; Meta writes `from` as digits without `+`. A
    // username-only user (BSUID, no number) cannot be one of our recipients yet.
    let Some(who) = message
        .from
        .as_deref()
        .and_then(|digits| PhoneNumber::parse(&format!("+{digits}")).ok())
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
    let Some(text) = message.text() else {
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
    }
    Ok(())
}
