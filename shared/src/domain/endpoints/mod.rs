//! Event endpoints (DESIGN §10): a tenant's signed HTTP receivers, their health,
//! the retry schedule of a delivery, and what a delivery and a dead letter are.
//!
//! Pure: both delivery engines use it, `wa dev`'s dispatcher (SQLite outbox) and the
//! AWS `delivery` function (SQS jobs, DynamoDB registry, Secrets Manager).

pub mod signing;

use super::events::{Event, EventType};
use super::ids::TenantId;
use super::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// Standard Webhooks' recommended schedule: the waits after the 1st, 2nd, ... failed
/// attempt (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: 27 h 35 min 5 s in all). After
/// the last one fails the delivery is dead.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Attempts a delivery gets: the first and one per step of [`RETRY_SCHEDULE`].
pub const MAX_ATTEMPTS: u32 = RETRY_SCHEDULE.len() as u32 + 1;

/// An endpoint failing for this long with no success is disabled (3 days).
pub const DISABLE_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// First pause of a failing endpoint's circuit; doubled per failure in a row.
pub const FIRST_HOLD: Duration = Duration::from_secs(5);

/// Longest pause of a failing endpoint's circuit.
pub const MAX_HOLD: Duration = Duration::from_secs(5 * 60);

/// `d` multiplied by `time_scale` (1: real time; tests run a day in seconds).
pub fn scaled(d: Duration, time_scale: f64) -> Duration {
    Duration::from_secs_f64((d.as_secs_f64() * time_scale).max(0.0))
}

/// The wait before the next attempt after `attempts` attempts have failed, or `None`
/// when the delivery is dead (all [`MAX_ATTEMPTS`] spent).
pub fn retry_delay(attempts: u32, time_scale: f64) -> Option<Duration> {
    let step = usize::try_from(attempts.checked_sub(1)?).ok()?;
    RETRY_SCHEDULE
        .get(step)
        .map(|wait| scaled(*wait, time_scale))
}

/// How long a failing endpoint is left alone after its `failures_in_a_row`-th
/// failure: [`FIRST_HOLD`] doubled per failure, at most [`MAX_HOLD`]. Deliveries due
/// meanwhile wait without spending an attempt, so a dead endpoint costs one timed-out
/// request per pause, not one per event.
pub fn circuit_hold(failures_in_a_row: u32, time_scale: f64) -> Duration {
    let doublings = failures_in_a_row.saturating_sub(1).min(16);
    scaled(
        FIRST_HOLD.saturating_mul(1 << doublings).min(MAX_HOLD),
        time_scale,
    )
}

/// An endpoint's id: `ep_` and a ULID (unique, sortable by creation).
pub fn new_endpoint_id() -> String {
    format!(
        "ep_{}",
        ulid::Ulid::generate().to_string().to_ascii_lowercase()
    )
}

/// Whether `id` has the form [`new_endpoint_id`] hands out.
pub fn is_endpoint_id(id: &str) -> bool {
    id.strip_prefix("ep_")
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// How an endpoint's recent attempts went.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EndpointHealth {
    /// Last 2xx answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<Timestamp>,
    /// First failure since the last success (unset while it works).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    /// Failures since the last success.
    #[serde(default)]
    pub failures_in_a_row: u32,
    /// No attempt before this time (the circuit's pause after a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<Timestamp>,
    /// What the last failure was (status and answer excerpt, or the connection error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl EndpointHealth {
    /// Whether attempts are paused at `now`.
    pub fn held_at(&self, now: Timestamp) -> bool {
        self.hold_until.is_some_and(|until| until > now)
    }

    /// Whether it has failed with no success for at least `limit` at `now`.
    pub fn failing_for(&self, now: Timestamp, limit: Duration) -> bool {
        let limit = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        self.failing_since
            .is_some_and(|since| now.millis_since(since) >= limit)
    }
}

/// One of a tenant's event endpoints, as the registry stores it. The secret itself
/// is elsewhere (Secrets Manager): only its reference is here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The tenant whose events it receives.
    pub tenant: TenantId,
    /// Its id ([`new_endpoint_id`]).
    pub id: String,
    /// Where events are POSTed (checked when added, and again at each attempt).
    pub url: String,
    /// Event types it receives; `None`: every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<BTreeSet<EventType>>,
    /// Where its `whsec_` secret is kept (a Secrets Manager ARN); never the secret.
    pub secret_ref: String,
    /// When it was added.
    pub created_at: Timestamp,
    /// Disabled after failing for [`DISABLE_AFTER`]; a replay enables it again.
    #[serde(default)]
    pub disabled: bool,
    /// Its recent attempts.
    #[serde(default)]
    pub health: EndpointHealth,
}

impl Endpoint {
    /// Whether an event of type `t` goes to this endpoint.
    pub fn wants(&self, t: EventType) -> bool {
        self.types.as_ref().is_none_or(|types| types.contains(&t))
    }
}

/// One event on its way to one endpoint, after `attempts` failed attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryJob {
    /// The endpoint's tenant (always the event's tenant).
    pub tenant: TenantId,
    /// The endpoint's id.
    pub endpoint: String,
    /// Attempts already made and failed.
    pub attempts: u32,
    /// Not to be attempted before this time (epoch milliseconds).
    pub due_at_ms: i64,
    /// The event, exactly as logged.
    pub event: Event,
}

/// Why a delivery ended in the dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// Every attempt of the schedule failed.
    AttemptsExhausted,
    /// The endpoint was disabled when the event was due.
    EndpointDisabled,
}

/// A delivery given up on, kept for `wa events replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The tenant.
    pub tenant: TenantId,
    /// The endpoint's id.
    pub endpoint: String,
    /// Why it is dead.
    pub reason: DeadReason,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, if an attempt was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it died.
    pub dead_at: Timestamp,
    /// The event.
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_more_than_a_day_and_scales() {
        let total: Duration = (1..MAX_ATTEMPTS).filter_map(|a| retry_delay(a, 1.0)).sum();
        assert_eq!(total, Duration::from_secs(27 * 3600 + 35 * 60 + 5));
        assert_eq!(retry_delay(0, 1.0), None);
        assert_eq!(retry_delay(1, 1.0), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(MAX_ATTEMPTS, 1.0), None);
        assert_eq!(retry_delay(3, 0.001), Some(Duration::from_millis(1800)));
    }

    #[test]
    fn the_circuit_pause_doubles_up_to_its_cap() {
        assert_eq!(circuit_hold(0, 1.0), FIRST_HOLD);
        assert_eq!(circuit_hold(1, 1.0), FIRST_HOLD);
        assert_eq!(circuit_hold(2, 1.0), Duration::from_secs(10));
        assert_eq!(circuit_hold(7, 1.0), Duration::from_secs(300));
        assert_eq!(circuit_hold(u32::MAX, 1.0), MAX_HOLD);
        assert_eq!(circuit_hold(2, 0.01), Duration::from_millis(100));
    }

    #[test]
    fn endpoint_ids_have_one_form() {
        let id = new_endpoint_id();
        assert!(is_endpoint_id(&id), "{id}");
        assert!(!is_endpoint_id("ep_"));
        assert!(!is_endpoint_id("acme"));
        assert!(!is_endpoint_id(&format!("{id}/x")));
    }

    #[test]
    fn health_tells_holds_and_long_failures() {
        let t = |ms| Timestamp::from_millis(ms);
        let h = EndpointHealth {
            failing_since: Some(t(1_000)),
            hold_until: Some(t(5_000)),
            failures_in_a_row: 2,
            ..EndpointHealth::default()
        };
        assert!(h.held_at(t(4_999)));
        assert!(!h.held_at(t(5_000)));
        assert!(!h.failing_for(t(1_999), Duration::from_secs(1)));
        assert!(h.failing_for(t(2_000), Duration::from_secs(1)));
        assert!(!EndpointHealth::default().failing_for(t(i64::MAX), Duration::ZERO));
    }
}
