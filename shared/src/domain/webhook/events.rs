//! Typed webhook events: what one POST from Meta told us, flattened out of the
//! `entry[].changes[]` envelope so that handlers iterate events, not JSON.
//!
//! Meta's enumerations that drift (template statuses, quality scores, tiers, account
//! events) are kept as the strings Meta sent; the directory maps the values it acts on.

use super::{
    AccountUpdate, InboundMessage, PhoneNumberQualityUpdate, StatusUpdate, TemplateCategoryUpdate,
    TemplateQualityUpdate, TemplateStatusUpdate, UserPreferenceUpdate,
};
use crate::domain::{PhoneNumberId, Timestamp};

/// Everything one webhook POST carried, in payload order, plus what we did not understand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookBatch {
    /// One event per status, inbound message, system error or management change.
    pub events: Vec<WebhookEvent>,
    /// What was tolerated but should be looked at (logged and counted, never fatal).
    pub warnings: Vec<super::ParseWarning>,
}

impl WebhookBatch {
    /// The delivery statuses, in payload order.
    pub fn statuses(&self) -> impl Iterator<Item = &StatusUpdate> {
        self.events.iter().filter_map(|e| match e {
            WebhookEvent::Status(s) => Some(s),
            _ => None,
        })
    }

    /// The inbound messages, in payload order.
    pub fn inbound_messages(&self) -> impl Iterator<Item = &InboundMessage> {
        self.events.iter().filter_map(|e| match e {
            WebhookEvent::Inbound(m) => Some(m),
            _ => None,
        })
    }
}

/// One thing Meta told us.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    /// `messages` change, `statuses[]` item: a delivery status of one of our messages.
    Status(StatusUpdate),
    /// `messages` change, `messages[]` item: a user wrote to one of our numbers.
    Inbound(InboundMessage),
    /// `messages` change, `value.errors[]` item: an error not tied to one message.
    SystemError(SystemError),
    /// `message_template_status_update`.
    TemplateStatus(TemplateStatusUpdate),
    /// `message_template_quality_update`.
    TemplateQuality(TemplateQualityUpdate),
    /// `template_category_update`.
    TemplateCategory(TemplateCategoryUpdate),
    /// `phone_number_quality_update`.
    PhoneNumberQuality(PhoneNumberQualityUpdate),
    /// `account_update`.
    AccountUpdate(AccountUpdate),
    /// `user_preferences`: a user stopped or resumed marketing messages.
    UserPreference(UserPreferenceUpdate),
    /// A change whose `field` we do not handle, or whose `value` did not have the
    /// expected shape (a warning says which); kept whole so nothing is silently lost.
    Unknown(UnknownChange),
}

/// The kind of a [`WebhookEvent`], for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`WebhookEvent::Status`].
    Status,
    /// [`WebhookEvent::Inbound`].
    Inbound,
    /// [`WebhookEvent::SystemError`].
    SystemError,
    /// [`WebhookEvent::TemplateStatus`].
    TemplateStatus,
    /// [`WebhookEvent::TemplateQuality`].
    TemplateQuality,
    /// [`WebhookEvent::TemplateCategory`].
    TemplateCategory,
    /// [`WebhookEvent::PhoneNumberQuality`].
    PhoneNumberQuality,
    /// [`WebhookEvent::AccountUpdate`].
    AccountUpdate,
    /// [`WebhookEvent::UserPreference`].
    UserPreference,
    /// [`WebhookEvent::Unknown`].
    Unknown,
}

impl EventKind {
    /// Stable snake_case label.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "status",
            EventKind::Inbound => "inbound",
            EventKind::SystemError => "system_error",
            EventKind::TemplateStatus => "template_status",
            EventKind::TemplateQuality => "template_quality",
            EventKind::TemplateCategory => "template_category",
            EventKind::PhoneNumberQuality => "phone_number_quality",
            EventKind::AccountUpdate => "account_update",
            EventKind::UserPreference => "user_preference",
            EventKind::Unknown => "unknown",
        }
    }
}

impl WebhookEvent {
    /// Which kind of event this is.
    pub const fn kind(&self) -> EventKind {
        match self {
            WebhookEvent::Status(_) => EventKind::Status,
            WebhookEvent::Inbound(_) => EventKind::Inbound,
            WebhookEvent::SystemError(_) => EventKind::SystemError,
            WebhookEvent::TemplateStatus(_) => EventKind::TemplateStatus,
            WebhookEvent::TemplateQuality(_) => EventKind::TemplateQuality,
            WebhookEvent::TemplateCategory(_) => EventKind::TemplateCategory,
            WebhookEvent::PhoneNumberQuality(_) => EventKind::PhoneNumberQuality,
            WebhookEvent::AccountUpdate(_) => EventKind::AccountUpdate,
            WebhookEvent::UserPreference(_) => EventKind::UserPreference,
            WebhookEvent::Unknown(_) => EventKind::Unknown,
        }
    }
}

/// An asynchronous error (`statuses[].errors[]`, `value.errors[]`, `messages[].errors[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookError {
    /// `code`: what error classification keys on.
    pub code: Option<i64>,
    /// `title`.
    pub title: Option<String>,
    /// `message`.
    pub message: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
    /// `href`: Meta's documentation link.
    pub href: Option<String>,
}

/// An error Meta reported for a number or app, not for one message (`value.errors[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemError {
    /// `entry.id`: the WABA.
    pub waba_id: String,
    /// `value.metadata.phone_number_id`.
    pub phone_number_id: Option<PhoneNumberId>,
    /// The error.
    pub error: WebhookError,
}

/// A change kept as JSON: unknown `field`, or a `value` we could not read.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownChange {
    /// `entry.id`.
    pub waba_id: String,
    /// `entry.time`.
    pub time: Option<Timestamp>,
    /// `field`.
    pub field: String,
    /// `value` as sent (`null` if absent).
    pub value: serde_json::Value,
}
