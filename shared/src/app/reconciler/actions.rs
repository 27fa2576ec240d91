//! What the reconciler does to one overdue message (DESIGN §7), and the run's tallies.

use super::{Action, RunReport};
use crate::app::ReconcilerDeps;
use crate::domain::failure::{Failure, FailureClass, FailureSource};
use crate::domain::lifecycle::{EventKind, LifecycleEvent};
use crate::domain::tenant::{OnAmbiguous, TenantProfile};
use crate::domain::{Message, MessageState, TenantId, Timestamp};
use crate::ports::{QueueRef, Recorded, record_event};
use crate::queues::SendQueueMessage;
use std::collections::HashMap;
use std::time::Duration;
use tracing::{error, info};

/// One run's state: its instant, cached tenant profiles and per-tenant counters.
pub(super) struct Sweep<'d> {
    deps: &'d ReconcilerDeps,
    /// The run's instant: every decision of the run compares against it.
    pub(super) now: Timestamp,
    pub(super) report: RunReport,
    profiles: HashMap<TenantId, Option<TenantProfile>>,
    reenqueued: HashMap<TenantId, usize>,
}

#[derive(Debug, thiserror::Error)]
enum ActError {
    #[error(transparent)]
    Store(#[from] crate::ports::StoreError),
    #[error(transparent)]
    Directory(#[from] crate::ports::DirectoryError),
    #[error(transparent)]
    Queue(#[from] crate::ports::QueueError),
    #[error("tenant has no profile, so no queue to enqueue on")]
    NoProfile,
}

impl<'d> Sweep<'d> {
    pub(super) fn new(deps: &'d ReconcilerDeps) -> Self {
        Self {
            deps,
            now: deps.ports.clock.now(),
            report: RunReport::default(),
            profiles: HashMap::new(),
            reenqueued: HashMap::new(),
        }
    }

    pub(super) fn finish(self) -> RunReport {
        self.report
    }

    pub(super) fn error(&mut self, e: &dyn std::error::Error, what: &str) {
        error!(error = %e, source = ?e.source(), "{what}");
        self.deps.ports.metrics.count("ReconcilerError", &[]);
        self.report.errors += 1;
    }

    /// Look at one overdue item of `state` and act on it.
    pub(super) async fn act(&mut self, state: MessageState, message: &Message) {
        self.report.scanned += 1;
        if let Some(due) = message.sweep_at {
            let overdue = self.now.millis_since(due);
            let oldest = self
                .report
                .oldest_overdue_ms
                .entry(state.as_str())
                .or_insert(0);
            *oldest = (*oldest).max(overdue);
        }
        let result = match state {
            MessageState::Scheduled => self.release(message).await,
            MessageState::Queued => self.reenqueue(message).await,
            MessageState::Sending if message.ambiguous_at.is_some() => {
                self.resolve_ambiguous(message).await
            }
            MessageState::Sending => self.recover_lease(message).await,
            MessageState::Accepted | MessageState::Sent => self.unconfirm(message).await,
            _ => Ok(None),
        };
        match result {
            Ok(Some(action)) => {
                *self.report.actions.entry(action).or_insert(0) += 1;
                self.deps
                    .ports
                    .metrics
                    .count("ReconcilerAction", &[("Action", action.as_str())]);
                info!(tenant = %message.tenant, message_id = %message.id, action = action.as_str(), "reconciler acted");
            }
            Ok(None) => {}
            Err(e) => {
                error!(tenant = %message.tenant, message_id = %message.id, "reconciler action failed");
                self.error(&e, "reconciler action failed");
            }
        }
    }

    /// `queued` past its deadline: the enqueue was lost, or the queue is slow. Push the
    /// deadline out, then enqueue (the sender's claim dedups a second wake-up call).
    async fn reenqueue(&mut self, message: &Message) -> Result<Option<Action>, ActError> {
        let done = self.reenqueued.get(&message.tenant).copied().unwrap_or(0);
        if done >= self.deps.settings.max_requeues_per_tenant {
            self.report.deferred += 1;
            return Ok(None);
        }
        let queue = self.queue_of(&message.tenant).await?;
        let next = next_deadline(
            message.sweep_at,
            self.now,
            self.deps.ports.lifecycle.queued_grace_ms(),
        );
        if !self
            .record(message, EventKind::SweepPushed { next })
            .await?
        {
            return Ok(None);
        }
        *self.reenqueued.entry(message.tenant.clone()).or_insert(0) += 1;
        self.enqueue(&queue, message).await?;
        Ok(Some(Action::Reenqueued))
    }

    /// `scheduled` whose `send_at` has come: `queued`, then enqueued (the queue only
    /// wakes the sender; if the enqueue fails, the queued grace brings it back).
    async fn release(&mut self, message: &Message) -> Result<Option<Action>, ActError> {
        let queue = self.queue_of(&message.tenant).await?;
        if !self.record(message, EventKind::Released).await? {
            return Ok(None);
        }
        self.enqueue(&queue, message).await?;
        self.deps
            .ports
            .metrics
            .count("Queued", &[("Tenant", message.tenant.as_str())]);
        Ok(Some(Action::Released))
    }

    /// `sending` whose lease expired: the sender died or timed out before reporting.
    /// If it had dispatched its Graph call, the outcome is unknown: mark it ambiguous
    /// (the guard re-checks the mark) rather than queue a blind resend; otherwise
    /// requeue it, or end it on the last attempt.
    async fn recover_lease(&mut self, message: &Message) -> Result<Option<Action>, ActError> {
        self.deps
            .ports
            .metrics
            .count("StuckSending", &[("Tenant", message.tenant.as_str())]);
        let attempt = message.attempt;
        if message.dispatched_at.is_some() {
            if !self
                .record(message, EventKind::DispatchLapsed { attempt })
                .await?
            {
                return Ok(None);
            }
            self.deps
                .ports
                .metrics
                .count("Ambiguous", &[("Tenant", message.tenant.as_str())]);
            return Ok(Some(Action::DispatchLapsed));
        }
        // Attempts a tenant hold or the marketing limit sent back do not count.
        if message.counted_attempts() >= self.deps.ports.lifecycle.max_attempts {
            let kind = EventKind::Exhausted {
                attempt,
                failure: exhausted_failure(attempt),
            };
            if !self.record(message, kind).await? {
                return Ok(None);
            }
            self.count_failed(message, FailureClass::Exhausted).await;
            return Ok(Some(Action::Exhausted));
        }
        let queue = self.queue_of(&message.tenant).await?;
        if !self
            .record(message, EventKind::Requeued { attempt })
            .await?
        {
            return Ok(None);
        }
        self.enqueue(&queue, message).await?;
        Ok(Some(Action::Requeued))
    }

    /// An ambiguous send past its grace with no webhook: the tenant's policy decides.
    async fn resolve_ambiguous(&mut self, message: &Message) -> Result<Option<Action>, ActError> {
        let attempt = message.attempt;
        let policy = self
            .profile(&message.tenant)
            .await?
            .map_or(OnAmbiguous::default(), |p| p.on_ambiguous);
        match policy {
            OnAmbiguous::Fail => {
                if !self
                    .record(message, EventKind::AmbiguousFailed { attempt })
                    .await?
                {
                    return Ok(None);
                }
                // Our guess, not Meta's word: counted apart from `Failed`, since a late
                // webhook may still correct it (`FailureCorrected`).
                self.deps
                    .ports
                    .metrics
                    .count("AmbiguousFailed", &[("Tenant", message.tenant.as_str())]);
                Ok(Some(Action::AmbiguousFailed))
            }
            OnAmbiguous::Retry => {
                let queue = self.queue_of(&message.tenant).await?;
                if !self
                    .record(message, EventKind::AmbiguousRetry { attempt })
                    .await?
                {
                    return Ok(None);
                }
                self.enqueue(&queue, message).await?;
                Ok(Some(Action::AmbiguousRetried))
            }
        }
    }

    /// `accepted`/`sent` with no further webhook past the horizon: webhooks are missing.
    async fn unconfirm(&mut self, message: &Message) -> Result<Option<Action>, ActError> {
        if !self.record(message, EventKind::Unconfirmed).await? {
            return Ok(None);
        }
        self.deps
            .ports
            .metrics
            .count("MissingWebhooks", &[("Tenant", message.tenant.as_str())]);
        // `MissingWebhooks` is the count: an unconfirmed failure is our guess, which a
        // late webhook may still correct, so it is not counted as `Failed`.
        Ok(Some(Action::Unconfirmed))
    }

    /// Write the event conditionally; `false` when the message moved on meanwhile.
    async fn record(&mut self, message: &Message, kind: EventKind) -> Result<bool, ActError> {
        let event = LifecycleEvent::new(self.now, kind);
        let deps = self.deps;
        let recorded = record_event(
            &*deps.ports.store,
            &message.tenant,
            &message.id,
            &event,
            &deps.ports.lifecycle,
        )
        .await?;
        Ok(match recorded {
            Recorded::Written { .. } => true,
            Recorded::Duplicate(_) | Recorded::NotFound => {
                self.report.already_handled += 1;
                false
            }
        })
    }

    async fn enqueue(&self, queue: &QueueRef, message: &Message) -> Result<(), ActError> {
        let body = SendQueueMessage::of(message).to_body();
        self.deps
            .ports
            .queue
            .send(queue, &body, Duration::ZERO)
            .await?;
        Ok(())
    }

    async fn profile(&mut self, tenant: &TenantId) -> Result<Option<TenantProfile>, ActError> {
        if !self.profiles.contains_key(tenant) {
            let profile = self.deps.ports.directory.tenant(tenant).await?;
            self.profiles.insert(tenant.clone(), profile);
        }
        Ok(self.profiles.get(tenant).cloned().flatten())
    }

    /// The tenant's send queue, looked up before any write so that a message is never
    /// moved to `queued` with nowhere to enqueue it.
    async fn queue_of(&mut self, tenant: &TenantId) -> Result<QueueRef, ActError> {
        let profile = self.profile(tenant).await?.ok_or(ActError::NoProfile)?;
        Ok(QueueRef::new(profile.queue))
    }

    /// The metric and the status page's series (`failed.<class>`) of a failure the
    /// reconciler declares.
    async fn count_failed(&self, message: &Message, class: FailureClass) {
        self.deps.ports.metrics.count(
            "Failed",
            &[
                ("Tenant", message.tenant.as_str()),
                ("Class", class.as_str()),
            ],
        );
        let metric = crate::domain::series::SeriesMetric::Failed(class.as_str().into());
        let point = crate::domain::series::SeriesPoint::one(
            &message.tenant,
            self.deps.ports.clock.now(),
            metric,
        );
        crate::app::series::record(&self.deps.ports, &[point]).await;
    }
}

/// The next deadline of a stale `queued` message: the first multiple of the grace after
/// `now`, counted from its current deadline. Two overlapping runs compute the same
/// value, so their `SweepPushed` events share a fingerprint and only one is written.
pub(super) fn next_deadline(
    current: Option<Timestamp>,
    now: Timestamp,
    grace_ms: i64,
) -> Timestamp {
    let grace = grace_ms.max(1);
    match current {
        Some(due) if due <= now => {
            let periods = now.millis_since(due) / grace + 1;
            due.plus_millis(periods.saturating_mul(grace))
        }
        _ => now.plus_millis(grace),
    }
}

fn exhausted_failure(attempt: u32) -> Failure {
    Failure {
        class: FailureClass::Exhausted,
        code: None,
        title: format!("claim lease expired on attempt {attempt}, the last allowed"),
        detail: None,
        source: FailureSource::Reconciler,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_runs_push_a_stale_deadline_to_the_same_instant() {
        let due = Timestamp::from_millis(1_000);
        let a = next_deadline(Some(due), Timestamp::from_millis(1_500), 900);
        let b = next_deadline(Some(due), Timestamp::from_millis(1_800), 900);
        assert_eq!(a, Timestamp::from_millis(1_900));
        assert_eq!(a, b);
        // Long overdue: the next deadline is still after now, by at most one grace.
        let late = next_deadline(Some(due), Timestamp::from_millis(10_000), 900);
        assert!(late > Timestamp::from_millis(10_000));
        assert!(late <= Timestamp::from_millis(10_900));
        // Exactly due: pushed by a full grace.
        assert_eq!(
            next_deadline(Some(due), due, 900),
            Timestamp::from_millis(1_900)
        );
        assert_eq!(next_deadline(None, due, 0), Timestamp::from_millis(1_001));
    }
}
