//! The `QuotaLedger` conformance suite: one set of cases run against every adapter
//! (DESIGN §2 invariant). Use [`quota_conformance_tests!`](crate::quota_conformance_tests)
//! to turn it into one `#[tokio::test]` per case for an adapter.
//!
//! Each case gets a ledger no other case uses (a fresh SQLite file, a fresh DynamoDB
//! table). The rate cases compare every answer with the domain's rule
//! ([`wa_shared::domain::quota::RequestRate`]), so an adapter that stores the bucket
//! differently (DynamoDB's two conditional writes) is held to the same decisions.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use wa_shared::domain::quota::{IntakeQuota, RateDecision, UtcDay, micros};
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::ports::{Admission, QuotaError, QuotaLedger};

/// What the suite needs from an adapter under test.
pub trait QuotaHarness: Send + Sync {
    /// The adapter under test, on a ledger no other case uses.
    fn ledger(&self) -> Arc<dyn QuotaLedger>;
}

/// 2026-06-03T10:15:30Z.
const T0: Timestamp = Timestamp::from_millis(1_780_481_730_000);

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn quota(requests_per_second: u32, burst: u32) -> IntakeQuota {
    IntakeQuota {
        requests_per_second,
        burst,
        messages_per_day: None,
    }
}

/// The domain rule's answer as the port states it, given the TAT it leaves.
fn expected(q: &IntakeQuota, tat: &mut Option<i64>, now: Timestamp) -> Admission {
    match q.rate().decide(*tat, micros(now)) {
        RateDecision::Admit { tat_us } => {
            *tat = Some(tat_us);
            Admission::Admitted
        }
        RateDecision::Refuse { retry_after } => Admission::Refused { retry_after },
    }
}

/// A quiet tenant gets its burst at once, then waits one interval, told exactly how long.
pub async fn a_quiet_tenant_gets_its_burst_then_one_per_interval(h: &dyn QuotaHarness) {
    let (l, acme, q) = (h.ledger(), tenant("acme"), quota(10, 3));
    for _ in 0..3 {
        assert_eq!(
            l.take_request(&acme, &q, T0).await.unwrap(),
            Admission::Admitted
        );
    }
    assert_eq!(
        l.take_request(&acme, &q, T0).await.unwrap(),
        Admission::Refused {
            retry_after: Duration::from_millis(100)
        }
    );
    assert_eq!(
        l.take_request(&acme, &q, T0.plus_millis(99)).await.unwrap(),
        Admission::Refused {
            retry_after: Duration::from_millis(1)
        }
    );
    assert_eq!(
        l.take_request(&acme, &q, T0.plus_millis(100))
            .await
            .unwrap(),
        Admission::Admitted
    );
    // A quiet spell of a burst's worth of intervals refills the whole burst.
    let later = T0.plus_millis(400);
    for _ in 0..3 {
        assert_eq!(
            l.take_request(&acme, &q, later).await.unwrap(),
            Admission::Admitted
        );
    }
    assert!(matches!(
        l.take_request(&acme, &q, later).await.unwrap(),
        Admission::Refused { .. }
    ));
}

/// Over an irregular run of arrivals, busy and idle, with the quota lowered and raised
/// on the way, every answer is the domain rule's.
pub async fn every_answer_is_the_domain_rules(h: &dyn QuotaHarness) {
    let (l, acme) = (h.ledger(), tenant("acme"));
    let quotas = [quota(20, 5), quota(5, 2), quota(50, 10)];
    let mut tat = None;
    let mut now = T0;
    // A fixed pseudo-random walk of gaps: bursts (0 ms), steady (50 ms) and pauses.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..90 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let gap = [0, 0, 0, 10, 50, 120, 700][(seed % 7) as usize];
        now = now.plus_millis(gap);
        let q = quotas[i / 30];
        let want = expected(&q, &mut tat, now);
        let got = l.take_request(&acme, &q, now).await.unwrap();
        assert_eq!(got, want, "arrival {i} at +{} ms", now.millis_since(T0));
    }
}

/// One tenant's full bucket and full day do not touch another's.
pub async fn tenants_have_their_own_buckets_and_days(h: &dyn QuotaHarness) {
    let (l, a, b) = (h.ledger(), tenant("acme"), tenant("beta"));
    let q = quota(1, 2);
    for _ in 0..2 {
        l.take_request(&a, &q, T0).await.unwrap();
    }
    assert!(matches!(
        l.take_request(&a, &q, T0).await.unwrap(),
        Admission::Refused { .. }
    ));
    assert_eq!(
        l.take_request(&b, &q, T0).await.unwrap(),
        Admission::Admitted
    );
    let day = UtcDay::of(T0);
    assert!(l.reserve_message(&a, day, 1).await.unwrap());
    assert!(!l.reserve_message(&a, day, 1).await.unwrap());
    assert!(l.reserve_message(&b, day, 1).await.unwrap());
    assert_eq!(l.messages_counted(&a, day).await.unwrap(), 1);
    assert_eq!(l.messages_counted(&b, day).await.unwrap(), 1);
}

/// A day counts up to its limit and refuses the next; the next day starts at zero.
pub async fn a_day_counts_up_to_its_limit_and_the_next_starts_at_zero(h: &dyn QuotaHarness) {
    let (l, acme) = (h.ledger(), tenant("acme"));
    let today = UtcDay::of(T0);
    assert_eq!(l.messages_counted(&acme, today).await.unwrap(), 0);
    for _ in 0..3 {
        assert!(l.reserve_message(&acme, today, 3).await.unwrap());
    }
    assert!(!l.reserve_message(&acme, today, 3).await.unwrap());
    assert_eq!(l.messages_counted(&acme, today).await.unwrap(), 3);
    // A raised limit makes room at once.
    assert!(l.reserve_message(&acme, today, 4).await.unwrap());
    let tomorrow = UtcDay::of(today.end());
    assert_eq!(l.messages_counted(&acme, tomorrow).await.unwrap(), 0);
    assert!(l.reserve_message(&acme, tomorrow, 4).await.unwrap());
    assert_eq!(l.messages_counted(&acme, tomorrow).await.unwrap(), 1);
    assert_eq!(l.messages_counted(&acme, today).await.unwrap(), 4);
}

/// A message given back makes room again; giving back on an empty day changes nothing.
pub async fn a_message_given_back_makes_room(h: &dyn QuotaHarness) {
    let (l, acme) = (h.ledger(), tenant("acme"));
    let day = UtcDay::of(T0);
    assert!(l.reserve_message(&acme, day, 2).await.unwrap());
    assert!(l.reserve_message(&acme, day, 2).await.unwrap());
    l.release_message(&acme, day).await.unwrap();
    assert_eq!(l.messages_counted(&acme, day).await.unwrap(), 1);
    assert!(l.reserve_message(&acme, day, 2).await.unwrap());
    let empty = day.minus_days(1);
    l.release_message(&acme, empty).await.unwrap();
    assert_eq!(l.messages_counted(&acme, empty).await.unwrap(), 0);
    assert!(l.reserve_message(&acme, empty, 1).await.unwrap());
}

/// Concurrent intake instances never take more than the burst, nor count past the
/// day's limit.
pub async fn concurrent_callers_never_exceed_the_burst_or_the_day(h: &dyn QuotaHarness) {
    let acme = tenant("acme");
    let q = quota(1, 5);
    let takes: Vec<_> = (0..24)
        .map(|_| {
            let (l, acme) = (h.ledger(), acme.clone());
            tokio::spawn(async move { l.take_request(&acme, &q, T0).await })
        })
        .collect();
    let mut admitted = 0;
    for task in takes {
        if task.await.unwrap().unwrap() == Admission::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5);
    let day = UtcDay::of(T0);
    let reserves: Vec<_> = (0..24)
        .map(|_| {
            let (l, acme) = (h.ledger(), acme.clone());
            tokio::spawn(async move { l.reserve_message(&acme, day, 7).await })
        })
        .collect();
    let mut counted = 0;
    for task in reserves {
        if task.await.unwrap().unwrap() {
            counted += 1;
        }
    }
    assert_eq!(counted, 7);
    assert_eq!(h.ledger().messages_counted(&acme, day).await.unwrap(), 7);
}

/// A ledger whose calls run one at a time, for moto: moto checks a condition and
/// writes an item without a lock, so concurrent conditional writes can both succeed
/// (DynamoDB applies each write to an item atomically). The concurrency case then
/// tests the adapter's logic, not moto's races; real parallel writers run on SQLite.
#[derive(Debug)]
pub struct OneQuotaCallAtATime<L> {
    inner: L,
    calling: tokio::sync::Mutex<()>,
}

impl<L> OneQuotaCallAtATime<L> {
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
impl<L: QuotaLedger> QuotaLedger for OneQuotaCallAtATime<L> {
    async fn take_request(
        &self,
        tenant: &TenantId,
        quota: &IntakeQuota,
        now: Timestamp,
    ) -> Result<Admission, QuotaError> {
        let _one = self.calling.lock().await;
        self.inner.take_request(tenant, quota, now).await
    }

    async fn reserve_message(
        &self,
        tenant: &TenantId,
        day: UtcDay,
        limit: u32,
    ) -> Result<bool, QuotaError> {
        let _one = self.calling.lock().await;
        self.inner.reserve_message(tenant, day, limit).await
    }

    async fn release_message(&self, tenant: &TenantId, day: UtcDay) -> Result<(), QuotaError> {
        let _one = self.calling.lock().await;
        self.inner.release_message(tenant, day).await
    }

    async fn messages_counted(&self, tenant: &TenantId, day: UtcDay) -> Result<u64, QuotaError> {
        self.inner.messages_counted(tenant, day).await
    }
}

/// One `#[tokio::test]` per conformance case. `$harness` is an expression giving a
/// future of `Option<impl QuotaHarness>` (`None`: skip, e.g. moto not running).
#[macro_export]
macro_rules! quota_conformance_tests {
    ($harness:expr) => {
        $crate::quota_conformance_tests!(@cases $harness;
            a_quiet_tenant_gets_its_burst_then_one_per_interval,
            every_answer_is_the_domain_rules,
            tenants_have_their_own_buckets_and_days,
            a_day_counts_up_to_its_limit_and_the_next_starts_at_zero,
            a_message_given_back_makes_room,
            concurrent_callers_never_exceed_the_burst_or_the_day,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness.await else { return };
                $crate::quota_conformance::$case(&harness).await;
            }
        )*
    };
}
