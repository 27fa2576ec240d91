//! The outbound events' JSON Schemas (`docs/events/v1`), embedded, and a validator
//! that picks the schema by the event's `type`.
//!
//! Tests of anything that emits events ([`wa_shared::domain::events`], the stores'
//! outboxes, the events function, the pull API) call [`assert_valid`] on what comes
//! out, so the documented contract and the code cannot drift apart.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use wa_shared::domain::events::EventType;

/// The schema text of each event type, embedded at build time.
fn schema_text(event_type: EventType) -> &'static str {
    match event_type {
        EventType::MessageAccepted => {
            include_str!("../../docs/events/v1/message.accepted.schema.json")
        }
        EventType::MessageSent => include_str!("../../docs/events/v1/message.sent.schema.json"),
        EventType::MessageDelivered => {
            include_str!("../../docs/events/v1/message.delivered.schema.json")
        }
        EventType::MessageRead => include_str!("../../docs/events/v1/message.read.schema.json"),
        EventType::MessageFailed => {
            include_str!("../../docs/events/v1/message.failed.schema.json")
        }
        EventType::MessageSuppressed => {
            include_str!("../../docs/events/v1/message.suppressed.schema.json")
        }
        EventType::MessageCancelled => {
            include_str!("../../docs/events/v1/message.cancelled.schema.json")
        }
        EventType::MessageUnconfirmed => {
            include_str!("../../docs/events/v1/message.unconfirmed.schema.json")
        }
        EventType::MessageReceived => {
            include_str!("../../docs/events/v1/message.received.schema.json")
        }
        EventType::ContactOptedOut => {
            include_str!("../../docs/events/v1/contact.opted_out.schema.json")
        }
        EventType::ContactOptedIn => {
            include_str!("../../docs/events/v1/contact.opted_in.schema.json")
        }
        EventType::TemplateStatusChanged => {
            include_str!("../../docs/events/v1/template.status_changed.schema.json")
        }
    }
}

/// The JSON Schema (draft 2020-12) of `event_type`, as in
/// `docs/events/v1/<type>.schema.json`.
pub fn schema_for(event_type: EventType) -> serde_json::Value {
    serde_json::from_str(schema_text(event_type))
        .unwrap_or_else(|e| panic!("docs/events/v1/{event_type}.schema.json: {e}"))
}

/// Compile `event_type`'s schema, with `format` (date-time) checked.
fn compile(event_type: EventType) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema_for(event_type))
        .map_err(|e| format!("schema of {event_type} does not compile: {e}"))
}

/// Every schema compiled once per test process.
fn validators() -> &'static BTreeMap<EventType, Result<jsonschema::Validator, String>> {
    static VALIDATORS: OnceLock<BTreeMap<EventType, Result<jsonschema::Validator, String>>> =
        OnceLock::new();
    VALIDATORS.get_or_init(|| EventType::ALL.iter().map(|t| (*t, compile(*t))).collect())
}

/// Validate a serialized event against the schema of its `type`: `Err` lists every
/// problem (with its JSON pointer), or says the type is missing or unknown.
pub fn validate(event: &serde_json::Value) -> Result<(), String> {
    let name = event
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "event has no string `type`".to_owned())?;
    let event_type: EventType = name.parse().map_err(|e| format!("{e}"))?;
    let validator = validators()
        .get(&event_type)
        .ok_or_else(|| format!("no schema for {event_type}"))?
        .as_ref()
        .map_err(Clone::clone)?;
    let problems: Vec<String> = validator
        .iter_errors(event)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{name} event is invalid:\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// Panic unless `event` is valid against the schema of its `type` (see [`validate`]).
pub fn assert_valid(event: &serde_json::Value) {
    if let Err(e) = validate(event) {
        panic!("{e}\nevent: {event:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use wa_shared::domain::events::{
        Event, contact_opt_change, message_events, message_received, template_status_changed,
    };
    use wa_shared::domain::failure::{Failure, FailureClass, FailureSource};
    use wa_shared::domain::lifecycle::{
        EventKind, LifecycleEvent, LifecyclePolicy, ProviderStatus, ProviderStatusKind, decide,
    };
    use wa_shared::domain::message::{NewMessage, Suppression, SuppressionReason};
    use wa_shared::domain::template::TemplateStatus;
    use wa_shared::domain::webhook::{InboundContent, InboundMessage};
    use wa_shared::domain::{Message, MessageId, PhoneNumber, PhoneNumberId, TenantId, Wamid};
    use wa_shared::domain::{MessageState, Timestamp};

    const MID: &str = "msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3";
    const T: &str = "2025-06-16T00:00:00.000Z";

    fn message_event(event_type: &str, status: &str, extra: Value) -> Value {
        let mut data = json!({
            "message_id": MID, "status": status, "to": "+14155550123",
            "wamid": "wamid.HBgL", "idempotency_key": null, "metadata": null, "sequence": 3,
        });
        for (k, v) in extra.as_object().unwrap() {
            data[k] = v.clone();
        }
        json!({"id": format!("evt_{MID}_3"), "type": event_type, "timestamp": T,
               "tenant": "acme", "data": data})
    }

    /// One hand-written valid event of every type.
    fn valid_events() -> Vec<Value> {
        let failure = json!({"class": "recipient", "code": 131026, "title": "Message undeliverable",
                             "detail": null});
        let pricing = json!({"billable": true, "pricing_model": "PMP", "type": "regular",
                             "category": "utility"});
        let correction =
            json!({"previous_status": "failed", "previous_failure_class": "ambiguous"});
        vec![
            message_event("message.accepted", "accepted", json!({})),
            message_event("message.sent", "sent", json!({"pricing": pricing})),
            message_event(
                "message.delivered",
                "delivered",
                json!({"correction": correction}),
            ),
            message_event(
                "message.read",
                "read",
                json!({"metadata": {"order": 17}, "idempotency_key": "k-1"}),
            ),
            message_event(
                "message.failed",
                "failed",
                json!({"wamid": null, "failure": failure}),
            ),
            message_event(
                "message.suppressed",
                "suppressed",
                json!({"wamid": null,
                       "suppression": {"reason": "window_closed", "detail": null}}),
            ),
            message_event("message.cancelled", "cancelled", json!({"wamid": null})),
            message_event(
                "message.unconfirmed",
                "unconfirmed",
                json!({"failure": {"class": "unconfirmed", "code": null, "title": "no webhook",
                                   "detail": null}}),
            ),
            json!({"id": "evt_in_wamid.IN1", "type": "message.received",
                   "timestamp": "2025-06-15T23:27:53.000Z", "tenant": "acme",
                   "data": {"inbound_id": "wamid.IN1", "phone_number_id": "106540352242922",
                            "from": "14155550123", "from_user_id": null, "profile_name": null,
                            "kind": "interactive", "type": "interactive",
                            "interactive": {"type": "list_reply", "id": "r1", "title": "Tomorrow",
                                            "description": null},
                            "context": {"message_id": "wamid.OUT"}}}),
            json!({"id": "evt_opt_wamid.IN1_out", "type": "contact.opted_out", "timestamp": T,
                   "tenant": "acme",
                   "data": {"contact": "+14155550123", "opted_out": true, "cause": "wamid.IN1"}}),
            json!({"id": "evt_opt_op-7_in", "type": "contact.opted_in", "timestamp": T,
                   "tenant": "acme",
                   "data": {"contact": "+14155550123", "opted_out": false, "cause": "op-7"}}),
            json!({"id": "evt_tpl_0123456789abcdef01234567", "type": "template.status_changed",
                   "timestamp": T, "tenant": "acme",
                   "data": {"name": "order_update", "language": "en_US", "status": "PAUSED",
                            "reason": "NONE"}}),
        ]
    }

    fn assert_invalid(event: &Value, why: &str) {
        assert!(
            validate(event).is_err(),
            "{why} should be refused: {event:#}"
        );
    }

    #[test]
    fn every_schema_compiles_and_describes_its_type() {
        for t in EventType::ALL {
            let schema = schema_for(*t);
            jsonschema::draft202012::meta::validate(&schema)
                .unwrap_or_else(|e| panic!("{t}: not a 2020-12 schema: {e}"));
            compile(*t).unwrap();
            assert_eq!(schema["$id"], t.schema_id(), "{t}");
            assert_eq!(schema["properties"]["type"]["const"], t.as_str());
            assert_eq!(schema["additionalProperties"], false, "{t}");
            assert_eq!(
                schema["required"],
                json!(["id", "type", "timestamp", "tenant", "data"])
            );
            assert_eq!(schema["properties"]["data"]["additionalProperties"], false);
            for example in schema["examples"].as_array().unwrap() {
                assert_valid(example);
            }
        }
    }

    #[test]
    fn a_valid_event_of_every_type_passes() {
        let events = valid_events();
        let mut types: Vec<_> = events.iter().map(|e| e["type"].clone()).collect();
        types.dedup();
        assert_eq!(types.len(), EventType::ALL.len());
        for event in &events {
            assert_valid(event);
        }
    }

    #[test]
    fn missing_extra_or_mistyped_fields_fail() {
        for event in valid_events() {
            for key in ["id", "type", "timestamp", "tenant", "data"] {
                let mut e = event.clone();
                e.as_object_mut().unwrap().remove(key);
                assert_invalid(&e, &format!("{} without {key}", event["type"]));
            }
            let mut extra = event.clone();
            extra["schema_version"] = json!(1);
            assert_invalid(&extra, "an extra envelope field");
            let mut extra_data = event.clone();
            extra_data["data"]["surprise"] = json!(true);
            assert_invalid(&extra_data, "an extra data field");
            let first_required = event["data"].as_object().unwrap().keys().next().unwrap();
            let mut missing_data = event.clone();
            missing_data["data"]
                .as_object_mut()
                .unwrap()
                .remove(first_required.as_str());
            assert_invalid(&missing_data, "a missing data field");
            let mut bad_time = event.clone();
            bad_time["timestamp"] = json!("2025-06-16 00:00:00");
            assert_invalid(&bad_time, "a non-RFC 3339 timestamp");
            let mut bad_tenant = event.clone();
            bad_tenant["tenant"] = json!("Acme Corp");
            assert_invalid(&bad_tenant, "an invalid tenant");
        }
    }

    #[test]
    fn type_specific_rules_are_enforced() {
        let failed = message_event("message.failed", "failed", json!({"wamid": null}));
        assert_invalid(&failed, "message.failed without failure");
        let mut wrong_status = message_event("message.sent", "delivered", json!({}));
        assert_invalid(&wrong_status, "a status that is not the type's");
        wrong_status["data"]["status"] = json!("sent");
        assert_valid(&wrong_status);
        let unconfirmed = message_event(
            "message.unconfirmed",
            "unconfirmed",
            json!({"failure": {"class": "recipient", "code": null, "title": "t", "detail": null}}),
        );
        assert_invalid(&unconfirmed, "message.unconfirmed with another class");
        let accepted = message_event("message.accepted", "accepted", json!({"wamid": null}));
        assert_invalid(&accepted, "message.accepted without wamid");
        let mut text = valid_events()
            .into_iter()
            .find(|e| e["type"] == "message.received")
            .unwrap();
        text["data"]["kind"] = json!("text");
        assert_invalid(&text, "kind text without text");
        text["data"]["text"] = json!("hello");
        assert_valid(&text);
    }

    #[test]
    fn unknown_or_missing_types_are_errors() {
        let mut e = valid_events()[0].clone();
        e["type"] = json!("message.bogus");
        assert!(validate(&e).unwrap_err().contains("message.bogus"));
        e.as_object_mut().unwrap().remove("type");
        assert!(validate(&e).is_err());
        assert!(validate(&json!("not an object")).is_err());
    }

    // ---- events built by the real domain functions ----

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_750_000_000_000 + ms)
    }

    fn new_message() -> NewMessage {
        NewMessage {
            tenant: TenantId::parse("acme").unwrap(),
            id: MessageId::parse(MID).unwrap(),
            to: PhoneNumber::parse("+14155550123").unwrap(),
            template_name: Some("order_update".into()),
            template_language: Some("en_US".into()),
            request: json!({"template": {"name": "order_update"}}),
            request_hash: "h".into(),
            metadata: Some(serde_json::Map::from_iter([(
                "order".into(),
                json!("A-17"),
            )])),
        }
    }

    fn status(kind: ProviderStatusKind, ms: i64, detail: Option<Value>) -> LifecycleEvent {
        let failure = (kind == ProviderStatusKind::Failed).then(|| Failure {
            class: FailureClass::Recipient,
            code: Some(131_026),
            title: "Message undeliverable".into(),
            detail: None,
            source: FailureSource::Webhook,
        });
        LifecycleEvent::new(
            at(ms),
            EventKind::Provider(ProviderStatus {
                wamid: Wamid::parse("wamid.A").unwrap(),
                status: kind,
                occurred_at: at(ms - 1),
                failure,
                detail,
            }),
        )
    }

    /// Apply `events` through `decide` and collect what every stored write emits.
    fn run(m: &mut Message, events: &[LifecycleEvent]) -> Vec<Event> {
        let policy = LifecyclePolicy::default();
        let mut out = Vec::new();
        for e in events {
            if let Some(t) = decide(m, e, &policy).into_transition() {
                let old = m.clone();
                t.apply_to(m);
                out.extend(message_events(Some(&old), m));
            }
        }
        out
    }

    fn assert_all_valid(events: &[Event]) {
        for e in events {
            assert_valid(&serde_json::to_value(e).unwrap());
        }
    }

    #[test]
    fn a_created_suppressed_message_event_is_valid() {
        let suppression = Suppression {
            reason: SuppressionReason::TemplatePaused,
            detail: Some("paused by Meta".into()),
        };
        let policy = LifecyclePolicy::default();
        let m = Message::new_suppressed(new_message(), suppression, at(0), &policy);
        let events = message_events(None, &m);
        assert_eq!(events.len(), 1);
        assert_all_valid(&events);
    }

    #[test]
    fn an_accepted_then_delivered_pair_is_valid() {
        let policy = LifecyclePolicy::default();
        let mut m = Message::new_queued(new_message(), at(0), &policy);
        m.idempotency_key = Some("order-A-17".into());
        let pricing = json!({"pricing": {"billable": true, "pricing_model": "PMP",
                                         "type": "regular", "category": "utility"}});
        let events = run(
            &mut m,
            &[
                LifecycleEvent::new(at(10), EventKind::Claimed),
                LifecycleEvent::new(at(11), EventKind::Dispatched { attempt: 1 }),
                LifecycleEvent::new(
                    at(20),
                    EventKind::Accepted {
                        attempt: 1,
                        wamid: Wamid::parse("wamid.A").unwrap(),
                        message_status: Some("accepted".into()),
                    },
                ),
                status(ProviderStatusKind::Delivered, 100, Some(pricing)),
            ],
        );
        let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [EventType::MessageAccepted, EventType::MessageDelivered]
        );
        assert!(events[1].data.get("pricing").is_some());
        assert_all_valid(&events);
    }

    #[test]
    fn failures_unconfirmed_and_corrections_are_valid() {
        let policy = LifecyclePolicy::default();
        let horizon = policy.webhook_horizon.as_millis() as i64;
        let accepted = |m: &mut Message| {
            run(
                m,
                &[
                    LifecycleEvent::new(at(10), EventKind::Claimed),
                    LifecycleEvent::new(
                        at(20),
                        EventKind::Accepted {
                            attempt: 1,
                            wamid: Wamid::parse("wamid.A").unwrap(),
                            message_status: None,
                        },
                    ),
                ],
            )
        };
        // accepted -> unconfirmed -> corrected by delivered -> read
        let mut m = Message::new_queued(new_message(), at(0), &policy);
        let mut events = accepted(&mut m);
        events.extend(run(
            &mut m,
            &[
                LifecycleEvent::new(at(20 + horizon), EventKind::Unconfirmed),
                status(ProviderStatusKind::Delivered, 30 + horizon, None),
                status(ProviderStatusKind::Read, 40 + horizon, None),
            ],
        ));
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
        assert!(events[2].data.get("correction").is_some());
        assert_all_valid(&events);

        // unconfirmed -> Meta's failure replaces the guess
        let mut m = Message::new_queued(new_message(), at(0), &policy);
        accepted(&mut m);
        let events = run(
            &mut m,
            &[
                LifecycleEvent::new(at(20 + horizon), EventKind::Unconfirmed),
                status(ProviderStatusKind::Failed, 30 + horizon, None),
            ],
        );
        assert_eq!(m.state, MessageState::Failed);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].event_type, EventType::MessageFailed);
        assert_all_valid(&events);

        // a send refused by the Graph API, without wamid
        let mut m = Message::new_queued(new_message(), at(0), &policy);
        let failure = Failure {
            class: FailureClass::Rejected,
            code: Some(132_001),
            title: "Template name does not exist".into(),
            detail: None,
            source: FailureSource::Graph,
        };
        let events = run(
            &mut m,
            &[
                LifecycleEvent::new(at(10), EventKind::Claimed),
                LifecycleEvent::new(
                    at(20),
                    EventKind::SendFailed {
                        attempt: 1,
                        failure,
                    },
                ),
            ],
        );
        assert_eq!(events.len(), 1);
        assert_all_valid(&events);
    }

    #[test]
    fn inbound_opt_and_template_events_are_valid() {
        let tenant = TenantId::parse("acme").unwrap();
        let number = PhoneNumberId::parse("106540352242922").unwrap();
        let mut inbound = InboundMessage {
            waba_id: "102290129340398".into(),
            phone_number_id: Some(number.clone()),
            id: Some(Wamid::parse("wamid.IN1").unwrap()),
            from: Some("14155550123".into()),
            from_user_id: None,
            timestamp: Some(Timestamp::from_secs(1_750_030_073)),
            message_type: Some("text".into()),
            content: InboundContent::Text {
                body: "STOP".into(),
            },
            context_wamid: Some(Wamid::parse("wamid.OUT").unwrap()),
            context_from: Some("15550783881".into()),
            profile_name: Some("Ana".into()),
            errors: Vec::new(),
        };
        let mut events = vec![message_received(&tenant, &number, &inbound).unwrap()];
        inbound.content = InboundContent::Other;
        inbound.message_type = Some("image".into());
        inbound.context_wamid = None;
        events.push(message_received(&tenant, &number, &inbound).unwrap());
        inbound.content = InboundContent::Media {
            kind: "document".into(),
            id: Some("1048576204857601".into()),
            mime_type: Some("application/pdf".into()),
            sha256: None,
            caption: None,
            filename: Some("invoice.pdf".into()),
        };
        inbound.message_type = Some("document".into());
        events.push(message_received(&tenant, &number, &inbound).unwrap());
        inbound.content = InboundContent::Reaction {
            message_id: Some("wamid.OUT".into()),
            emoji: Some("\u{1F44D}".into()),
        };
        inbound.message_type = Some("reaction".into());
        events.push(message_received(&tenant, &number, &inbound).unwrap());
        inbound.content = InboundContent::Location {
            latitude: Some(-23.56),
            longitude: Some(-46.65),
            name: Some("Paulista".into()),
            address: None,
        };
        inbound.message_type = Some("location".into());
        events.push(message_received(&tenant, &number, &inbound).unwrap());
        let who = PhoneNumber::parse("+14155550123").unwrap();
        events.push(contact_opt_change(&tenant, &who, true, at(0), "wamid.IN1"));
        events.push(contact_opt_change(&tenant, &who, false, at(5), "wamid.IN2"));
        events.push(template_status_changed(
            &tenant,
            "order_update",
            "en_US",
            &TemplateStatus::Paused,
            Some("NONE"),
            at(0),
        ));
        events.push(template_status_changed(
            &tenant,
            "order_update",
            "en_US",
            &TemplateStatus::from("SOMETHING_NEW".to_owned()),
            None,
            at(0),
        ));
        assert_all_valid(&events);
    }
}
