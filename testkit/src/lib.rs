//! `wa-testkit`: test helpers every crate's tests share (a dev-dependency only).
//!
//! - [`queue_conformance`]: the one `WorkQueue` suite every adapter must pass.
//! - [`directory_conformance`]: the one `Directory` suite every adapter must pass.
//! - [`store_conformance`]: the one `MessageStore` suite every adapter must pass.
//! - [`event_log_conformance`]: the one `EventLog` suite every adapter must pass.
//! - [`quota_conformance`]: the one `QuotaLedger` suite every adapter must pass.
//! - [`pacing_conformance`]: the one `PacingLedger` suite every adapter must pass.
//! - [`cost_conformance`]: the one `CostLedger` suite every adapter must pass.
//! - [`series_conformance`]: the one `TrafficSeries` suite every adapter must pass.
//! - [`moto`]: find the local AWS emulator, or skip (or fail, in CI) without it.
//! - [`backends`]: a test's ports on SQLite or on moto, by the runtimes' wiring.
//! - [`fixtures`]: builders of shared fixtures (a tenant profile).
//! - [`events`]: the outbound events' JSON Schemas (`docs/events/v1`) and a validator.

// Test support: a failed expectation here is a failed test, so panicking is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The product library, re-exported for the conformance macros (`$crate::wa_shared`).
pub use wa_shared;

pub mod backends;
pub mod cost_conformance;
pub mod directory_conformance;
pub mod event_log_conformance;
pub mod events;
pub mod fixtures;
pub mod lambda_harness;
pub mod moto;
pub mod pacing_conformance;
pub mod queue_conformance;
pub mod quota_conformance;
pub mod series_conformance;
pub mod store_conformance;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name no other test (in this or a concurrent process) uses: `prefix-<pid>-<time>-<n>`.
///
/// Moto slows down as a queue fills, so every test works on its own small queue.
/// Short enough for SQS names (with the `-dlq` suffix) when `prefix` is under 40 characters.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() % 1_000_000_000_000);
    format!("{prefix}-{}-{micros}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_fit_sqs_limits() {
        let a = unique_name("conformance");
        let b = unique_name("conformance");
        assert_ne!(a, b);
        assert!(wa_shared::ports::queue::check_queue_name(&a).is_ok(), "{a}");
    }
}
