//! The pure domain: no I/O, no clocks, no randomness passed in implicitly.
//!
//! Everything here is deterministic given its inputs, so it is unit- and
//! property-tested without any adapter.

pub mod failure;
pub mod ids;
pub mod state;
pub mod time;

pub use failure::{Failure, FailureClass, FailureSource};
pub use ids::{IdError, IdempotencyKey, MessageId, PhoneNumber, PhoneNumberId, TenantId, Wamid};
pub use state::MessageState;
pub use time::Timestamp;

pub mod lifecycle;
pub mod message;
pub use lifecycle::{Decision, LifecycleEvent, LifecyclePolicy, Transition};
pub use message::{HistoryEntry, Message, NewMessage, Suppression, SuppressionReason};
