//! The pure domain: no I/O, no clocks, no randomness passed in implicitly.
//!
//! Everything here is deterministic given its inputs, so it is unit- and
//! property-tested without any adapter.

pub mod canonical;
pub mod failure;
pub mod graph;
pub mod ids;
pub mod state;
pub mod time;
pub mod webhook;

pub use failure::{Failure, FailureClass, FailureSource};
pub use ids::{IdError, IdempotencyKey, MessageId, PhoneNumber, PhoneNumberId, TenantId, Wamid};
pub use state::MessageState;
pub use time::Timestamp;
pub mod payload;
pub mod request;
pub mod template;
pub mod validation;
