//! The reconciler: expired leases, ambiguous sends, missing webhooks, stale queues.

use super::kit::*;
use crate::domain::failure::{FailureClass, FailureSource};
use crate::domain::lifecycle::*;
use crate::domain::state::MessageState;
use ProviderStatusKind::Delivered;

#[test]
fn the_reconciler_requeues_only_an_expired_lease() {
    let mut m = claimed(10);
    let early = ev(10 + 120_000, EventKind::Requeued { attempt: 1 });
    assert_eq!(step(&mut m, &early), Decision::Duplicate);
    let late = ev(10 + 120_001, EventKind::Requeued { attempt: 1 });
    assert!(matches!(step(&mut m, &late), Decision::Advance(_)));
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.rank, 0);
    assert_eq!(m.lease_until, None);
    assert_invariants(&m);
}

#[test]
fn the_reconciler_exhausts_an_expired_lease_with_the_given_failure() {
    let mut m = claimed(10);
    let f = failure(FailureClass::Exhausted, FailureSource::Reconciler);
    let e = ev(
        300_000,
        EventKind::Exhausted {
            attempt: 1,
            failure: f.clone(),
        },
    );
    assert!(matches!(step(&mut m, &e), Decision::Advance(_)));
    assert_eq!((m.state, m.failure), (MessageState::Failed, Some(f)));
}

#[test]
fn an_ambiguous_send_past_the_grace_fails_correctably_or_is_retried() {
    let grace = 15 * 60_000;
    let mut m = claimed(10);
    step(&mut m, &ev(20, EventKind::MarkedAmbiguous { attempt: 1 }));
    let mut retry = m.clone();
    let too_early = ev(20 + grace - 1, EventKind::AmbiguousFailed { attempt: 1 });
    assert_eq!(step(&mut m, &too_early), Decision::Duplicate);
    step(
        &mut m,
        &ev(20 + grace, EventKind::AmbiguousFailed { attempt: 1 }),
    );
    assert_eq!(m.state, MessageState::Failed);
    assert_eq!(m.failure, Some(ambiguous_failure()));
    assert_eq!(m.rank, crate::domain::state::RANK_FAILED_CORRECTABLE);

    step(
        &mut retry,
        &ev(20 + grace, EventKind::AmbiguousRetry { attempt: 1 }),
    );
    assert_eq!(retry.state, MessageState::Queued);
    assert_eq!(retry.ambiguous_at, None);
    assert!(matches!(
        step(&mut retry, &ev(20 + grace + 1, EventKind::Claimed)),
        Decision::Advance(_)
    ));
    assert_eq!(retry.attempt, 2);
}

#[test]
fn accepted_or_sent_without_webhooks_past_the_horizon_becomes_unconfirmed() {
    let horizon = 72 * 3_600_000;
    let mut m = accepted("wamid.A");
    assert_eq!(
        step(&mut m, &ev(20 + horizon - 1, EventKind::Unconfirmed)),
        Decision::Duplicate
    );
    step(&mut m, &ev(20 + horizon, EventKind::Unconfirmed));
    assert_eq!(m.state, MessageState::Failed);
    assert_eq!(m.failure, Some(unconfirmed_failure()));
    assert_invariants(&m);
    // ... and a late webhook still corrects it.
    step(&mut m, &status(Delivered, "wamid.A", horizon + 100));
    assert_eq!(m.state, MessageState::Delivered);
}

#[test]
fn a_stale_queued_message_gets_its_deadline_pushed() {
    let mut m = queued();
    let early = ev(
        1_000,
        EventKind::SweepPushed {
            next: at(2_000_000),
        },
    );
    assert_eq!(step(&mut m, &early), Decision::Duplicate);
    let due = ev(
        15 * 60_000,
        EventKind::SweepPushed {
            next: at(2_000_000),
        },
    );
    assert!(matches!(step(&mut m, &due), Decision::Advance(_)));
    assert_eq!(m.sweep_at, Some(at(2_000_000)));
    assert_eq!(m.state, MessageState::Queued);
}
