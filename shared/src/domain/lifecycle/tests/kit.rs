//! Fixtures shared by the lifecycle's unit and property tests.

use crate::domain::failure::{Failure, FailureClass, FailureSource};
use crate::domain::ids::{MessageId, PhoneNumber, TenantId, Wamid};
use crate::domain::lifecycle::*;
use crate::domain::message::{Message, NewMessage, Suppression, SuppressionReason};
use crate::domain::state::MessageState;
use crate::domain::time::Timestamp;
use serde_json::json;

pub const T0: i64 = 1_750_000_000_000;

pub fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset_ms)
}

pub fn policy() -> LifecyclePolicy {
    LifecyclePolicy::default()
}

pub fn wamid(s: &str) -> Wamid {
    Wamid::parse(s).unwrap()
}

pub fn queued() -> Message {
    let new = NewMessage {
        tenant: TenantId::parse("acme").unwrap(),
        id: MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3").unwrap(),
        to: PhoneNumber::parse("+14155550123").unwrap(),
        template_name: Some("order_update".into()),
        template_language: Some("en_US".into()),
        request: json!({"template": {"name": "order_update"}}),
        request_hash: "h".into(),
        metadata: None,
    };
    Message::new_queued(new, at(0), &policy())
}

/// A message scheduled at `at(0)` for `at(send_at_ms)`.
pub fn scheduled_for(send_at_ms: i64) -> Message {
    let new = NewMessage {
        tenant: TenantId::parse("acme").unwrap(),
        id: MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3").unwrap(),
        to: PhoneNumber::parse("+14155550123").unwrap(),
        template_name: Some("order_update".into()),
        template_language: Some("en_US".into()),
        request: json!({"template": {"name": "order_update"}, "send_at": "x"}),
        request_hash: "h".into(),
        metadata: None,
    };
    Message::new_scheduled(new, at(send_at_ms), at(0), &policy())
}

pub fn failure(class: FailureClass, source: FailureSource) -> Failure {
    Failure {
        class,
        code: None,
        title: class.as_str().into(),
        detail: None,
        source,
    }
}

pub fn ev(offset_ms: i64, kind: EventKind) -> LifecycleEvent {
    LifecycleEvent::new(at(offset_ms), kind)
}

pub fn status(kind: ProviderStatusKind, w: &str, offset_ms: i64) -> LifecycleEvent {
    let failure = (kind == ProviderStatusKind::Failed)
        .then(|| failure(FailureClass::Recipient, FailureSource::Webhook));
    ev(
        offset_ms,
        EventKind::Provider(ProviderStatus {
            wamid: wamid(w),
            status: kind,
            occurred_at: at(offset_ms - 1),
            failure,
            detail: None,
        }),
    )
}

/// Decide and, if there is a transition, check its condition holds and apply it.
pub fn step(m: &mut Message, event: &LifecycleEvent) -> Decision {
    let d = decide(m, event, &policy());
    if let Some(t) = d.transition() {
        assert!(t.holds(m), "decided transition must hold: {t:?}");
        t.apply_to(m);
    }
    d
}

pub fn claimed(offset_ms: i64) -> Message {
    let mut m = queued();
    assert!(matches!(
        step(&mut m, &ev(offset_ms, EventKind::Claimed)),
        Decision::Advance(_)
    ));
    m
}

pub fn accepted(w: &str) -> Message {
    let mut m = claimed(10);
    let e = ev(
        20,
        EventKind::Accepted {
            attempt: 1,
            wamid: wamid(w),
            message_status: Some("accepted".into()),
        },
    );
    assert!(matches!(step(&mut m, &e), Decision::Advance(_)));
    m
}

/// An accepted message moved by provider statuses (applied in order).
pub fn after(statuses: &[ProviderStatusKind]) -> Message {
    let mut m = accepted("wamid.A");
    for (i, s) in statuses.iter().enumerate() {
        step(&mut m, &status(*s, "wamid.A", 100 + i as i64 * 10));
    }
    m
}

pub fn with_failure(class: FailureClass, source: FailureSource) -> Message {
    let mut m = accepted("wamid.A");
    let f = failure(class, source);
    m.state = MessageState::Failed;
    m.rank = MessageState::Failed.rank(Some(&f));
    m.failure = Some(f);
    m.timestamps.failed_at = Some(at(50));
    m.sweep_key = None;
    m.sweep_at = None;
    m
}

pub fn suppressed() -> Message {
    let mut m = claimed(10);
    let e = ev(
        20,
        EventKind::Suppressed {
            attempt: 1,
            suppression: Suppression {
                reason: SuppressionReason::TemplatePaused,
                detail: None,
            },
        },
    );
    assert!(matches!(step(&mut m, &e), Decision::Advance(_)));
    m
}

/// The invariants every stored message keeps.
pub fn assert_invariants(m: &Message) {
    assert_eq!(m.rank, m.state.rank(m.failure.as_ref()), "rank of {m:?}");
    assert_eq!(
        m.sweep_key.is_some(),
        m.state.is_swept(),
        "sweep key of {m:?}"
    );
    assert_eq!(
        m.sweep_at.is_some(),
        m.state.is_swept(),
        "sweep_at of {m:?}"
    );
    assert!(m.history.len() <= policy().history_cap as usize);
}
