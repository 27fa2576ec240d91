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

/// Apply every event of `batch`; stops at the first storage failure.
pub async fn apply_batch(
    deps: &WebhookDeps,
    batch: &WebhookBatch,
) -> Result<ApplyReport, ApplyError> {
    apply_batch_until(deps, batch, None).await
}

/// [`apply_batch`], stopping with [`ApplyError::OutOfTime`] when `deadline` has passed
/// before an event (a body of 1,000 statuses must not outlive the function).
pub async fn apply_batch_until(
    deps: &WebhookDeps,
    batch: &WebhookBatch,
    deadline: Option<std::time::Instant>,
) -> Result<ApplyReport, ApplyError> {
    for warning in &batch.warnings {
        warn!(warning = %warning, "webhook body tolerated with a warning");
    }
    let mut ctx = Context {
        deps,
        report: ApplyReport::default(),
        by_phone: HashMap::new(),
        by_waba: HashMap::new(),
        profiles: HashMap::new(),
    };
    let total = batch.events.len();
    for (applied, event) in batch.events.iter().enumerate() {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(ApplyError::OutOfTime { applied, total });
        }
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

/// Per-batch lookups, so a batch of 100 statuses from one number asks the directory once.
pub(super) struct Context<'d> {
    pub(super) deps: &'d WebhookDeps,
    pub(super) report: ApplyReport,
    by_phone: HashMap<PhoneNumberId, Option<TenantId>>,
    by_waba: HashMap<String, Vec<TenantId>>,
    profiles: HashMap<TenantId, Option<TenantProfile>>,
}

impl Context<'_> {
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
