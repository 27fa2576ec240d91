//! The expression builder without DynamoDB: exact strings per guard, and no unused or
//! undefined placeholder for any transition the lifecycle produces (moto accepts
//! unused values; real DynamoDB rejects them).

use super::*;
use crate::domain::failure::{Failure, FailureClass, FailureSource};
use crate::domain::lifecycle::{
    EventKind, LifecycleEvent, LifecyclePolicy, ProviderStatus, ProviderStatusKind,
    claim_transition, decide, decide_blind,
};
use crate::domain::message::{NewMessage, Suppression, SuppressionReason};
use crate::domain::{Message, MessageId, PhoneNumber, TenantId, Wamid};
use std::collections::BTreeSet;

const T0: i64 = 1_750_000_000_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn condition(guard: Guard) -> (String, BTreeSet<String>) {
    let mut p = Placeholders::default();
    let c = guard_condition(&guard, &mut p);
    let (names, values) = p.into_maps();
    let mut keys: BTreeSet<String> = names.into_keys().collect();
    keys.extend(values.into_keys());
    (c, keys)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn rank_guards_compare_the_rank() {
    assert_eq!(
        condition(Guard::RankBelow(30)),
        ("#rank < :guard_rank".into(), set(&["#rank", ":guard_rank"]))
    );
    assert_eq!(condition(Guard::RankAtLeast(30)).0, "#rank >= :guard_rank");
}

#[test]
fn state_guards_pin_the_state_and_optionally_the_attempt() {
    let any_attempt = Guard::StateIs {
        state: MessageState::Accepted,
        attempt: None,
    };
    assert_eq!(
        condition(any_attempt),
        (
            "#state = :guard_state".into(),
            set(&["#state", ":guard_state"])
        )
    );
    let attempt = Guard::StateIs {
        state: MessageState::Sending,
        attempt: Some(2),
    };
    assert_eq!(
        condition(attempt).0,
        "#state = :guard_state AND #attempt = :guard_attempt"
    );
}

#[test]
fn claim_guards_read_the_lease() {
    assert_eq!(
        condition(Guard::ClaimHeld { attempt: 1 }).0,
        "#state = :sending AND #attempt = :guard_attempt AND attribute_exists(#lease_until)"
    );
    assert_eq!(
        condition(Guard::Claimable { now: at(0) }),
        (
            "#state = :queued OR (#state = :sending AND #lease_until < :now \
             AND attribute_not_exists(#dispatched_at))"
                .into(),
            set(&[
                "#state",
                "#lease_until",
                "#dispatched_at",
                ":queued",
                ":sending",
                ":now"
            ])
        )
    );
    assert_eq!(
        condition(Guard::LeaseExpired {
            attempt: 1,
            now: at(0),
            dispatched: false,
        })
        .0,
        "#state = :sending AND #attempt = :guard_attempt AND #lease_until < :now \
         AND attribute_not_exists(#dispatched_at)"
    );
    assert_eq!(
        condition(Guard::LeaseExpired {
            attempt: 1,
            now: at(0),
            dispatched: true,
        })
        .0,
        "#state = :sending AND #attempt = :guard_attempt AND #lease_until < :now \
         AND attribute_exists(#dispatched_at)"
    );
}

#[test]
fn a_claim_is_one_update_with_the_attempt_incremented() {
    let id = MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3").unwrap();
    let t = claim_transition(&id, at(0), &LifecyclePolicy::default());
    let e = update_expressions(&t).unwrap();
    assert_eq!(
        e.condition,
        "attribute_exists(#pk) AND \
         (#state = :queued OR (#state = :sending AND #lease_until < :now \
         AND attribute_not_exists(#dispatched_at))) AND \
         attribute_not_exists(#history.#fp) AND size(#history) < :cap"
    );
    assert_eq!(
        e.update,
        "SET #history.#fp = :entry, #state = :state, #rank = :rank, \
         #attempt = #attempt + :one, #timestamps.#sending_at = \
         if_not_exists(#timestamps.#sending_at, :ts_sending_at), \
         #lease_until = :lease_until, #sweep_key = :sweep_key, #sweep_at = :sweep_at, \
         #updated_at = :updated_at"
    );
    assert_eq!(e.names["#fp"], t.fingerprint);
    assert_eq!(e.values[":now"], AttributeValue::N(T0.to_string()));
    assert_eq!(e.values[":state"], AttributeValue::S("sending".into()));
    assert_eq!(e.values[":cap"], AttributeValue::N("64".into()));
    assert_balanced(&t);
}

#[test]
fn a_full_history_counts_the_entry_instead_of_storing_it() {
    let mut t = claim_transition(&MessageId::generate(), at(0), &LifecyclePolicy::default());
    t.slot = HistorySlot::Full { cap: 64 };
    let e = update_expressions(&t).unwrap();
    assert!(
        e.condition.ends_with(" AND size(#history) >= :cap"),
        "{}",
        e.condition
    );
    assert!(
        e.update.ends_with("ADD #history_dropped :one"),
        "{}",
        e.update
    );
    assert!(!e.names.contains_key("#fp") && !e.values.contains_key(":entry"));
    assert_balanced(&t);
}

/// Placeholders in the expressions: `#name` and `:value` tokens.
fn tokens(expression: &str, sigil: char) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut chars = expression.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != sigil {
            continue;
        }
        let mut end = i + 1;
        while let Some(&(j, d)) = chars.peek() {
            if d.is_ascii_alphanumeric() || d == '_' {
                end = j + 1;
                chars.next();
            } else {
                break;
            }
        }
        out.insert(expression[i..end].to_owned());
    }
    out
}

/// Every registered placeholder is used and every used one is registered, and no
/// parenthesis directly wraps another (DynamoDB rejects redundant parentheses).
fn assert_balanced(t: &Transition) {
    let e = update_expressions(t).unwrap();
    assert!(!e.condition.contains("(("), "{}", e.condition);
    let text = format!("{} {}", e.condition, e.update);
    let names: BTreeSet<String> = e.names.keys().cloned().collect();
    let values: BTreeSet<String> = e.values.keys().cloned().collect();
    assert_eq!(tokens(&text, '#'), names, "names of {t:?}\n{text}");
    assert_eq!(tokens(&text, ':'), values, "values of {t:?}\n{text}");
    for v in e.values.values() {
        if let AttributeValue::Ss(set) = v {
            assert!(!set.is_empty(), "DynamoDB rejects an empty set");
        }
    }
}

fn failure(class: FailureClass) -> Failure {
    Failure {
        class,
        code: Some(131_000),
        title: "t".into(),
        detail: None,
        source: FailureSource::Graph,
    }
}

fn status(kind: ProviderStatusKind, ms: i64) -> LifecycleEvent {
    let failure = (kind == ProviderStatusKind::Failed).then(|| failure(FailureClass::Recipient));
    LifecycleEvent::new(
        at(ms),
        EventKind::Provider(ProviderStatus {
            wamid: Wamid::parse("wamid.A").unwrap(),
            status: kind,
            occurred_at: at(ms - 1),
            failure,
            detail: None,
        }),
    )
}

/// Run `events` through `decide` from a fresh queued message, checking every
/// transition (and every blind transition) the lifecycle produces on the way.
fn walk(policy: &LifecyclePolicy, events: &[LifecycleEvent]) -> usize {
    let new = NewMessage {
        tenant: TenantId::parse("acme").unwrap(),
        id: MessageId::generate(),
        to: PhoneNumber::parse("+14155550123").unwrap(),
        template_name: None,
        template_language: None,
        request: serde_json::json!({}),
        request_hash: "h".into(),
        metadata: None,
    };
    let mut m = Message::new_queued(new, at(0), policy);
    let mut written = 0;
    for event in events {
        if let Some(blind) = decide_blind(&m.id, event, policy) {
            assert_balanced(&blind);
        }
        if let Some(t) = decide(&m, event, policy).into_transition() {
            assert_balanced(&t);
            assert!(t.apply_if_holds(&mut m));
            written += 1;
        }
    }
    written
}

#[test]
fn every_lifecycle_transition_uses_exactly_the_placeholders_it_defines() {
    let policy = LifecyclePolicy {
        history_cap: 6,
        ..LifecyclePolicy::default()
    };
    let lease = policy.lease_ms();
    let grace = policy.ambiguous_grace_ms();
    let claimed = |ms| LifecycleEvent::new(at(ms), EventKind::Claimed);
    let ev = |ms, kind| LifecycleEvent::new(at(ms), kind);
    let accepted = |attempt| EventKind::Accepted {
        attempt,
        wamid: Wamid::parse("wamid.A").unwrap(),
        message_status: Some("accepted".into()),
    };
    // Retry, expiry, ambiguity, failure, correction by webhooks, late fills, anomalies,
    // then a history past its cap (6).
    let script = [
        claimed(1),
        ev(
            2,
            EventKind::RetryScheduled {
                attempt: 1,
                failure: failure(FailureClass::Transient),
                not_before: at(100),
            },
        ),
        claimed(200),
        ev(200 + lease + 1, EventKind::Requeued { attempt: 2 }),
        claimed(200 + lease + 2),
        ev(200 + lease + 3, EventKind::MarkedAmbiguous { attempt: 3 }),
        ev(
            200 + lease + 4 + grace,
            EventKind::AmbiguousFailed { attempt: 3 },
        ),
        status(ProviderStatusKind::Read, 10_000_000),
        status(ProviderStatusKind::Delivered, 10_000_001),
        status(ProviderStatusKind::Failed, 10_000_002),
        ev(10_000_003, accepted(3)),
        status(ProviderStatusKind::Sent, 10_000_004),
    ];
    assert_eq!(walk(&policy, &script), script.len());

    let script = [
        claimed(1),
        ev(2, accepted(1)),
        status(ProviderStatusKind::Sent, 3),
        ev(4 + policy.webhook_horizon_ms(), EventKind::Unconfirmed),
        status(
            ProviderStatusKind::Delivered,
            5 + policy.webhook_horizon_ms(),
        ),
    ];
    assert_eq!(walk(&policy, &script), script.len());

    let suppression = Suppression {
        reason: SuppressionReason::TemplatePaused,
        detail: None,
    };
    let q = policy.queued_grace_ms();
    let script = [
        ev(
            q + 1,
            EventKind::SweepPushed {
                next: at(q + 5_000),
            },
        ),
        claimed(q + 2),
        ev(
            q + 3,
            EventKind::Suppressed {
                attempt: 1,
                suppression,
            },
        ),
        status(ProviderStatusKind::Sent, q + 4),
    ];
    assert_eq!(walk(&policy, &script), script.len());

    let script = [
        claimed(1),
        ev(
            1 + lease + 1,
            EventKind::Exhausted {
                attempt: 1,
                failure: failure(FailureClass::Exhausted),
            },
        ),
    ];
    assert_eq!(walk(&policy, &script), script.len());

    let script = [
        claimed(1),
        ev(
            2,
            EventKind::SendFailed {
                attempt: 1,
                failure: failure(FailureClass::Rejected),
            },
        ),
    ];
    assert_eq!(walk(&policy, &script), script.len());
}
