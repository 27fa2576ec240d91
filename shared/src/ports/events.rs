//! `EventLog`: the events the workflow emits, per tenant, in a stable order (DESIGN
//! §10). It is what the pull API (`GET /v1/events`) pages through and what the
//! deliveries (signed HTTP endpoints, EventBridge) start from.
//!
//! Message events are written with the transition that caused them (the SQLite store
//! inserts them in the same transaction; on AWS the `events` function derives them
//! from the messages table's stream), so an event exists if and only if its
//! transition was stored. Appending is idempotent by event id: a redelivered stream
//! record or a replayed webhook logs nothing new.

use crate::domain::TenantId;
use crate::domain::events::Event;
use async_trait::async_trait;

/// Why an event log call failed.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// The backend failed or could not be reached; the call may be retried.
    #[error("event log backend failed during {operation}")]
    Backend {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A logged event could not be decoded.
    #[error("logged event {key} is corrupt")]
    Corrupt {
        /// The event's key.
        key: String,
        /// The decoding error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A position this log did not hand out.
    #[error("invalid event position")]
    InvalidPosition,
}

/// One logged event and its position in the tenant's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    /// Opaque position: pass it as `after` to read what follows.
    pub position: String,
    /// The event.
    pub event: Event,
}

/// One page of a tenant's log, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventPage {
    /// The events.
    pub events: Vec<LoggedEvent>,
    /// Whether more events follow the last one now.
    pub more: bool,
}

/// Most events one page may hold.
pub const MAX_EVENT_PAGE: usize = 500;

/// The tenants' event logs.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Log `events` (of any tenants); an id already logged is skipped.
    async fn append(&self, events: &[Event]) -> Result<(), EventLogError>;

    /// Up to `limit` (1..=[`MAX_EVENT_PAGE`]) of `tenant`'s events after `after`, in
    /// log order. The order of logged events never changes, so a reader that pages
    /// with the last position it saw never misses or repeats one.
    async fn list(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EventPage, EventLogError>;
}
