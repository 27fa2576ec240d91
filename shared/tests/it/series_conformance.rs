//! The `TrafficSeries` conformance suite, run against every adapter: the embedded
//! SQLite series always, DynamoDB on moto when `AWS_ENDPOINT_URL` is set
//! (`scripts/with-moto.sh cargo nextest run -p wa-shared --all-features --test it -E 'test(/series_conformance/)'`).

use std::sync::Arc;
use wa_shared::adapters::dynamo::schema::{QUOTAS, create_table};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{DynamoTrafficSeries, SqliteTrafficSeries};
use wa_shared::ports::TrafficSeries;
use wa_testkit::series_conformance::{OneSeriesCallAtATime, SeriesHarness};
use wa_testkit::{moto, unique_name};

/// The embedded series on a fresh database file (several connections, so the
/// concurrent case really runs in parallel).
struct SqliteHarness {
    series: Arc<SqliteTrafficSeries>,
    _dir: tempfile::TempDir,
}

async fn sqlite_harness() -> Option<SqliteHarness> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
        .await
        .unwrap();
    Some(SqliteHarness {
        series: Arc::new(SqliteTrafficSeries::new(db).await.unwrap()),
        _dir: dir,
    })
}

impl SeriesHarness for SqliteHarness {
    fn series(&self) -> Arc<dyn TrafficSeries> {
        self.series.clone()
    }
}

/// DynamoDB on moto, on a `quotas` table of its own (calls one at a time, see
/// `OneSeriesCallAtATime`).
struct DynamoHarness {
    series: Arc<OneSeriesCallAtATime<DynamoTrafficSeries>>,
}

async fn dynamo_series() -> Option<DynamoTrafficSeries> {
    let sdk = moto::sdk_config_or_skip().await?;
    let table = unique_name("series");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &QUOTAS, &table)
        .await
        .unwrap();
    Some(DynamoTrafficSeries::new(&sdk, table))
}

async fn dynamo_harness() -> Option<DynamoHarness> {
    Some(DynamoHarness {
        series: Arc::new(OneSeriesCallAtATime::new(dynamo_series().await?)),
    })
}

impl SeriesHarness for DynamoHarness {
    fn series(&self) -> Arc<dyn TrafficSeries> {
        self.series.clone()
    }
}

mod sqlite {
    use super::*;
    wa_testkit::series_conformance_tests!(sqlite_harness());
}

mod dynamo {
    use super::*;
    use wa_shared::domain::series::{Minute, SeriesMetric, SeriesPoint, Span};
    use wa_shared::domain::{TenantId, Timestamp};

    wa_testkit::series_conformance_tests!(dynamo_harness());

    /// The cost model: one transition (its count and its latency bucket, same
    /// minute) is one UpdateItem; a day's read is one BatchGetItem.
    #[tokio::test]
    async fn a_transition_is_one_write_and_a_day_one_batch_read() {
        let Some(series) = dynamo_series().await else {
            return;
        };
        let acme = TenantId::parse("acme").unwrap();
        let at = Timestamp::from_millis(1_780_481_730_000);
        series
            .record(&[
                SeriesPoint::one(&acme, at, SeriesMetric::Accepted),
                SeriesPoint::timed(&acme, at, Span::QueuedAccepted, 900),
            ])
            .await
            .unwrap();
        assert_eq!(series.calls().snapshot().get("UpdateItem"), Some(&1));
        let to = Minute::of(at).plus(1);
        let got = series.read(&acme, to.plus(-1440), to, 60).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(series.calls().snapshot().get("BatchGetItem"), Some(&1));
    }
}
