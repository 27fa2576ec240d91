//! Scheduled sends and cancellation: release at `send_at`, cancel before any claim.

use super::kit::*;
use crate::domain::failure::{FailureClass, FailureSource};
use crate::domain::lifecycle::*;
use crate::domain::message::{Message, NotCancellable};
use crate::domain::state::MessageState;

const SEND_AT_MS: i64 = 3_600_000;

fn scheduled() -> Message {
    scheduled_for(SEND_AT_MS)
}

#[test]
fn a_scheduled_message_is_swept_at_its_send_at_and_never_claimed_before() {
    let mut m = scheduled();
    assert_invariants(&m);
    assert_eq!(m.state, MessageState::Scheduled);
    assert_eq!(m.sweep_at, Some(at(SEND_AT_MS)));
    assert!(m.sweep_key.as_deref().unwrap().starts_with("scheduled#"));
    assert_eq!(m.timestamps.scheduled_at, Some(at(0)));
    // Its TTL counts from send_at.
    assert_eq!(
        m.expires_at,
        at(SEND_AT_MS)
            .plus_millis(policy().message_ttl_ms())
            .as_secs()
    );
    assert_eq!(
        step(&mut m, &ev(10, EventKind::Claimed)),
        Decision::Duplicate
    );
    let blind = claim_transition(&m.id, at(10), &policy());
    assert!(
        !blind.holds(&m),
        "a blind claim must not take a scheduled message"
    );
}

#[test]
fn the_reconciler_releases_a_scheduled_message_only_when_due() {
    let mut m = scheduled();
    let early = ev(SEND_AT_MS - 1, EventKind::Released);
    assert_eq!(step(&mut m, &early), Decision::Duplicate);
    assert!(matches!(
        step(&mut m, &ev(SEND_AT_MS, EventKind::Released)),
        Decision::Advance(_)
    ));
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.timestamps.queued_at, Some(at(SEND_AT_MS)));
    assert_eq!(
        m.sweep_at,
        Some(at(SEND_AT_MS).plus_millis(policy().queued_grace_ms()))
    );
    assert!(m.sweep_key.as_deref().unwrap().starts_with("queued#"));
    assert_eq!(
        m.sendable_since(),
        at(SEND_AT_MS),
        "max age counts from release"
    );
    assert_invariants(&m);
    // A second run finds nothing left to do; the sender may now claim it.
    assert_eq!(
        step(&mut m, &ev(SEND_AT_MS + 5, EventKind::Released)),
        Decision::Duplicate
    );
    assert!(matches!(
        step(&mut m, &ev(SEND_AT_MS + 10, EventKind::Claimed)),
        Decision::Advance(_)
    ));
}

#[test]
fn scheduled_and_queued_messages_cancel_into_a_terminal_state() {
    for mut m in [scheduled(), queued()] {
        let from = m.state;
        let d = step(&mut m, &ev(100, EventKind::Cancelled));
        let Decision::Advance(t) = d else {
            panic!("cancel of {from} must advance")
        };
        assert_eq!(
            t.guard,
            Guard::StateIs {
                state: from,
                attempt: Some(0)
            }
        );
        assert_eq!(m.state, MessageState::Cancelled);
        assert_eq!(m.rank, 100);
        assert_eq!(m.timestamps.cancelled_at, Some(at(100)));
        assert_eq!((m.sweep_key.as_deref(), m.sweep_at), (None, None));
        assert_invariants(&m);
        // Never claimed, released or accepted afterwards; a second cancel is a no-op.
        assert_eq!(
            step(&mut m, &ev(200, EventKind::Claimed)),
            Decision::Duplicate
        );
        assert_eq!(
            step(&mut m, &ev(SEND_AT_MS + 1, EventKind::Released)),
            Decision::Duplicate
        );
        assert_eq!(
            step(&mut m, &ev(300, EventKind::Cancelled)),
            Decision::Duplicate
        );
        assert_eq!(m.cancellable(), Err(NotCancellable::AlreadyCancelled));
        assert!(!claim_transition(&m.id, at(400), &policy()).holds(&m));
    }
}

#[test]
fn a_claim_written_first_makes_the_cancellation_fail_and_the_reverse() {
    // The cancel was decided on the queued item, then a sender claimed it: the
    // cancel's conditional write must fail, and re-deciding refuses it.
    let mut m = queued();
    let cancel = decide(&m, &ev(100, EventKind::Cancelled), &policy());
    let claim = decide(&m, &ev(100, EventKind::Claimed), &policy());
    assert!(claim.transition().unwrap().apply_if_holds(&mut m));
    assert!(!cancel.transition().unwrap().holds(&m));
    assert_eq!(
        step(&mut m, &ev(101, EventKind::Cancelled)),
        Decision::Duplicate
    );
    assert_eq!(
        m.cancellable(),
        Err(NotCancellable::SendingBegan(MessageState::Sending))
    );

    // The other order: the claim, written blind, fails on the cancelled item.
    let mut m = queued();
    let blind_claim = claim_transition(&m.id, at(100), &policy());
    assert!(matches!(
        step(&mut m, &ev(100, EventKind::Cancelled)),
        Decision::Advance(_)
    ));
    assert!(!blind_claim.holds(&m));
}

#[test]
fn a_queued_message_whose_earlier_attempt_may_have_reached_meta_is_not_cancellable() {
    let grace = 15 * 60_000;
    let mut m = claimed(10);
    step(&mut m, &ev(20, EventKind::MarkedAmbiguous { attempt: 1 }));
    step(
        &mut m,
        &ev(20 + grace, EventKind::AmbiguousRetry { attempt: 1 }),
    );
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.cancellable(), Err(NotCancellable::MaybeSent));
    assert_eq!(
        step(&mut m, &ev(30 + grace, EventKind::Cancelled)),
        Decision::Duplicate
    );
    // A retry after a known failure (nothing reached Meta) is still cancellable.
    let mut m = claimed(10);
    step(
        &mut m,
        &ev(
            20,
            EventKind::RetryScheduled {
                attempt: 1,
                failure: failure(FailureClass::Transient, FailureSource::Graph),
                not_before: at(1_000),
            },
        ),
    );
    assert_eq!(m.state, MessageState::Queued);
    assert!(matches!(
        step(&mut m, &ev(30, EventKind::Cancelled)),
        Decision::Advance(_)
    ));
}

#[test]
fn a_message_past_queued_is_not_cancellable() {
    for m in [claimed(10), accepted("wamid.A"), suppressed()] {
        let mut m = m;
        let before = m.clone();
        assert_eq!(
            step(&mut m, &ev(500, EventKind::Cancelled)),
            Decision::Duplicate
        );
        assert_eq!(m, before);
        assert!(matches!(
            m.cancellable(),
            Err(NotCancellable::SendingBegan(_))
        ));
    }
}
