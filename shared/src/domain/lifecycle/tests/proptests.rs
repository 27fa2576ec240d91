//! Property tests: webhooks arrive duplicated and out of order, our workers race, and
//! the rules must still converge on the same, forward-only answer.

use super::kit::{self, accepted, at, ev, queued, with_failure};
use crate::domain::failure::{FailureClass, FailureSource};
use crate::domain::lifecycle::*;
use crate::domain::message::{Message, Suppression, SuppressionReason};
use crate::domain::state::MessageState;
use proptest::prelude::*;
use std::time::Duration;

const KINDS: [ProviderStatusKind; 5] = [
    ProviderStatusKind::Sent,
    ProviderStatusKind::Delivered,
    ProviderStatusKind::Read,
    ProviderStatusKind::Played,
    ProviderStatusKind::Failed,
];

/// The same kind always yields the same event, so repeats are true duplicates.
fn provider_event(kind: ProviderStatusKind) -> LifecycleEvent {
    let i = KINDS.iter().position(|k| *k == kind).unwrap_or(0) as i64;
    kit::status(kind, "wamid.A", 1_000 + 100 * i)
}

fn target_rank(kind: ProviderStatusKind) -> u8 {
    let e = provider_event(kind);
    let EventKind::Provider(p) = &e.kind else {
        unreachable!()
    };
    let failure = p.failure.clone().map(|f| crate::domain::failure::Failure {
        source: FailureSource::Webhook,
        ..f
    });
    kind.target_state().rank(failure.as_ref())
}

/// Apply with `decide` only (read, decide, write).
fn apply_decided(m: &mut Message, e: &LifecycleEvent, policy: &LifecyclePolicy) -> Decision {
    let d = decide(m, e, policy);
    if let Some(t) = d.transition() {
        assert!(t.holds(m), "decided transition must hold");
        t.apply_to(m);
    }
    d
}

/// Apply the way a store does for blind-capable events: blind write first, then
/// `decide` on the old item when the condition fails.
fn apply_blind_first(m: &mut Message, e: &LifecycleEvent, policy: &LifecyclePolicy) {
    if let Some(t) = decide_blind(&m.id, e, policy)
        && t.apply_if_holds(m)
    {
        return;
    }
    apply_decided(m, e, policy);
}

fn start_message(which: u8) -> Message {
    match which {
        0 => accepted("wamid.A"),
        1 => with_failure(FailureClass::Ambiguous, FailureSource::Reconciler),
        _ => with_failure(FailureClass::Unconfirmed, FailureSource::Reconciler),
    }
}

proptest! {
    #[test]
    fn any_order_of_provider_statuses_converges_on_the_highest_rank(
        start in 0u8..3,
        seq in prop::collection::vec(prop::sample::select(KINDS.to_vec()), 1..16),
    ) {
        let policy = kit::policy();
        let mut m = start_message(start);
        let mut blind = m.clone();
        let start_rank = m.rank;
        for kind in &seq {
            let e = provider_event(*kind);
            let before = m.rank;
            apply_decided(&mut m, &e, &policy);
            apply_blind_first(&mut blind, &e, &policy);
            kit::assert_invariants(&m);
            prop_assert!(m.rank >= before, "rank went down on {kind:?}");
            prop_assert_eq!(decide(&m, &e, &policy), Decision::Duplicate);
            prop_assert_eq!(&blind, &m, "blind-first and decide disagree");
        }

        let best = seq.iter().map(|k| target_rank(*k)).max().unwrap_or(0).max(start_rank);
        prop_assert_eq!(m.rank, best);
        // Provider evidence always overrides our own guesses.
        prop_assert!(m.rank > crate::domain::state::RANK_FAILED_CORRECTABLE);
        for kind in &seq {
            if *kind != ProviderStatusKind::Failed {
                let field = crate::domain::message::TimestampField::for_state(kind.target_state());
                prop_assert!(m.timestamps.get(field).is_some(), "{kind:?} timestamp missing");
            }
        }
        prop_assert_eq!(m.timestamps.failed_at.is_some(), m.state == MessageState::Failed);

        let first = |pred: fn(&ProviderStatusKind) -> bool| seq.iter().position(pred);
        let first_failed = first(|k| *k == ProviderStatusKind::Failed);
        let first_delivered = first(|k| {
            matches!(k, ProviderStatusKind::Delivered | ProviderStatusKind::Read | ProviderStatusKind::Played)
        });
        let flagged_expected = matches!((first_failed, first_delivered), (Some(f), Some(d)) if f > d);
        prop_assert_eq!(m.flags.contains(flags::FAILED_AFTER_DELIVERED), flagged_expected);
        if first_delivered.is_some() {
            prop_assert!(m.state != MessageState::Failed, "failed never wins over delivered");
        }
    }
}

/// Short timings so leases, graces and horizons expire within a generated run.
fn fast_policy() -> LifecyclePolicy {
    LifecyclePolicy {
        lease: Duration::from_millis(1_000),
        queued_grace: Duration::from_millis(3_000),
        ambiguous_grace: Duration::from_millis(2_000),
        webhook_horizon: Duration::from_millis(5_000),
        ..LifecyclePolicy::default()
    }
}

/// (event tag, stale report, provider status index).
fn any_kind() -> impl Strategy<Value = (u8, bool, usize)> {
    (0u8..42, prop::bool::weighted(0.2), 0usize..KINDS.len())
}

/// Build one event of any actor. Most reports name the current attempt (so internal
/// moves happen); some name the previous one (stale reports, a second wamid).
fn any_event(
    offset: i64,
    current: &Message,
    (tag, stale, kind): (u8, bool, usize),
) -> LifecycleEvent {
    let attempt = if stale {
        current.attempt.saturating_sub(1)
    } else {
        current.attempt
    };
    let failure = |class| kit::failure(class, FailureSource::Graph);
    let wamid = kit::wamid(&format!("wamid.{attempt}"));
    // Weighted so that runs stay in flight long enough to reach every internal move.
    let kind = match tag {
        0..=7 => EventKind::Claimed,
        8..=9 => EventKind::Accepted {
            attempt,
            wamid,
            message_status: Some("accepted".into()),
        },
        10..=12 => EventKind::RetryScheduled {
            attempt,
            failure: failure(FailureClass::Transient),
            not_before: at(offset + 500),
        },
        13 => EventKind::SendFailed {
            attempt,
            failure: failure(FailureClass::Rejected),
        },
        14..=17 => EventKind::MarkedAmbiguous { attempt },
        18 => EventKind::Suppressed {
            attempt,
            suppression: Suppression {
                reason: SuppressionReason::OptedOut,
                detail: None,
            },
        },
        19..=22 => EventKind::Requeued { attempt },
        23 => EventKind::Exhausted {
            attempt,
            failure: failure(FailureClass::Exhausted),
        },
        24..=26 => EventKind::AmbiguousFailed { attempt },
        27..=29 => EventKind::AmbiguousRetry { attempt },
        30..=31 => EventKind::Unconfirmed,
        32..=34 => EventKind::SweepPushed {
            next: at(offset + 3_000),
        },
        36 => EventKind::Cancelled,
        37 => EventKind::Released,
        35 => {
            let e = kit::status(
                ProviderStatusKind::Failed,
                &format!("wamid.{attempt}"),
                offset,
            );
            let EventKind::Provider(status) = e.kind else {
                unreachable!()
            };
            EventKind::MarketingLimited {
                status,
                not_before: at(offset + 2_000),
            }
        }
        _ => return kit::status(KINDS[kind], &format!("wamid.{attempt}"), offset),
    };
    ev(offset, kind)
}

/// The only explicit moves to a lower rank: back to `queued` from `sending`, and
/// `sent` (30) to `failed` unconfirmed (25) past the horizon.
fn allowed_drop(kind: &EventKind, from: MessageState, to: MessageState) -> bool {
    let requeue = matches!(
        kind,
        EventKind::RetryScheduled { .. }
            | EventKind::Requeued { .. }
            | EventKind::AmbiguousRetry { .. }
    );
    let unconfirmed = matches!(kind, EventKind::Unconfirmed);
    // Meta refused the accepted send with its marketing limit: it goes again later.
    let limited = matches!(kind, EventKind::MarketingLimited { .. })
        && matches!(from, MessageState::Accepted | MessageState::Sent)
        && to == MessageState::Queued;
    limited
        || (requeue && (from, to) == (MessageState::Sending, MessageState::Queued))
        || (unconfirmed && (from, to) == (MessageState::Sent, MessageState::Failed))
}

proptest! {
    // Rare paths (ambiguous retry, sweep push) need a few hundred runs to show up.
    #![proptest_config(ProptestConfig::with_cases(1024))]
    #[test]
    fn every_actor_interleaving_keeps_the_stored_invariants(
        steps in prop::collection::vec((any_kind(), 0i64..1_500), 1..60),
        scheduled in prop::bool::weighted(0.25),
    ) {
        let policy = fast_policy();
        let mut m = if scheduled { kit::scheduled_for(2_000) } else { queued() };
        let mut blind = m.clone();
        let mut now = 0i64;
        let mut recorded = 1u32; // intake's entry
        for (spec, delta) in steps {
            now += delta;
            let e = any_event(now, &m, spec);
            let before = m.clone();
            let d = apply_decided(&mut m, &e, &policy);
            apply_blind_first(&mut blind, &e, &policy);
            kit::assert_invariants(&m);
            prop_assert_eq!(&blind, &m, "blind-first and decide disagree on {:?}", e);
            prop_assert_eq!(decide(&m, &e, &policy), Decision::Duplicate, "repeat of {:?}", e);
            if m.rank < before.rank {
                prop_assert!(allowed_drop(&e.kind, before.state, m.state), "rank dropped on {:?}", e);
            }
            if before.rank == crate::domain::state::RANK_TERMINAL {
                prop_assert_eq!(m.state, before.state, "a terminal state moved");
            }
            prop_assert!(m.lease_until.is_none() || m.state == MessageState::Sending);
            prop_assert!(m.lease_until.is_none() || m.ambiguous_at.is_none());
            prop_assert!(m.attempt >= before.attempt);
            if d != Decision::Duplicate {
                recorded += 1;
            } else {
                prop_assert_eq!(&m, &before, "a duplicate changed the message");
            }
            prop_assert_eq!(m.history.len() as u32 + m.history_dropped, recorded);
        }
    }
}
