//! Delivery statuses (`value.statuses[]` of a `messages` change): the events that move
//! an outbound message through sent, delivered, read or failed.

use super::parse::{Scope, read_error};
use super::{ItemList, Problem};
use super::{WebhookError, WebhookEvent, wire};
use crate::domain::{MessageState, PhoneNumberId, Timestamp, Wamid};

/// The `status` of a status webhook.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Meta sent the message.
    Sent,
    /// It reached the recipient's device.
    Delivered,
    /// The recipient read it (implies delivered; Meta may skip `delivered`).
    Read,
    /// It failed; `errors[]` says why.
    Failed,
    /// A voice message was first played.
    Played,
    /// A value we do not know (e.g. `deleted`): kept, reported as a warning.
    Unknown(String),
}

impl DeliveryStatus {
    /// Map Meta's lowercase value; anything else is [`DeliveryStatus::Unknown`].
    pub fn parse(value: &str) -> Self {
        match value {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "failed" => DeliveryStatus::Failed,
            "played" => DeliveryStatus::Played,
            other => DeliveryStatus::Unknown(other.to_owned()),
        }
    }

    /// Meta's spelling of the value.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Played => "played",
            DeliveryStatus::Unknown(value) => value,
        }
    }

    /// The lifecycle state this status moves a message to (DESIGN §3: `played` counts
    /// as `read`); `None` for unknown values, which move nothing.
    pub const fn message_state(&self) -> Option<MessageState> {
        match self {
            DeliveryStatus::Sent => Some(MessageState::Sent),
            DeliveryStatus::Delivered => Some(MessageState::Delivered),
            DeliveryStatus::Read | DeliveryStatus::Played => Some(MessageState::Read),
            DeliveryStatus::Failed => Some(MessageState::Failed),
            DeliveryStatus::Unknown(_) => None,
        }
    }
}

/// A delivery status of one outbound message (`value.statuses[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// `entry.id`: the WABA.
    pub waba_id: String,
    /// `value.metadata.phone_number_id`: the number that sent the message.
    pub phone_number_id: Option<PhoneNumberId>,
    /// `id`: Meta's id of the message.
    pub wamid: Wamid,
    /// `status`.
    pub status: DeliveryStatus,
    /// `timestamp`, seconds or milliseconds, string or number; `None` if absent or
    /// unreadable (a warning says so).
    pub timestamp: Option<Timestamp>,
    /// `recipient_id`: phone (wa_id) or group id.
    pub recipient_id: Option<String>,
    /// `recipient_user_id`: the recipient's BSUID.
    pub recipient_user_id: Option<String>,
    /// `biz_opaque_callback_data`: what the sender put in the request, echoed back.
    pub biz_opaque_callback_data: Option<String>,
    /// `errors[]`, on `failed`.
    pub errors: Vec<WebhookError>,
    /// `pricing`, on `sent` and on one of `delivered`/`read`.
    pub pricing: Option<Pricing>,
    /// `conversation`, when present (omitted from v24 webhooks in most cases).
    pub conversation: Option<serde_json::Value>,
}

/// `pricing` of a status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pricing {
    /// `billable` (being deprecated by Meta).
    pub billable: Option<bool>,
    /// `pricing_model`: `PMP` (or `CBP` before July 2025).
    pub pricing_model: Option<String>,
    /// `type`: `regular`, `free_customer_service`, `free_entry_point`.
    pub pricing_type: Option<String>,
    /// `category`: `marketing`, `utility`, `authentication`, `service`, …
    pub category: Option<String>,
}

/// Turn `statuses[index]` into a [`StatusUpdate`] event; one without a usable wamid
/// or status value cannot be applied to anything and is dropped (reported).
pub(super) fn read(
    scope: &mut Scope<'_>,
    phone_number_id: &Option<PhoneNumberId>,
    index: usize,
    status: wire::Status,
) {
    let list = ItemList::Statuses;
    let Some(wamid) = status.id.as_deref().and_then(|id| Wamid::parse(id).ok()) else {
        scope.drop_item(list, index, "no usable `id` (wamid)".to_owned());
        return;
    };
    let Some(value) = status.status else {
        scope.drop_item(list, index, "no `status`".to_owned());
        return;
    };
    let delivery = DeliveryStatus::parse(&value);
    if let DeliveryStatus::Unknown(unknown) = &delivery {
        scope.warn(Problem::UnknownStatus {
            index,
            status: super::parse::quote(unknown),
        });
    }
    let timestamp = scope.item_time(list, index, status.timestamp.as_ref());
    let pricing = status.pricing.map(|p| Pricing {
        billable: p.billable,
        pricing_model: p.pricing_model,
        pricing_type: p.pricing_type,
        category: p.category,
    });
    scope.emit(WebhookEvent::Status(StatusUpdate {
        waba_id: scope.origin.waba_id.to_owned(),
        phone_number_id: phone_number_id.clone(),
        wamid,
        status: delivery,
        timestamp,
        recipient_id: status.recipient_id,
        recipient_user_id: status.recipient_user_id,
        biz_opaque_callback_data: status.biz_opaque_callback_data,
        errors: status
            .errors
            .into_iter()
            .flatten()
            .map(read_error)
            .collect(),
        pricing,
        conversation: status.conversation,
    }));
}
