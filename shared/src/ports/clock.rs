//! The `Clock` port: where "now" comes from.

use crate::domain::Timestamp;

/// A source of the current instant.
///
/// Handlers take "now" from a clock instead of the system so tests can pin and
/// advance time (`ManualClock`) without sleeping.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}
