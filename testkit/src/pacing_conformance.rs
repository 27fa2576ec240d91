//! The `PacingLedger` conformance suite: one set of cases run against every adapter
//! (DESIGN §2 invariant). Use [`pacing_conformance_tests!`](crate::pacing_conformance_tests)
//! to turn it into one `#[tokio::test]` per case for an adapter.
//!
//! Each case gets a ledger no other case uses (a fresh SQLite file, a fresh DynamoDB
//! table). Time never passes for real: every call takes an explicit instant. The
//! answers are compared with the domain's rule ([`wa_shared::domain::pacing::PaceRule`]),
//! so an adapter that stores a schedule differently (DynamoDB's guessed conditional
//! writes) is held to the same slots.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use wa_shared::domain::pacing::{
    PaceDecision, PaceKey, PaceRule, PaceState, micros_of, timestamp_at_or_after,
};
use wa_shared::domain::{PhoneNumber, PhoneNumberId, Timestamp};
use wa_shared::ports::{PacingError, PacingLedger, Reservation};

/// What the suite needs from an adapter under test.
pub trait PacingHarness: Send + Sync {
    /// The adapter under test, on a ledger no other case uses.
    fn ledger(&self) -> Arc<dyn PacingLedger>;
}

/// 2026-06-03T10:15:30Z.
const T0: Timestamp = Timestamp::from_millis(1_780_481_730_000);
const HOUR: Duration = Duration::from_secs(3600);

fn number(id: &str) -> PhoneNumberId {
    PhoneNumberId::parse(id).unwrap()
}

fn pair(id: &str, to: &str) -> PaceKey {
    PaceKey::Pair(number(id), PhoneNumber::parse(to).unwrap())
}

/// Meta's pair rate without margins.
fn meta_pair() -> PaceRule {
    PaceRule::bursts(
        Duration::from_secs(6),
        45,
        Duration::from_secs(6),
        Duration::ZERO,
    )
}

fn at(slot: Timestamp) -> Reservation {
    Reservation::Reserved { slot }
}

fn secs(s: i64) -> Timestamp {
    T0.plus_millis(s * 1000)
}

/// The domain rule's answer as the port states it, given the state it leaves.
fn expected(
    rule: &PaceRule,
    state: &mut Option<PaceState>,
    now: Timestamp,
    horizon: Duration,
) -> Reservation {
    let horizon_us = i64::try_from(horizon.as_micros()).unwrap();
    match rule.reserve(state.as_ref(), micros_of(now), horizon_us) {
        PaceDecision::Reserve { slot_us, next } => {
            *state = Some(next);
            at(timestamp_at_or_after(slot_us))
        }
        PaceDecision::Defer { ready_us } => Reservation::Deferred {
            ready_at: timestamp_at_or_after(ready_us),
        },
    }
}

/// A rested recipient takes Meta's burst of 45 at once; the next message waits until
/// the borrowed time is repaid, and a wait beyond the horizon reserves nothing.
pub async fn a_rested_recipient_bursts_then_repays_the_borrowed_time(h: &dyn PacingHarness) {
    let (l, key, rule) = (
        h.ledger(),
        pair("106540352242922", "+14155550123"),
        meta_pair(),
    );
    for _ in 0..45 {
        assert_eq!(l.reserve(&key, &rule, T0, HOUR).await.unwrap(), at(T0));
    }
    let two_seconds = Duration::from_secs(2);
    let deferred = Reservation::Deferred {
        ready_at: secs(270),
    };
    assert_eq!(
        l.reserve(&key, &rule, secs(1), two_seconds).await.unwrap(),
        deferred
    );
    assert_eq!(
        l.reserve(&key, &rule, secs(1), two_seconds).await.unwrap(),
        deferred,
        "a deferral reserved nothing"
    );
    assert_eq!(
        l.reserve(&key, &rule, secs(269), two_seconds)
            .await
            .unwrap(),
        at(secs(270))
    );
    // Rested again after that burst of one: a burst from now.
    assert_eq!(
        l.reserve(&key, &rule, secs(277), Duration::ZERO)
            .await
            .unwrap(),
        at(secs(277))
    );
}

/// A number's sends are spaced evenly at its rate; an idle number sends at once.
pub async fn a_number_is_spaced_evenly_and_sends_at_once_when_idle(h: &dyn PacingHarness) {
    let (l, key) = (h.ledger(), PaceKey::Number(number("106540352242922")));
    let rule = PaceRule::per_second(100, 4);
    for i in 0..5 {
        assert_eq!(
            l.reserve(&key, &rule, T0, HOUR).await.unwrap(),
            at(T0.plus_millis(10 * i))
        );
    }
    assert_eq!(
        l.reserve(&key, &rule, T0, Duration::from_millis(49))
            .await
            .unwrap(),
        Reservation::Deferred {
            ready_at: T0.plus_millis(50)
        }
    );
    assert_eq!(
        l.reserve(&key, &rule, secs(1), Duration::ZERO)
            .await
            .unwrap(),
        at(secs(1))
    );
}

/// A hold pushes the key's next slot, ends its burst and, for a number, runs it slower
/// until the slowdown ends; a hold never moves a key backwards.
pub async fn a_hold_pauses_the_key_ends_its_burst_and_slows_it(h: &dyn PacingHarness) {
    let l = h.ledger();
    let (to, rule) = (pair("106540352242922", "+14155550123"), meta_pair());
    assert_eq!(l.reserve(&to, &rule, T0, HOUR).await.unwrap(), at(T0));
    l.hold(&to, &rule, secs(12), None).await.unwrap();
    l.hold(&to, &rule, secs(3), None).await.unwrap();
    assert_eq!(
        l.reserve(&to, &rule, secs(1), HOUR).await.unwrap(),
        at(secs(12)),
        "held, and not joining the burst of T0"
    );

    let (num, rule) = (
        PaceKey::Number(number("106540352242922")),
        PaceRule::per_second(100, 4),
    );
    l.hold(&num, &rule, secs(1), Some(secs(60))).await.unwrap();
    assert_eq!(l.reserve(&num, &rule, T0, HOUR).await.unwrap(), at(secs(1)));
    assert_eq!(
        l.reserve(&num, &rule, T0, HOUR).await.unwrap(),
        at(secs(1).plus_millis(40)),
        "slowed: 100/s divided by 4"
    );
    assert_eq!(
        l.reserve(&num, &rule, secs(61), HOUR).await.unwrap(),
        at(secs(61))
    );
    assert_eq!(
        l.reserve(&num, &rule, secs(61), HOUR).await.unwrap(),
        at(secs(61).plus_millis(10)),
        "the slowdown is over"
    );
}

/// A full recipient does not touch another recipient, another number or the number.
pub async fn keys_are_independent(h: &dyn PacingHarness) {
    let (l, rule) = (h.ledger(), meta_pair());
    let ana = pair("106540352242922", "+14155550123");
    for _ in 0..45 {
        l.reserve(&ana, &rule, T0, HOUR).await.unwrap();
    }
    l.hold(&ana, &rule, secs(600), None).await.unwrap();
    for other in [
        pair("106540352242922", "+14155550124"),
        pair("106540352240000", "+14155550123"),
    ] {
        assert_eq!(
            l.reserve(&other, &rule, T0, Duration::ZERO).await.unwrap(),
            at(T0)
        );
    }
    let num = PaceKey::Number(number("106540352242922"));
    let rate = PaceRule::per_second(80, 4);
    assert_eq!(
        l.reserve(&num, &rate, T0, Duration::ZERO).await.unwrap(),
        at(T0)
    );
}

/// Over an irregular run of sends to a number and two recipients, busy and idle, with
/// holds and slowdowns on the way, every answer is the domain rule's.
pub async fn every_answer_is_the_domain_rules(h: &dyn PacingHarness) {
    let l = h.ledger();
    let keys = [
        (
            PaceKey::Number(number("106540352242922")),
            PaceRule::per_second(50, 4),
        ),
        (
            pair("106540352242922", "+14155550123"),
            PaceRule::bursts(
                Duration::from_millis(100),
                5,
                Duration::from_millis(100),
                Duration::from_millis(10),
            ),
        ),
        (
            pair("106540352242922", "+14155550124"),
            PaceRule::bursts(
                Duration::from_millis(300),
                3,
                Duration::from_millis(200),
                Duration::ZERO,
            ),
        ),
    ];
    let mut states: [Option<PaceState>; 3] = [None; 3];
    let mut now = T0;
    // A fixed pseudo-random walk: which key, the gap, the horizon, now and then a hold.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..150 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let k = (seed % 3) as usize;
        now = now.plus_millis([0, 0, 0, 5, 20, 60, 150, 700][(seed >> 8) as usize % 8]);
        let horizon = Duration::from_millis([0, 30, 100, 1000][(seed >> 16) as usize % 4]);
        let (key, rule) = &keys[k];
        if (seed >> 24).is_multiple_of(13) {
            let until = now.plus_millis(((seed >> 32) % 400) as i64);
            let slow = (seed >> 40).is_multiple_of(2).then(|| now.plus_millis(500));
            l.hold(key, rule, until, slow).await.unwrap();
            if let Some(next) = rule.hold(states[k].as_ref(), micros_of(until), slow.map(micros_of))
            {
                states[k] = Some(next);
            }
            continue;
        }
        let want = expected(rule, &mut states[k], now, horizon);
        let got = l.reserve(key, rule, now, horizon).await.unwrap();
        assert_eq!(
            got,
            want,
            "send {i} on {} at +{} ms",
            key.storage_key(),
            now.millis_since(T0)
        );
    }
}

/// Concurrent senders never take one slot twice, nor more of a burst than it holds.
pub async fn concurrent_senders_never_share_a_slot(h: &dyn PacingHarness) {
    let num = PaceKey::Number(number("106540352242922"));
    let rate = PaceRule::per_second(100, 4);
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let (l, num) = (h.ledger(), num.clone());
            tokio::spawn(async move { l.reserve(&num, &rate, T0, HOUR).await })
        })
        .collect();
    let mut slots = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Reservation::Reserved { slot } => slots.push(slot.as_millis()),
            other => panic!("{other:?}"),
        }
    }
    slots.sort_unstable();
    let want: Vec<i64> = (0..24).map(|i| T0.as_millis() + 10 * i).collect();
    assert_eq!(slots, want);

    let to = pair("106540352242922", "+14155550123");
    let rule = PaceRule::bursts(
        Duration::from_secs(6),
        5,
        Duration::from_secs(6),
        Duration::ZERO,
    );
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let (l, to) = (h.ledger(), to.clone());
            tokio::spawn(async move { l.reserve(&to, &rule, T0, Duration::ZERO).await })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() == at(T0) {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 5);
}

/// A ledger whose calls run one at a time, for moto: moto checks a condition and
/// writes an item without a lock, so concurrent conditional writes can both succeed
/// (DynamoDB applies each write to an item atomically). The concurrency case then
/// tests the adapter's logic, not moto's races; real parallel writers run on SQLite.
#[derive(Debug)]
pub struct OnePacingCallAtATime<L> {
    inner: L,
    calling: tokio::sync::Mutex<()>,
}

impl<L> OnePacingCallAtATime<L> {
    /// Wrap `inner`.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            calling: tokio::sync::Mutex::new(()),
        }
    }

    /// The wrapped ledger.
    pub fn inner(&self) -> &L {
        &self.inner
    }
}

#[async_trait]
impl<L: PacingLedger> PacingLedger for OnePacingCallAtATime<L> {
    async fn reserve(
        &self,
        key: &PaceKey,
        rule: &PaceRule,
        now: Timestamp,
        horizon: Duration,
    ) -> Result<Reservation, PacingError> {
        let _one = self.calling.lock().await;
        self.inner.reserve(key, rule, now, horizon).await
    }

    async fn hold(
        &self,
        key: &PaceKey,
        rule: &PaceRule,
        until: Timestamp,
        slow_until: Option<Timestamp>,
    ) -> Result<(), PacingError> {
        let _one = self.calling.lock().await;
        self.inner.hold(key, rule, until, slow_until).await
    }
}

/// One `#[tokio::test]` per conformance case. `$harness` is an expression giving a
/// future of `Option<impl PacingHarness>` (`None`: skip, e.g. moto not running).
#[macro_export]
macro_rules! pacing_conformance_tests {
    ($harness:expr) => {
        $crate::pacing_conformance_tests!(@cases $harness;
            a_rested_recipient_bursts_then_repays_the_borrowed_time,
            a_number_is_spaced_evenly_and_sends_at_once_when_idle,
            a_hold_pauses_the_key_ends_its_burst_and_slows_it,
            keys_are_independent,
            every_answer_is_the_domain_rules,
            concurrent_senders_never_share_a_slot,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness.await else { return };
                $crate::pacing_conformance::$case(&harness).await;
            }
        )*
    };
}
