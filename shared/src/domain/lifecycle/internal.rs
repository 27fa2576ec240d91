//! The decision rules for our own workers: the sender's reports after a claim and the
//! reconciler's sweep actions. These are explicit moves, guarded by the state and the
//! attempt they were decided on; a stale reconciler action is simply dropped.

use super::event::{EventKind, LifecycleEvent};
use super::history::{anomaly, flags, move_to, sweep_for, transition};
use super::patch::{Change, Decision, Guard, Patch, TimestampWrite, Transition};
use super::sweep::LifecyclePolicy;
use crate::domain::failure::{Failure, FailureClass, FailureSource};
use crate::domain::message::{HistoryOutcome, Message, TimestampField};
use crate::domain::state::MessageState;
use crate::domain::time::Timestamp;

fn advance(
    current: &Message,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
    guard: Guard,
    patch: Patch,
) -> Decision {
    Decision::Advance(transition(
        Some(current),
        event,
        policy,
        guard,
        patch,
        current.state,
        HistoryOutcome::Advanced,
    ))
}

/// Move to `failed` with `failure`; the state leaves the sweep index.
fn fail(current: &Message, at: Timestamp, failure: &Failure, policy: &LifecyclePolicy) -> Patch {
    let state = MessageState::Failed;
    let mut patch = move_to(state, state.rank(Some(failure)), at);
    patch
        .timestamps
        .insert(TimestampField::FailedAt, TimestampWrite::Set(at));
    patch.failure = Some(Change::Set(failure.clone()));
    patch.lease_until = Some(Change::Clear);
    patch.sweep = Some(sweep_for(policy, &current.id, state, at));
    patch
}

/// Back to `queued`, swept again after the queued grace counted from `from`. The next
/// claim is a new attempt, so the dispatch mark of this one goes.
fn requeue(current: &Message, at: Timestamp, from: Timestamp, policy: &LifecyclePolicy) -> Patch {
    let state = MessageState::Queued;
    let mut patch = move_to(state, state.rank(None), at);
    patch.lease_until = Some(Change::Clear);
    patch.dispatched_at = Some(Change::Clear);
    let deadline = from.plus_millis(policy.queued_grace_ms());
    patch.sweep = Some(sweep_for(policy, &current.id, state, deadline));
    patch
}

/// The ambiguous mark: the lease goes (so the message is never claimed, never
/// blind-retried) and the reconciler looks again after the ambiguous grace.
fn mark_ambiguous(current: &Message, at: Timestamp, policy: &LifecyclePolicy) -> Patch {
    let mut patch = Patch::touch(at);
    patch.ambiguous_at = Some(Change::Set(at));
    patch.lease_until = Some(Change::Clear);
    let deadline = at.plus_millis(policy.ambiguous_grace_ms());
    patch.sweep = Some(sweep_for(policy, &current.id, current.state, deadline));
    patch
}

/// The sender's write-ahead mark of attempt `attempt`, written while it holds the
/// claim ([`Guard::ClaimHeld`]) right before the Graph call. It keeps the lease, so
/// the sender's report after the call still applies; what it changes is what an
/// expired lease means: [`Guard::Claimable`] refuses a dispatched claim, and the
/// reconciler marks it ambiguous ([`EventKind::DispatchLapsed`]) instead of
/// requeueing it. Costs one conditional write per attempt (no read: written blind).
pub(super) fn dispatched(
    current: Option<&Message>,
    event: &LifecycleEvent,
    attempt: u32,
    policy: &LifecyclePolicy,
) -> Transition {
    let mut patch = Patch::touch(event.at);
    patch.dispatched_at = Some(Change::Set(event.at));
    // The guard pins the state to `sending`, whatever the caller knew.
    let state = MessageState::Sending;
    transition(
        current,
        event,
        policy,
        Guard::ClaimHeld { attempt },
        patch,
        state,
        HistoryOutcome::Advanced,
    )
}

/// Sender reports on attempt `n`: they apply only while the sender holds that claim
/// ([`Guard::ClaimHeld`]); anything else is recorded as stale.
pub(super) fn decide_sender(
    current: &Message,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
) -> Decision {
    let Some(attempt) = event.kind.attempt() else {
        return Decision::Duplicate;
    };
    let guard = Guard::ClaimHeld { attempt };
    if let EventKind::Dispatched { attempt } = event.kind {
        // A sender that lost its claim (someone else's attempt, or the message moved
        // on) must not call Graph: nothing to record, the caller sees the item.
        return if guard.holds(current) {
            Decision::Advance(dispatched(Some(current), event, attempt, policy))
        } else {
            Decision::Duplicate
        };
    }
    if !guard.holds(current) {
        let evidence_won = current.attempt == attempt
            && current.rank >= MessageState::Accepted.rank(None)
            && matches!(event.kind, EventKind::MarkedAmbiguous { .. });
        // A lost answer whose webhook already arrived is the normal race, not an anomaly.
        return if evidence_won {
            Decision::Duplicate
        } else {
            Decision::Anomaly(anomaly(current, event, policy, flags::STALE_SENDER_EVENT))
        };
    }
    let at = event.at;
    let patch = match &event.kind {
        EventKind::RetryScheduled {
            failure,
            not_before,
            ..
        } => {
            // The last retryable failure stays visible while the message waits.
            let mut patch = requeue(current, at, *not_before, policy);
            patch.failure = Some(Change::Set(failure.clone()));
            patch
        }
        EventKind::SendFailed { failure, .. } => fail(current, at, failure, policy),
        // Dropping the lease is what keeps an ambiguous send from being claimed
        // (and blind-retried) again; the reconciler resolves it after the grace.
        EventKind::MarkedAmbiguous { .. } => mark_ambiguous(current, at, policy),
        EventKind::Suppressed { suppression, .. } => {
            let state = MessageState::Suppressed;
            let mut patch = move_to(state, state.rank(None), at);
            patch
                .timestamps
                .insert(TimestampField::SuppressedAt, TimestampWrite::Fill(at));
            patch.suppression = Some(suppression.clone());
            patch.lease_until = Some(Change::Clear);
            patch.sweep = Some(sweep_for(policy, &current.id, state, at));
            patch
        }
        _ => return Decision::Duplicate,
    };
    advance(current, event, policy, guard, patch)
}

/// [`EventKind::MarketingLimited`] while the message waits on the send Meta refused
/// (`accepted` or `sent` with that wamid): back to `queued` until `not_before` (swept
/// and enqueued again `queued_grace` after it), or `failed` with class `exhausted`
/// when that passes the message's max age. `None`: any other situation, which the
/// caller decides as an ordinary `failed` status.
pub(super) fn marketing_limited(
    current: &Message,
    event: &LifecycleEvent,
    status: &super::event::ProviderStatus,
    not_before: Timestamp,
    policy: &LifecyclePolicy,
) -> Option<Decision> {
    let waiting = matches!(current.state, MessageState::Accepted | MessageState::Sent)
        && current.wamid.as_ref() == Some(&status.wamid);
    if !waiting {
        return None;
    }
    let failure = super::decide::provider_failure(status);
    let guard = Guard::StateIs {
        state: current.state,
        attempt: Some(current.attempt),
    };
    let retried_by = not_before.plus_millis(policy.queued_grace_ms());
    let max_age_ms = i64::try_from(policy.max_age.as_millis()).unwrap_or(i64::MAX);
    let patch = if retried_by.millis_since(current.sendable_since()) > max_age_ms {
        let exhausted = Failure {
            class: FailureClass::Exhausted,
            code: failure.code,
            title: "the per-user marketing limit's 24 h wait would pass the message's maximum age"
                .to_owned(),
            detail: Some(format!(
                "last failure: {} ({})",
                failure.title, failure.class
            )),
            source: failure.source,
        };
        fail(current, status.occurred_at, &exhausted, policy)
    } else {
        let mut patch = requeue(current, event.at, not_before, policy);
        patch.failure = Some(Change::Set(failure));
        // The retry is a new attempt: an earlier ambiguous mark no longer applies.
        patch.ambiguous_at = Some(Change::Clear);
        patch
    };
    Some(advance(current, event, policy, guard, patch))
}

/// The caller's cancellation: `scheduled` or `queued` (see
/// [`Message::cancellable`]) -> `cancelled`, guarded by that state and attempt, so a
/// sender's claim written first makes it fail (and the claim fails once it is
/// written: [`Guard::Claimable`] wants `queued`). Anything else writes nothing; the
/// caller answers from the returned item.
pub(super) fn cancel(
    current: &Message,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
) -> Decision {
    if current.cancellable().is_err() {
        return Decision::Duplicate;
    }
    let guard = Guard::StateIs {
        state: current.state,
        attempt: Some(current.attempt),
    };
    let state = MessageState::Cancelled;
    let mut patch = move_to(state, state.rank(None), event.at);
    patch
        .timestamps
        .insert(TimestampField::CancelledAt, TimestampWrite::Fill(event.at));
    patch.sweep = Some(sweep_for(policy, &current.id, state, event.at));
    advance(current, event, policy, guard, patch)
}

/// The failure the reconciler stores when an ambiguous send's grace ran out.
pub fn ambiguous_failure() -> Failure {
    Failure {
        class: FailureClass::Ambiguous,
        code: None,
        title: "no answer from the Graph API and no status webhook within the grace period".into(),
        detail: None,
        source: FailureSource::Reconciler,
    }
}

/// The failure the reconciler stores when no webhook came within the horizon.
pub fn unconfirmed_failure() -> Failure {
    Failure {
        class: FailureClass::Unconfirmed,
        code: None,
        title: "no status webhook within the webhook horizon".into(),
        detail: None,
        source: FailureSource::Reconciler,
    }
}

/// Reconciler actions. Each applies only if the message is still in the situation the
/// sweep found (deadline passed, same state and attempt); otherwise it is dropped.
pub(super) fn decide_reconciler(
    current: &Message,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
) -> Decision {
    let at = event.at;
    let due = current.sweep_at.is_some_and(|d| d <= at);
    let ambiguous_due = |attempt: u32| {
        current.state == MessageState::Sending
            && current.attempt == attempt
            && current
                .ambiguous_at
                .is_some_and(|t| t.plus_millis(policy.ambiguous_grace_ms()) <= at)
    };
    match &event.kind {
        EventKind::Requeued { attempt }
        | EventKind::Exhausted { attempt, .. }
        | EventKind::DispatchLapsed { attempt } => {
            // Only an attempt that never reached its Graph call is requeued or ended;
            // a dispatched one may have been sent, so it becomes ambiguous instead.
            let dispatched = matches!(event.kind, EventKind::DispatchLapsed { .. });
            let guard = Guard::LeaseExpired {
                attempt: *attempt,
                now: at,
                dispatched,
            };
            if !guard.holds(current) {
                return Decision::Duplicate;
            }
            let patch = match &event.kind {
                EventKind::Exhausted { failure, .. } => fail(current, at, failure, policy),
                EventKind::DispatchLapsed { .. } => mark_ambiguous(current, at, policy),
                _ => requeue(current, at, at, policy),
            };
            advance(current, event, policy, guard, patch)
        }
        EventKind::AmbiguousFailed { attempt } | EventKind::AmbiguousRetry { attempt } => {
            if !ambiguous_due(*attempt) {
                return Decision::Duplicate;
            }
            // Only the reconciler resolves an ambiguous attempt, and it never loses its
            // ambiguous mark while sending: state + attempt pin the situation.
            let guard = Guard::StateIs {
                state: MessageState::Sending,
                attempt: Some(*attempt),
            };
            let patch = match &event.kind {
                EventKind::AmbiguousFailed { .. } => {
                    fail(current, at, &ambiguous_failure(), policy)
                }
                _ => {
                    let mut patch = requeue(current, at, at, policy);
                    patch.ambiguous_at = Some(Change::Clear);
                    patch
                }
            };
            advance(current, event, policy, guard, patch)
        }
        EventKind::Unconfirmed => {
            if !(due && matches!(current.state, MessageState::Accepted | MessageState::Sent)) {
                return Decision::Duplicate;
            }
            let guard = Guard::StateIs {
                state: current.state,
                attempt: None,
            };
            let patch = fail(current, at, &unconfirmed_failure(), policy);
            advance(current, event, policy, guard, patch)
        }
        EventKind::Released => {
            if !(due && current.state == MessageState::Scheduled) {
                return Decision::Duplicate;
            }
            // Nothing but a release or a cancellation moves a scheduled message, and
            // it is never claimed (attempt 0): the state pins the situation.
            let guard = Guard::StateIs {
                state: MessageState::Scheduled,
                attempt: Some(current.attempt),
            };
            let state = MessageState::Queued;
            let mut patch = move_to(state, state.rank(None), at);
            patch
                .timestamps
                .insert(TimestampField::QueuedAt, TimestampWrite::Fill(at));
            patch.sweep = Some(sweep_for(
                policy,
                &current.id,
                state,
                at.plus_millis(policy.queued_grace_ms()),
            ));
            advance(current, event, policy, guard, patch)
        }
        EventKind::SweepPushed { next } => {
            if !(due && current.state == MessageState::Queued) {
                return Decision::Duplicate;
            }
            let guard = Guard::StateIs {
                state: MessageState::Queued,
                attempt: Some(current.attempt),
            };
            let mut patch = Patch::touch(at);
            patch.sweep = Some(sweep_for(policy, &current.id, current.state, *next));
            advance(current, event, policy, guard, patch)
        }
        _ => Decision::Duplicate,
    }
}
