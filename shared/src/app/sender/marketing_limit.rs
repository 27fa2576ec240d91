//! Meta's per-user marketing limit (131049, "healthy ecosystem", reference §3 and §5):
//! the recipient got as many marketing messages as Meta allows for now. Meta asks for
//! a wait of at least 24 hours, and retrying sooner extends the block.
//!
//! A synchronous 131049 puts the message back to `queued` with a `not_before` 24 h
//! away (the class's backoff, floored by the code's 24 h). SQS cannot hide a message
//! that long without counting receives toward the DLQ, so the record is deleted and
//! the reconciler's sweep enqueues the message again `queued_grace` after its
//! `not_before`. When that would pass the message's `max_age`, the message is
//! `exhausted` at once, with the 131049 as its reason.
//!
//! The limit is per user: the recipient's contact is marked
//! (`Contact::marketing_limited_until`, the same `not_before`), and every other
//! MARKETING template to them waits the same way (utility and authentication
//! templates still go out), so no send extends the block.
//!
//! A record that reaches the sender before the wait is over (a hold's release
//! enqueues every `queued` message, an SQS duplicate, `wa tenants resume`) claims the
//! message and finds the wait in its history: it schedules the same retry again,
//! without a Graph call. Those claims, and the attempt Meta refused with 131049, do
//! not count toward `max_attempts`: only the message's age ends it.

use super::record::{Again, Send};
use crate::app::errors::ErrorChain;
use crate::domain::lifecycle::EventKind;
use crate::domain::{Failure, FailureClass, FailureSource, Message, Timestamp};
use serde_json::Value;
use std::time::Duration;
use tracing::{info, warn};

/// Meta's code for the per-user marketing limit.
pub(super) const PER_USER_MARKETING_LIMIT: i64 = 131049;

/// Meta's shortest wait after a 131049.
pub(super) const LIMIT_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

const RETRY_EVENT: &str = "sender.retry_scheduled";

/// Whether `failure` is Meta's per-user marketing limit.
pub(super) fn is_limit(failure: &Failure) -> bool {
    failure.code == Some(PER_USER_MARKETING_LIMIT)
}

fn retry_failure_code(detail: Option<&Value>) -> Option<i64> {
    detail?.pointer("/failure/code")?.as_i64()
}

/// When `message`'s 131049 wait ends, if it is still waiting at `now`: its current
/// failure is the limit and its latest scheduled retry is not due yet.
pub(super) fn waiting_until(message: &Message, now: Timestamp) -> Option<Timestamp> {
    if !message.failure.as_ref().is_some_and(is_limit) {
        return None;
    }
    let latest = message
        .history
        .values()
        .filter(|e| e.event == RETRY_EVENT)
        .max_by_key(|e| e.at)?;
    if retry_failure_code(latest.detail.as_ref()) != Some(PER_USER_MARKETING_LIMIT) {
        return None;
    }
    let not_before = latest.detail.as_ref()?.get("not_before")?;
    let not_before: Timestamp = serde_json::from_value(not_before.clone()).ok()?;
    (not_before > now).then_some(not_before)
}

impl Send<'_> {
    /// The exhaustion of a message whose retry after a 131049 (`not_before`, then up
    /// to `queued_grace` until the sweep enqueues it) would come after its max age.
    pub(super) fn limit_outlives(&self, not_before: Timestamp, last: &Failure) -> Option<Failure> {
        let lifecycle = &self.deps.ports.lifecycle;
        let retried_by = not_before.plus_millis(lifecycle.queued_grace_ms());
        let max_age_ms = i64::try_from(lifecycle.max_age.as_millis()).unwrap_or(i64::MAX);
        if retried_by.millis_since(self.message.sendable_since()) <= max_age_ms {
            return None;
        }
        Some(Failure {
            class: FailureClass::Exhausted,
            code: last.code,
            title: "the per-user marketing limit's 24 h wait would pass the message's maximum age"
                .to_owned(),
            detail: Some(format!("last failure: {} ({})", last.title, last.class)),
            source: FailureSource::Sender,
        })
    }

    /// Mark the recipient's contact: its MARKETING templates wait until `until`. Best
    /// effort: without the mark, the next one may earn its own 131049.
    pub(super) async fn limit_recipient(&self, until: Timestamp) {
        if let Err(e) = self
            .deps
            .ports
            .directory
            .set_marketing_limit(self.tenant(), &self.message.to, until)
            .await
        {
            warn!(error = %ErrorChain(&e), "could not hold the recipient's marketing after a 131049");
        }
    }

    /// Until when the recipient's MARKETING templates wait (a 131049 earlier), if
    /// that is after `now`.
    pub(super) async fn recipient_limited_until(
        &self,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, crate::ports::DirectoryError> {
        let contact = self
            .deps
            .ports
            .directory
            .contact(self.tenant(), &self.message.to)
            .await?;
        Ok(contact.marketing_limited_until.filter(|until| *until > now))
    }

    /// A MARKETING template to a recipient under the limit until `until`: wait like
    /// the message that earned the 131049 (or exhausted, if that passes the max age).
    pub(super) async fn wait_for_recipient(&mut self, until: Timestamp) -> Again {
        let failure = match &self.message.failure {
            Some(f) if is_limit(f) => f.clone(),
            _ => Failure {
                class: FailureClass::Throttled,
                code: Some(PER_USER_MARKETING_LIMIT),
                title: "per-user marketing limit".to_owned(),
                detail: Some(format!(
                    "the recipient's marketing is held after a 131049 until {until}"
                )),
                source: FailureSource::Sender,
            },
        };
        if let Some(exhausted) = self.limit_outlives(until, &failure) {
            return self.fail(exhausted).await;
        }
        self.reschedule(until, failure).await
    }

    /// This claim came before the message's 131049 wait is over: put it back to
    /// `queued` with the same failure and `not_before`, without calling Graph. The
    /// record is deleted; the reconciler's sweep enqueues the message after the wait.
    pub(super) async fn wait_out_limit(&mut self, until: Timestamp) -> Again {
        let Some(failure) = self.message.failure.clone() else {
            return Again::No;
        };
        info!(not_before = %until, "per-user marketing limit: claimed before the wait is over; queued again");
        self.reschedule(until, failure).await
    }

    /// Back to `queued` until `until` with `failure`, without a Graph call.
    async fn reschedule(&mut self, until: Timestamp, failure: Failure) -> Again {
        let event = EventKind::RetryScheduled {
            attempt: self.attempt(),
            failure,
            not_before: until,
        };
        if self.record(event, self.deps.ports.clock.now()).await {
            Again::No
        } else {
            // The claim's lease expires and the reconciler requeues it.
            Again::Yes
        }
    }
}
