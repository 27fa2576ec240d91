//! The status page with a million messages in the store (ignored: a benchmark; see
//! docs/performance.md, "Status page").
//!
//! ```sh
//! cargo nextest run --cargo-profile local -p wa-local --test it \
//!     --run-ignored only -E 'test(/status_page_load/)' --no-capture
//! ```
//!
//! 1,000 messages of five tenants go through the adapter; SQL then copies them into
//! 1,000,000 rows (states spread over the lifecycle, older than the originals, so
//! the newest 50 are real ones) in one transaction. The traffic series get a day of
//! per-minute counters for every tenant through the adapter (the volume of a million
//! messages a day). Then `GET /` is timed for each range and filter: the page reads
//! the `(tenant, state)` index, the newest 50 rows, and the counters, never the
//! messages.

use std::sync::Arc;
use std::time::{Duration, Instant};
use wa_local::events::DeliveryStore;
use wa_shared::adapters::sqlite::{SqliteDb, SqliteError, SqliteOptions, Synchronous};
use wa_shared::adapters::{SqliteDirectory, SqliteMessageStore, SqliteTrafficSeries, SystemClock};
use wa_shared::domain::series::{BUCKETS, Minute, SeriesMetric, SeriesPoint, Span};
use wa_shared::domain::{LifecyclePolicy, Message, MessageId, NewMessage, PhoneNumber, TenantId};
use wa_shared::ports::{Clock, MessageStore, TrafficSeries};

const MESSAGES: i64 = 1_000_000;
const SEEDED: i64 = 1_000;
const TENANTS: [&str; 5] = ["acme", "beta", "gamma", "delta", "omega"];

/// A small deterministic generator (xorshift) for the counters.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

async fn fill(db: &SqliteDb, store: &SqliteMessageStore, series: &SqliteTrafficSeries) {
    let now = SystemClock.now();
    let policy = LifecyclePolicy::default();
    for i in 0..SEEDED {
        let tenant = TENANTS[(i % 5) as usize];
        let new = NewMessage {
            tenant: TenantId::parse(tenant).unwrap(),
            id: MessageId::generate(),
            to: PhoneNumber::parse(&format!("+1415555{:04}", i % 10_000)).unwrap(),
            template_name: Some("order_shipped".into()),
            template_language: Some("en_US".into()),
            request: serde_json::json!({}),
            request_hash: "h".into(),
            metadata: None,
        };
        let m = Message::new_queued(new, now.plus_millis(-(SEEDED - i) * 50), &policy);
        store.create_if_absent(&m).await.unwrap();
    }
    let copies = MESSAGES / SEEDED - 1;
    let started = Instant::now();
    db.write(move |tx| -> Result<(), SqliteError> {
        tx.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO store_messages
                (pk, tenant, id, state, wamid, sweep_key, sweep_at, created_at, expires_at, body,
                 recipient)
             SELECT pk || '~' || n.i, tenant, id || '~' || n.i,
                    CASE (n.i + rowid) % 10
                        WHEN 0 THEN 'failed' WHEN 1 THEN 'suppressed' WHEN 2 THEN 'delivered'
                        WHEN 3 THEN 'accepted' WHEN 4 THEN 'sent' ELSE 'read' END,
                    NULL, NULL, NULL, created_at - n.i * 60000, expires_at, body, recipient
             FROM store_messages, n",
            [copies],
        )?;
        Ok(())
    })
    .await
    .unwrap();
    println!(
        "bulk insert of {} rows: {:?}",
        MESSAGES - SEEDED,
        started.elapsed()
    );

    // A day of counters: ~140 messages a minute per tenant (a million a day).
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let last = Minute::of(now);
    for tenant in TENANTS {
        let tenant = TenantId::parse(tenant).unwrap();
        let mut points = Vec::new();
        for back in 0..1440 {
            let minute = last.plus(-back);
            let mut add = |metric: SeriesMetric, count: u64| {
                if count > 0 {
                    points.push(SeriesPoint {
                        tenant: tenant.clone(),
                        minute,
                        metric,
                        count,
                    });
                }
            };
            let accepted = 120 + rng.below(40);
            add(SeriesMetric::Accepted, accepted);
            add(SeriesMetric::Delivered, accepted - rng.below(10));
            add(SeriesMetric::Read, accepted / 2 + rng.below(20));
            for class in ["recipient", "rejected", "throttled"] {
                add(SeriesMetric::Failed(class.into()), rng.below(4));
            }
            for reason in ["opted_out", "window_closed"] {
                add(SeriesMetric::Suppressed(reason.into()), rng.below(3));
            }
            for span in Span::ALL {
                for bucket in 1..7.min(BUCKETS) {
                    add(SeriesMetric::Latency { span, bucket }, rng.below(40));
                }
            }
        }
        series.record(&points).await.unwrap();
    }
    println!("a day of counters for 5 tenants: {:?}", started.elapsed());
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A store of [`MESSAGES`] messages and a day of counters in `dir`, and the status
/// page's router over it (the charts included).
pub(crate) async fn million(dir: &std::path::Path) -> axum::Router {
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let db = SqliteDb::open(dir.join("wa.sqlite"), options)
        .await
        .unwrap();
    let store = Arc::new(SqliteMessageStore::new(db.clone()).await.unwrap());
    let series = Arc::new(SqliteTrafficSeries::new(db.clone()).await.unwrap());
    let directory = Arc::new(SqliteDirectory::new(db.clone()).await.unwrap());
    let deliveries = DeliveryStore::open(db.clone()).await.unwrap();
    fill(&db, &store, &series).await;
    let rows: i64 = db
        .call(|c| -> Result<i64, SqliteError> {
            Ok(c.query_row("SELECT count(*) FROM store_messages", [], |r| r.get(0))?)
        })
        .await
        .unwrap();
    assert_eq!(rows, MESSAGES);
    // The page's queries walk indexes: the counts a covering one, the newest 50 the
    // creation index backwards, the counters their primary key.
    for (sql, index) in [
        (
            "SELECT tenant, state, count(*) FROM store_messages GROUP BY tenant, state",
            "COVERING INDEX store_messages_by_tenant_state",
        ),
        (
            "SELECT pk, body FROM store_messages ORDER BY created_at DESC, pk DESC LIMIT 50",
            "INDEX store_messages_by_created",
        ),
        (
            "SELECT minute, metric, sum(count) FROM series_counts
             WHERE tenant = 'acme' AND minute >= 0 AND minute < 1440 GROUP BY minute, metric",
            "PRIMARY KEY",
        ),
    ] {
        let plan = db
            .call(move |c| -> Result<String, SqliteError> {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = stmt
                    .query_map([], |r| r.get::<_, String>(3))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows.join("; "))
            })
            .await
            .unwrap();
        println!("plan: {plan}");
        assert!(plan.contains(index), "{sql}: {plan}");
    }

    wa_local::status_page::router_with_charts(store, deliveries, directory, series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: fills a store with a million messages (about a minute)"]
async fn status_page_load_with_a_million_messages() {
    let dir = tempfile::tempdir().unwrap();
    let app = million(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let mut report = Vec::new();
    for path in [
        "/",
        "/?range=day",
        "/?range=hour&tenant=acme",
        "/?range=day&tenant=acme",
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..11 {
            let started = Instant::now();
            let resp = http.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let body = resp.text().await.unwrap();
            times.push(started.elapsed());
            bytes = body.len();
            assert!(body.contains("id=\"chart-transitions\""));
            assert_eq!(body.matches("<svg").count(), 6);
            assert!(body.contains("data-tenant=\"acme\" data-state=\"read\""));
        }
        let (min, max) = (times.iter().min().copied(), times.iter().max().copied());
        let med = median(times);
        report.push(format!(
            "GET {path}: median {med:?} (min {min:?}, max {max:?}), {bytes} bytes"
        ));
        assert!(med < Duration::from_secs(2), "{path}: {med:?}");
    }
    println!("{} messages in the store:", MESSAGES);
    for line in report {
        println!("  {line}");
    }
}
