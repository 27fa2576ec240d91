//! Per-tenant intake quotas: a request rate with a burst, and a number of messages
//! per UTC day (docs/quotas.md).
//!
//! Pure rules only. The state (a tenant's theoretical arrival time, its day counts)
//! lives in a [`QuotaLedger`](crate::ports::QuotaLedger) shared by every intake
//! instance, which applies these rules inside its one atomic step.
//!
//! The rate is GCRA, the token bucket written as one number: each admitted request
//! moves the tenant's *theoretical arrival time* (TAT) one interval (`1 / rate`)
//! forward, from now or from where it stands if that is later; a request is admitted
//! while the TAT it starts from is at most `burst - 1` intervals ahead of now. So
//! `burst` requests pass at once after a quiet spell, then one per interval.

use super::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Requests per second of a tenant whose profile does not say.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 50;
/// Burst of a tenant whose profile does not say.
pub const DEFAULT_BURST: u32 = 100;
/// Highest `requests_per_second` an operator may set.
pub const MAX_REQUESTS_PER_SECOND: u32 = 100_000;
/// Highest `burst` an operator may set.
pub const MAX_BURST: u32 = 1_000_000;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// A tenant's intake quota, kept in its profile (serde defaults: 50/s, burst 100,
/// no daily cap), enforced on `POST /v1/messages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IntakeQuota {
    /// Steady requests per second.
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: u32,
    /// Requests admitted at once after a quiet spell (the bucket's size).
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// New messages accepted per UTC day; `None`: no daily cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_day: Option<u32>,
}

fn default_requests_per_second() -> u32 {
    DEFAULT_REQUESTS_PER_SECOND
}

fn default_burst() -> u32 {
    DEFAULT_BURST
}

impl Default for IntakeQuota {
    /// 50 requests/s, burst 100, no daily cap.
    fn default() -> Self {
        Self {
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            burst: DEFAULT_BURST,
            messages_per_day: None,
        }
    }
}

/// A quota setting out of range (operators' input: `wa.toml`, `wa tenants add`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidQuota {
    /// `requests_per_second` is outside `1..=MAX_REQUESTS_PER_SECOND`.
    #[error("requests_per_second must be 1..={MAX_REQUESTS_PER_SECOND}, not {0}")]
    RequestsPerSecond(u32),
    /// `burst` is outside `1..=MAX_BURST`.
    #[error("burst must be 1..={MAX_BURST}, not {0}")]
    Burst(u32),
    /// `messages_per_day` is zero (leave it out for no cap).
    #[error("messages_per_day must be at least 1 (leave it out for no daily cap)")]
    MessagesPerDay,
}

impl IntakeQuota {
    /// Whether every setting is in range.
    pub fn check(&self) -> Result<(), InvalidQuota> {
        if !(1..=MAX_REQUESTS_PER_SECOND).contains(&self.requests_per_second) {
            return Err(InvalidQuota::RequestsPerSecond(self.requests_per_second));
        }
        if !(1..=MAX_BURST).contains(&self.burst) {
            return Err(InvalidQuota::Burst(self.burst));
        }
        if self.messages_per_day == Some(0) {
            return Err(InvalidQuota::MessagesPerDay);
        }
        Ok(())
    }

    /// The rate rule of this quota.
    pub fn rate(&self) -> RequestRate {
        RequestRate::of(self)
    }
}

impl std::fmt::Display for IntakeQuota {
    /// `50/s burst 100, 10000/day` (or `no daily cap`), as operators read it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/s burst {}, ", self.requests_per_second, self.burst)?;
        match self.messages_per_day {
            Some(n) => write!(f, "{n}/day"),
            None => f.write_str("no daily cap"),
        }
    }
}

/// What the rate rule says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Admitted: store this theoretical arrival time (µs since the epoch).
    Admit {
        /// The tenant's new TAT.
        tat_us: i64,
    },
    /// Refused: the same request would be admitted this much later.
    Refuse {
        /// Time until a request is admitted again.
        retry_after: Duration,
    },
}

/// The rate rule (GCRA) of one quota, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRate {
    interval_us: i64,
    burst: i64,
}

impl RequestRate {
    /// The rule of `quota`; settings below 1 count as 1. The interval is rounded up
    /// to a whole microsecond, so the rate is never exceeded.
    pub fn of(quota: &IntakeQuota) -> Self {
        let rps = i64::from(quota.requests_per_second.max(1));
        Self {
            interval_us: (MICROS_PER_SECOND + rps - 1) / rps,
            burst: i64::from(quota.burst.max(1)),
        }
    }

    /// Microseconds each admitted request moves the TAT forward (`1 / rate`).
    pub fn interval_us(self) -> i64 {
        self.interval_us
    }

    /// The latest TAT from which a request at `now_us` is still admitted:
    /// `burst - 1` intervals ahead of now.
    pub fn admits_up_to(self, now_us: i64) -> i64 {
        now_us.saturating_add(self.interval_us.saturating_mul(self.burst - 1))
    }

    /// Admit or refuse a request at `now_us` given the stored TAT (`None`: never used).
    pub fn decide(self, tat_us: Option<i64>, now_us: i64) -> RateDecision {
        let start = tat_us.map_or(now_us, |t| t.max(now_us));
        let limit = self.admits_up_to(now_us);
        if start <= limit {
            RateDecision::Admit {
                tat_us: start.saturating_add(self.interval_us),
            }
        } else {
            let wait = u64::try_from(start - limit).unwrap_or(u64::MAX);
            RateDecision::Refuse {
                retry_after: Duration::from_micros(wait),
            }
        }
    }
}

/// `at` in microseconds since the epoch (the unit of a stored TAT).
pub fn micros(at: Timestamp) -> i64 {
    at.as_millis().saturating_mul(1000)
}

/// A UTC calendar day: the period of `messages_per_day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcDay(i64);

impl UtcDay {
    /// The day `at` falls in.
    pub fn of(at: Timestamp) -> Self {
        Self(at.as_millis().div_euclid(MILLIS_PER_DAY))
    }

    /// Its first instant (00:00:00.000Z).
    pub fn start(self) -> Timestamp {
        Timestamp::from_millis(self.0.saturating_mul(MILLIS_PER_DAY))
    }

    /// The first instant of the next day.
    pub fn end(self) -> Timestamp {
        Self(self.0.saturating_add(1)).start()
    }

    /// The day `n` days earlier.
    pub fn minus_days(self, n: i64) -> Self {
        Self(self.0.saturating_sub(n))
    }

    /// `YYYY-MM-DD`, the form ledgers key their counts by (sorts as the days do).
    pub fn key(self) -> String {
        let text = self.start().to_rfc3339();
        text.get(..10).unwrap_or(&text).to_owned()
    }
}

impl std::fmt::Display for UtcDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// Time from `now` to the next UTC midnight, when a full day admits again.
pub fn until_next_day(now: Timestamp) -> Duration {
    let ms = UtcDay::of(now).end().millis_since(now);
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Whether a day with `counted` messages has room for one more under `limit`.
pub fn day_has_room(counted: u64, limit: u32) -> bool {
    counted < u64::from(limit)
}

/// Why intake refused a request for its tenant's quota (a 429 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// More requests than `requests_per_second` with `burst` allow.
    RateLimited {
        /// The tenant's rate.
        requests_per_second: u32,
        /// The tenant's burst.
        burst: u32,
        /// When a request is admitted again.
        retry_after: Duration,
    },
    /// The tenant accepted `messages_per_day` new messages today (UTC).
    DailyQuotaExceeded {
        /// The tenant's daily cap.
        messages_per_day: u32,
        /// Time to the next UTC midnight.
        retry_after: Duration,
    },
}

impl QuotaRefusal {
    /// The stable error code: `rate_limited` or `daily_quota_exceeded`.
    pub fn code(&self) -> &'static str {
        match self {
            QuotaRefusal::RateLimited { .. } => "rate_limited",
            QuotaRefusal::DailyQuotaExceeded { .. } => "daily_quota_exceeded",
        }
    }

    /// How long the caller should wait.
    pub fn retry_after(&self) -> Duration {
        match self {
            QuotaRefusal::RateLimited { retry_after, .. }
            | QuotaRefusal::DailyQuotaExceeded { retry_after, .. } => *retry_after,
        }
    }

    /// `Retry-After` in whole seconds: rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after();
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl std::fmt::Display for QuotaRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuotaRefusal::RateLimited {
                requests_per_second,
                burst,
                ..
            } => write!(
                f,
                "over the tenant's intake rate of {requests_per_second} requests/s (burst {burst}); retry after {} s",
                self.retry_after_secs()
            ),
            QuotaRefusal::DailyQuotaExceeded {
                messages_per_day, ..
            } => write!(
                f,
                "the tenant's {messages_per_day} messages of today (UTC) are used; retry after {} s",
                self.retry_after_secs()
            ),
        }
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
