//! `PacingLedger`: the send schedules of phone numbers and of (number, recipient)
//! pairs, shared by every sender instance (docs/pacing.md).
//!
//! Each call is one atomic step on the backend (a transaction, conditional writes), so
//! two senders never take the same slot and, together, keep to the rule
//! ([`crate::domain::pacing::PaceRule`]) however many of them run.

use crate::domain::Timestamp;
use crate::domain::pacing::{PaceKey, PaceRule};
use async_trait::async_trait;
use std::time::Duration;

/// Why a ledger call failed.
#[derive(Debug, thiserror::Error)]
pub enum PacingError {
    /// The backend failed or could not be reached; the call may be retried.
    #[error("pacing ledger backend failed during {operation}")]
    Backend {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Concurrent writers kept changing the schedule under this call.
    #[error("the send schedule kept changing during {attempts} attempts")]
    Contended {
        /// Conditional writes tried.
        attempts: usize,
    },
}

/// The answer to one reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The send may go at `slot` (now, or within the horizon asked for).
    Reserved {
        /// When the send may go (never before the `now` asked about).
        slot: Timestamp,
    },
    /// Nothing was reserved: the first free slot, `ready_at`, lies beyond the horizon.
    Deferred {
        /// The first free slot as of now (others may take it meanwhile).
        ready_at: Timestamp,
    },
}

/// The send schedules, shared by every sender instance.
#[async_trait]
pub trait PacingLedger: Send + Sync {
    /// Reserve the next slot of `key` under `rule` at `now`, if it is at most `horizon`
    /// away; otherwise reserve nothing and say when the first slot is.
    async fn reserve(
        &self,
        key: &PaceKey,
        rule: &PaceRule,
        now: Timestamp,
        horizon: Duration,
    ) -> Result<Reservation, PacingError>;

    /// Meta throttled `key`: no slot before `until`, the current burst takes no more
    /// sends, and with `slow_until` the key runs at the rule's slowed interval until
    /// then ([`PaceRule::hold`]). A hold never moves a key backwards.
    async fn hold(
        &self,
        key: &PaceKey,
        rule: &PaceRule,
        until: Timestamp,
        slow_until: Option<Timestamp>,
    ) -> Result<(), PacingError>;
}
