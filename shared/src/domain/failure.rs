//! Failure classes: why a send did not (yet) succeed, and what that means for retries.
//!
//! The class, not the HTTP status, drives what the sender and reconciler do next
//! (DESIGN §3). The Graph error-code table that maps codes to classes lives in
//! `domain::graph`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Why a message failed or is being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Meta or the network had a passing fault: retry with exponential backoff + jitter.
    Transient,
    /// A rate limit was hit: retry after a longer delay and slow the tenant down.
    Throttled,
    /// The request itself is wrong (template, parameters): fail now, never retry.
    Rejected,
    /// The recipient cannot receive it (not on WhatsApp, window closed): fail now.
    Recipient,
    /// The tenant's account is broken (token, payment, restriction): hold and alarm.
    Tenant,
    /// The request was written but no answer came: never blind-retry.
    Ambiguous,
    /// The retry budget or the message's max age is spent.
    Exhausted,
    /// Accepted by Meta, but no webhook arrived within the horizon.
    Unconfirmed,
}

impl FailureClass {
    /// Every class, for tables and tests.
    pub const ALL: [FailureClass; 8] = [
        FailureClass::Transient,
        FailureClass::Throttled,
        FailureClass::Rejected,
        FailureClass::Recipient,
        FailureClass::Tenant,
        FailureClass::Ambiguous,
        FailureClass::Exhausted,
        FailureClass::Unconfirmed,
    ];

    /// The snake_case name used in storage, APIs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Throttled => "throttled",
            FailureClass::Rejected => "rejected",
            FailureClass::Recipient => "recipient",
            FailureClass::Tenant => "tenant",
            FailureClass::Ambiguous => "ambiguous",
            FailureClass::Exhausted => "exhausted",
            FailureClass::Unconfirmed => "unconfirmed",
        }
    }

    /// Whether the sender may put the message back on the queue for another attempt.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            FailureClass::Transient | FailureClass::Throttled | FailureClass::Tenant
        )
    }

    /// Whether the failure is our guess rather than Meta's word: a later provider
    /// webhook (sent/delivered/read/failed) overrides a message failed with this class.
    pub const fn is_correctable_by_provider(self) -> bool {
        matches!(self, FailureClass::Ambiguous | FailureClass::Unconfirmed)
    }

    /// Delay before retry number `attempt` (1-based), or `None` when the class is not
    /// retryable. `jitter` in `[0, 1)` is supplied by the caller so this stays pure;
    /// the delay is drawn from `[d/2, d)` ("equal jitter") so retries of a burst spread
    /// out but never come back sooner than half the backoff.
    pub fn retry_delay(self, attempt: u32, jitter: f64) -> Option<Duration> {
        let (base_ms, cap_ms): (u64, u64) = match self {
            // 2 s, 4 s, 8 s … up to 5 minutes.
            FailureClass::Transient => (2_000, 300_000),
            // Pair-rate guidance is 4^X seconds; start at 30 s and cap at 1 hour.
            FailureClass::Throttled => (30_000, 3_600_000),
            // The operator has to fix the account: look again every 15 minutes.
            FailureClass::Tenant => (900_000, 900_000),
            _ => return None,
        };
        let exp = attempt.saturating_sub(1).min(20);
        let full = base_ms.saturating_mul(1u64 << exp).min(cap_ms);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = full / 2;
        Some(Duration::from_millis(half + (half as f64 * jitter) as u64))
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who established a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureSource {
    /// The Graph API's synchronous answer to our send.
    Graph,
    /// The transport (connect error, timeout) before or after the request was written.
    Transport,
    /// A `failed` status webhook from Meta.
    Webhook,
    /// The sender's own limits (attempts, max age).
    Sender,
    /// The reconciler's sweep (ambiguous grace, missing webhooks).
    Reconciler,
}

/// A failure as stored on a message and shown by `GET /v1/messages/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure this is; drives retries.
    pub class: FailureClass,
    /// Meta's error code, when Meta gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// Short title (Meta's `title`/`message`, or ours).
    pub title: String,
    /// Longer detail (Meta's `error_data.details`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Who established it.
    pub source: FailureSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_throttled_and_tenant_failures_are_retried() {
        let retryable: Vec<_> = FailureClass::ALL
            .iter()
            .filter(|c| c.is_retryable())
            .collect();
        assert_eq!(
            retryable,
            [
                &FailureClass::Transient,
                &FailureClass::Throttled,
                &FailureClass::Tenant
            ]
        );
        for c in FailureClass::ALL {
            assert_eq!(c.retry_delay(1, 0.5).is_some(), c.is_retryable(), "{c}");
        }
    }

    #[test]
    fn transient_backoff_doubles_within_jitter_and_is_capped() {
        let d = |a, j| {
            FailureClass::Transient
                .retry_delay(a, j)
                .unwrap()
                .as_millis()
        };
        assert_eq!(d(1, 0.0), 1_000);
        assert_eq!(d(2, 0.0), 2_000);
        assert!(d(3, 0.99) < 8_000 && d(3, 0.99) >= 4_000);
        assert_eq!(d(30, 0.0), 150_000);
        assert_eq!(d(30, 1.0), 300_000);
        assert_eq!(d(1, f64::NAN), 1_000);
    }

    #[test]
    fn throttled_waits_longer_than_transient_at_every_attempt() {
        for a in 1..10 {
            let t = FailureClass::Transient.retry_delay(a, 0.0).unwrap();
            let th = FailureClass::Throttled.retry_delay(a, 0.0).unwrap();
            assert!(th > t, "attempt {a}");
        }
    }

    #[test]
    fn only_our_guesses_are_correctable_by_provider_evidence() {
        for c in FailureClass::ALL {
            let expected = matches!(c, FailureClass::Ambiguous | FailureClass::Unconfirmed);
            assert_eq!(c.is_correctable_by_provider(), expected, "{c}");
        }
    }
}
