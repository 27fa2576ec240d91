//! Applying a verified webhook batch: statuses to the message store, inbound messages
//! and management changes to the directory.
//!
//! Every write is idempotent (statuses dedupe on their fingerprint, inbound times only
//! move forward, opt-outs keep the newest change), so a batch that failed half way is
//! safe to apply again from the inbox.

mod inbound;
mod management;
mod statuses;

use crate::app::WebhookDeps;
use crate::domain::tenant::TenantProfile;
use crate::domain::webhook::{WebhookBatch, WebhookEvent};
use crate::domain::{PhoneNumberId, TenantId};
use crate::ports::{DirectoryError, StoreError};
use std::collections::HashMap;
use tracing::{info, warn};

/// Why a batch could not be stored (the HTTP answer parks it; the inbox retries it).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The message store failed.
    #[error("message store failed")]
    Store(#[from] StoreError),
    /// The directory failed.
    #[error("directory failed")]
    Directory(#[from] DirectoryError),
    /// The event log failed.
    #[error("event log failed")]
    Events(#[from] crate::ports::EventLogError),
    /// The cost ledger failed (the status itself was stored).
    #[error("cost ledger failed")]
    Costs(#[from] crate::ports::CostLedgerError),
    /// The time for applying the body ran out with events left (they are not lost:
    /// the caller parks the body, and its replay applies them).
    #[error("out of time after {applied} of {total} events")]
    OutOfTime {
        /// Events applied.
        applied: usize,
        /// Events in the body.
        total: usize,
    },
}

/// What one batch did, for the log line and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Statuses that moved a message forward.
    pub advanced: u32,
    /// Lower-rank statuses that only filled their timestamp.
    pub timestamps_filled: u32,
    /// Statuses recorded as anomalies (e.g. `failed` after `delivered`).
    pub anomalies: u32,
    /// Statuses already applied.
    pub duplicates: u32,
    /// Statuses of messages we do not know.
    pub unknown_messages: u32,
    /// Inbound messages recorded on their contact.
    pub inbound: u32,
    /// Opt-outs and opt-ins recorded.
    pub keyword_changes: u32,
    /// Template and phone/account changes stored in the directory.
    pub directory_updates: u32,
    /// Events whose phone number id or WABA id routes to no tenant.
    pub unrouted: u32,
    /// Statuses of a message whose tenant does not own the number they came from.
    pub misrouted: u32,
    /// Events that carry nothing to store (system errors, unknown changes, …).
    pub ignored: u32,
}

impl ApplyReport {
    /// Add another report's counts to this one.
    fn merge(&mut self, other: &ApplyReport) {
        self.advanced += other.advanced;
        self.timestamps_filled += other.timestamps_filled;
        self.anomalies += other.anomalies;
        self.duplicates += other.duplicates;
        self.unknown_messages += other.unknown_messages;
        self.inbound += other.inbound;
        self.keyword_changes += other.keyword_changes;
        self.directory_updates += other.directory_updates;
        self.unrouted += other.unrouted;
        self.misrouted += other.misrouted;
        self.ignored += other.ignored;
    }
}

/// The non-zero counts only (`advanced=3 duplicates=1`), or `nothing`: the webhook's
/// log line per body, where the Debug form of every field was about 400 bytes of
/// CloudWatch Logs for each of a lifecycle's three bodies (issue 15's cost).
impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = [
            ("advanced", self.advanced),
            ("timestamps_filled", self.timestamps_filled),
            ("anomalies", self.anomalies),
            ("duplicates", self.duplicates),
            ("unknown_messages", self.unknown_messages),
            ("inbound", self.inbound),
            ("keyword_changes", self.keyword_changes),
            ("directory_updates", self.directory_updates),
            ("unrouted", self.unrouted),
            ("misrouted", self.misrouted),
            ("ignored", self.ignored),
        ];
        let mut any = false;
        for (name, count) in counts.into_iter().filter(|(_, n)| *n > 0) {
            if any {
                f.write_str(" ")?;
            }
            write!(f, "{name}={count}")?;
            any = true;
        }
        if !any {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

/// Statuses of one body applied at once: a body of 1,000 statuses (Meta batches up to
/// that many) takes a sixteenth of the time, each status being one conditional write
/// (and at times a read) whatever the order, which the lifecycle makes safe.
const STATUS_CONCURRENCY: usize = 16;

/// Apply every event of `batch`; stops at the first storage failure.
pub async fn apply_batch(
    deps: &WebhookDeps,
    batch: &WebhookBatch,
) -> Result<ApplyReport, ApplyError> {
    apply_batch_until(deps, batch, 0, None).await
}

/// [`apply_batch`] from the event at index `start` (the events before it were applied
/// by an earlier run), stopping with [`ApplyError::OutOfTime`] when `deadline` has
/// passed before an event (a body of 1,000 statuses must not outlive the function).
/// `OutOfTime.applied` counts from the body's first event, so it is the next `start`.
pub async fn apply_batch_until(
    deps: &WebhookDeps,
    batch: &WebhookBatch,
    start: usize,
    deadline: Option<std::time::Instant>,
) -> Result<ApplyReport, ApplyError> {
    if start == 0 {
        for warning in &batch.warnings {
            warn!(warning = %warning, "webhook body tolerated with a warning");
        }
    }
    let mut ctx = Context::new(deps);
    let total = batch.events.len();
    let mut applied = start.min(total);
    while let Some(event) = batch.events.get(applied) {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(ApplyError::OutOfTime { applied, total });
        }
        // A run of statuses goes STATUS_CONCURRENCY at a time; anything else in order.
        let run = batch.events[applied..]
            .iter()
            .take(STATUS_CONCURRENCY)
            .take_while(|e| matches!(e, WebhookEvent::Status(_)))
            .count();
        if run > 1 {
            apply_statuses(&mut ctx, &batch.events[applied..applied + run]).await?;
            applied += run;
            continue;
        }
        applied += 1;
        match event {
            WebhookEvent::Status(s) => statuses::apply(&mut ctx, s).await?,
            WebhookEvent::Inbound(m) => inbound::apply(&mut ctx, m).await?,
            WebhookEvent::TemplateStatus(u) => management::template_status(&mut ctx, u).await?,
            WebhookEvent::TemplateQuality(u) => management::template_quality(&mut ctx, u).await?,
            WebhookEvent::PhoneNumberQuality(u) => management::phone_quality(&mut ctx, u).await?,
            WebhookEvent::AccountUpdate(u) => management::account_update(&mut ctx, u).await?,
            WebhookEvent::TemplateCategory(u) => {
                management::template_category(&mut ctx, u).await?;
            }
            WebhookEvent::UserPreference(u) => inbound::user_preference(&mut ctx, u).await?,
            WebhookEvent::SystemError(e) => {
                warn!(waba_id = %e.waba_id, code = ?e.error.code, title = ?e.error.title, "Meta reported a system error");
                ctx.report.ignored += 1;
            }
            WebhookEvent::Unknown(u) => {
                info!(waba_id = %u.waba_id, field = %u.field, "webhook change not handled");
                ctx.report.ignored += 1;
            }
        }
    }
    Ok(ctx.report)
}

/// Apply `events` (statuses only) concurrently, each with its own context seeded with
/// the batch's phone routing; their counts join the batch's report. Every status is
/// tried; the first storage failure is returned afterwards (the body is then parked,
/// and its replay skips what was applied, as duplicates).
async fn apply_statuses(ctx: &mut Context<'_>, events: &[WebhookEvent]) -> Result<(), ApplyError> {
    // Resolve each number once for all of them (counted as unrouted by each status).
    for event in events {
        if let WebhookEvent::Status(s) = event
            && let Some(id) = s.phone_number_id.as_ref()
            && !ctx.by_phone.contains_key(id)
        {
            let tenant = ctx
                .deps
                .ports
                .directory
                .tenant_by_phone_number_id(id)
                .await?;
            ctx.by_phone.insert(id.clone(), tenant);
        }
    }
    let by_phone = ctx.by_phone.clone();
    let deps = ctx.deps;
    let results = futures_util::future::join_all(events.iter().map(|event| {
        let by_phone = by_phone.clone();
        async move {
            let mut own = Context::new(deps);
            own.by_phone = by_phone;
            if let WebhookEvent::Status(s) = event {
                statuses::apply(&mut own, s).await?;
            }
            Ok::<ApplyReport, ApplyError>(own.report)
        }
    }))
    .await;
    let mut first_error = None;
    for result in results {
        match result {
            Ok(report) => ctx.report.merge(&report),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Per-batch lookups, so a batch of 100 statuses from one number asks the directory once.
pub(super) struct Context<'d> {
    pub(super) deps: &'d WebhookDeps,
    pub(super) report: ApplyReport,
    by_phone: HashMap<PhoneNumberId, Option<TenantId>>,
    by_waba: HashMap<String, Vec<TenantId>>,
    profiles: HashMap<TenantId, Option<TenantProfile>>,
}

impl<'d> Context<'d> {
    /// A context with empty caches and report.
    fn new(deps: &'d WebhookDeps) -> Self {
        Self {
            deps,
            report: ApplyReport::default(),
            by_phone: HashMap::new(),
            by_waba: HashMap::new(),
            profiles: HashMap::new(),
        }
    }

    /// The tenant that owns a business phone number; counted when there is none.
    pub(super) async fn tenant_by_phone(
        &mut self,
        id: Option<&PhoneNumberId>,
    ) -> Result<Option<TenantId>, DirectoryError> {
        let Some(id) = id else {
            return Ok(self.unrouted("no phone_number_id", ""));
        };
        if !self.by_phone.contains_key(id) {
            let tenant = self
                .deps
                .ports
                .directory
                .tenant_by_phone_number_id(id)
                .await?;
            self.by_phone.insert(id.clone(), tenant);
        }
        match self.by_phone.get(id).cloned().flatten() {
            Some(t) => Ok(Some(t)),
            None => Ok(self.unrouted("unknown phone_number_id", id.as_str())),
        }
    }

    /// Every tenant on a WABA (several may share one); counted when there is none.
    pub(super) async fn tenants_by_waba(
        &mut self,
        waba_id: &str,
    ) -> Result<Vec<TenantId>, DirectoryError> {
        if !self.by_waba.contains_key(waba_id) {
            let tenants = self
                .deps
                .ports
                .directory
                .tenants_by_waba_id(waba_id)
                .await?;
            self.by_waba.insert(waba_id.to_owned(), tenants);
        }
        let tenants = self.by_waba.get(waba_id).cloned().unwrap_or_default();
        if tenants.is_empty() {
            self.unrouted("unknown WABA id", waba_id);
        }
        Ok(tenants)
    }

    /// A tenant's profile (cached for the batch).
    pub(super) async fn profile(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Option<TenantProfile>, DirectoryError> {
        if !self.profiles.contains_key(tenant) {
            let profile = self.deps.ports.directory.tenant(tenant).await?;
            self.profiles.insert(tenant.clone(), profile);
        }
        Ok(self.profiles.get(tenant).cloned().flatten())
    }

    /// Forget a cached profile after a partial write of it (the next read fetches it).
    pub(super) fn forget_profile(&mut self, tenant: &TenantId) {
        self.profiles.remove(tenant);
    }

    fn unrouted(&mut self, why: &str, id: &str) -> Option<TenantId> {
        // Acknowledged, not an error: another app on the same WABA, or a tenant not yet
        // added. Meta would retry an error for days without anything changing.
        warn!(id, "webhook event routes to no tenant: {why}");
        self.deps.ports.metrics.count("UnroutedWebhook", &[]);
        self.report.unrouted += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::ApplyReport;

    #[test]
    fn the_report_names_only_what_happened() {
        assert_eq!(ApplyReport::default().to_string(), "nothing");
        let report = ApplyReport {
            advanced: 3,
            duplicates: 1,
            ignored: 2,
            ..ApplyReport::default()
        };
        assert_eq!(report.to_string(), "advanced=3 duplicates=1 ignored=2");
    }
}
