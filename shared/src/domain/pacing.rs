//! Send pacing rules (docs/pacing.md): how often one business phone number may send
//! (Meta's throughput, 130429) and how often it may send to one recipient (Meta's
//! pair rate limit, 131056).
//!
//! Pure rules only. A key's state ([`PaceState`]) lives in a
//! [`PacingLedger`](crate::ports::PacingLedger) that every sender instance shares,
//! which applies these rules inside its one atomic step, so any number of concurrent
//! senders together keep to them.
//!
//! A [`PaceRule`] allows one send per `interval` on average, and a *burst* of up to
//! `burst` sends that starts when the key is rested and must go within `window` of its
//! first send. A burst is borrowed from future quota, as Meta documents for the pair
//! rate ("bursts of up to 45 in 6 s, borrowed: a burst of 20 means a two-minute
//! wait"): after a burst of `n` the key is rested again `n × interval` after the burst
//! began, and not before. With `burst = 1` the rule is plain even spacing (a number's
//! throughput).
//!
//! Two margins keep the pacer on the safe side of Meta's own clock, which sees a send
//! some milliseconds after its slot: `guard` is added to every rest and taken off every
//! burst window. A key can also be *slowed* until a given time (after a 130429): its
//! interval is then `slowed_interval`.
//!
//! All times are microseconds since the Unix epoch.

use super::ids::{PhoneNumber, PhoneNumberId};
use super::time::Timestamp;
use std::time::Duration;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// What a pacing schedule belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PaceKey {
    /// A business phone number's throughput (Meta's 130429).
    Number(PhoneNumberId),
    /// One business phone number to one recipient (Meta's pair rate limit, 131056).
    Pair(PhoneNumberId, PhoneNumber),
}

impl PaceKey {
    /// The key as the ledgers store it: `number#{phone_number_id}` or
    /// `pair#{phone_number_id}#{recipient}`.
    pub fn storage_key(&self) -> String {
        match self {
            PaceKey::Number(number) => format!("number#{}", number.as_str()),
            PaceKey::Pair(number, to) => format!("pair#{}#{}", number.as_str(), to.as_str()),
        }
    }
}

/// A key's stored schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceState {
    /// When the key is rested again: a send at or after it starts a new burst.
    pub rested_at_us: i64,
    /// The first slot of the current burst.
    pub burst_start_us: i64,
    /// Sends in the current burst (the rule's `burst` once it is full or held).
    pub burst_sends: u32,
    /// Until when the key runs at its slowed interval, if it was ever slowed.
    pub slow_until_us: Option<i64>,
}

impl PaceState {
    /// From this time on the state means no more than an absent one (rested, not
    /// slowed), so a ledger may forget it.
    pub fn idle_from_us(&self) -> i64 {
        self.rested_at_us
            .max(self.slow_until_us.unwrap_or(i64::MIN))
    }

    fn slowed_at(&self, now_us: i64) -> bool {
        self.slow_until_us.is_some_and(|until| until > now_us)
    }
}

/// What a rule says about one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceDecision {
    /// The send takes `slot_us` (now or within the horizon); store `next`.
    Reserve {
        /// When the send may go.
        slot_us: i64,
        /// The key's state after the reservation.
        next: PaceState,
    },
    /// The first free slot, `ready_us`, lies beyond the horizon: nothing is reserved.
    Defer {
        /// The first free slot.
        ready_us: i64,
    },
}

/// How a reservation changes a key, for ledgers that write it without reading it
/// first (DynamoDB's conditional updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceStep {
    /// The key is absent or rested: a new burst starts now.
    StartNow,
    /// A one-send rule on a busy key: the send takes the time the key is rested at,
    /// which moves forward by [`PaceRule::step_us`].
    NextInLine,
    /// Anything else: write the decided state if the key is still as it was read.
    Swap,
}

/// A pacing rule, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceRule {
    interval_us: i64,
    slowed_interval_us: i64,
    burst: u32,
    join_window_us: i64,
    guard_us: i64,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl PaceRule {
    /// Even spacing at `per_second` sends a second (at least 1; the interval is
    /// rounded up to a whole microsecond, so the rate is never exceeded), divided by
    /// `slowdown_divisor` while the key is slowed.
    pub fn per_second(per_second: u32, slowdown_divisor: u32) -> Self {
        let per_second = i64::from(per_second.max(1));
        let interval_us = (MICROS_PER_SECOND + per_second - 1) / per_second;
        Self {
            interval_us,
            slowed_interval_us: interval_us.saturating_mul(i64::from(slowdown_divisor.max(1))),
            burst: 1,
            join_window_us: 0,
            guard_us: 0,
        }
    }

    /// One send per `interval` on average, bursts of up to `burst` within `window` of
    /// their first send, borrowed from future quota; `guard` is added to every rest
    /// and taken off every window. Never slowed.
    pub fn bursts(interval: Duration, burst: u32, window: Duration, guard: Duration) -> Self {
        let interval_us = micros(interval).max(1);
        let guard_us = micros(guard);
        Self {
            interval_us,
            slowed_interval_us: interval_us,
            burst: burst.max(1),
            join_window_us: micros(window).saturating_sub(guard_us).max(0),
            guard_us,
        }
    }

    /// Sends a burst may hold.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The interval between sends, slowed or not.
    pub fn interval_us(&self, slowed: bool) -> i64 {
        if slowed {
            self.slowed_interval_us
        } else {
            self.interval_us
        }
    }

    /// How far a new burst of one send moves the key's rest: its interval and guard.
    pub fn step_us(&self, slowed: bool) -> i64 {
        self.interval_us(slowed).saturating_add(self.guard_us)
    }

    /// The state a burst starting at `slot_us` leaves.
    fn burst_at(&self, slot_us: i64, slowed: bool, slow_until_us: Option<i64>) -> PaceState {
        PaceState {
            rested_at_us: slot_us.saturating_add(self.step_us(slowed)),
            burst_start_us: slot_us,
            burst_sends: 1,
            slow_until_us,
        }
    }

    /// Reserve a slot at or after `now_us` for one send of a key in `state` (`None`:
    /// never seen, or forgotten). A slot more than `horizon_us` away is not reserved.
    pub fn reserve(&self, state: Option<&PaceState>, now_us: i64, horizon_us: i64) -> PaceDecision {
        let (slot_us, next) = match state {
            None => (now_us, self.burst_at(now_us, false, None)),
            Some(s) => {
                let slowed = s.slowed_at(now_us);
                if s.rested_at_us <= now_us {
                    (now_us, self.burst_at(now_us, slowed, s.slow_until_us))
                } else {
                    let joining_at = now_us.max(s.burst_start_us);
                    let window_end = s.burst_start_us.saturating_add(self.join_window_us);
                    if s.burst_sends < self.burst && joining_at < window_end {
                        let next = PaceState {
                            rested_at_us: s.rested_at_us.saturating_add(self.interval_us(slowed)),
                            burst_sends: s.burst_sends + 1,
                            ..*s
                        };
                        (joining_at, next)
                    } else {
                        let slot_us = s.rested_at_us;
                        (slot_us, self.burst_at(slot_us, slowed, s.slow_until_us))
                    }
                }
            }
        };
        if slot_us.saturating_sub(now_us) > horizon_us {
            PaceDecision::Defer { ready_us: slot_us }
        } else {
            PaceDecision::Reserve { slot_us, next }
        }
    }

    /// Which write a reservation of a key found in `state` is (see [`PaceStep`]).
    pub fn step_kind(&self, state: Option<&PaceState>, now_us: i64) -> PaceStep {
        match state {
            None => PaceStep::StartNow,
            Some(s) if s.rested_at_us <= now_us => PaceStep::StartNow,
            Some(_) if self.burst == 1 => PaceStep::NextInLine,
            Some(_) => PaceStep::Swap,
        }
    }

    /// Meta throttled the key: no slot before `until_us`, no more sends joining the
    /// current burst, and (with `slow_until_us`) the slowed interval until then. A hold
    /// never moves a key backwards; `None` when it changes nothing.
    pub fn hold(
        &self,
        state: Option<&PaceState>,
        until_us: i64,
        slow_until_us: Option<i64>,
    ) -> Option<PaceState> {
        let next = match state {
            None => PaceState {
                rested_at_us: until_us,
                burst_start_us: until_us,
                burst_sends: self.burst,
                slow_until_us,
            },
            Some(s) => PaceState {
                rested_at_us: s.rested_at_us.max(until_us),
                burst_sends: self.burst,
                slow_until_us: match (s.slow_until_us, slow_until_us) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                ..*s
            },
        };
        (state != Some(&next)).then_some(next)
    }
}

/// `t` in microseconds since the epoch.
pub fn micros_of(t: Timestamp) -> i64 {
    t.as_millis().saturating_mul(1_000)
}

/// The first whole millisecond at or after `us` (a slot is never rounded earlier).
pub fn timestamp_at_or_after(us: i64) -> Timestamp {
    Timestamp::from_millis(us.div_euclid(1_000) + i64::from(us.rem_euclid(1_000) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = 1_000_000;
    const T0: i64 = 1_780_481_730_000_000;

    /// Meta's pair rate without margins: 6 s, bursts of 45 within 6 s.
    fn meta_pair() -> PaceRule {
        PaceRule::bursts(
            Duration::from_secs(6),
            45,
            Duration::from_secs(6),
            Duration::ZERO,
        )
    }

    fn slot(d: PaceDecision) -> i64 {
        match d {
            PaceDecision::Reserve { slot_us, .. } => slot_us,
            PaceDecision::Defer { ready_us } => panic!("deferred to {ready_us}"),
        }
    }

    /// Reserve at `now` with an unlimited horizon, updating `state`; the slot.
    fn take(rule: &PaceRule, state: &mut Option<PaceState>, now: i64) -> i64 {
        match rule.reserve(state.as_ref(), now, i64::MAX) {
            PaceDecision::Reserve { slot_us, next } => {
                *state = Some(next);
                slot_us
            }
            PaceDecision::Defer { .. } => unreachable!("no horizon"),
        }
    }

    #[test]
    fn keys_name_the_number_and_the_recipient() {
        let number = PhoneNumberId::parse("106540352242922").unwrap();
        let to = PhoneNumber::parse("+14155550123").unwrap();
        assert_eq!(
            PaceKey::Number(number.clone()).storage_key(),
            "number#106540352242922"
        );
        assert_eq!(
            PaceKey::Pair(number, to).storage_key(),
            "pair#106540352242922#+14155550123"
        );
    }

    #[test]
    fn a_number_sends_evenly_spaced_at_its_rate() {
        let rule = PaceRule::per_second(80, 4);
        let mut state = None;
        let slots: Vec<i64> = (0..4).map(|_| take(&rule, &mut state, T0)).collect();
        assert_eq!(slots, [T0, T0 + 12_500, T0 + 25_000, T0 + 37_500]);
        // Idle since: the next send goes at once.
        assert_eq!(take(&rule, &mut state, T0 + S), T0 + S);
    }

    #[test]
    fn a_rested_pair_bursts_45_then_repays_the_borrowed_time() {
        let rule = meta_pair();
        let mut state = None;
        for _ in 0..45 {
            assert_eq!(take(&rule, &mut state, T0), T0);
        }
        // Meta's example: a burst of n means n × 6 s before the next send.
        assert_eq!(take(&rule, &mut state, T0 + S), T0 + 270 * S);
    }

    #[test]
    fn a_burst_of_20_means_a_two_minute_wait() {
        let rule = meta_pair();
        let mut state = None;
        for _ in 0..20 {
            take(&rule, &mut state, T0);
        }
        // The window has closed: no joining, the next send waits until rested.
        assert_eq!(take(&rule, &mut state, T0 + 7 * S), T0 + 120 * S);
    }

    #[test]
    fn a_steady_sender_keeps_one_send_per_interval() {
        let rule = meta_pair();
        let mut state = None;
        for i in 0..5 {
            assert_eq!(take(&rule, &mut state, T0 + i * 6 * S), T0 + i * 6 * S);
        }
        // Faster than the average joins the burst within its window, then waits.
        let mut state = None;
        assert_eq!(take(&rule, &mut state, T0), T0);
        assert_eq!(take(&rule, &mut state, T0 + 5 * S), T0 + 5 * S);
        assert_eq!(take(&rule, &mut state, T0 + 10 * S), T0 + 12 * S);
    }

    #[test]
    fn the_guard_shortens_the_window_and_lengthens_the_rest() {
        let rule = PaceRule::bursts(
            Duration::from_secs(6),
            45,
            Duration::from_secs(6),
            Duration::from_millis(500),
        );
        let mut state = None;
        take(&rule, &mut state, T0);
        // 5.6 s after the burst began is outside the guarded window.
        assert_eq!(
            take(&rule, &mut state, T0 + 5_600_000),
            T0 + 6 * S + 500_000
        );
    }

    #[test]
    fn a_slot_beyond_the_horizon_is_deferred_and_reserves_nothing() {
        let rule = PaceRule::per_second(1, 1);
        let state = PaceState {
            rested_at_us: T0 + 3 * S,
            burst_start_us: T0 + 2 * S,
            burst_sends: 1,
            slow_until_us: None,
        };
        assert_eq!(
            rule.reserve(Some(&state), T0, 2 * S),
            PaceDecision::Defer {
                ready_us: T0 + 3 * S
            }
        );
        assert!(matches!(
            rule.reserve(Some(&state), T0, 3 * S),
            PaceDecision::Reserve { slot_us, .. } if slot_us == T0 + 3 * S
        ));
    }

    #[test]
    fn a_hold_pauses_then_a_slowed_number_runs_at_its_slowed_rate() {
        let rule = PaceRule::per_second(100, 4);
        let mut state = None;
        take(&rule, &mut state, T0);
        state = rule.hold(state.as_ref(), T0 + S, Some(T0 + 60 * S));
        assert_eq!(take(&rule, &mut state, T0), T0 + S);
        assert_eq!(take(&rule, &mut state, T0), T0 + S + 40_000);
        // After the slowdown: the normal interval again.
        assert_eq!(take(&rule, &mut state, T0 + 61 * S), T0 + 61 * S);
        assert_eq!(take(&rule, &mut state, T0 + 61 * S), T0 + 61 * S + 10_000);
    }

    #[test]
    fn a_hold_ends_the_burst_and_never_moves_a_key_backwards() {
        let rule = meta_pair();
        let mut state = None;
        take(&rule, &mut state, T0);
        // The burst could take 44 more; the hold (shorter than the rest) ends it.
        state = rule.hold(state.as_ref(), T0 + 2 * S, None);
        assert_eq!(take(&rule, &mut state, T0 + S), T0 + 6 * S);
        let held = rule.hold(state.as_ref(), T0 + 30 * S, None);
        assert_eq!(
            rule.hold(held.as_ref(), T0, None),
            None,
            "nothing to change"
        );
        assert_eq!(
            held.map(|s| s.rested_at_us),
            Some(T0 + 30 * S),
            "an earlier hold does not undo a later one"
        );
    }

    #[test]
    fn the_step_kind_names_the_write() {
        let number = PaceRule::per_second(80, 4);
        let busy = PaceState {
            rested_at_us: T0 + 1,
            burst_start_us: T0,
            burst_sends: 1,
            slow_until_us: None,
        };
        assert_eq!(number.step_kind(None, T0), PaceStep::StartNow);
        assert_eq!(number.step_kind(Some(&busy), T0), PaceStep::NextInLine);
        assert_eq!(number.step_kind(Some(&busy), T0 + 1), PaceStep::StartNow);
        assert_eq!(meta_pair().step_kind(Some(&busy), T0), PaceStep::Swap);
    }

    #[test]
    fn slots_round_up_to_whole_milliseconds() {
        assert_eq!(timestamp_at_or_after(12_000), Timestamp::from_millis(12));
        assert_eq!(timestamp_at_or_after(12_001), Timestamp::from_millis(13));
        assert_eq!(micros_of(Timestamp::from_millis(12)), 12_000);
    }

    /// Meta's pair rule as a checker of actual send times (what the sandbox enforces).
    fn meta_admits(sends: &[i64], interval: i64, burst: u32) -> bool {
        let (mut rested, mut start, mut count) = (i64::MIN, i64::MIN, 0u32);
        for &t in sends {
            if t >= rested {
                (rested, start, count) = (t + interval, t, 1);
            } else if t < start + interval && count < burst {
                rested += interval;
                count += 1;
            } else {
                return false;
            }
        }
        true
    }

    proptest! {
        /// Whatever the arrivals, the slots a pair rule hands out are sends Meta's rule
        /// admits, even when each reaches Meta up to the guard late.
        #[test]
        fn pair_slots_keep_to_metas_rule(
            gaps in prop::collection::vec(0i64..8_000_000, 1..120),
            lateness in prop::collection::vec(0i64..500_000, 120),
        ) {
            let rule = PaceRule::bursts(
                Duration::from_secs(6), 45, Duration::from_secs(6), Duration::from_millis(500));
            let mut state = None;
            let mut now = T0;
            let mut sends = Vec::new();
            for (i, gap) in gaps.iter().enumerate() {
                now += gap;
                let slot = take(&rule, &mut state, now);
                prop_assert!(slot >= now);
                sends.push(slot + lateness[i]);
            }
            // Late arrivals can reorder sends of one burst; Meta sees them in order.
            sends.sort_unstable();
            prop_assert!(meta_admits(&sends, 6 * S, 45), "{sends:?}");
        }

        /// A number's slots are never closer than its interval.
        #[test]
        fn number_slots_are_spaced_by_the_interval(
            gaps in prop::collection::vec(0i64..30_000, 1..200),
        ) {
            let rule = PaceRule::per_second(80, 4);
            let mut state = None;
            let mut now = T0;
            let mut last: Option<i64> = None;
            for gap in gaps {
                now += gap;
                let slot = take(&rule, &mut state, now);
                if let Some(last) = last {
                    prop_assert!(slot - last >= 12_500);
                }
                last = Some(slot);
            }
        }
    }

    #[test]
    fn deferred_reservations_leave_the_state_as_it_was() {
        let rule = meta_pair();
        let mut state = None;
        for _ in 0..45 {
            take(&rule, &mut state, T0);
        }
        let d = rule.reserve(state.as_ref(), T0, 2 * S);
        assert_eq!(
            d,
            PaceDecision::Defer {
                ready_us: T0 + 270 * S
            }
        );
        assert_eq!(
            slot(rule.reserve(state.as_ref(), T0 + 270 * S, 0)),
            T0 + 270 * S
        );
    }
}
