//! The functions' handlers as plain async functions over their own deps
//! ([`IntakeDeps`], [`SenderDeps`], [`WebhookDeps`], [`ReconcilerDeps`], [`EventsDeps`]).
//!
//! The Lambda binaries, the local runner (`wa dev`) and the tests all call these
//! same functions; none re-implements them. A function's module never reaches into
//! another's: what two functions share sits here ([`directory_cache`], [`errors`],
//! [`http`]) or in the domain.

pub mod delivery;
mod deps;
pub mod directory_cache;
pub mod errors;
#[cfg(feature = "aws")]
pub mod events;
pub mod http;
pub mod intake;
pub mod reconciler;
pub mod sender;
mod series;
pub mod webhook;

pub use deps::{IntakeDeps, Ports, ReconcilerDeps, SenderDeps, WebhookDeps};
pub use directory_cache::DirectoryCache;
#[cfg(feature = "aws")]
pub use events::EventsDeps;
