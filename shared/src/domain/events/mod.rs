//! The pipeline's outbound events (DESIGN §10, "the workflow emits events"): the pure
//! model of what a tenant is told.
//!
//! Every event has the same envelope ([`Event`]): a stable `id`, a dotted `type`
//! ([`EventType`]), an RFC 3339 `timestamp`, the `tenant` and a `data` object whose
//! shape depends on the type. The JSON Schemas of every type are in
//! `docs/events/v1/<type>.schema.json` (documented in `docs/events/README.md`); the
//! schema version lives in each schema's `$id`, not in the event.
//!
//! The constructors here are pure (no I/O, no clock), so one function serves every
//! runtime:
//! - [`message_events`] derives the events of **one** stored write of a message from
//!   the item before and after it: the SQLite store calls it inside the write's
//!   transaction (outbox), the DynamoDB stream consumer on the old and new images.
//!   An event therefore exists if and only if its transition was stored.
//! - [`message_received`] turns an inbound message of a verified webhook into
//!   `message.received`.
//! - [`contact_opt_change`] and [`template_status_changed`] describe directory
//!   changes (`contact.opted_out`/`contact.opted_in`, `template.status_changed`).
//!
//! # Ids, sequence and ordering
//!
//! Delivery is at least once, so every id is derived from what the event describes,
//! never drawn at random: a redelivered stream record, a replayed webhook or a retried
//! transaction yields the same id, and consumers dedupe on it.
//!
//! | type | id |
//! | --- | --- |
//! | `message.*` (outbound) | `evt_<message id>_<sequence>` |
//! | `message.received` | `evt_in_<Meta's inbound message id>` |
//! | `contact.opted_out` / `contact.opted_in` | `evt_opt_<cause id>_out` / `_in` |
//! | `template.status_changed` | `evt_tpl_` + 24 hex chars of SHA-256(tenant, name, language, status, millis) |
//!
//! An outbound message's events carry `data.sequence`, the number of history entries
//! the message has recorded (kept plus dropped past the cap). Every stored write adds
//! exactly one, so the sequence strictly increases across a message's events; order
//! them by it, not by arrival.

mod directory;
mod inbound;
mod message;

#[cfg(test)]
mod tests;

pub use directory::{contact_opt_change, template_status_changed};
pub use inbound::{InboundEventError, message_received};
pub use message::message_events;

use super::ids::TenantId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The base of every event schema's `$id`; the version is part of the path.
pub const SCHEMA_BASE: &str = "https://wa-pipeline.dev/events/v1/";

/// One outbound event: the envelope every type shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable, derived id (see the module docs): the same fact always has the same id,
    /// so consumers dedupe on it.
    pub id: String,
    /// What happened, as a dotted name (`message.delivered`).
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it happened, RFC 3339 in UTC with milliseconds (`2025-06-16T00:00:00.000Z`).
    pub timestamp: String,
    /// The tenant the event belongs to.
    pub tenant: TenantId,
    /// The type's payload (an object; see `docs/events/README.md`).
    pub data: serde_json::Value,
}

/// The type of an [`Event`], serialized as its dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// Meta's Graph API accepted the message and returned a wamid.
    #[serde(rename = "message.accepted")]
    MessageAccepted,
    /// Meta's `sent` status webhook.
    #[serde(rename = "message.sent")]
    MessageSent,
    /// Meta's `delivered` status webhook.
    #[serde(rename = "message.delivered")]
    MessageDelivered,
    /// Meta's `read` (or `played`) status webhook.
    #[serde(rename = "message.read")]
    MessageRead,
    /// The message failed (any failure class but `unconfirmed`).
    #[serde(rename = "message.failed")]
    MessageFailed,
    /// Our policy refused the message; it was never sent.
    #[serde(rename = "message.suppressed")]
    MessageSuppressed,
    /// The caller cancelled the message while it was scheduled or queued; never sent.
    #[serde(rename = "message.cancelled")]
    MessageCancelled,
    /// Meta accepted the message but no status webhook came within the horizon
    /// (a later webhook can still correct it).
    #[serde(rename = "message.unconfirmed")]
    MessageUnconfirmed,
    /// A contact wrote to one of the tenant's numbers.
    #[serde(rename = "message.received")]
    MessageReceived,
    /// A contact opted out (keyword or operator).
    #[serde(rename = "contact.opted_out")]
    ContactOptedOut,
    /// A contact opted in again.
    #[serde(rename = "contact.opted_in")]
    ContactOptedIn,
    /// Meta changed the status of one of the tenant's templates.
    #[serde(rename = "template.status_changed")]
    TemplateStatusChanged,
}

impl EventType {
    /// Every type, in documentation order.
    pub const ALL: &'static [EventType] = &[
        Self::MessageAccepted,
        Self::MessageSent,
        Self::MessageDelivered,
        Self::MessageRead,
        Self::MessageFailed,
        Self::MessageSuppressed,
        Self::MessageCancelled,
        Self::MessageUnconfirmed,
        Self::MessageReceived,
        Self::ContactOptedOut,
        Self::ContactOptedIn,
        Self::TemplateStatusChanged,
    ];

    /// The dotted name, as serialized in `type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MessageAccepted => "message.accepted",
            Self::MessageSent => "message.sent",
            Self::MessageDelivered => "message.delivered",
            Self::MessageRead => "message.read",
            Self::MessageFailed => "message.failed",
            Self::MessageSuppressed => "message.suppressed",
            Self::MessageCancelled => "message.cancelled",
            Self::MessageUnconfirmed => "message.unconfirmed",
            Self::MessageReceived => "message.received",
            Self::ContactOptedOut => "contact.opted_out",
            Self::ContactOptedIn => "contact.opted_in",
            Self::TemplateStatusChanged => "template.status_changed",
        }
    }

    /// The `$id` of this type's JSON Schema, e.g.
    /// `https://wa-pipeline.dev/events/v1/message.delivered.schema.json`.
    pub fn schema_id(self) -> String {
        format!("{SCHEMA_BASE}{}.schema.json", self.as_str())
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`EventType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}
