//! The ports of one test on either backend, built by the runtimes' own wiring: the
//! embedded SQLite file (in memory) or DynamoDB + SQS on moto with fresh tables.
//! The one place tests set up a backend for the handlers.

use crate::cost_conformance::OneCostCallAtATime;
use crate::pacing_conformance::OnePacingCallAtATime;
use crate::quota_conformance::OneQuotaCallAtATime;
use crate::series_conformance::OneSeriesCallAtATime;
use crate::store_conformance::OneWriteAtATime;
use std::sync::Arc;
use wa_shared::adapters::aws::SdkConfig;
use wa_shared::adapters::dynamo::{TableNames, create_tables};
use wa_shared::adapters::sqlite::SqliteDb;
use wa_shared::adapters::{
    DynamoCostLedger, DynamoMessageStore, DynamoPacingLedger, DynamoQuotaLedger,
    DynamoTrafficSeries, ManualClock,
};
use wa_shared::app::Ports;
use wa_shared::config::CommonConfig;
use wa_shared::domain::LifecyclePolicy;
use wa_shared::metrics::Metrics;
use wa_shared::ports::{CostLedger, PacingLedger, QuotaLedger};
use wa_shared::wiring::{aws, local};

/// A test's ports and how to name its queues.
pub struct TestBackend {
    /// The ports over the backend (the manual clock, in-memory metrics).
    pub ports: Ports,
    /// Intake's quota ledger on the same backend.
    pub quotas: Arc<dyn QuotaLedger>,
    /// The sender's pacing ledger on the same backend.
    pub pacing: Arc<dyn PacingLedger>,
    /// The webhook's cost ledger on the same backend.
    pub costs: Arc<dyn CostLedger>,
    /// Prefix of the test's queue names (unique on moto, empty on SQLite).
    pub queue_prefix: String,
    /// `sqlite` or `dynamo`, for assertion messages.
    pub name: &'static str,
}

/// The embedded SQLite backend in memory, by the local wiring.
pub async fn sqlite(clock: Arc<ManualClock>, metrics: Metrics) -> TestBackend {
    let db = SqliteDb::open_in_memory().await.unwrap();
    let backend = local::Backend::open(db, clock).await.unwrap();
    TestBackend {
        ports: backend.ports(metrics, LifecyclePolicy::default()),
        quotas: backend.quotas.clone(),
        pacing: backend.pacing.clone(),
        costs: backend.costs.clone(),
        queue_prefix: String::new(),
        name: "sqlite",
    }
}

/// DynamoDB and SQS on moto, by the AWS wiring: fresh tables named after `prefix`.
/// The queues keep real time; the handlers read the manual clock.
pub async fn moto(
    sdk: &SdkConfig,
    prefix: &str,
    clock: Arc<ManualClock>,
    metrics: Metrics,
) -> TestBackend {
    let tables = TableNames::with_prefix(prefix);
    create_tables(&aws_sdk_dynamodb::Client::new(sdk), &tables)
        .await
        .unwrap();
    let common = CommonConfig {
        stage: "test".into(),
        messages_table: tables.messages.clone(),
        directory_table: tables.directory.clone(),
        events_table: tables.events.clone(),
        lifecycle: LifecyclePolicy::default(),
    };
    // moto does not apply concurrent conditional writes to one item atomically (real
    // DynamoDB does), so writes go one at a time here; the claim races themselves are
    // proven on SQLite and by the store conformance suite.
    let store = Arc::new(OneWriteAtATime::new(DynamoMessageStore::new(
        sdk,
        tables.messages,
    )));
    // The same for the quota ledger's conditional writes.
    let quotas = Arc::new(OneQuotaCallAtATime::new(DynamoQuotaLedger::new(
        sdk,
        tables.quotas.clone(),
    )));
    // And for the pacing ledger's, on the same table.
    let pacing = Arc::new(OnePacingCallAtATime::new(DynamoPacingLedger::new(
        sdk,
        tables.quotas.clone(),
    )));
    // And for the traffic series' ADDs, on the same table.
    let series = Arc::new(OneSeriesCallAtATime::new(DynamoTrafficSeries::new(
        sdk,
        tables.quotas.clone(),
    )));
    // And for the cost ledger's transactions, on the same table.
    let costs = Arc::new(OneCostCallAtATime::new(DynamoCostLedger::new(
        sdk,
        tables.quotas,
    )));
    TestBackend {
        ports: aws::ports(&common, sdk)
            .with_store(store)
            .with_series(series)
            .with_clock(clock)
            .with_metrics(metrics),
        quotas,
        pacing,
        costs,
        queue_prefix: format!("{prefix}-"),
        name: "dynamo",
    }
}
