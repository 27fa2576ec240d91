//! Unit and property tests of the event model: one rule per test.

use super::*;
use crate::domain::failure::{Failure, FailureClass, FailureSource};
use crate::domain::ids::{MessageId, PhoneNumber, PhoneNumberId, TenantId, Wamid};
use crate::domain::lifecycle::{
    Decision, EventKind, LifecycleEvent, LifecyclePolicy, ProviderStatus, ProviderStatusKind,
    decide,
};
use crate::domain::message::{Message, NewMessage, Suppression, SuppressionReason};
use crate::domain::state::MessageState;
use crate::domain::template::TemplateStatus;
use crate::domain::time::Timestamp;
use crate::domain::webhook::{InboundContent, InboundMessage, ReplyKind};
use ProviderStatusKind::{Delivered, Failed, Read, Sent};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const T0: i64 = 1_750_000_000_000;
const ID: &str = "msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3";

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset_ms)
}

fn policy() -> LifecyclePolicy {
    LifecyclePolicy::default()
}

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn wamid(s: &str) -> Wamid {
    Wamid::parse(s).unwrap()
}

fn new_message() -> NewMessage {
    let mut metadata = serde_json::Map::new();
    metadata.insert("order".into(), json!("A-17"));
    NewMessage {
        tenant: tenant(),
        id: MessageId::parse(ID).unwrap(),
        to: PhoneNumber::parse("+14155550123").unwrap(),
        template_name: Some("order_update".into()),
        template_language: Some("en_US".into()),
        request: json!({"template": {"name": "order_update"}}),
        request_hash: "h".into(),
        metadata: Some(metadata),
    }
}

fn queued() -> Message {
    let mut m = Message::new_queued(new_message(), at(0), &policy());
    m.idempotency_key = Some("order-A-17".into());
    m
}

fn ev(offset_ms: i64, kind: EventKind) -> LifecycleEvent {
    LifecycleEvent::new(at(offset_ms), kind)
}

fn failure(class: FailureClass, source: FailureSource) -> Failure {
    Failure {
        class,
        code: None,
        title: class.as_str().into(),
        detail: None,
        source,
    }
}

fn status_with(
    kind: ProviderStatusKind,
    w: &str,
    offset_ms: i64,
    detail: Option<Value>,
) -> LifecycleEvent {
    let failure = (kind == Failed).then(|| Failure {
        code: Some(131_026),
        detail: Some("Message undeliverable".into()),
        ..failure(FailureClass::Recipient, FailureSource::Webhook)
    });
    ev(
        offset_ms,
        EventKind::Provider(ProviderStatus {
            wamid: wamid(w),
            status: kind,
            occurred_at: at(offset_ms - 1),
            failure,
            detail,
        }),
    )
}

fn status(kind: ProviderStatusKind, offset_ms: i64) -> LifecycleEvent {
    status_with(kind, "wamid.A", offset_ms, None)
}

fn accepted_event(offset_ms: i64, attempt: u32) -> LifecycleEvent {
    ev(
        offset_ms,
        EventKind::Accepted {
            attempt,
            wamid: wamid("wamid.A"),
            message_status: Some("accepted".into()),
        },
    )
}

/// One store write: decide, apply, and derive the write's events from (old, new).
/// No transition means no write, hence no events.
fn write(m: &mut Message, e: &LifecycleEvent) -> (Decision, Vec<Event>) {
    let d = decide(m, e, &policy());
    let Some(t) = d.transition() else {
        return (d, Vec::new());
    };
    assert!(t.holds(m), "decided transition must hold: {t:?}");
    let old = m.clone();
    t.apply_to(m);
    let events = message_events(Some(&old), m);
    (d, events)
}

/// Like [`write`], expecting exactly one event.
fn one(m: &mut Message, e: &LifecycleEvent) -> Event {
    let (d, mut events) = write(m, e);
    assert_eq!(events.len(), 1, "{d:?} gave {events:?}");
    events.remove(0)
}

/// Like [`write`], expecting a stored write that emits nothing.
fn silent(m: &mut Message, e: &LifecycleEvent) -> Decision {
    let (d, events) = write(m, e);
    assert!(d.transition().is_some(), "expected a write, got {d:?}");
    assert!(events.is_empty(), "{d:?} emitted {events:?}");
    d
}

fn claimed() -> Message {
    let mut m = queued();
    silent(&mut m, &ev(10, EventKind::Claimed));
    m
}

fn accepted() -> Message {
    let mut m = claimed();
    silent(&mut m, &ev(15, EventKind::Dispatched { attempt: 1 }));
    one(&mut m, &accepted_event(20, 1));
    m
}

fn failed_with(class: FailureClass) -> Message {
    let mut m = accepted();
    match class {
        FailureClass::Unconfirmed => {
            let horizon = policy().webhook_horizon.as_millis() as i64;
            one(&mut m, &ev(20 + horizon, EventKind::Unconfirmed));
        }
        _ => {
            // Stored as the reconciler would after an ambiguous send.
            let f = failure(class, FailureSource::Reconciler);
            m.state = MessageState::Failed;
            m.rank = MessageState::Failed.rank(Some(&f));
            m.failure = Some(f);
            m.sweep_key = None;
            m.sweep_at = None;
        }
    }
    m
}

fn suppression() -> Suppression {
    Suppression {
        reason: SuppressionReason::OptedOut,
        detail: Some("STOP keyword".into()),
    }
}

fn seq(e: &Event) -> u64 {
    e.data["sequence"].as_u64().unwrap()
}

// ---- creation ----

#[test]
fn a_created_queued_message_emits_nothing() {
    assert!(message_events(None, &queued()).is_empty());
}

#[test]
fn a_created_suppressed_message_emits_message_suppressed() {
    let m = Message::new_suppressed(new_message(), suppression(), at(0), &policy());
    let events = message_events(None, &m);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.event_type, EventType::MessageSuppressed);
    assert_eq!(e.id, format!("evt_{ID}_1"));
    assert_eq!(e.timestamp, "2025-06-15T15:06:40.000Z");
    assert_eq!(e.tenant, tenant());
    assert_eq!(
        e.data,
        json!({
            "message_id": ID,
            "status": "suppressed",
            "to": "+14155550123",
            "wamid": null,
            "idempotency_key": null,
            "metadata": {"order": "A-17"},
            "sequence": 1,
            "suppression": {"reason": "opted_out", "detail": "STOP keyword"},
        })
    );
}

// ---- advances ----

#[test]
fn claim_and_dispatch_emit_nothing_and_acceptance_emits_message_accepted() {
    let mut m = queued();
    silent(&mut m, &ev(10, EventKind::Claimed));
    silent(&mut m, &ev(15, EventKind::Dispatched { attempt: 1 }));
    let e = one(&mut m, &accepted_event(20, 1));
    assert_eq!(e.event_type, EventType::MessageAccepted);
    assert_eq!(e.data["status"], "accepted");
    assert_eq!(e.data["wamid"], "wamid.A");
    assert_eq!(e.data["idempotency_key"], "order-A-17");
    assert_eq!(e.data["sequence"], 4);
    assert_eq!(e.id, format!("evt_{ID}_4"));
    assert_eq!(e.timestamp, at(20).to_rfc3339());
    for absent in ["failure", "suppression", "pricing", "correction"] {
        assert!(e.data.get(absent).is_none(), "{absent} in {e:?}");
    }
}

#[test]
fn each_provider_advance_emits_its_state_event() {
    let mut m = accepted();
    for (kind, offset, expected) in [
        (Sent, 100, EventType::MessageSent),
        (Delivered, 200, EventType::MessageDelivered),
        (Read, 300, EventType::MessageRead),
    ] {
        let e = one(&mut m, &status(kind, offset));
        assert_eq!(e.event_type, expected);
        assert_eq!(e.data["status"], kind.target_state().as_str());
        assert_eq!(e.timestamp, at(offset).to_rfc3339());
    }
}

#[test]
fn played_counts_as_read() {
    let mut m = accepted();
    let e = one(&mut m, &status(ProviderStatusKind::Played, 100));
    assert_eq!(e.event_type, EventType::MessageRead);
}

#[test]
fn skipping_states_emits_only_the_state_entered() {
    let mut m = accepted();
    let e = one(&mut m, &status(Read, 100));
    assert_eq!(e.event_type, EventType::MessageRead);
}

#[test]
fn a_retry_and_a_requeue_back_to_queued_emit_nothing() {
    let mut m = claimed();
    let retry = EventKind::RetryScheduled {
        attempt: 1,
        failure: failure(FailureClass::Transient, FailureSource::Graph),
        not_before: at(2_000),
    };
    silent(&mut m, &ev(20, retry));
    assert_eq!(m.state, MessageState::Queued);
    silent(&mut m, &ev(2_000, EventKind::Claimed));
    let lease = policy().lease.as_millis() as i64;
    silent(
        &mut m,
        &ev(2_001 + lease, EventKind::Requeued { attempt: 2 }),
    );
    assert_eq!(m.state, MessageState::Queued);
}

#[test]
fn a_send_failure_emits_message_failed_with_the_failure() {
    let mut m = claimed();
    let f = Failure {
        code: Some(132_001),
        detail: Some("template name does not exist".into()),
        ..failure(FailureClass::Rejected, FailureSource::Graph)
    };
    let e = one(
        &mut m,
        &ev(
            20,
            EventKind::SendFailed {
                attempt: 1,
                failure: f,
            },
        ),
    );
    assert_eq!(e.event_type, EventType::MessageFailed);
    assert_eq!(e.data["status"], "failed");
    assert_eq!(
        e.data["failure"],
        json!({"class": "rejected", "code": 132001, "title": "rejected",
               "detail": "template name does not exist"})
    );
    assert!(e.data.get("correction").is_none());
}

#[test]
fn a_failed_webhook_emits_message_failed() {
    let mut m = accepted();
    one(&mut m, &status(Sent, 100));
    let e = one(&mut m, &status(Failed, 200));
    assert_eq!(e.event_type, EventType::MessageFailed);
    assert_eq!(e.data["failure"]["class"], "recipient");
    assert_eq!(e.data["failure"]["code"], 131_026);
    assert!(e.data.get("correction").is_none());
}

#[test]
fn the_senders_policy_recheck_emits_message_suppressed() {
    let mut m = claimed();
    let e = one(
        &mut m,
        &ev(
            20,
            EventKind::Suppressed {
                attempt: 1,
                suppression: suppression(),
            },
        ),
    );
    assert_eq!(e.event_type, EventType::MessageSuppressed);
    assert_eq!(e.data["suppression"]["reason"], "opted_out");
}

// ---- nothing new ----

#[test]
fn duplicates_late_fills_and_anomalies_emit_nothing() {
    let mut m = accepted();
    one(&mut m, &status(Read, 300));
    // The same webhook again: nothing to write at all.
    let (d, events) = write(&mut m, &status(Read, 300));
    assert_eq!(d, Decision::Duplicate);
    assert!(events.is_empty());
    // A late lower-rank status fills its timestamp: a write, no event.
    assert!(matches!(
        silent(&mut m, &status(Delivered, 200)),
        Decision::FillTimestamp(_)
    ));
    // Failed after read: recorded and flagged, no event.
    assert!(matches!(
        silent(&mut m, &status(Failed, 400)),
        Decision::Anomaly(_)
    ));
    assert_eq!(m.state, MessageState::Read);
}

#[test]
fn the_same_item_before_and_after_emits_nothing() {
    let m = accepted();
    assert!(message_events(Some(&m), &m).is_empty());
}

// ---- unconfirmed and corrections ----

#[test]
fn no_webhook_within_the_horizon_emits_message_unconfirmed() {
    let mut m = accepted();
    let horizon = policy().webhook_horizon.as_millis() as i64;
    let e = one(&mut m, &ev(20 + horizon, EventKind::Unconfirmed));
    assert_eq!(e.event_type, EventType::MessageUnconfirmed);
    assert_eq!(e.data["status"], "unconfirmed");
    assert_eq!(e.data["failure"]["class"], "unconfirmed");
    assert_eq!(e.data["failure"]["code"], Value::Null);
}

#[test]
fn a_late_webhook_after_our_guess_carries_a_correction() {
    for class in [FailureClass::Unconfirmed, FailureClass::Ambiguous] {
        for (kind, expected) in [
            (Sent, EventType::MessageSent),
            (Delivered, EventType::MessageDelivered),
            (Read, EventType::MessageRead),
        ] {
            let mut m = failed_with(class);
            let e = one(&mut m, &status(kind, 500_000_000));
            assert_eq!(e.event_type, expected, "{class} -> {kind:?}");
            assert_eq!(
                e.data["correction"],
                json!({"previous_status": "failed", "previous_failure_class": class.as_str()})
            );
        }
    }
}

#[test]
fn metas_failure_replacing_our_guess_emits_message_failed_with_a_correction() {
    let mut m = failed_with(FailureClass::Unconfirmed);
    let e = one(&mut m, &status(Failed, 500_000_000));
    assert_eq!(e.event_type, EventType::MessageFailed);
    assert_eq!(e.data["failure"]["class"], "recipient");
    assert_eq!(
        e.data["correction"]["previous_failure_class"],
        "unconfirmed"
    );
}

#[test]
fn an_advance_from_an_uncorrectable_state_carries_no_correction() {
    let mut m = accepted();
    let e = one(&mut m, &status(Delivered, 100));
    assert!(e.data.get("correction").is_none());
}

// ---- ids, sequence, pricing ----

#[test]
fn the_same_write_always_yields_the_same_event() {
    let before = accepted();
    let mut after = before.clone();
    let _ = write(&mut after, &status(Delivered, 100));
    let first = message_events(Some(&before), &after);
    let again = message_events(Some(&before), &after);
    assert_eq!(first, again);
    assert_eq!(first.len(), 1);
}

#[test]
fn sequences_strictly_increase_over_a_realistic_life() {
    let mut m = queued();
    let mut events = message_events(None, &m);
    let lease = policy().lease.as_millis() as i64;
    let retry = EventKind::RetryScheduled {
        attempt: 1,
        failure: failure(FailureClass::Throttled, FailureSource::Graph),
        not_before: at(40_000),
    };
    let horizon = policy().webhook_horizon.as_millis() as i64;
    let steps = [
        ev(10, EventKind::Claimed),
        ev(11, EventKind::Dispatched { attempt: 1 }),
        ev(20, retry),
        ev(40_000, EventKind::Claimed),
        ev(40_001, EventKind::Dispatched { attempt: 2 }),
        ev(40_002 + lease, EventKind::DispatchLapsed { attempt: 2 }),
        accepted_event(40_003 + lease, 2),
        ev(40_003 + lease + horizon, EventKind::Unconfirmed),
        status(Delivered, 40_004 + lease + horizon),
        status(Sent, 40_005 + lease + horizon),
        status(Read, 40_006 + lease + horizon),
        status(Read, 40_007 + lease + horizon),
    ];
    for e in &steps {
        events.extend(write(&mut m, e).1);
    }
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::MessageAccepted,
            EventType::MessageUnconfirmed,
            EventType::MessageDelivered,
            EventType::MessageRead,
        ]
    );
    let seqs: Vec<_> = events.iter().map(seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let ids: BTreeSet<_> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), events.len());
}

#[test]
fn past_the_history_cap_the_sequence_still_counts_dropped_entries() {
    let mut m = accepted();
    m.history_dropped = 7;
    let before_len = m.history.len() as u64;
    let e = one(&mut m, &status(Sent, 100));
    assert_eq!(seq(&e), before_len + 1 + 7);
}

#[test]
fn pricing_comes_from_the_entry_this_write_added() {
    let pricing = json!({"pricing": {"billable": true, "pricing_model": "PMP",
                                     "type": "regular", "category": "utility"},
                         "conversation": {"id": "c1"}});
    let mut m = accepted();
    let sent = one(&mut m, &status_with(Sent, "wamid.A", 100, Some(pricing)));
    assert_eq!(
        sent.data["pricing"],
        json!({"billable": true, "pricing_model": "PMP", "type": "regular",
               "category": "utility"})
    );
    // The next write's entry has no pricing: the sent entry's is not repeated.
    let delivered = one(&mut m, &status(Delivered, 200));
    assert!(delivered.data.get("pricing").is_none());
}

#[test]
fn a_partial_pricing_object_is_passed_on_with_nulls() {
    let mut m = accepted();
    let detail = json!({"pricing": {"category": "marketing", "billable": "yes"}});
    let e = one(
        &mut m,
        &status_with(Delivered, "wamid.A", 100, Some(detail)),
    );
    assert_eq!(
        e.data["pricing"],
        json!({"billable": null, "pricing_model": null, "type": null, "category": "marketing"})
    );
}

// ---- the envelope ----

#[test]
fn events_serialize_with_a_dotted_type_and_round_trip() {
    let mut m = accepted();
    let e = one(&mut m, &status(Delivered, 100));
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["type"], "message.delivered");
    assert_eq!(json["tenant"], "acme");
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["id", "type", "timestamp", "tenant", "data"]);
    assert_eq!(serde_json::from_value::<Event>(json).unwrap(), e);
}

#[test]
fn event_type_names_parse_serialize_and_are_unique() {
    let names: BTreeSet<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(names.len(), 12);
    for t in EventType::ALL {
        assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
        assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        assert_eq!(
            t.schema_id(),
            format!("https://wa-pipeline.dev/events/v1/{t}.schema.json")
        );
    }
    assert_eq!(
        "message.bogus".parse::<EventType>(),
        Err(UnknownEventType("message.bogus".into()))
    );
}

// ---- inbound ----

fn inbound(content: InboundContent, message_type: &str) -> InboundMessage {
    InboundMessage {
        waba_id: "102290129340398".into(),
        phone_number_id: Some(PhoneNumberId::parse("106540352242922").unwrap()),
        id: Some(wamid("wamid.IN1")),
        from: Some("14155550123".into()),
        from_user_id: None,
        timestamp: Some(Timestamp::from_secs(1_750_030_073)),
        message_type: Some(message_type.into()),
        content,
        context_wamid: None,
        context_from: None,
        profile_name: Some("Ana".into()),
        errors: Vec::new(),
    }
}

fn received(m: &InboundMessage) -> Event {
    let number = PhoneNumberId::parse("106540352242922").unwrap();
    message_received(&tenant(), &number, m).unwrap()
}

#[test]
fn an_inbound_text_becomes_message_received_with_a_stable_id() {
    let mut m = inbound(
        InboundContent::Text {
            body: "STOP".into(),
        },
        "text",
    );
    m.context_wamid = Some(wamid("wamid.OUT9"));
    let e = received(&m);
    assert_eq!(e.event_type, EventType::MessageReceived);
    assert_eq!(e.id, "evt_in_wamid.IN1");
    assert_eq!(e.timestamp, "2025-06-15T23:27:53.000Z");
    assert_eq!(
        e.data,
        json!({
            "inbound_id": "wamid.IN1",
            "phone_number_id": "106540352242922",
            "from": "14155550123",
            "from_user_id": null,
            "profile_name": "Ana",
            "kind": "text",
            "type": "text",
            "text": "STOP",
            "context": {"message_id": "wamid.OUT9", "from": null},
        })
    );
    assert_eq!(received(&m), e, "a redelivery yields the same event");
}

#[test]
fn inbound_replies_carry_their_button_or_interactive_object() {
    let quick = inbound(
        InboundContent::QuickReply {
            text: Some("Yes".into()),
            payload: Some("CONFIRM".into()),
        },
        "button",
    );
    let e = received(&quick);
    assert_eq!(e.data["kind"], "button");
    assert_eq!(
        e.data["button"],
        json!({"payload": "CONFIRM", "text": "Yes"})
    );

    for (reply, name) in [
        (ReplyKind::Button, "button_reply"),
        (ReplyKind::List, "list_reply"),
    ] {
        let m = inbound(
            InboundContent::InteractiveReply {
                reply,
                id: Some("opt-1".into()),
                title: Some("Tomorrow".into()),
                description: None,
            },
            "interactive",
        );
        let e = received(&m);
        assert_eq!(e.data["kind"], "interactive");
        assert_eq!(
            e.data["interactive"],
            json!({"type": name, "id": "opt-1", "title": "Tomorrow", "description": null})
        );
    }
}

#[test]
fn other_inbound_types_keep_their_kind_or_become_other() {
    for (meta_type, kind) in [
        ("image", "image"),
        ("video", "video"),
        ("audio", "audio"),
        ("document", "document"),
        ("sticker", "sticker"),
        ("reaction", "reaction"),
        ("location", "location"),
        ("unsupported", "other"),
        ("interactive", "other"),
        ("text", "other"),
    ] {
        let e = received(&inbound(InboundContent::Other, meta_type));
        assert_eq!(e.data["kind"], kind, "{meta_type}");
        assert_eq!(e.data["type"], meta_type);
    }
}

#[test]
fn an_inbound_without_id_or_timestamp_is_refused() {
    let number = PhoneNumberId::parse("106540352242922").unwrap();
    let mut m = inbound(InboundContent::Other, "image");
    m.timestamp = None;
    assert_eq!(
        message_received(&tenant(), &number, &m),
        Err(InboundEventError::MissingTimestamp)
    );
    m.id = None;
    assert_eq!(
        message_received(&tenant(), &number, &m),
        Err(InboundEventError::MissingId)
    );
}

// ---- directory ----

#[test]
fn opt_changes_name_their_cause_and_direction() {
    let who = PhoneNumber::parse("+14155550123").unwrap();
    let out = contact_opt_change(&tenant(), &who, true, at(5), "wamid.IN1");
    assert_eq!(out.event_type, EventType::ContactOptedOut);
    assert_eq!(out.id, "evt_opt_wamid.IN1_out");
    assert_eq!(out.timestamp, at(5).to_rfc3339());
    assert_eq!(
        out.data,
        json!({"contact": "+14155550123", "opted_out": true, "cause": "wamid.IN1"})
    );
    let back = contact_opt_change(&tenant(), &who, false, at(9), "wamid.IN2");
    assert_eq!(back.event_type, EventType::ContactOptedIn);
    assert_eq!(back.id, "evt_opt_wamid.IN2_in");
    assert_eq!(back.data["opted_out"], false);
}

#[test]
fn template_status_ids_are_derived_from_what_changed() {
    let paused = TemplateStatus::Paused;
    let a = template_status_changed(
        &tenant(),
        "order_update",
        "en_US",
        &paused,
        Some("NONE"),
        at(0),
    );
    let again = template_status_changed(
        &tenant(),
        "order_update",
        "en_US",
        &paused,
        Some("NONE"),
        at(0),
    );
    assert_eq!(a, again);
    assert_eq!(a.event_type, EventType::TemplateStatusChanged);
    let hex = a.id.strip_prefix("evt_tpl_").unwrap();
    assert_eq!(hex.len(), 24);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        a.data,
        json!({"name": "order_update", "language": "en_US", "status": "PAUSED", "reason": "NONE"})
    );
    let approved = template_status_changed(
        &tenant(),
        "order_update",
        "en_US",
        &TemplateStatus::Approved,
        None,
        at(0),
    );
    let later = template_status_changed(&tenant(), "order_update", "en_US", &paused, None, at(1));
    let other_lang = template_status_changed(&tenant(), "order_update", "es", &paused, None, at(0));
    let ids: BTreeSet<_> = [&a, &approved, &later, &other_lang]
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(approved.data["reason"], Value::Null);
}

// ---- property ----

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

const KINDS: [ProviderStatusKind; 5] = [Sent, Delivered, Read, ProviderStatusKind::Played, Failed];

/// One event of any actor; most name the current attempt, some the previous one.
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
    let graph = |class| failure(class, FailureSource::Graph);
    let w = wamid(&format!("wamid.{attempt}"));
    let kind = match tag {
        0..=7 => EventKind::Claimed,
        8..=9 => EventKind::Dispatched { attempt },
        10..=11 => EventKind::Accepted {
            attempt,
            wamid: w,
            message_status: None,
        },
        12..=13 => EventKind::RetryScheduled {
            attempt,
            failure: graph(FailureClass::Transient),
            not_before: at(offset + 500),
        },
        14 => EventKind::SendFailed {
            attempt,
            failure: graph(FailureClass::Rejected),
        },
        15..=17 => EventKind::MarkedAmbiguous { attempt },
        18 => EventKind::Suppressed {
            attempt,
            suppression: suppression(),
        },
        19..=20 => EventKind::Requeued { attempt },
        21 => EventKind::DispatchLapsed { attempt },
        22 => EventKind::Exhausted {
            attempt,
            failure: graph(FailureClass::Exhausted),
        },
        23..=24 => EventKind::AmbiguousFailed { attempt },
        25..=26 => EventKind::AmbiguousRetry { attempt },
        27..=29 => EventKind::Unconfirmed,
        30..=31 => EventKind::SweepPushed {
            next: at(offset + 3_000),
        },
        _ => {
            let detail = (kind % 2 == 0).then(|| json!({"pricing": {"category": "utility"}}));
            return status_with(KINDS[kind], &format!("wamid.{attempt}"), offset, detail);
        }
    };
    ev(offset, kind)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn sequences_strictly_increase_and_ids_never_repeat(
        steps in prop::collection::vec(
            ((0u8..44, prop::bool::weighted(0.2), 0usize..KINDS.len()), 0i64..1_500),
            1..60,
        ),
    ) {
        let policy = fast_policy();
        let mut m = queued();
        let mut events = message_events(None, &m);
        let mut now = 0i64;
        for (spec, delta) in steps {
            now += delta;
            let e = any_event(now, &m, spec);
            let d = decide(&m, &e, &policy);
            let Some(t) = d.transition() else { continue };
            prop_assert!(t.holds(&m));
            let old = m.clone();
            t.apply_to(&mut m);
            let emitted = message_events(Some(&old), &m);
            prop_assert!(emitted.len() <= 1);
            // Deterministic: the same write yields the same events.
            prop_assert_eq!(&emitted, &message_events(Some(&old), &m));
            let entered_silent = matches!(m.state, MessageState::Queued | MessageState::Sending);
            if old.state != m.state && !entered_silent {
                prop_assert_eq!(emitted.len(), 1, "{} -> {} emitted nothing", old.state, m.state);
            }
            if emitted.len() == 1 && old.state == m.state {
                // Only Meta's failure replacing our own guess keeps the state and emits.
                prop_assert!(old.failure.as_ref().is_some_and(|f| f.class.is_correctable_by_provider()));
            }
            for event in &emitted {
                prop_assert_eq!(&event.data["message_id"], &json!(ID));
                prop_assert!(event.data["sequence"].as_u64().is_some());
                match m.state {
                    MessageState::Queued | MessageState::Sending => {
                        prop_assert!(false, "an event for {}", m.state)
                    }
                    MessageState::Failed => prop_assert!(matches!(
                        event.event_type,
                        EventType::MessageFailed | EventType::MessageUnconfirmed
                    )),
                    state => prop_assert_eq!(event.data["status"].as_str(), Some(state.as_str())),
                }
            }
            events.extend(emitted);
        }
        let seqs: Vec<_> = events.iter().map(seq).collect();
        prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{:?}", seqs);
        let ids: BTreeSet<_> = events.iter().map(|e| e.id.clone()).collect();
        prop_assert_eq!(ids.len(), events.len());
    }
}

#[test]
fn media_reactions_and_locations_carry_their_references() {
    let image = received(&inbound(
        InboundContent::Media {
            kind: "image".into(),
            id: Some("1048576204857601".into()),
            mime_type: Some("image/jpeg".into()),
            sha256: None,
            caption: Some("damaged".into()),
            filename: None,
        },
        "image",
    ));
    assert_eq!(image.data["kind"], "image");
    assert_eq!(image.data["media"]["id"], "1048576204857601");
    assert_eq!(image.data["media"]["caption"], "damaged");
    let reaction = received(&inbound(
        InboundContent::Reaction {
            message_id: Some("wamid.OUT9".into()),
            emoji: Some("+1".into()),
        },
        "reaction",
    ));
    assert_eq!(reaction.data["kind"], "reaction");
    assert_eq!(
        reaction.data["reaction"],
        json!({"message_id": "wamid.OUT9", "emoji": "+1"})
    );
    let location = received(&inbound(
        InboundContent::Location {
            latitude: Some(-23.5),
            longitude: Some(-46.6),
            name: None,
            address: None,
        },
        "location",
    ));
    assert_eq!(location.data["kind"], "location");
    assert_eq!(location.data["location"]["latitude"], -23.5);
    // A media message without its id has nothing to fetch: no `media` object.
    let bare = received(&inbound(
        InboundContent::Media {
            kind: "video".into(),
            id: None,
            mime_type: None,
            sha256: None,
            caption: None,
            filename: None,
        },
        "video",
    ));
    assert_eq!(bare.data["kind"], "video");
    assert!(bare.data.get("media").is_none());
}

#[test]
fn a_schedule_and_its_release_are_silent_and_a_cancellation_emits_message_cancelled() {
    let mut m = Message::new_scheduled(new_message(), at(60_000), at(0), &policy());
    assert!(
        message_events(None, &m).is_empty(),
        "a created scheduled message is silent"
    );
    let mut released = m.clone();
    assert!(matches!(
        silent(&mut released, &ev(60_000, EventKind::Released)),
        Decision::Advance(_)
    ));
    let e = one(&mut m, &ev(10, EventKind::Cancelled));
    assert_eq!(e.event_type, EventType::MessageCancelled);
    assert_eq!(e.id, format!("evt_{ID}_2"));
    assert_eq!(e.data["status"], "cancelled");
    assert_eq!(e.data["wamid"], Value::Null);
    assert!(e.data.get("failure").is_none() && e.data.get("suppression").is_none());
    let e = one(&mut released, &ev(60_010, EventKind::Cancelled));
    assert_eq!(e.event_type, EventType::MessageCancelled);
    assert_eq!(e.data["sequence"], 3);
}
