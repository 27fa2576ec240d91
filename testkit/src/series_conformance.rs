//! The `TrafficSeries` conformance suite: one set of cases run against every adapter
//! (DESIGN §2 invariant). Use [`series_conformance_tests!`](crate::series_conformance_tests)
//! to turn it into one `#[tokio::test]` per case for an adapter.
//!
//! Each case gets a series no other case uses (a fresh SQLite file, a fresh DynamoDB
//! table).

use std::sync::Arc;
use wa_shared::domain::series::{BUCKETS, Minute, SeriesMetric, SeriesPoint, Span};
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::ports::{SeriesError, TrafficSeries};

/// What the suite needs from an adapter under test.
pub trait SeriesHarness: Send + Sync {
    /// The adapter under test, on a series no other case uses.
    fn series(&self) -> Arc<dyn TrafficSeries>;
}

/// 2026-06-03T10:15:00Z, as a minute.
fn m0() -> Minute {
    Minute::of(Timestamp::from_millis(1_780_481_700_000))
}

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn point(t: &str, minute: Minute, metric: SeriesMetric, count: u64) -> SeriesPoint {
    SeriesPoint {
        tenant: tenant(t),
        minute,
        metric,
        count,
    }
}

/// Counts add up per (tenant, minute, metric), within a batch and across calls, and
/// come back ordered by minute then key.
pub async fn counts_add_up_per_tenant_minute_and_metric(h: &dyn SeriesHarness) {
    let s = h.series();
    let failed = SeriesMetric::Failed("recipient".into());
    s.record(&[
        point("acme", m0(), SeriesMetric::Accepted, 1),
        point("acme", m0(), SeriesMetric::Accepted, 2),
        point("acme", m0().plus(1), failed.clone(), 1),
        point("globex", m0(), SeriesMetric::Accepted, 7),
    ])
    .await
    .unwrap();
    s.record(&[point("acme", m0(), SeriesMetric::Accepted, 4)])
        .await
        .unwrap();
    let got = s
        .read(&tenant("acme"), m0(), m0().plus(2), 1)
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            point("acme", m0(), SeriesMetric::Accepted, 7),
            point("acme", m0().plus(1), failed, 1),
        ]
    );
    let globex = s
        .read(&tenant("globex"), m0(), m0().plus(1), 1)
        .await
        .unwrap();
    assert_eq!(
        globex,
        vec![point("globex", m0(), SeriesMetric::Accepted, 7)]
    );
}

/// A read returns only its tenant's minutes in `from..until`; nothing is empty.
pub async fn reads_are_bounded_by_tenant_and_minutes(h: &dyn SeriesHarness) {
    let s = h.series();
    let m = SeriesMetric::Delivered;
    let points: Vec<_> = (0..130)
        .map(|i| point("acme", m0().plus(i), m.clone(), 1))
        .collect();
    s.record(&points).await.unwrap();
    let got = s
        .read(&tenant("acme"), m0().plus(10), m0().plus(70), 1)
        .await
        .unwrap();
    assert_eq!(got.len(), 60);
    assert_eq!(got[0].minute, m0().plus(10));
    assert_eq!(got[59].minute, m0().plus(69));
    assert!(
        s.read(&tenant("nobody"), m0(), m0().plus(60), 1)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Every metric key (histogram buckets included) is stored and read back as itself.
pub async fn every_metric_round_trips(h: &dyn SeriesHarness) {
    let s = h.series();
    let mut metrics = vec![
        SeriesMetric::Accepted,
        SeriesMetric::Delivered,
        SeriesMetric::Read,
        SeriesMetric::Failed("throttled".into()),
        SeriesMetric::Suppressed("window_closed".into()),
    ];
    for span in Span::ALL {
        for bucket in 0..BUCKETS {
            metrics.push(SeriesMetric::Latency { span, bucket });
        }
    }
    let points: Vec<_> = metrics
        .iter()
        .map(|m| point("acme", m0(), m.clone(), 3))
        .collect();
    s.record(&points).await.unwrap();
    let mut got: Vec<_> = s
        .read(&tenant("acme"), m0(), m0().plus(1), 1)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.metric, p.count))
        .collect();
    got.sort();
    let mut want: Vec<_> = metrics.into_iter().map(|m| (m, 3)).collect();
    want.sort();
    assert_eq!(got, want);
}

/// A day by hour (1440 minutes) is one read; more than two days, or nothing, is refused.
pub async fn a_day_is_one_read_and_longer_ranges_are_refused(h: &dyn SeriesHarness) {
    let s = h.series();
    s.record(&[
        point("acme", m0(), SeriesMetric::Read, 1),
        point("acme", m0().plus(1439), SeriesMetric::Read, 2),
    ])
    .await
    .unwrap();
    let day = s
        .read(&tenant("acme"), m0(), m0().plus(1440), 60)
        .await
        .unwrap();
    assert_eq!(day.iter().map(|p| p.count).sum::<u64>(), 3);
    for (from, until) in [(m0(), m0()), (m0(), m0().plus(2 * 1440 + 1))] {
        assert!(matches!(
            s.read(&tenant("acme"), from, until, 1).await,
            Err(SeriesError::Range { .. })
        ));
    }
}

/// A read by steps sums each step's minutes, counted from `from`, and names each
/// point by its step's first minute.
pub async fn a_read_by_steps_sums_each_steps_minutes(h: &dyn SeriesHarness) {
    let s = h.series();
    let m = SeriesMetric::Accepted;
    s.record(&[
        point("acme", m0(), m.clone(), 1),
        point("acme", m0().plus(1), m.clone(), 2),
        point("acme", m0().plus(59), m.clone(), 4),
        point("acme", m0().plus(60), m.clone(), 8),
        point("acme", m0().plus(60), SeriesMetric::Read, 16),
    ])
    .await
    .unwrap();
    let hours = s
        .read(&tenant("acme"), m0(), m0().plus(120), 60)
        .await
        .unwrap();
    assert_eq!(
        hours,
        vec![
            point("acme", m0(), m.clone(), 7),
            point("acme", m0().plus(60), m.clone(), 8),
            point("acme", m0().plus(60), SeriesMetric::Read, 16),
        ]
    );
    let shifted = s
        .read(&tenant("acme"), m0().plus(1), m0().plus(61), 30)
        .await
        .unwrap();
    assert_eq!(
        shifted,
        vec![
            point("acme", m0().plus(1), m.clone(), 2),
            point("acme", m0().plus(31), m.clone(), 12),
            point("acme", m0().plus(31), SeriesMetric::Read, 16),
        ]
    );
}

/// Concurrent writers lose no count.
pub async fn concurrent_writers_lose_no_count(h: &dyn SeriesHarness) {
    let s = h.series();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                s.record(&[point("acme", m0(), SeriesMetric::Accepted, 1)])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = s
        .read(&tenant("acme"), m0(), m0().plus(1), 1)
        .await
        .unwrap();
    assert_eq!(got, vec![point("acme", m0(), SeriesMetric::Accepted, 40)]);
}

/// A series whose calls run one at a time, for moto: moto applies an `ADD` by
/// reading and writing the item without a lock, so concurrent writers can lose a
/// count (DynamoDB applies each update to an item atomically). The concurrency case
/// then tests the adapter, not moto's races; real parallel writers run on SQLite.
#[derive(Debug)]
pub struct OneSeriesCallAtATime<S> {
    inner: S,
    calling: tokio::sync::Mutex<()>,
}

impl<S> OneSeriesCallAtATime<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calling: tokio::sync::Mutex::new(()),
        }
    }

    /// The wrapped series.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait::async_trait]
impl<S: TrafficSeries> TrafficSeries for OneSeriesCallAtATime<S> {
    async fn record(&self, points: &[SeriesPoint]) -> Result<(), SeriesError> {
        let _one = self.calling.lock().await;
        self.inner.record(points).await
    }

    async fn read(
        &self,
        tenant: &TenantId,
        from: Minute,
        until: Minute,
        step: i64,
    ) -> Result<Vec<SeriesPoint>, SeriesError> {
        let _one = self.calling.lock().await;
        self.inner.read(tenant, from, until, step).await
    }
}

/// One `#[tokio::test]` per case of the suite, for the harness `$harness` (an async
/// expression returning `Option<impl SeriesHarness>`; `None` skips).
#[macro_export]
macro_rules! series_conformance_tests {
    ($harness:expr) => {
        $crate::series_conformance_tests!(@cases $harness;
            counts_add_up_per_tenant_minute_and_metric,
            reads_are_bounded_by_tenant_and_minutes,
            every_metric_round_trips,
            a_day_is_one_read_and_longer_ranges_are_refused,
            a_read_by_steps_sums_each_steps_minutes,
            concurrent_writers_lose_no_count,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness.await else { return };
                $crate::series_conformance::$case(&harness).await;
            }
        )*
    };
}
