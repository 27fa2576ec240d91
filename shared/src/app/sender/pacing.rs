//! Per-phone-number pacing (DESIGN §5, "Throughput").
//!
//! Each business phone number has a Graph throughput (Meta's default 80 msg/s).
//! Sends of one number are spaced evenly at its share of that rate, so a full batch
//! never bursts past the limit, and a throttled answer slows the number down for a
//! while. On Lambda each concurrent sender of a tenant is its own process, so by
//! default each takes `throughput / max_concurrency`; a process that serves all of
//! a number's traffic (`wa dev`) takes the whole rate.

use crate::domain::PhoneNumberId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// How long a throttled number runs at a reduced rate.
pub const THROTTLE_SLOWDOWN: Duration = Duration::from_secs(60);
/// The rate is divided by this while slowed down.
pub const THROTTLE_DIVISOR: u32 = 4;
/// Pause before the next send of a number that was just throttled.
pub const THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// Which share of a number's throughput one sender process may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PacingShare {
    /// `throughput / max_concurrency`: one of the tenant's concurrent Lambda senders.
    #[default]
    PerConcurrentSender,
    /// The whole throughput: this process is the only sender of the number.
    WholeNumber,
}

#[derive(Debug, Clone, Copy)]
struct Lane {
    next_slot: Instant,
    slow_until: Option<Instant>,
}

/// Spaces sends per phone number. Cheap to clone; clones share the lanes.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    share: PacingShare,
    lanes: Arc<Mutex<HashMap<PhoneNumberId, Lane>>>,
}

impl Pacer {
    /// A pacer taking `share` of each number's throughput.
    pub fn new(share: PacingShare) -> Self {
        Self {
            share,
            lanes: Arc::default(),
        }
    }

    /// The interval between two sends of a number right now.
    fn interval(&self, throughput_mps: u32, max_concurrency: u32, slowed: bool) -> Duration {
        let divisor = match self.share {
            PacingShare::PerConcurrentSender => max_concurrency.max(1),
            PacingShare::WholeNumber => 1,
        };
        let per_sec = f64::from(throughput_mps.max(1)) / f64::from(divisor);
        let per_sec = if slowed {
            per_sec / f64::from(THROTTLE_DIVISOR)
        } else {
            per_sec
        };
        Duration::from_secs_f64(1.0 / per_sec)
    }

    /// Reserve the next send slot of `phone` and wait for it.
    pub async fn pace(&self, phone: &PhoneNumberId, throughput_mps: u32, max_concurrency: u32) {
        let slot = {
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let lane = lanes.entry(phone.clone()).or_insert(Lane {
                next_slot: now,
                slow_until: None,
            });
            let slowed = lane.slow_until.is_some_and(|until| now < until);
            let slot = lane.next_slot.max(now);
            lane.next_slot = slot + self.interval(throughput_mps, max_concurrency, slowed);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Meta said the number (or the pair) is over its rate: pause it briefly and run
    /// it slower for [`THROTTLE_SLOWDOWN`].
    pub fn throttled(&self, phone: &PhoneNumberId) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let lane = lanes.entry(phone.clone()).or_insert(Lane {
            next_slot: now,
            slow_until: None,
        });
        lane.next_slot = lane.next_slot.max(now + THROTTLE_PAUSE);
        lane.slow_until = Some(now + THROTTLE_SLOWDOWN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> PhoneNumberId {
        PhoneNumberId::parse("106540352242922").unwrap()
    }

    /// Real time: at least `expected`, and not absurdly more (a loaded machine).
    fn assert_about(elapsed: Duration, expected: Duration) {
        assert!(elapsed >= expected, "{elapsed:?} < {expected:?}");
        assert!(
            elapsed < expected + Duration::from_millis(400),
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn sends_of_one_number_are_spaced_at_its_share_of_the_rate() {
        let pacer = Pacer::new(PacingShare::PerConcurrentSender);
        let start = Instant::now();
        for _ in 0..5 {
            pacer.pace(&phone(), 80, 2).await;
        }
        // 40 msg/s: slots at 0, 25, 50, 75, 100 ms.
        assert_about(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_number_alone_in_its_process_gets_the_whole_rate_and_others_are_independent() {
        let pacer = Pacer::new(PacingShare::WholeNumber);
        let other = PhoneNumberId::parse("999").unwrap();
        let start = Instant::now();
        let a = async {
            for _ in 0..3 {
                pacer.pace(&phone(), 10, 5).await;
            }
        };
        let b = async {
            for _ in 0..3 {
                pacer.pace(&other, 10, 5).await;
            }
        };
        tokio::join!(a, b);
        // 10 msg/s each, in parallel: slots at 0, 100, 200 ms.
        assert_about(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_throttled_number_pauses_then_runs_slower() {
        let pacer = Pacer::new(PacingShare::WholeNumber);
        pacer.pace(&phone(), 100, 1).await;
        let start = Instant::now();
        pacer.throttled(&phone());
        pacer.pace(&phone(), 100, 1).await;
        assert!(start.elapsed() >= THROTTLE_PAUSE);
        pacer.pace(&phone(), 100, 1).await;
        // Then 100 / 4 = 25 msg/s while slowed: the next slot is 40 ms later.
        assert_about(start.elapsed(), THROTTLE_PAUSE + Duration::from_millis(40));
    }
}
