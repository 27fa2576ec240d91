//! Outbound message events: derived from one stored write, the item before and after.

use super::{Event, EventType};
use crate::domain::failure::{Failure, FailureClass};
use crate::domain::message::{HistoryEntry, Message, Suppression};
use crate::domain::state::MessageState;
use serde_json::{Map, Value, json};

/// The events of one stored write of a message, derived from the item before it
/// (`None`: the write created the item) and the item after it.
///
/// It depends on nothing but the two items, so the SQLite store (inside the write's
/// transaction) and the DynamoDB stream consumer (old and new images) derive the same
/// events, with the same ids, from the same write. At most one event comes out:
///
/// - nothing unless the state changed: a duplicate, a late lower-rank status that only
///   fills a timestamp, an anomaly, a claim, a dispatch mark or a requeue emit nothing.
///   A created `queued` message emits nothing; a created `suppressed` one emits
///   `message.suppressed`; a created `scheduled` one emits nothing.
/// - entering `accepted`, `sent`, `delivered`, `read`, `suppressed` or `cancelled`
///   emits that state's event; entering `failed` emits `message.unconfirmed` when the failure
///   class is `unconfirmed`, else `message.failed`; entering `queued` or `sending`
///   emits nothing (nor does `scheduled`).
/// - one write keeps the state `failed` and still emits: Meta's `failed` webhook
///   replacing our own guess (a failure of class `ambiguous` or `unconfirmed`) with
///   its own failure emits `message.failed`, with a `correction`.
/// - a correction: when the old state is `failed` with a class the provider may
///   correct (`ambiguous`, `unconfirmed`) and the new state is `sent`, `delivered`,
///   `read` or `failed`, `data.correction` names the previous status and class.
///
/// `data.sequence` is `history.len() + history_dropped` of the new item: every write
/// adds exactly one entry, so it strictly increases across the message's writes and
/// is the same when the same write is delivered again. The id is
/// `evt_<message id>_<sequence>` and the timestamp the new item's `updated_at`.
/// `data.pricing` comes from the history entry this write added (the key of
/// `new.history` absent from `old.history`), when it carries Meta's pricing; past the
/// history cap no entry is added, so no pricing is reported.
///
/// A `failed` item without a failure (or a `suppressed` one without a suppression)
/// breaks the stored invariants; its event still comes out, with `failure` (or
/// `suppression`) `null`, which the event schema refuses, so it shows up in tests.
pub fn message_events(old: Option<&Message>, new: &Message) -> Vec<Event> {
    let Some(event_type) = entered(old, new) else {
        return Vec::new();
    };
    let sequence = sequence(new);
    let mut data = Map::new();
    data.insert("message_id".into(), json!(new.id));
    data.insert("status".into(), json!(status_name(event_type, new.state)));
    data.insert("to".into(), json!(new.to));
    data.insert("wamid".into(), json!(new.wamid));
    data.insert("idempotency_key".into(), json!(new.idempotency_key));
    data.insert("metadata".into(), json!(new.metadata));
    data.insert("sequence".into(), json!(sequence));
    match event_type {
        EventType::MessageFailed | EventType::MessageUnconfirmed => {
            data.insert("failure".into(), failure_json(new.failure.as_ref()));
        }
        EventType::MessageSuppressed => {
            data.insert(
                "suppression".into(),
                suppression_json(new.suppression.as_ref()),
            );
        }
        _ => {}
    }
    if let Some(pricing) = written_entry_pricing(old, new) {
        data.insert("pricing".into(), pricing);
    }
    if let Some(correction) = old.and_then(|o| correction(o, new)) {
        data.insert("correction".into(), correction);
    }
    vec![Event {
        id: format!("evt_{}_{sequence}", new.id),
        event_type,
        timestamp: new.updated_at.to_rfc3339(),
        tenant: new.tenant.clone(),
        data: Value::Object(data),
    }]
}

/// The message's position in its own event stream: the entries it has recorded.
fn sequence(m: &Message) -> u64 {
    m.history.len() as u64 + u64::from(m.history_dropped)
}

/// The event type of the write, or `None` when the write emits nothing.
fn entered(old: Option<&Message>, new: &Message) -> Option<EventType> {
    let moved = match old {
        None => true,
        Some(o) => o.state != new.state || provider_replaced_guess(o, new),
    };
    if !moved {
        return None;
    }
    match new.state {
        MessageState::Scheduled | MessageState::Queued | MessageState::Sending => None,
        MessageState::Cancelled => Some(EventType::MessageCancelled),
        MessageState::Accepted => Some(EventType::MessageAccepted),
        MessageState::Sent => Some(EventType::MessageSent),
        MessageState::Delivered => Some(EventType::MessageDelivered),
        MessageState::Read => Some(EventType::MessageRead),
        MessageState::Suppressed => Some(EventType::MessageSuppressed),
        MessageState::Failed => match new.failure.as_ref().map(|f| f.class) {
            Some(FailureClass::Unconfirmed) => Some(EventType::MessageUnconfirmed),
            _ => Some(EventType::MessageFailed),
        },
    }
}

/// The old failure, when it is our own guess that provider evidence may correct.
fn correctable_failure(m: &Message) -> Option<&Failure> {
    match (&m.state, &m.failure) {
        (MessageState::Failed, Some(f)) if f.class.is_correctable_by_provider() => Some(f),
        _ => None,
    }
}

/// `failed` (our guess) -> `failed` (Meta's word): the state name is the same but the
/// failure, and what the tenant should believe, changed.
fn provider_replaced_guess(old: &Message, new: &Message) -> bool {
    new.state == MessageState::Failed
        && correctable_failure(old).is_some()
        && new.rank > old.rank
        && new.failure != old.failure
}

fn correction(old: &Message, new: &Message) -> Option<Value> {
    let corrected = matches!(
        new.state,
        MessageState::Sent | MessageState::Delivered | MessageState::Read | MessageState::Failed
    );
    let previous = correctable_failure(old).filter(|_| corrected)?;
    Some(json!({
        "previous_status": MessageState::Failed.as_str(),
        "previous_failure_class": previous.class.as_str(),
    }))
}

/// `data.status`: the new state's name, `unconfirmed` for an unconfirmed failure.
fn status_name(event_type: EventType, state: MessageState) -> &'static str {
    if event_type == EventType::MessageUnconfirmed {
        "unconfirmed"
    } else {
        state.as_str()
    }
}

fn failure_json(failure: Option<&Failure>) -> Value {
    match failure {
        Some(f) => json!({
            "class": f.class.as_str(),
            "code": f.code,
            "title": f.title,
            "detail": f.detail,
        }),
        None => Value::Null,
    }
}

fn suppression_json(suppression: Option<&Suppression>) -> Value {
    match suppression {
        Some(s) => json!({ "reason": s.reason.as_str(), "detail": s.detail }),
        None => Value::Null,
    }
}

/// Meta's pricing carried by the history entry this write added, if any.
fn written_entry_pricing(old: Option<&Message>, new: &Message) -> Option<Value> {
    new.history
        .iter()
        .filter(|(key, _)| old.is_none_or(|o| !o.history.contains_key(key.as_str())))
        .find_map(|(_, entry)| pricing_of(entry))
}

/// A provider status keeps Meta's extras under `detail.provider` (see
/// `lifecycle::ProviderStatus::detail` and the webhook's `history_detail`); a bare
/// `detail.pricing` is read too. Only the four documented keys are passed on.
fn pricing_of(entry: &HistoryEntry) -> Option<Value> {
    let detail = entry.detail.as_ref()?;
    let pricing = detail
        .get("provider")
        .and_then(|p| p.get("pricing"))
        .or_else(|| detail.get("pricing"))?
        .as_object()?;
    let text = |key: &str| pricing.get(key).and_then(Value::as_str);
    Some(json!({
        "billable": pricing.get("billable").and_then(Value::as_bool),
        "pricing_model": text("pricing_model"),
        "type": text("type"),
        "category": text("category"),
    }))
}
