//! Unit and property tests of the lifecycle rules, one behaviour per test.

mod kit;
mod proptests;
mod provider;
mod reconciler;
mod schedule;
mod sender;

use crate::domain::lifecycle::*;
use crate::domain::state::MessageState;
use ProviderStatusKind::Sent;
use kit::*;

#[test]
fn past_the_history_cap_entries_are_counted_and_the_state_still_moves() {
    let policy = LifecyclePolicy {
        history_cap: 3,
        ..LifecyclePolicy::default()
    };
    let mut m = accepted("wamid.A"); // intake.queued, sender.claimed, sender.accepted
    assert_eq!(m.history.len(), 3);
    let e = status(Sent, "wamid.A", 100);
    let blind = decide_blind(&m.id, &e, &policy).unwrap();
    assert!(
        !blind.holds(&m),
        "a blind write must not overflow the history"
    );
    let d = decide(&m, &e, &policy);
    let t = d.transition().unwrap();
    assert_eq!(t.slot, HistorySlot::Full { cap: 3 });
    assert!(t.apply_if_holds(&mut m));
    assert_eq!(
        (m.state, m.history.len(), m.history_dropped),
        (MessageState::Sent, 3, 1)
    );
    // Without its entry, the repeat is still recognised by the rank rules.
    assert_eq!(decide(&m, &e, &policy), Decision::Duplicate);
}

#[test]
fn guards_mean_exactly_what_their_expressions_say() {
    let q = queued();
    let s = claimed(10);
    let mut d = claimed(10);
    d.dispatched_at = Some(at(20));
    let lease_end = at(10 + 120_000);
    let after_end = at(10 + 120_001);
    let cases = [
        (Guard::RankBelow(10), &q, true),
        (Guard::RankBelow(10), &s, false),
        (Guard::RankAtLeast(10), &s, true),
        (Guard::RankAtLeast(11), &s, false),
        (
            Guard::StateIs {
                state: MessageState::Sending,
                attempt: None,
            },
            &s,
            true,
        ),
        (
            Guard::StateIs {
                state: MessageState::Sending,
                attempt: Some(1),
            },
            &s,
            true,
        ),
        (
            Guard::StateIs {
                state: MessageState::Sending,
                attempt: Some(2),
            },
            &s,
            false,
        ),
        (Guard::ClaimHeld { attempt: 1 }, &s, true),
        (Guard::ClaimHeld { attempt: 2 }, &s, false),
        (Guard::ClaimHeld { attempt: 0 }, &q, false),
        (Guard::Claimable { now: at(0) }, &q, true),
        (Guard::Claimable { now: lease_end }, &s, false),
        (Guard::Claimable { now: after_end }, &s, true),
        (
            Guard::LeaseExpired {
                attempt: 1,
                now: after_end,
                dispatched: false,
            },
            &s,
            true,
        ),
        (
            Guard::LeaseExpired {
                attempt: 1,
                now: after_end,
                dispatched: true,
            },
            &s,
            false,
        ),
        (
            Guard::LeaseExpired {
                attempt: 1,
                now: after_end,
                dispatched: true,
            },
            &d,
            true,
        ),
        (
            Guard::LeaseExpired {
                attempt: 1,
                now: after_end,
                dispatched: false,
            },
            &d,
            false,
        ),
        // A dispatched claim may have reached Meta: never taken over.
        (Guard::Claimable { now: after_end }, &d, false),
        (Guard::ClaimHeld { attempt: 1 }, &d, true),
        (
            Guard::LeaseExpired {
                attempt: 2,
                now: after_end,
                dispatched: false,
            },
            &s,
            false,
        ),
        (
            Guard::LeaseExpired {
                attempt: 0,
                now: after_end,
                dispatched: false,
            },
            &q,
            false,
        ),
    ];
    for (guard, m, expected) in cases {
        assert_eq!(guard.holds(m), expected, "{guard:?} on {}", m.state);
    }
}

#[test]
fn transitions_round_trip_through_json() {
    let m = queued();
    let t = claim_transition(&m.id, at(10), &policy());
    let json = serde_json::to_string(&t).unwrap();
    assert_eq!(serde_json::from_str::<Transition>(&json).unwrap(), t);
}
