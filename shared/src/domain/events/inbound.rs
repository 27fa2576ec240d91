//! `message.received`: a contact wrote to one of the tenant's numbers.

use super::{Event, EventType};
use crate::domain::ids::{PhoneNumberId, TenantId};
use crate::domain::webhook::{InboundContent, InboundMessage, ReplyKind};
use serde_json::{Map, Value, json};

/// Why an inbound message cannot become a `message.received` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InboundEventError {
    /// The message has no usable `id` (wamid): without it the event has no stable id,
    /// and a redelivered webhook would be told twice.
    #[error("inbound message without an id: no stable event id")]
    MissingId,
    /// The message has no usable `timestamp`. A caller that prefers its receive time
    /// sets `InboundMessage::timestamp` to it before calling.
    #[error("inbound message without a timestamp")]
    MissingTimestamp,
}

/// Meta's message `type`s that have a kind of their own; anything else is `other`.
const OWN_KINDS: [&str; 7] = [
    "image", "video", "audio", "document", "sticker", "reaction", "location",
];

/// The `message.received` event of an inbound message written to `phone_number_id`
/// (the tenant's number it was routed by).
///
/// The id is `evt_in_<Meta's message id>`, stable across Meta's redeliveries; the
/// timestamp is Meta's `timestamp` of the message. `data.kind` is `text`, `button`
/// (a template quick reply), `interactive` (a reply button or list row), one of
/// `image`, `video`, `audio`, `document`, `sticker`, `reaction`, `location`, or
/// `other`; `text`, `button` and `interactive` carry their object. A `text` or
/// `interactive` message whose content the webhook parser did not read (no body, a
/// flow reply) is `other`; `data.type` always keeps Meta's `type`. Media carry their
/// reference (`media.id`, fetched from Graph), reactions the wamid reacted to,
/// locations their coordinates, and a reply the wamid it answers (`context`).
pub fn message_received(
    tenant: &TenantId,
    phone_number_id: &PhoneNumberId,
    inbound: &InboundMessage,
) -> Result<Event, InboundEventError> {
    let id = inbound.id.as_ref().ok_or(InboundEventError::MissingId)?;
    let at = inbound
        .timestamp
        .ok_or(InboundEventError::MissingTimestamp)?;
    let mut data = Map::new();
    data.insert("inbound_id".into(), json!(id));
    data.insert("phone_number_id".into(), json!(phone_number_id));
    data.insert("from".into(), json!(inbound.from));
    data.insert("from_user_id".into(), json!(inbound.from_user_id));
    data.insert("profile_name".into(), json!(inbound.profile_name));
    data.insert("kind".into(), json!(kind(inbound)));
    data.insert("type".into(), json!(inbound.message_type));
    match &inbound.content {
        InboundContent::Text { body } => {
            data.insert("text".into(), json!(body));
        }
        InboundContent::QuickReply { text, payload } => {
            data.insert("button".into(), json!({ "payload": payload, "text": text }));
        }
        InboundContent::InteractiveReply {
            reply,
            id,
            title,
            description,
        } => {
            let reply_type = match reply {
                ReplyKind::Button => "button_reply",
                ReplyKind::List => "list_reply",
            };
            data.insert(
                "interactive".into(),
                json!({ "type": reply_type, "id": id, "title": title, "description": description }),
            );
        }
        InboundContent::Media {
            kind: _,
            id,
            mime_type,
            sha256,
            caption,
            filename,
        } => {
            if let Some(id) = id {
                data.insert(
                    "media".into(),
                    json!({ "id": id, "mime_type": mime_type, "sha256": sha256,
                            "caption": caption, "filename": filename }),
                );
            }
        }
        InboundContent::Reaction { message_id, emoji } => {
            if let Some(message_id) = message_id {
                data.insert(
                    "reaction".into(),
                    json!({ "message_id": message_id, "emoji": emoji }),
                );
            }
        }
        InboundContent::Location {
            latitude,
            longitude,
            name,
            address,
        } => {
            if let (Some(latitude), Some(longitude)) = (latitude, longitude) {
                data.insert(
                    "location".into(),
                    json!({ "latitude": latitude, "longitude": longitude,
                            "name": name, "address": address }),
                );
            }
        }
        InboundContent::Other => {}
    }
    if let Some(answered) = &inbound.context_wamid {
        data.insert(
            "context".into(),
            json!({ "message_id": answered, "from": inbound.context_from }),
        );
    }
    Ok(Event {
        id: format!("evt_in_{id}"),
        event_type: EventType::MessageReceived,
        timestamp: at.to_rfc3339(),
        tenant: tenant.clone(),
        data: Value::Object(data),
    })
}

/// `data.kind`: from the content the parser read, else from Meta's `type`.
fn kind(inbound: &InboundMessage) -> &'static str {
    match &inbound.content {
        InboundContent::Text { .. } => "text",
        InboundContent::QuickReply { .. } => "button",
        InboundContent::InteractiveReply { .. } => "interactive",
        InboundContent::Media { kind, .. } => match kind.as_str() {
            "image" => "image",
            "video" => "video",
            "audio" => "audio",
            "document" => "document",
            _ => "sticker",
        },
        InboundContent::Reaction { .. } => "reaction",
        InboundContent::Location { .. } => "location",
        InboundContent::Other => {
            let meta_type = inbound.message_type.as_deref().unwrap_or_default();
            OWN_KINDS
                .iter()
                .copied()
                .find(|k| *k == meta_type)
                .unwrap_or("other")
        }
    }
}
