//! Per-state timestamps of a message, and names for each field.

use crate::domain::state::MessageState;
use crate::domain::time::Timestamp;
use serde::{Deserialize, Serialize};

/// When the message first reached each state (milliseconds since the epoch).
///
/// `failed_at` is the exception: it belongs to the current failure, so it is
/// overwritten with a new failure and removed when provider evidence clears one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamps {
    /// Stored by intake with a future `send_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<Timestamp>,
    /// Stored by intake, or released from `scheduled` when due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<Timestamp>,
    /// First claimed by a sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_at: Option<Timestamp>,
    /// Graph API answered with a wamid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<Timestamp>,
    /// Meta's `sent` webhook (Meta's timestamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    /// Meta's `delivered` webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    /// Meta's `read` (or `played`) webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<Timestamp>,
    /// The current failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<Timestamp>,
    /// Refused by our policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_at: Option<Timestamp>,
    /// Cancelled by the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
}

/// Names one field of [`Timestamps`]; `as_str` is the stored attribute name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampField {
    /// `scheduled_at`
    ScheduledAt,
    /// `queued_at`
    QueuedAt,
    /// `sending_at`
    SendingAt,
    /// `accepted_at`
    AcceptedAt,
    /// `sent_at`
    SentAt,
    /// `delivered_at`
    DeliveredAt,
    /// `read_at`
    ReadAt,
    /// `failed_at`
    FailedAt,
    /// `suppressed_at`
    SuppressedAt,
    /// `cancelled_at`
    CancelledAt,
}

impl TimestampField {
    /// The field that records reaching `state`.
    pub const fn for_state(state: MessageState) -> Self {
        match state {
            MessageState::Scheduled => Self::ScheduledAt,
            MessageState::Queued => Self::QueuedAt,
            MessageState::Sending => Self::SendingAt,
            MessageState::Accepted => Self::AcceptedAt,
            MessageState::Sent => Self::SentAt,
            MessageState::Delivered => Self::DeliveredAt,
            MessageState::Read => Self::ReadAt,
            MessageState::Failed => Self::FailedAt,
            MessageState::Suppressed => Self::SuppressedAt,
            MessageState::Cancelled => Self::CancelledAt,
        }
    }

    /// The attribute name inside `timestamps`, e.g. `delivered_at`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ScheduledAt => "scheduled_at",
            Self::QueuedAt => "queued_at",
            Self::SendingAt => "sending_at",
            Self::AcceptedAt => "accepted_at",
            Self::SentAt => "sent_at",
            Self::DeliveredAt => "delivered_at",
            Self::ReadAt => "read_at",
            Self::FailedAt => "failed_at",
            Self::SuppressedAt => "suppressed_at",
            Self::CancelledAt => "cancelled_at",
        }
    }
}

impl Timestamps {
    /// The slot of one field.
    pub fn get_mut(&mut self, field: TimestampField) -> &mut Option<Timestamp> {
        match field {
            TimestampField::ScheduledAt => &mut self.scheduled_at,
            TimestampField::QueuedAt => &mut self.queued_at,
            TimestampField::SendingAt => &mut self.sending_at,
            TimestampField::AcceptedAt => &mut self.accepted_at,
            TimestampField::SentAt => &mut self.sent_at,
            TimestampField::DeliveredAt => &mut self.delivered_at,
            TimestampField::ReadAt => &mut self.read_at,
            TimestampField::FailedAt => &mut self.failed_at,
            TimestampField::SuppressedAt => &mut self.suppressed_at,
            TimestampField::CancelledAt => &mut self.cancelled_at,
        }
    }

    /// The value of one field.
    pub fn get(&self, field: TimestampField) -> Option<Timestamp> {
        match field {
            TimestampField::ScheduledAt => self.scheduled_at,
            TimestampField::QueuedAt => self.queued_at,
            TimestampField::SendingAt => self.sending_at,
            TimestampField::AcceptedAt => self.accepted_at,
            TimestampField::SentAt => self.sent_at,
            TimestampField::DeliveredAt => self.delivered_at,
            TimestampField::ReadAt => self.read_at,
            TimestampField::FailedAt => self.failed_at,
            TimestampField::SuppressedAt => self.suppressed_at,
            TimestampField::CancelledAt => self.cancelled_at,
        }
    }
}
