//! The sender: claims, acceptance and its reports on an attempt.

use super::kit::*;
use crate::domain::failure::{FailureClass, FailureSource};
use crate::domain::lifecycle::*;
use crate::domain::message::{HistoryOutcome, SuppressionReason};
use crate::domain::state::MessageState;
use ProviderStatusKind::Sent;

#[test]
fn a_claim_takes_a_queued_message_with_a_lease_and_the_next_attempt() {
    let m = claimed(10);
    assert_eq!(m.state, MessageState::Sending);
    assert_eq!(m.attempt, 1);
    assert_eq!(m.lease_until, Some(at(10 + 120_000)));
    assert_eq!(m.timestamps.sending_at, Some(at(10)));
    assert_eq!(
        m.sweep_key,
        Some(policy().sweep_key(MessageState::Sending, &m.id))
    );
    assert_eq!(m.sweep_at, m.lease_until);
    assert_invariants(&m);
}

#[test]
fn a_second_claim_within_the_lease_is_dropped() {
    let mut m = claimed(10);
    assert_eq!(
        step(&mut m, &ev(500, EventKind::Claimed)),
        Decision::Duplicate
    );
    // Exactly at the lease's end the lease still holds.
    assert_eq!(
        step(&mut m, &ev(10 + 120_000, EventKind::Claimed)),
        Decision::Duplicate
    );
    assert_eq!(m.attempt, 1);
}

#[test]
fn a_claim_after_the_lease_expired_starts_the_next_attempt() {
    let mut m = claimed(10);
    assert!(matches!(
        step(&mut m, &ev(200_000, EventKind::Claimed)),
        Decision::Advance(_)
    ));
    assert_eq!(m.attempt, 2);
    assert_eq!(
        m.timestamps.sending_at,
        Some(at(10)),
        "first claim time is kept"
    );
    assert_eq!(m.lease_until, Some(at(200_000 + 120_000)));
}

#[test]
fn an_ambiguous_send_is_never_claimed_again() {
    let mut m = claimed(10);
    step(&mut m, &ev(20, EventKind::MarkedAmbiguous { attempt: 1 }));
    assert_eq!(m.lease_until, None);
    assert_eq!(
        step(&mut m, &ev(10_000_000, EventKind::Claimed)),
        Decision::Duplicate
    );
    assert!(!claim_transition(&m.id, at(10_000_000), &policy()).holds(&m));
}

#[test]
fn the_blind_claim_is_the_claim_decide_would_write() {
    let m = queued();
    let blind = claim_transition(&m.id, at(10), &policy());
    let Decision::Advance(decided) = decide(&m, &ev(10, EventKind::Claimed), &policy()) else {
        panic!("a queued message is claimable");
    };
    assert_eq!(blind, decided);
    assert_eq!(
        decide_blind(&m.id, &ev(10, EventKind::Claimed), &policy()),
        Some(blind)
    );
}

#[test]
fn acceptance_records_the_wamid_and_waits_for_webhooks_until_the_horizon() {
    let m = accepted("wamid.A");
    assert_eq!(m.state, MessageState::Accepted);
    assert_eq!(m.wamid, Some(wamid("wamid.A")));
    assert_eq!(m.message_status.as_deref(), Some("accepted"));
    assert_eq!(m.timestamps.accepted_at, Some(at(20)));
    assert_eq!(m.lease_until, None);
    assert_eq!(m.sweep_at, Some(at(20 + 72 * 3_600_000)));
    assert_invariants(&m);
}

#[test]
fn acceptance_after_a_webhook_fills_accepted_at_and_wamid_only() {
    let mut m = claimed(10);
    step(&mut m, &status(Sent, "wamid.A", 15));
    let e = ev(
        20,
        EventKind::Accepted {
            attempt: 1,
            wamid: wamid("wamid.A"),
            message_status: Some("accepted".into()),
        },
    );
    assert!(matches!(step(&mut m, &e), Decision::FillTimestamp(_)));
    assert_eq!(m.state, MessageState::Sent);
    assert_eq!(m.timestamps.accepted_at, Some(at(20)));
    assert_eq!(m.message_status.as_deref(), Some("accepted"));
    assert_eq!(step(&mut m, &e), Decision::Duplicate);
}

#[test]
fn acceptance_of_a_stale_attempt_still_counts_as_evidence() {
    let mut m = claimed(10);
    step(&mut m, &ev(200_000, EventKind::Requeued { attempt: 1 }));
    assert_eq!(m.state, MessageState::Queued);
    let e = ev(
        200_001,
        EventKind::Accepted {
            attempt: 1,
            wamid: wamid("wamid.A"),
            message_status: None,
        },
    );
    assert!(matches!(step(&mut m, &e), Decision::Advance(_)));
    assert_eq!(m.state, MessageState::Accepted);
}

#[test]
fn a_second_acceptance_with_another_wamid_is_flagged_as_a_duplicate_send() {
    let mut m = accepted("wamid.A");
    let e = ev(
        30,
        EventKind::Accepted {
            attempt: 2,
            wamid: wamid("wamid.B"),
            message_status: None,
        },
    );
    assert!(matches!(step(&mut m, &e), Decision::Anomaly(_)));
    assert!(m.flags.contains(flags::DUPLICATE_SEND));
    assert_eq!(m.wamid, Some(wamid("wamid.A")));
    assert_eq!(
        m.history["sender.accepted#2"].outcome,
        HistoryOutcome::Anomaly
    );
}

#[test]
fn acceptance_after_suppression_is_an_anomaly() {
    let mut m = suppressed();
    let e = ev(
        30,
        EventKind::Accepted {
            attempt: 1,
            wamid: wamid("wamid.A"),
            message_status: None,
        },
    );
    assert!(matches!(step(&mut m, &e), Decision::Anomaly(_)));
    assert_eq!(m.state, MessageState::Suppressed);
    assert!(m.flags.contains(flags::ACCEPTED_AFTER_TERMINAL));
}

#[test]
fn a_retry_requeues_with_the_failure_and_a_deadline_after_not_before() {
    let mut m = claimed(10);
    let f = failure(FailureClass::Throttled, FailureSource::Graph);
    let e = ev(
        20,
        EventKind::RetryScheduled {
            attempt: 1,
            failure: f.clone(),
            not_before: at(60_000),
        },
    );
    assert!(matches!(step(&mut m, &e), Decision::Advance(_)));
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.failure, Some(f));
    assert_eq!(m.lease_until, None);
    assert_eq!(m.sweep_at, Some(at(60_000 + 15 * 60_000)));
    assert_invariants(&m);
    // The next claim keeps counting attempts.
    step(&mut m, &ev(60_000, EventKind::Claimed));
    assert_eq!(m.attempt, 2);
}

#[test]
fn a_permanent_send_failure_is_terminal_and_leaves_the_sweep_index() {
    let mut m = claimed(10);
    let f = failure(FailureClass::Rejected, FailureSource::Graph);
    step(
        &mut m,
        &ev(
            20,
            EventKind::SendFailed {
                attempt: 1,
                failure: f,
            },
        ),
    );
    assert_eq!(m.state, MessageState::Failed);
    assert_eq!(m.rank, 100);
    assert_eq!(m.timestamps.failed_at, Some(at(20)));
    assert_invariants(&m);
}

#[test]
fn an_ambiguous_send_waits_for_the_grace_in_the_sweep_index() {
    let mut m = claimed(10);
    step(&mut m, &ev(20, EventKind::MarkedAmbiguous { attempt: 1 }));
    assert_eq!(m.state, MessageState::Sending);
    assert_eq!(m.ambiguous_at, Some(at(20)));
    assert_eq!(m.sweep_at, Some(at(20 + 15 * 60_000)));
    assert_invariants(&m);
}

#[test]
fn the_senders_policy_recheck_suppresses_with_its_reason() {
    let m = suppressed();
    assert_eq!(m.state, MessageState::Suppressed);
    assert_eq!(
        m.suppression.unwrap().reason,
        SuppressionReason::TemplatePaused
    );
    assert_eq!(m.timestamps.suppressed_at, Some(at(20)));
    assert_eq!(m.sweep_key, None);
}

#[test]
fn a_sender_report_for_a_lost_claim_is_a_stale_anomaly() {
    let mut m = claimed(10);
    step(&mut m, &ev(200_000, EventKind::Claimed));
    let f = failure(FailureClass::Rejected, FailureSource::Graph);
    let d = step(
        &mut m,
        &ev(
            200_001,
            EventKind::SendFailed {
                attempt: 1,
                failure: f,
            },
        ),
    );
    assert!(matches!(d, Decision::Anomaly(_)));
    assert_eq!((m.state, m.attempt), (MessageState::Sending, 2));
    assert!(m.flags.contains(flags::STALE_SENDER_EVENT));
}

#[test]
fn a_sender_report_on_an_attempt_given_up_as_ambiguous_is_stale() {
    let mut m = claimed(10);
    step(&mut m, &ev(20, EventKind::MarkedAmbiguous { attempt: 1 }));
    let f = failure(FailureClass::Transient, FailureSource::Graph);
    let e = ev(
        30,
        EventKind::RetryScheduled {
            attempt: 1,
            failure: f,
            not_before: at(40),
        },
    );
    assert!(matches!(step(&mut m, &e), Decision::Anomaly(_)));
    assert_eq!(
        (m.state, m.ambiguous_at),
        (MessageState::Sending, Some(at(20)))
    );
}

#[test]
fn a_lost_answer_after_the_webhook_arrived_is_not_an_anomaly() {
    let mut m = claimed(10);
    step(&mut m, &status(Sent, "wamid.A", 15));
    let d = step(&mut m, &ev(30, EventKind::MarkedAmbiguous { attempt: 1 }));
    assert_eq!(d, Decision::Duplicate);
    assert!(m.flags.is_empty());
    assert_eq!(m.ambiguous_at, None);
}

/// The dispatch mark: written blind while the claim is held, it keeps the lease (the
/// sender's report still applies) but makes an expired lease mean "maybe sent".
#[test]
fn a_dispatched_claim_is_never_taken_over_and_its_expired_lease_becomes_ambiguous() {
    let mut m = claimed(10);
    let dispatch = ev(20, EventKind::Dispatched { attempt: 1 });
    let blind = decide_blind(&m.id, &dispatch, &policy()).unwrap();
    assert_eq!(blind.guard, Guard::ClaimHeld { attempt: 1 });
    assert!(matches!(step(&mut m, &dispatch), Decision::Advance(_)));
    assert_eq!(m.dispatched_at, Some(at(20)));
    assert_eq!(m.lease_until, Some(at(10 + 120_000)));
    assert_eq!(m.history["sender.dispatched#1"].event, "sender.dispatched");
    // The same mark again (a retried write that had landed) changes nothing.
    assert_eq!(step(&mut m, &dispatch), Decision::Duplicate);

    // The outcome was never recorded; the lease runs out.
    let late = 10 + 120_001;
    assert_eq!(
        step(&mut m, &ev(late, EventKind::Claimed)),
        Decision::Duplicate,
        "a redelivered record must not claim (and resend) a dispatched attempt"
    );
    assert_eq!(
        step(&mut m, &ev(late, EventKind::Requeued { attempt: 1 })),
        Decision::Duplicate,
        "the reconciler must not requeue (and resend) it either"
    );
    let lapsed = ev(late, EventKind::DispatchLapsed { attempt: 1 });
    assert!(matches!(step(&mut m, &lapsed), Decision::Advance(_)));
    assert_eq!(m.state, MessageState::Sending);
    assert_eq!(m.ambiguous_at, Some(at(late)));
    assert_eq!(m.lease_until, None);
    assert_eq!(
        m.sweep_at,
        Some(at(late).plus_millis(policy().ambiguous_grace_ms()))
    );
    // From here the ambiguous path applies: policy `retry` requeues and clears the
    // mark, so the next attempt starts undispatched.
    let grace_over = late + policy().ambiguous_grace_ms();
    let retry = ev(grace_over, EventKind::AmbiguousRetry { attempt: 1 });
    assert!(matches!(step(&mut m, &retry), Decision::Advance(_)));
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.dispatched_at, None);
    assert!(matches!(
        step(&mut m, &ev(grace_over + 1, EventKind::Claimed)),
        Decision::Advance(_)
    ));
    assert_eq!(m.attempt, 2);
    assert_invariants(&m);
}

#[test]
fn a_lapsed_dispatch_needs_the_mark_and_an_undispatched_lease_still_requeues() {
    let mut m = claimed(10);
    let late = 10 + 120_001;
    assert_eq!(
        step(&mut m, &ev(late, EventKind::DispatchLapsed { attempt: 1 })),
        Decision::Duplicate
    );
    assert!(matches!(
        step(&mut m, &ev(late, EventKind::Requeued { attempt: 1 })),
        Decision::Advance(_)
    ));
    assert_eq!(m.state, MessageState::Queued);
}

#[test]
fn a_sender_that_lost_its_claim_cannot_dispatch() {
    let mut m = claimed(10);
    // Someone else claimed attempt 2 after the lease expired.
    step(&mut m, &ev(200_000, EventKind::Claimed));
    assert_eq!(
        step(&mut m, &ev(200_001, EventKind::Dispatched { attempt: 1 })),
        Decision::Duplicate
    );
    assert_eq!(m.dispatched_at, None);
}
