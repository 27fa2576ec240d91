//! The decision rules: claim, sender acceptance and provider statuses.
//!
//! The sender's other reports and the reconciler's actions are in `internal.rs`.

use super::event::{EventKind, LifecycleEvent, ProviderStatus, ProviderStatusKind};
use super::history::{anomaly, fill, flags, move_to, sweep_for, transition};
use super::internal;
use super::patch::{Change, Decision, Guard, TimestampWrite, Transition};
use super::sweep::LifecyclePolicy;
use crate::domain::failure::{Failure, FailureClass, FailureSource};
use crate::domain::ids::{MessageId, Wamid};
use crate::domain::message::{HistoryOutcome, Message, TimestampField};
use crate::domain::state::{MessageState, RANK_TERMINAL};
use crate::domain::time::Timestamp;
use serde_json::json;

/// Decide what `event` does to `current` (the item as read from the store).
///
/// The returned transition's guard encodes exactly the facts the decision relied on,
/// so writing it conditionally is safe against any concurrent writer: if the
/// condition fails, read again and decide again.
pub fn decide(current: &Message, event: &LifecycleEvent, policy: &LifecyclePolicy) -> Decision {
    if current.has_seen(&event.fingerprint()) {
        return Decision::Duplicate;
    }
    match &event.kind {
        EventKind::Claimed => {
            if (Guard::Claimable { now: event.at }).holds(current) {
                Decision::Advance(claim(Some(current), &current.id, event, policy))
            } else {
                // Someone else holds it, or it is past sending: the sender drops the record.
                Decision::Duplicate
            }
        }
        EventKind::Accepted {
            wamid,
            message_status,
            ..
        } => decide_accepted(current, event, wamid, message_status.as_deref(), policy),
        EventKind::Provider(status) => decide_provider(current, event, status, policy),
        EventKind::MarketingLimited { status, not_before } => {
            match internal::marketing_limited(current, event, status, *not_before, policy) {
                Some(decision) => decision,
                None => decide_provider(current, event, status, policy),
            }
        }
        EventKind::Dispatched { .. }
        | EventKind::RetryScheduled { .. }
        | EventKind::SendFailed { .. }
        | EventKind::MarkedAmbiguous { .. }
        | EventKind::Suppressed { .. } => internal::decide_sender(current, event, policy),
        EventKind::Requeued { .. }
        | EventKind::DispatchLapsed { .. }
        | EventKind::Exhausted { .. }
        | EventKind::AmbiguousFailed { .. }
        | EventKind::AmbiguousRetry { .. }
        | EventKind::Unconfirmed
        | EventKind::SweepPushed { .. }
        | EventKind::Released => internal::decide_reconciler(current, event, policy),
        EventKind::Cancelled => internal::cancel(current, event, policy),
    }
}

/// The write to attempt *without reading first*, for events that usually advance:
/// a claim, the sender's `Dispatched` and `Accepted`, and provider statuses. `None`
/// for other events (read, then [`decide`]).
///
/// The transition is exactly what [`decide`] returns as `Advance` when the message is
/// below the event's rank (and its history has room). If the store's condition fails,
/// the store takes the item it gets back (DynamoDB `ReturnValuesOnConditionCheckFailure
/// = ALL_OLD`) and calls [`decide`] with it, which yields the fill, duplicate or anomaly.
pub fn decide_blind(
    id: &MessageId,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
) -> Option<Transition> {
    match &event.kind {
        EventKind::Claimed => Some(claim(None, id, event, policy)),
        EventKind::Accepted {
            wamid,
            message_status,
            ..
        } => Some(accepted_advance(
            None,
            id,
            event,
            wamid,
            message_status.as_deref(),
            policy,
        )),
        EventKind::Provider(status) => Some(provider_advance(None, id, event, status, policy)),
        // The claim was just written by the same sender: its mark almost always holds,
        // so it costs one write and no read.
        EventKind::Dispatched { attempt } => {
            Some(internal::dispatched(None, event, *attempt, policy))
        }
        _ => None,
    }
}

/// The sender's claim of message `id` at `now`: `queued` (or `sending` with an expired
/// lease) -> `sending`, `attempt + 1`, lease until `now + policy.lease`. Written blind
/// with `ReturnValues = ALL_NEW`: the new item tells the sender its attempt number.
/// If the condition fails, someone else holds the message or it is done; only when
/// [`decide`] on the returned item still says `Advance` (full history) write again.
pub fn claim_transition(id: &MessageId, now: Timestamp, policy: &LifecyclePolicy) -> Transition {
    claim(
        None,
        id,
        &LifecycleEvent::new(now, EventKind::Claimed),
        policy,
    )
}

fn claim(
    current: Option<&Message>,
    id: &MessageId,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
) -> Transition {
    let lease_until = event.at.plus_millis(policy.lease_ms());
    let state = MessageState::Sending;
    let mut patch = move_to(state, state.rank(None), event.at);
    patch.increment_attempt = true;
    patch
        .timestamps
        .insert(TimestampField::SendingAt, TimestampWrite::Fill(event.at));
    patch.lease_until = Some(Change::Set(lease_until));
    patch.sweep = Some(sweep_for(policy, id, state, lease_until));
    let mut t = transition(
        current,
        event,
        policy,
        Guard::Claimable { now: event.at },
        patch,
        state,
        HistoryOutcome::Advanced,
    );
    t.entry.detail = Some(json!({ "lease_until": lease_until }));
    t
}

/// `Accepted` below rank 20 (queued or sending, whatever the attempt: Meta's answer is
/// evidence even from an attempt whose lease expired).
fn accepted_advance(
    current: Option<&Message>,
    id: &MessageId,
    event: &LifecycleEvent,
    wamid: &Wamid,
    message_status: Option<&str>,
    policy: &LifecyclePolicy,
) -> Transition {
    let state = MessageState::Accepted;
    let rank = state.rank(None);
    let mut patch = move_to(state, rank, event.at);
    patch.wamid = Some(wamid.clone());
    patch.message_status = message_status.map(str::to_owned);
    patch
        .timestamps
        .insert(TimestampField::AcceptedAt, TimestampWrite::Fill(event.at));
    // A retry's failure no longer describes the message.
    patch.failure = Some(Change::Clear);
    patch.lease_until = Some(Change::Clear);
    let deadline = event.at.plus_millis(policy.webhook_horizon_ms());
    patch.sweep = Some(sweep_for(policy, id, state, deadline));
    transition(
        current,
        event,
        policy,
        Guard::RankBelow(rank),
        patch,
        state,
        HistoryOutcome::Advanced,
    )
}

fn decide_accepted(
    current: &Message,
    event: &LifecycleEvent,
    wamid: &Wamid,
    message_status: Option<&str>,
    policy: &LifecyclePolicy,
) -> Decision {
    let rank = MessageState::Accepted.rank(None);
    if current.rank < rank {
        return Decision::Advance(accepted_advance(
            Some(current),
            &current.id,
            event,
            wamid,
            message_status,
            policy,
        ));
    }
    if current.rank == RANK_TERMINAL {
        return Decision::Anomaly(anomaly(
            current,
            event,
            policy,
            flags::ACCEPTED_AFTER_TERMINAL,
        ));
    }
    if current.wamid.as_ref().is_some_and(|w| w != wamid) {
        return Decision::Anomaly(anomaly(current, event, policy, flags::DUPLICATE_SEND));
    }
    if current.timestamps.accepted_at.is_some() {
        return Decision::Duplicate;
    }
    // A webhook (or a correctable failure) got there first: keep the state, fill in
    // what only the Graph answer knows.
    let mut patch = super::patch::Patch::touch(event.at);
    patch
        .timestamps
        .insert(TimestampField::AcceptedAt, TimestampWrite::Fill(event.at));
    patch.wamid = Some(wamid.clone());
    if current.message_status.is_none() {
        patch.message_status = message_status.map(str::to_owned);
    }
    Decision::FillTimestamp(fill(current, event, policy, patch))
}

/// The failure a `failed` status stores: Meta's error with its source forced to
/// `webhook`, which is what gives it rank 35 (beats `sent`, loses to `delivered`).
pub(super) fn provider_failure(status: &ProviderStatus) -> Failure {
    match &status.failure {
        Some(f) => Failure {
            source: FailureSource::Webhook,
            ..f.clone()
        },
        None => Failure {
            class: FailureClass::Rejected,
            code: None,
            title: "failed status webhook without error details".into(),
            detail: None,
            source: FailureSource::Webhook,
        },
    }
}

/// The target state, failure and rank of a provider status.
fn provider_target(status: &ProviderStatus) -> (MessageState, Option<Failure>, u8) {
    let state = status.status.target_state();
    let failure = (status.status == ProviderStatusKind::Failed).then(|| provider_failure(status));
    let rank = state.rank(failure.as_ref());
    (state, failure, rank)
}

/// A provider status above the current rank. Independent of the current item, so the
/// same write serves [`decide_blind`].
fn provider_advance(
    current: Option<&Message>,
    id: &MessageId,
    event: &LifecycleEvent,
    status: &ProviderStatus,
    policy: &LifecyclePolicy,
) -> Transition {
    let (state, failure, rank) = provider_target(status);
    let mut patch = move_to(state, rank, event.at);
    patch.wamid = Some(status.wamid.clone());
    match failure {
        Some(f) => {
            patch.timestamps.insert(
                TimestampField::FailedAt,
                TimestampWrite::Set(status.occurred_at),
            );
            patch.failure = Some(Change::Set(f));
        }
        None => {
            patch.timestamps.insert(
                TimestampField::for_state(state),
                TimestampWrite::Fill(status.occurred_at),
            );
            // Meta's evidence overrides our guess (ambiguous, unconfirmed) or its own
            // earlier `failed`: the failure no longer describes the message.
            patch
                .timestamps
                .insert(TimestampField::FailedAt, TimestampWrite::Clear);
            patch.failure = Some(Change::Clear);
        }
    }
    patch.lease_until = Some(Change::Clear);
    let deadline = event.at.plus_millis(policy.webhook_horizon_ms());
    patch.sweep = Some(sweep_for(policy, id, state, deadline));
    let mut t = transition(
        current,
        event,
        policy,
        Guard::RankBelow(rank),
        patch,
        state,
        HistoryOutcome::Advanced,
    );
    t.unseen = Some(marketing_limited_fingerprint(&status.wamid));
    t
}

/// The history key of [`EventKind::MarketingLimited`] for `wamid`.
fn marketing_limited_fingerprint(wamid: &Wamid) -> String {
    format!("webhook.marketing_limited:{wamid}")
}

fn decide_provider(
    current: &Message,
    event: &LifecycleEvent,
    status: &ProviderStatus,
    policy: &LifecyclePolicy,
) -> Decision {
    let (state, _, rank) = provider_target(status);
    // Meta refused this wamid with its marketing limit (the message went back to
    // `queued`, or failed): a later status of the same wamid is stale.
    if current.has_seen(&marketing_limited_fingerprint(&status.wamid)) {
        return Decision::Duplicate;
    }
    if current.rank == RANK_TERMINAL {
        let flag = if current.state == MessageState::Suppressed {
            flags::STATUS_AFTER_SUPPRESSED
        } else {
            flags::STATUS_AFTER_TERMINAL_FAILURE
        };
        return Decision::Anomaly(anomaly(current, event, policy, flag));
    }
    if rank > current.rank {
        return Decision::Advance(provider_advance(
            Some(current),
            &current.id,
            event,
            status,
            policy,
        ));
    }
    if state == MessageState::Failed {
        return if matches!(current.state, MessageState::Delivered | MessageState::Read) {
            Decision::Anomaly(anomaly(
                current,
                event,
                policy,
                flags::FAILED_AFTER_DELIVERED,
            ))
        } else {
            // Already failed by Meta (another wamid of the same message): nothing new.
            Decision::Duplicate
        };
    }
    let field = TimestampField::for_state(state);
    if current.timestamps.get(field).is_some() {
        return Decision::Duplicate;
    }
    // Late lower-rank status (delivered after read, sent after delivered): fill only.
    let mut patch = super::patch::Patch::touch(event.at);
    patch
        .timestamps
        .insert(field, TimestampWrite::Fill(status.occurred_at));
    patch.wamid = Some(status.wamid.clone());
    Decision::FillTimestamp(fill(current, event, policy, patch))
}
