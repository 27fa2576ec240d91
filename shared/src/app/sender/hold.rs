//! Tenant holds (DESIGN §5, "what belongs to a tenant is handled at that level"): a
//! `tenant`-class failure (expired or missing token, restricted or locked account,
//! billing, permissions) puts the whole tenant on hold instead of failing its
//! messages one Graph call at a time.
//!
//! While a tenant is held, its records are dropped before any claim: the messages
//! stay `queued` in the store, spend no attempt and call no Graph API. Every
//! `hold_probe_interval` one record wins the probe (a conditional write on the hold)
//! and really sends: if Graph takes it (or refuses it for any reason that is not the
//! tenant's), the hold is released and the tenant's queued messages are enqueued
//! again at once; if it fails with a tenant class again, the hold stays and the probe
//! message is queued again (a fresh queue message, delayed by the probe interval) to
//! carry the next probe. If that carrier is lost, the reconciler's sweep enqueues the
//! stale `queued` messages within `queued_grace` and one of them probes. A hold also ends by `wa tenants resume`, or by a
//! token update. Attempts that failed with a tenant class never count toward the
//! retry budget, so no message is exhausted because of a hold (only by its age).
//!
//! On AWS a held tenant's queue keeps being consumed: each record costs one receive
//! and one delete, and the reconciler's sweep enqueues the stale `queued` messages
//! again each `queued_grace`, where the sender drops them again. No record goes to
//! the DLQ (each is received once), no message is lost, and resuming needs no change
//! to the event source mapping (`docs/decisions.md`).

use super::record::Send;
use crate::app::SenderDeps;
use crate::app::errors::ErrorChain;
use crate::domain::tenant::{TenantHold, TenantProfile};
use crate::domain::{Failure, MessageState, TenantId, Timestamp};
use crate::ports::QueueRef;
use crate::queues::SendQueueMessage;
use std::time::Duration;
use tracing::{error, info, warn};

/// Default wait between two probes of a held tenant.
pub const DEFAULT_HOLD_PROBE_INTERVAL: Duration = Duration::from_secs(120);

/// Most queued messages one release enqueues again (the reconciler's sweep finds the
/// rest within `queued_grace`).
const RESUME_LIMIT: usize = 5_000;

/// What the hold lets this record do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// No hold: send as usual.
    Open,
    /// Held, and this record won the probe: send, then release or keep the hold.
    Probe,
    /// Held: drop the record, the message waits in the store.
    Held,
}

/// Whether `tenant`'s records may be sent now.
pub(super) async fn gate(
    deps: &SenderDeps,
    tenant: &TenantId,
    now: Timestamp,
) -> Result<Gate, crate::ports::DirectoryError> {
    if deps
        .ports
        .directory
        .tenant(tenant)
        .await?
        .and_then(|p| p.hold)
        .is_none()
    {
        return Ok(Gate::Open);
    }
    // Held by the cached profile: read it as stored before dropping anything (another
    // container may have released the hold and enqueued these messages a moment ago).
    let Some(hold) = deps
        .ports
        .directory
        .tenant_uncached(tenant)
        .await?
        .and_then(|p| p.hold)
    else {
        return Ok(Gate::Open);
    };
    if !hold.probe_due(now) {
        return Ok(Gate::Held);
    }
    let next = now.plus_millis(millis(deps.settings.hold_probe_interval));
    if deps
        .ports
        .directory
        .claim_hold_probe(tenant, hold.probe_at, next)
        .await?
    {
        info!(tenant = %tenant, since = %hold.since, "held tenant: this send probes it");
        Ok(Gate::Probe)
    } else {
        Ok(Gate::Held)
    }
}

/// Undo this record's probe claim (made at `now`): the hold's `probe_at` goes back to
/// `now`, so the next record may probe at once. Best effort: if it fails, the next
/// probe comes one interval later.
pub(super) async fn give_back_probe(deps: &SenderDeps, tenant: &TenantId, now: Timestamp) {
    let claimed = now.plus_millis(millis(deps.settings.hold_probe_interval));
    if let Err(e) = deps
        .ports
        .directory
        .claim_hold_probe(tenant, claimed, now)
        .await
    {
        warn!(tenant = %tenant, error = %ErrorChain(&e), "could not give the hold's probe back");
    }
}

/// Queue a held tenant's probe carrier again, visible at the hold's next probe (at
/// least a second, at most SQS's 15 minutes). `Again::Yes` (its record comes back)
/// if that fails.
pub(super) async fn requeue_carrier(
    deps: &SenderDeps,
    reference: &SendQueueMessage,
    now: Timestamp,
) -> super::record::Again {
    use super::record::Again;
    let profile = match deps.ports.directory.tenant(&reference.tenant).await {
        Ok(Some(p)) => p,
        Ok(None) => return Again::No,
        Err(e) => {
            warn!(error = %ErrorChain(&e), "could not read the held tenant");
            return Again::Yes;
        }
    };
    let wait_ms = profile
        .hold
        .as_ref()
        .map_or(0, |h| h.probe_at.millis_since(now))
        .clamp(1_000, 900_000);
    let delay = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1_000));
    let queue = QueueRef::new(profile.queue.clone());
    match deps
        .ports
        .queue
        .send(&queue, &reference.to_body(), delay)
        .await
    {
        Ok(_) => {
            info!(
                delay_ms = wait_ms,
                "tenant on hold: probe carrier queued for the next probe"
            );
            Again::No
        }
        Err(e) => {
            warn!(error = %ErrorChain(&e), "could not queue the probe carrier again");
            Again::Yes
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Send<'_> {
    /// A tenant-class failure: put the tenant on hold (the first one's cause is kept).
    pub(super) async fn hold_tenant(&self, failure: &Failure) {
        let deps = self.deps;
        let now = deps.ports.clock.now();
        let hold = TenantHold {
            code: failure.code,
            reason: failure.title.clone(),
            detail: failure.detail.clone(),
            since: now,
            probe_at: now.plus_millis(millis(deps.settings.hold_probe_interval)),
        };
        match deps.ports.directory.place_hold(self.tenant(), &hold).await {
            Ok(true) => {
                error!(tenant = %self.tenant(), code = ?failure.code, reason = %failure.title,
                    "tenant put on hold: its messages wait (no attempt spent) until a probe \
                     succeeds, the token is updated or `wa tenants resume`");
                deps.ports
                    .metrics
                    .count("TenantHeld", &[("Tenant", self.tenant().as_str())]);
            }
            // Already held (a failed probe, or a send that was in flight): still on hold.
            Ok(false) => deps
                .ports
                .metrics
                .count("TenantOnHold", &[("Tenant", self.tenant().as_str())]),
            Err(e) => {
                warn!(tenant = %self.tenant(), error = %ErrorChain(&e), "could not record the tenant hold");
            }
        }
    }

    /// The probe got an answer that is not the tenant's fault: release the hold and
    /// enqueue the waiting messages again.
    pub(super) async fn release_after_probe(&self, profile: &TenantProfile) {
        match self.deps.ports.directory.release_hold(self.tenant()).await {
            Ok(true) => {
                info!(tenant = %self.tenant(), "probe succeeded: tenant hold released");
                self.deps
                    .ports
                    .metrics
                    .count("TenantHoldReleased", &[("Tenant", self.tenant().as_str())]);
                let queue = QueueRef::new(profile.queue.clone());
                match resume(self.deps, self.tenant(), &queue, self.message.id.as_str()).await {
                    Ok(n) => {
                        info!(tenant = %self.tenant(), enqueued = n, "held messages enqueued again")
                    }
                    Err(e) => warn!(tenant = %self.tenant(), error = %e,
                        "could not enqueue the held messages again; the reconciler's sweep will"),
                }
            }
            Ok(false) => {}
            Err(e) => {
                warn!(tenant = %self.tenant(), error = %ErrorChain(&e), "could not release the tenant hold");
            }
        }
    }
}

/// Enqueue `tenant`'s `queued` messages again (newest first, at most
/// [`RESUME_LIMIT`]), but `skip` (the probe's own). How many were enqueued.
pub async fn resume(
    deps: &SenderDeps,
    tenant: &TenantId,
    queue: &QueueRef,
    skip: &str,
) -> Result<usize, String> {
    resume_with(
        deps.ports.store.as_ref(),
        deps.ports.queue.as_ref(),
        tenant,
        queue,
        skip,
    )
    .await
}

/// [`resume`] on bare ports (`wa tenants resume` uses it too).
pub async fn resume_with(
    store: &dyn crate::ports::MessageStore,
    queue_port: &dyn crate::ports::WorkQueue,
    tenant: &TenantId,
    queue: &QueueRef,
    skip: &str,
) -> Result<usize, String> {
    let mut cursor: Option<String> = None;
    let mut enqueued = 0;
    loop {
        let page = store
            .list_by_tenant(
                tenant,
                Some(MessageState::Queued),
                None,
                100,
                cursor.as_deref(),
            )
            .await
            .map_err(|e| ErrorChain(&e).to_string())?;
        let bodies: Vec<String> = page
            .items
            .iter()
            .filter(|m| m.id.as_str() != skip)
            .map(|m| SendQueueMessage::of(m).to_body())
            .collect();
        if !bodies.is_empty() {
            queue_port
                .send_many(queue, &bodies)
                .await
                .map_err(|e| ErrorChain(&e).to_string())?;
            enqueued += bodies.len();
        }
        cursor = page.next;
        if cursor.is_none() || enqueued >= RESUME_LIMIT {
            return Ok(enqueued);
        }
    }
}
