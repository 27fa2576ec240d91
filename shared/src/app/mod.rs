//! The four functions' handlers as plain async functions over [`Deps`].
//!
//! The Lambda binaries, the local runner (`wa dev`) and the tests all call these
//! same functions; none re-implements them.

mod deps;
pub mod http;
pub mod intake;
pub mod reconciler;
pub mod sender;
pub mod webhook;

pub use deps::Deps;
