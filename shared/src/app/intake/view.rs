//! What callers see of a stored message: `GET /v1/messages/{id}` and a replayed
//! `POST` both answer [`message_view`]; a fresh `POST` answers [`accepted_view`].
//!
//! Timestamps are RFC 3339 (UTC, milliseconds), never the stored epoch numbers.
//! Internal fields (lease, rank, sweep key, request hash, TTL) stay internal.

use crate::domain::message::{HistoryEntry, TimestampField};
use crate::domain::{Message, MessageState};
use serde_json::{Map, Value, json};

const FIELDS: [TimestampField; 10] = [
    TimestampField::ScheduledAt,
    TimestampField::QueuedAt,
    TimestampField::SendingAt,
    TimestampField::AcceptedAt,
    TimestampField::SentAt,
    TimestampField::DeliveredAt,
    TimestampField::ReadAt,
    TimestampField::FailedAt,
    TimestampField::SuppressedAt,
    TimestampField::CancelledAt,
];

/// The 202 answer to a new message: id, status, recipient, creation time, and the
/// suppression when policy refused it.
pub fn accepted_view(message: &Message) -> Value {
    let mut view = json!({
        "id": message.id,
        "status": message.state.as_str(),
        "to": message.to,
        "created_at": message.created_at.to_rfc3339(),
    });
    if let Some(s) = &message.suppression {
        view["suppression"] = json!(s);
    }
    if let Some(at) = message.send_at() {
        view["send_at"] = json!(at);
    }
    view
}

/// The full view of a stored message.
pub fn message_view(message: &Message) -> Value {
    let mut timestamps = Map::new();
    for field in FIELDS {
        if let Some(t) = message.timestamps.get(field) {
            timestamps.insert(field.as_str().to_owned(), json!(t.to_rfc3339()));
        }
    }
    let mut history: Vec<&HistoryEntry> = message.history.values().collect();
    history.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.event.cmp(&b.event)));
    let history: Vec<Value> = history
        .into_iter()
        .map(|h| {
            let mut entry = json!({
                "at": h.at.to_rfc3339(),
                "event": h.event,
                "state": h.state_after.as_str(),
                "outcome": h.outcome.as_str(),
            });
            if let Some(d) = &h.detail {
                entry["detail"] = d.clone();
            }
            entry
        })
        .collect();

    let mut view = json!({
        "id": message.id,
        "status": message.state.as_str(),
        "to": message.to,
        "attempts": message.attempt,
        "created_at": message.created_at.to_rfc3339(),
        "updated_at": message.updated_at.to_rfc3339(),
        "timestamps": timestamps,
        "history": history,
    });
    match (&message.template_name, &message.template_language) {
        (Some(name), language) => {
            view["type"] = json!("template");
            view["template"] = json!({"name": name, "language": language});
        }
        (None, _) => {
            view["type"] = json!("text");
            view["text"] = message.request.get("text").cloned().unwrap_or(Value::Null);
        }
    }
    if let Some(w) = &message.wamid {
        view["wamid"] = json!(w);
    }
    if let Some(s) = &message.message_status {
        view["message_status"] = json!(s);
    }
    if let Some(f) = &message.failure {
        view["failure"] = json!(f);
    }
    if let Some(s) = &message.suppression {
        view["suppression"] = json!(s);
    }
    if let Some(t) = message.ambiguous_at {
        view["ambiguous_at"] = json!(t.to_rfc3339());
    }
    if message.state == MessageState::Sending && message.ambiguous_at.is_none() {
        view["in_flight"] = json!(true);
    }
    if !message.flags.is_empty() {
        view["flags"] = json!(message.flags);
    }
    if let Some(m) = &message.metadata {
        view["metadata"] = Value::Object(m.clone());
    }
    if let Some(at) = message.send_at() {
        view["send_at"] = json!(at);
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::NewMessage;
    use crate::domain::{
        LifecyclePolicy, MessageId, PhoneNumber, Suppression, SuppressionReason, TenantId,
        Timestamp,
    };

    fn new_message(text: bool) -> NewMessage {
        let (request, name, language) = if text {
            (
                json!({"to": "+14155550123", "text": {"body": "hi", "preview_url": false}}),
                None,
                None,
            )
        } else {
            (
                json!({"to": "+14155550123", "template": {"name": "hello", "language": "en_US"}}),
                Some("hello".to_owned()),
                Some("en_US".to_owned()),
            )
        };
        NewMessage {
            tenant: TenantId::parse("acme").unwrap(),
            id: MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3").unwrap(),
            to: PhoneNumber::parse("+14155550123").unwrap(),
            template_name: name,
            template_language: language,
            request,
            request_hash: "h".into(),
            metadata: Some(json!({"order": "1234"}).as_object().unwrap().clone()),
        }
    }

    #[test]
    fn a_queued_template_message_shows_rfc3339_times_history_and_metadata() {
        let now = Timestamp::from_millis(1_767_225_600_123);
        let m = Message::new_queued(new_message(false), now, &LifecyclePolicy::default());
        let v = message_view(&m);
        assert_eq!(v["status"], "queued");
        assert_eq!(v["type"], "template");
        assert_eq!(v["template"]["name"], "hello");
        assert_eq!(v["timestamps"]["queued_at"], "2026-01-01T00:00:00.123Z");
        assert_eq!(v["created_at"], "2026-01-01T00:00:00.123Z");
        assert_eq!(v["history"][0]["event"], "intake.queued");
        assert_eq!(v["metadata"]["order"], "1234");
        assert_eq!(v["attempts"], 0);
        assert!(v.get("request_hash").is_none() && v.get("lease_until").is_none());
        let a = accepted_view(&m);
        assert_eq!(a["status"], "queued");
        assert!(a.get("suppression").is_none());
    }

    #[test]
    fn a_suppressed_text_message_shows_its_reason_and_text() {
        let s = Suppression {
            reason: SuppressionReason::WindowClosed,
            detail: None,
        };
        let m = Message::new_suppressed(
            new_message(true),
            s,
            Timestamp::from_secs(1),
            &LifecyclePolicy::default(),
        );
        let v = message_view(&m);
        assert_eq!(v["type"], "text");
        assert_eq!(v["text"]["body"], "hi");
        assert_eq!(v["suppression"]["reason"], "window_closed");
        assert_eq!(accepted_view(&m)["suppression"]["reason"], "window_closed");
        assert!(v["timestamps"]["suppressed_at"].is_string());
    }
}
