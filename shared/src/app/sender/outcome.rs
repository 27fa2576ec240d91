//! Recording what became of a send: retry (with its delay), failure, suppression,
//! and the exhaustion of the retry budget or the message's age.

use super::marketing_limit;
use super::record::{Again, Send};
use crate::app::errors::ErrorChain;
use crate::domain::graph::Classification;
use crate::domain::lifecycle::EventKind;
use crate::domain::series::{SeriesMetric, SeriesPoint};
use crate::domain::tenant::TenantProfile;
use crate::domain::{Failure, FailureClass, FailureSource, LifecycleEvent, Suppression, Timestamp};
use crate::ports::queue::MAX_VISIBILITY_TIMEOUT;
use crate::ports::{QueueRef, Recorded, record_event};
use std::time::Duration;
use tracing::{error, info, warn};

/// Longest delay of a newly sent queue message (SQS: 15 minutes).
const MAX_SEND_DELAY: Duration = Duration::from_secs(900);

/// Waits between the tries of one outcome write: four tries within about half a
/// second, a small part of the sender's 30 s timeout, enough to ride out a throttled
/// or briefly unreachable store.
pub(super) const RECORD_BACKOFF: [Duration; 3] = [
    Duration::from_millis(25),
    Duration::from_millis(100),
    Duration::from_millis(400),
];

impl Send<'_> {
    /// Exhausted when this attempt was the last, or the message is too old to send.
    pub(super) fn exhausted(&self, now: Timestamp, last: Option<&Failure>) -> Option<Failure> {
        let settings = &self.deps.ports.lifecycle;
        let age_ms = now.millis_since(self.message.sendable_since());
        let max_age_ms = i64::try_from(settings.max_age.as_millis()).unwrap_or(i64::MAX);
        // Attempts that failed with a tenant class (the tenant's hold) or the per-user
        // marketing limit (131049) do not count toward the budget, this one included.
        let this_one_uncounted =
            last.is_some_and(|f| f.class == FailureClass::Tenant || marketing_limit::is_limit(f));
        let counted = self
            .message
            .counted_attempts()
            .saturating_sub(u32::from(this_one_uncounted));
        let (over, title) = match last {
            // Before sending: only an attempt past the budget (a reconciler requeue).
            None => (counted > settings.max_attempts, "retry budget spent"),
            Some(_) => (counted >= settings.max_attempts, "retry budget spent"),
        };
        let title = if age_ms > max_age_ms {
            "message is older than the maximum age"
        } else if over {
            title
        } else {
            return None;
        };
        let mut failure = sender_failure(FailureClass::Exhausted, title);
        if let Some(last) = last {
            failure.code = last.code;
            failure.detail = Some(format!("last failure: {} ({})", last.title, last.class));
        }
        Some(failure)
    }

    /// Back to `queued` with the class's delay, or exhausted.
    pub(super) async fn retry(
        &mut self,
        profile: &TenantProfile,
        failure: Failure,
        classification: Option<&Classification>,
    ) -> Again {
        let now = self.deps.ports.clock.now();
        if let Some(exhausted) = self.exhausted(now, Some(&failure)) {
            return self.fail(exhausted).await;
        }
        let jitter = jitter();
        let held = failure.class == FailureClass::Tenant;
        // Meta's per-user marketing limit: at least 24 h, longer than SQS can hide a
        // record; the reconciler's sweep brings the message back (`marketing_limit`).
        let limited = marketing_limit::is_limit(&failure);
        let delay = if held {
            // The tenant is on hold: this message comes back for the next probe.
            self.deps.settings.hold_probe_interval.min(MAX_SEND_DELAY)
        } else {
            let backoff = classification
                .and_then(|c| c.retry_delay(self.attempt(), jitter))
                .or_else(|| failure.class.retry_delay(self.attempt(), jitter))
                .unwrap_or(Duration::ZERO);
            if limited {
                backoff.max(marketing_limit::LIMIT_WAIT)
            } else {
                backoff.min(MAX_VISIBILITY_TIMEOUT)
            }
        };
        let not_before = now.plus_millis(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        if limited {
            // The recipient's other MARKETING templates wait too.
            self.limit_recipient(not_before).await;
            if let Some(exhausted) = self.limit_outlives(not_before, &failure) {
                return self.fail(exhausted).await;
            }
        }
        info!(class = %failure.class, delay_ms = delay.as_millis() as u64, "retry scheduled");
        let class = failure.class;
        let event = EventKind::RetryScheduled {
            attempt: self.attempt(),
            failure,
            not_before,
        };
        if !self.record(event, now).await {
            // Not recorded. Before a Graph call (no token) the claim simply expires and
            // the record, back at its usual visibility, claims it again. After one, the
            // attempt is dispatched: no claim takes it over, and the reconciler marks it
            // ambiguous when the lease expires; the returning record is then dropped.
            return Again::Yes;
        }
        // By class, like `Failed`: a throttling wave and a Graph outage both retry,
        // and only the class tells them apart on the dashboard.
        self.deps.ports.metrics.count(
            "Retried",
            &[
                ("Tenant", self.tenant().as_str()),
                ("Class", class.as_str()),
            ],
        );
        if limited {
            // Deleted: a record hidden again and again would reach the DLQ. The sweep
            // enqueues the message `queued_grace` after `not_before`.
            return Again::No;
        }
        if held {
            // A fresh queue message, not the same record made invisible: a record
            // received again and again would end in the DLQ while the hold lasts. It
            // carries the next probe; the held tenant's other records are dropped.
            let queue = QueueRef::new(profile.queue.clone());
            let body = crate::queues::SendQueueMessage::probe_carrier(self.message).to_body();
            match self.deps.ports.queue.send(&queue, &body, delay).await {
                Ok(_) => return Again::No,
                Err(e) => {
                    warn!(error = %ErrorChain(&e), "could not queue the held message again; its record comes back instead");
                }
            }
        }
        if let Some(receipt) = &self.receipt {
            let queue = QueueRef::new(profile.queue.clone());
            if let Err(e) = self
                .deps
                .ports
                .queue
                .change_visibility(&queue, receipt, delay)
                .await
            {
                // The record comes back at the queue's default visibility instead; the
                // claim (queued, attempt counted) keeps that safe.
                warn!(error = %ErrorChain(&e), %class, "could not delay the record");
            }
        }
        Again::Yes
    }

    pub(super) async fn fail(&mut self, failure: Failure) -> Again {
        warn!(class = %failure.class, code = ?failure.code, title = %failure.title, "send failed");
        let class = failure.class;
        let event = EventKind::SendFailed {
            attempt: self.attempt(),
            failure,
        };
        let now = self.deps.ports.clock.now();
        if self.record(event, now).await {
            self.deps.ports.metrics.count(
                "Failed",
                &[
                    ("Tenant", self.tenant().as_str()),
                    ("Class", class.as_str()),
                ],
            );
            let metric = SeriesMetric::Failed(class.as_str().into());
            let point = SeriesPoint::one(self.tenant(), now, metric);
            crate::app::series::record(&self.deps.ports, &[point]).await;
            Again::No
        } else {
            Again::Yes
        }
    }

    pub(super) async fn suppress(&mut self, suppression: Suppression) -> Again {
        info!(reason = %suppression.reason, "suppressed by the policy re-check");
        let reason = suppression.reason;
        let event = EventKind::Suppressed {
            attempt: self.attempt(),
            suppression,
        };
        let now = self.deps.ports.clock.now();
        if self.record(event, now).await {
            self.deps.ports.metrics.count(
                "Suppressed",
                &[
                    ("Tenant", self.tenant().as_str()),
                    ("Reason", reason.as_str()),
                ],
            );
            let metric = SeriesMetric::Suppressed(reason.as_str().into());
            let point = SeriesPoint::one(self.tenant(), now, metric);
            crate::app::series::record(&self.deps.ports, &[point]).await;
            Again::No
        } else {
            Again::Yes
        }
    }

    /// Write `kind` through [`record_event`], trying again after a store failure
    /// ([`RECORD_BACKOFF`]): after the Graph call, a lost outcome write turns a known
    /// answer into an ambiguous one (the reconciler resolves a dispatched attempt by
    /// the tenant's policy), so a short blip is worth waiting out in the invocation.
    pub(super) async fn write(
        &self,
        event: &LifecycleEvent,
    ) -> Result<Recorded, crate::ports::StoreError> {
        let deps = self.deps;
        let mut waits = RECORD_BACKOFF.iter();
        loop {
            let result = record_event(
                &*deps.ports.store,
                self.tenant(),
                &self.message.id,
                event,
                &deps.ports.lifecycle,
            )
            .await;
            match (result, waits.next()) {
                (Err(e), Some(wait)) => {
                    warn!(event = event.kind.name(), error = %ErrorChain(&e), retry_in_ms = wait.as_millis() as u64, "recording failed; trying again");
                    tokio::time::sleep(*wait).await;
                }
                (result, _) => return result,
            }
        }
    }

    /// Record `kind`; true when the event is now in the message (written, or already
    /// there), false when the store still failed after the retries of [`Self::write`].
    pub(super) async fn record(&self, kind: EventKind, now: Timestamp) -> bool {
        let event = LifecycleEvent::new(now, kind);
        let name = event.kind.name();
        match self.write(&event).await {
            Ok(Recorded::Written { decision, message }) => {
                info!(event = name, decision = decision.as_str(), state = %message.state.as_str(), "recorded");
                true
            }
            Ok(Recorded::Duplicate(_)) => {
                info!(event = name, "already recorded");
                true
            }
            Ok(Recorded::NotFound) => {
                warn!(
                    event = name,
                    "message vanished before its outcome was recorded"
                );
                true
            }
            Err(e) => {
                error!(event = name, error = %ErrorChain(&e), "recording the outcome failed");
                false
            }
        }
    }
}

pub(super) fn sender_failure(class: FailureClass, title: &str) -> Failure {
    Failure {
        class,
        code: None,
        title: title.to_owned(),
        detail: None,
        source: FailureSource::Sender,
    }
}

/// A uniform draw from `[0, 1)`, from the OS-seeded generator behind ULIDs.
fn jitter() -> f64 {
    let bits = ulid::Ulid::generate().random() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..200).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        let first = draws[0];
        assert!(draws.iter().any(|j| (*j - first).abs() > 1e-9));
    }
}
