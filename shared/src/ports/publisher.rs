//! `EventPublisher`: hands logged events to a bus (DESIGN §10, "EventBridge (the
//! stage's bus)").
//!
//! The `events` function publishes every event once the tenant's log holds it.
//! Delivery is at least once: a publisher may be handed an event it already
//! published (a redelivered stream record), and consumers dedupe on the event id.
//! One call may publish events of any tenants; each event gets its own result, so
//! the caller retries only what failed.

use crate::domain::events::Event;
use async_trait::async_trait;

/// Why one event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The backend failed or could not be reached for the whole call (the events of
    /// that call were not published); the call may be retried.
    #[error("event publisher backend failed during {operation}")]
    Backend {
        /// The operation that failed (`PutEvents`).
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend took the call but refused this event (EventBridge's per-entry
    /// `ErrorCode`, e.g. `ThrottlingException` or `InternalFailure`).
    #[error("event rejected by the bus: {code}")]
    Rejected {
        /// The backend's error code.
        code: String,
        /// The backend's message, if any.
        message: Option<String>,
    },
}

/// Publishes events to the stage's bus.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publish `events` (of any tenants). Returns exactly one result per event, in the
    /// same order: `Ok` once the bus accepted it. Never panics; an empty slice makes
    /// no call.
    async fn publish(&self, events: &[Event]) -> Vec<Result<(), PublishError>>;
}
