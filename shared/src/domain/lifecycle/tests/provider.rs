//! Provider statuses: forward-only, late fills, duplicates and anomalies.

use super::kit::*;
use crate::domain::failure::{FailureClass, FailureSource};
use crate::domain::lifecycle::*;
use crate::domain::message::Message;
use crate::domain::state::MessageState;
use ProviderStatusKind::{Delivered, Failed, Played, Read, Sent};

/// (name, start, status, expected outcome, expected state, expected flag)
type Case = (
    &'static str,
    Message,
    ProviderStatusKind,
    &'static str,
    MessageState,
    Option<&'static str>,
);

#[test]
fn provider_statuses_follow_the_rank_rules() {
    use MessageState as S;
    let amb = || with_failure(FailureClass::Ambiguous, FailureSource::Reconciler);
    let unc = || with_failure(FailureClass::Unconfirmed, FailureSource::Reconciler);
    let rejected = || with_failure(FailureClass::Rejected, FailureSource::Graph);
    let cases: Vec<Case> = vec![
        (
            "sent advances accepted",
            after(&[]),
            Sent,
            "advanced",
            S::Sent,
            None,
        ),
        (
            "delivered advances sent",
            after(&[Sent]),
            Delivered,
            "advanced",
            S::Delivered,
            None,
        ),
        (
            "read skips delivered",
            after(&[Sent]),
            Read,
            "advanced",
            S::Read,
            None,
        ),
        (
            "played counts as read",
            after(&[Delivered]),
            Played,
            "advanced",
            S::Read,
            None,
        ),
        (
            "delivered after read fills",
            after(&[Read]),
            Delivered,
            "timestamp_filled",
            S::Read,
            None,
        ),
        (
            "sent after delivered fills",
            after(&[Delivered]),
            Sent,
            "timestamp_filled",
            S::Delivered,
            None,
        ),
        (
            "played after read is nothing new",
            after(&[Read]),
            Played,
            "duplicate",
            S::Read,
            None,
        ),
        (
            "failed beats sent",
            after(&[Sent]),
            Failed,
            "advanced",
            S::Failed,
            None,
        ),
        (
            "failed after delivered is flagged",
            after(&[Delivered]),
            Failed,
            "anomaly",
            S::Delivered,
            Some(flags::FAILED_AFTER_DELIVERED),
        ),
        (
            "failed after read is flagged",
            after(&[Read]),
            Failed,
            "anomaly",
            S::Read,
            Some(flags::FAILED_AFTER_DELIVERED),
        ),
        (
            "delivered overrides meta's failure",
            after(&[Failed]),
            Delivered,
            "advanced",
            S::Delivered,
            None,
        ),
        (
            "sent after meta's failure fills",
            after(&[Failed]),
            Sent,
            "timestamp_filled",
            S::Failed,
            None,
        ),
        (
            "sent corrects ambiguous",
            amb(),
            Sent,
            "advanced",
            S::Sent,
            None,
        ),
        (
            "failed corrects unconfirmed",
            unc(),
            Failed,
            "advanced",
            S::Failed,
            None,
        ),
        (
            "read corrects unconfirmed",
            unc(),
            Read,
            "advanced",
            S::Read,
            None,
        ),
        (
            "status after suppression is flagged",
            suppressed(),
            Delivered,
            "anomaly",
            S::Suppressed,
            Some(flags::STATUS_AFTER_SUPPRESSED),
        ),
        (
            "status after rejection is flagged",
            rejected(),
            Sent,
            "anomaly",
            S::Failed,
            Some(flags::STATUS_AFTER_TERMINAL_FAILURE),
        ),
    ];
    for (name, mut m, kind, outcome, state, flag) in cases {
        let before_rank = m.rank;
        let d = step(&mut m, &status(kind, "wamid.A", 1_000));
        assert_eq!(d.as_str(), outcome, "{name}");
        assert_eq!(m.state, state, "{name}");
        assert!(m.rank >= before_rank, "{name}: rank went down");
        assert_eq!(m.flags.iter().next().map(String::as_str), flag, "{name}");
        assert_invariants(&m);
    }
}

#[test]
fn a_repeated_webhook_is_a_duplicate_and_changes_nothing() {
    let mut m = after(&[Sent]);
    let e = status(Delivered, "wamid.A", 500);
    assert!(matches!(step(&mut m, &e), Decision::Advance(_)));
    let before = m.clone();
    assert_eq!(step(&mut m, &e), Decision::Duplicate);
    assert_eq!(m, before);
}

#[test]
fn provider_evidence_clears_the_failure_and_its_timestamp() {
    let mut m = with_failure(FailureClass::Unconfirmed, FailureSource::Reconciler);
    step(&mut m, &status(Delivered, "wamid.A", 500));
    assert_eq!(m.failure, None);
    assert_eq!(m.timestamps.failed_at, None);
    assert_eq!(
        m.timestamps.delivered_at,
        Some(at(499)),
        "Meta's time is kept"
    );
}

#[test]
fn meta_failure_keeps_its_error_with_webhook_as_source() {
    let mut m = after(&[Sent]);
    step(&mut m, &status(Failed, "wamid.A", 500));
    let f = m.failure.as_ref().unwrap();
    assert_eq!(f.source, FailureSource::Webhook);
    assert_eq!(f.class, FailureClass::Recipient);
    assert_eq!(m.rank, crate::domain::state::RANK_FAILED_BY_PROVIDER);
    assert_eq!(m.timestamps.failed_at, Some(at(499)));
    assert_eq!(m.sweep_key, None);
}

/// Meta's per-user marketing limit (131049) by webhook, while the message waits on
/// that send.
fn marketing_limited(
    w: &str,
    offset_ms: i64,
    not_before_ms: i64,
) -> crate::domain::lifecycle::LifecycleEvent {
    let EventKind::Provider(mut status) = status(Failed, w, offset_ms).kind else {
        unreachable!()
    };
    status.failure = Some(crate::domain::failure::Failure {
        class: FailureClass::Throttled,
        code: Some(131049),
        title: "healthy ecosystem".into(),
        detail: None,
        source: FailureSource::Webhook,
    });
    ev(
        offset_ms,
        EventKind::MarketingLimited {
            status,
            not_before: at(not_before_ms),
        },
    )
}

#[test]
fn a_marketing_limit_by_webhook_requeues_the_send_and_later_statuses_of_its_wamid_are_stale() {
    let mut m = accepted("wamid.A");
    let limited = marketing_limited("wamid.A", 100, 3_600_000);
    assert!(matches!(step(&mut m, &limited), Decision::Advance(_)));
    assert_invariants(&m);
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.failure.as_ref().and_then(|f| f.code), Some(131049));
    assert_eq!(m.counted_attempts(), 0);
    assert!(m.sweep_at.is_some(), "swept again after the wait");
    // Its duplicate, and a late `sent` of the refused wamid (read or blind), are stale.
    assert!(matches!(step(&mut m, &limited), Decision::Duplicate));
    let late = status(Sent, "wamid.A", 200);
    let blind = decide_blind(&m.id, &late, &policy()).unwrap();
    assert!(
        !blind.holds(&m),
        "a blind write of the refused wamid must not apply"
    );
    assert!(matches!(step(&mut m, &late), Decision::Duplicate));
    assert_eq!(m.state, MessageState::Queued);
    // The retry is claimed like any queued message.
    assert!(matches!(
        step(&mut m, &ev(4_000_000, EventKind::Claimed)),
        Decision::Advance(_)
    ));
    assert_eq!(m.state, MessageState::Sending);
}

#[test]
fn a_marketing_limit_whose_wait_passes_the_max_age_fails_exhausted() {
    let mut m = accepted("wamid.A");
    let beyond = i64::try_from(policy().max_age.as_millis()).unwrap() + 1;
    assert!(matches!(
        step(&mut m, &marketing_limited("wamid.A", 100, beyond)),
        Decision::Advance(_)
    ));
    assert_invariants(&m);
    assert_eq!(m.state, MessageState::Failed);
    let f = m.failure.unwrap();
    assert_eq!((f.class, f.code), (FailureClass::Exhausted, Some(131049)));
}

#[test]
fn a_marketing_limit_after_delivery_is_an_anomaly_like_any_failed_status() {
    let mut m = after(&[Sent, Delivered]);
    let d = step(&mut m, &marketing_limited("wamid.A", 300, 3_600_000));
    assert!(matches!(d, Decision::Anomaly(_)), "{d:?}");
    assert_eq!(m.state, MessageState::Delivered);
}
