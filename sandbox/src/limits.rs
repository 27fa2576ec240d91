//! Meta's sending limits (reference §5): throughput per phone number (130429), the
//! pair rate per (number, recipient) (131056), and the 24-hour customer service
//! window per (number, recipient) opened by inbound messages.
//!
//! The throughput is a token bucket: a bucket of `capacity` tokens refilled at `rate`
//! per second; a send takes one token or is refused. The pair rate is Meta's borrowed
//! burst ([`PairBudget`]): one message per 6 s on average, and up to 45 within 6 s
//! of a burst's first message, borrowed from future quota, so after a burst of `n` the
//! recipient takes nothing until `n × 6 s` after the burst began ("a burst of 20 means
//! a two-minute wait"). A token bucket of 45 would let the 46th message through 6 s
//! later, which Meta refuses.
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

/// Meta's pair rate for one (number, recipient): one message per `interval` on
/// average; a burst of up to `burst` messages within `interval` of its first starts
/// only when the pair is rested, and is repaid before the next message.
#[derive(Debug, Clone)]
pub struct PairBudget {
    interval: Duration,
    burst: u32,
    rested_at: Instant,
    burst_start: Instant,
    burst_sends: u32,
}

impl PairBudget {
    /// A rested pair.
    pub fn new(interval: Duration, burst: u32, now: Instant) -> Self {
        Self {
            interval,
            burst,
            rested_at: now,
            burst_start: now,
            burst_sends: 0,
        }
    }

    /// Take one message if the pair is rested (a new burst) or inside a burst that
    /// has room.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if now >= self.rested_at {
            self.burst_start = now;
            self.burst_sends = 1;
            self.rested_at = now + self.interval;
            true
        } else if now < self.burst_start + self.interval && self.burst_sends < self.burst {
            self.burst_sends += 1;
            self.rested_at += self.interval;
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
    pairs: HashMap<(String, String), PairBudget>,
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
            let interval = Duration::from_millis(c.pair_rate_interval_ms);
            let burst = c.pair_rate_burst;
            let budget = self
                .pairs
                .entry((phone_number_id.to_owned(), recipient.to_owned()))
                .or_insert_with(|| PairBudget::new(interval, burst, now));
            if !budget.try_take(now) {
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

    fn pair_limits() -> Limits {
        Limits::new(LimitsConfig {
            throughput_enabled: false,
            ..LimitsConfig::default()
        })
    }

    #[test]
    fn the_pair_rate_allows_a_burst_of_45_then_waits_the_borrowed_time() {
        let t0 = Instant::now();
        let secs = |s| t0 + Duration::from_secs(s);
        let mut l = pair_limits();
        assert!((0..45).all(|_| l.admit("1", 80.0, "a", t0).is_ok()));
        assert_eq!(l.admit("1", 80.0, "a", t0), Err(LimitHit::PairRate));
        assert!(
            l.admit("1", 80.0, "b", t0).is_ok(),
            "other recipients are not affected"
        );
        // Borrowed: 45 × 6 s, not one token's 6 s.
        assert_eq!(l.admit("1", 80.0, "a", secs(6)), Err(LimitHit::PairRate));
        assert_eq!(l.admit("1", 80.0, "a", secs(269)), Err(LimitHit::PairRate));
        assert!(l.admit("1", 80.0, "a", secs(270)).is_ok());
    }

    #[test]
    fn a_burst_of_20_means_a_two_minute_wait() {
        let t0 = Instant::now();
        let secs = |s| t0 + Duration::from_secs(s);
        let mut l = pair_limits();
        assert!((0..20).all(|_| l.admit("1", 80.0, "a", t0).is_ok()));
        // The burst's 6 s are over: no more joining it.
        assert_eq!(l.admit("1", 80.0, "a", secs(7)), Err(LimitHit::PairRate));
        assert_eq!(l.admit("1", 80.0, "a", secs(119)), Err(LimitHit::PairRate));
        assert!(l.admit("1", 80.0, "a", secs(120)).is_ok());
    }

    #[test]
    fn one_message_every_6_seconds_always_passes_and_faster_does_not() {
        let t0 = Instant::now();
        let secs = |s| t0 + Duration::from_secs(s);
        let mut l = pair_limits();
        assert!((0..20).all(|i| l.admit("1", 80.0, "a", secs(6 * i)).is_ok()));
        let mut l = pair_limits();
        assert!(l.admit("1", 80.0, "a", secs(0)).is_ok());
        assert!(l.admit("1", 80.0, "a", secs(5)).is_ok(), "joins the burst");
        assert_eq!(l.admit("1", 80.0, "a", secs(10)), Err(LimitHit::PairRate));
        assert!(l.admit("1", 80.0, "a", secs(12)).is_ok());
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
