//! The pure domain: no I/O, no clocks, no randomness passed in implicitly.
//!
//! Everything here is deterministic given its inputs, so it is unit- and
//! property-tested without any adapter.

pub mod account_state;
pub mod canonical;
pub mod costs;
pub mod endpoints;
pub mod events;
pub mod failure;
pub mod graph;
pub mod ids;
pub mod lifecycle;
pub mod message;
pub mod pacing;
pub mod payload;
pub mod policy;
pub mod quota;
pub mod request;
pub mod series;
pub mod state;
pub mod template;
pub mod tenant;
pub mod time;
pub mod validation;
pub mod webhook;

pub use failure::{Failure, FailureClass, FailureSource};
pub use ids::{IdError, IdempotencyKey, MessageId, PhoneNumber, PhoneNumberId, TenantId, Wamid};
pub use lifecycle::{Decision, LifecycleEvent, LifecyclePolicy, Transition};
pub use message::{HistoryEntry, Message, NewMessage, Suppression, SuppressionReason};
pub use state::MessageState;
pub use time::Timestamp;
