//! Meta's sending limits (reference §5): throughput per phone number (130429), the
//! pair rate per (number, recipient) (131056), and the 24-hour customer service
//! window per (number, recipient) opened by inbound messages.
//!
//! Both rates are token buckets: a bucket of `capacity` tokens refilled at `rate` per
//! second; a send takes one token or is refused. The pair rate's bucket holds 45
//! tokens refilled one per 6 s: Meta's "bursts of 45 borrowed from future quota".
//! Inbound messages do not take throughput tokens here (Meta counts them; a sandbox
//! that throttled its own simulated inbound would only confuse tests).

use super::config::LimitsConfig;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A token bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    rate_per_sec: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, rate_per_sec: f64, now: Instant) -> Self {
        Self {
            capacity,
            rate_per_sec,
            tokens: capacity,
            updated: now,
        }
    }

    /// Take one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.capacity);
        self.updated = now;
        // The epsilon absorbs rounding: 6 s at 1/6 per second must make a whole token.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }
}

/// Why a send is refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// 130429.
    Throughput,
    /// 131056.
    PairRate,
}

/// All limit state of one sandbox.
#[derive(Debug)]
pub struct Limits {
    config: LimitsConfig,
    throughput: HashMap<String, TokenBucket>,
    pairs: HashMap<(String, String), TokenBucket>,
    windows: HashMap<(String, String), Instant>,
}

impl Limits {
    /// Empty state under `config`.
    pub fn new(config: LimitsConfig) -> Self {
        Self {
            config,
            throughput: HashMap::new(),
            pairs: HashMap::new(),
            windows: HashMap::new(),
        }
    }

    /// Take a throughput token of `phone_number_id` (rate `mps`), then a pair token of
    /// `(phone_number_id, recipient)`. A throughput refusal takes no pair token.
    pub fn admit(
        &mut self,
        phone_number_id: &str,
        mps: f64,
        recipient: &str,
        now: Instant,
    ) -> Result<(), LimitHit> {
        let c = &self.config;
        if c.throughput_enabled {
            let burst = (mps * c.throughput_burst_seconds).max(1.0);
            let bucket = self
                .throughput
                .entry(phone_number_id.to_owned())
                .or_insert_with(|| TokenBucket::new(burst, mps, now));
            if !bucket.try_take(now) {
                return Err(LimitHit::Throughput);
            }
        }
        if c.pair_rate_enabled {
            let rate = 1000.0 / c.pair_rate_interval_ms as f64;
            let burst = f64::from(c.pair_rate_burst);
            let bucket = self
                .pairs
                .entry((phone_number_id.to_owned(), recipient.to_owned()))
                .or_insert_with(|| TokenBucket::new(burst, rate, now));
            if !bucket.try_take(now) {
                return Err(LimitHit::PairRate);
            }
        }
        Ok(())
    }

    /// Record an inbound message from `recipient`: the window opens (or restarts).
    pub fn open_window(&mut self, phone_number_id: &str, recipient: &str, now: Instant) {
        self.windows
            .insert((phone_number_id.to_owned(), recipient.to_owned()), now);
    }

    /// Whether free-form messages to `recipient` are allowed now.
    pub fn window_open(&self, phone_number_id: &str, recipient: &str, now: Instant) -> bool {
        let length = Duration::from_secs(self.config.window_seconds);
        self.windows
            .get(&(phone_number_id.to_owned(), recipient.to_owned()))
            .is_some_and(|opened| now.saturating_duration_since(*opened) < length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_capacity_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3.0, 2.0, t0);
        assert!((0..3).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(400)));
        assert!(b.try_take(t0 + Duration::from_millis(500)));
    }

    #[test]
    fn the_pair_rate_allows_a_burst_of_45_then_one_per_6_seconds() {
        let t0 = Instant::now();
        let mut l = Limits::new(LimitsConfig {
            throughput_enabled: false,
            ..LimitsConfig::default()
        });
        assert!((0..45).all(|_| l.admit("1", 80.0, "a", t0).is_ok()));
        assert_eq!(l.admit("1", 80.0, "a", t0), Err(LimitHit::PairRate));
        assert!(
            l.admit("1", 80.0, "b", t0).is_ok(),
            "other recipients are not affected"
        );
        assert_eq!(
            l.admit("1", 80.0, "a", t0 + Duration::from_secs(5)),
            Err(LimitHit::PairRate)
        );
        assert!(l.admit("1", 80.0, "a", t0 + Duration::from_secs(6)).is_ok());
    }

    #[test]
    fn the_window_closes_after_its_length() {
        let t0 = Instant::now();
        let mut l = Limits::new(LimitsConfig {
            window_seconds: 10,
            ..LimitsConfig::default()
        });
        assert!(!l.window_open("1", "a", t0));
        l.open_window("1", "a", t0);
        assert!(l.window_open("1", "a", t0 + Duration::from_secs(9)));
        assert!(!l.window_open("1", "a", t0 + Duration::from_secs(10)));
        assert!(!l.window_open("2", "a", t0), "windows are per phone number");
    }
}
