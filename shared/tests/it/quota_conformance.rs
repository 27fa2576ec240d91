//! The `QuotaLedger` conformance suite, run against every adapter: the embedded
//! SQLite ledger always, DynamoDB on moto when `AWS_ENDPOINT_URL` is set
//! (`scripts/with-moto.sh cargo nextest run -p wa-shared --all-features --test it -E 'test(/quota_conformance/)'`).

use std::sync::Arc;
use wa_shared::adapters::dynamo::schema::{QUOTAS, create_table};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{DynamoQuotaLedger, SqliteQuotaLedger};
use wa_shared::ports::QuotaLedger;
use wa_testkit::quota_conformance::{OneQuotaCallAtATime, QuotaHarness};
use wa_testkit::{moto, unique_name};

/// The embedded ledger on a fresh database file (a pool of several connections, so
/// the concurrent case really runs in parallel).
struct SqliteHarness {
    ledger: Arc<SqliteQuotaLedger>,
    _dir: tempfile::TempDir,
}

async fn sqlite_harness() -> Option<SqliteHarness> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
        .await
        .unwrap();
    Some(SqliteHarness {
        ledger: Arc::new(SqliteQuotaLedger::new(db).await.unwrap()),
        _dir: dir,
    })
}

impl QuotaHarness for SqliteHarness {
    fn ledger(&self) -> Arc<dyn QuotaLedger> {
        self.ledger.clone()
    }
}

/// DynamoDB on moto, on a `quotas` table of its own (moto's conditional writes are
/// not atomic: calls go one at a time, see `OneQuotaCallAtATime`).
struct DynamoHarness {
    ledger: Arc<OneQuotaCallAtATime<DynamoQuotaLedger>>,
}

async fn dynamo_ledger() -> Option<DynamoQuotaLedger> {
    let sdk = moto::sdk_config_or_skip().await?;
    let table = unique_name("quotas");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &QUOTAS, &table)
        .await
        .unwrap();
    Some(DynamoQuotaLedger::new(&sdk, table))
}

async fn dynamo_harness() -> Option<DynamoHarness> {
    Some(DynamoHarness {
        ledger: Arc::new(OneQuotaCallAtATime::new(dynamo_ledger().await?)),
    })
}

impl QuotaHarness for DynamoHarness {
    fn ledger(&self) -> Arc<dyn QuotaLedger> {
        self.ledger.clone()
    }
}

mod sqlite {
    use super::*;
    wa_testkit::quota_conformance_tests!(sqlite_harness());
}

mod dynamo {
    use super::*;
    use wa_shared::domain::quota::{IntakeQuota, UtcDay};
    use wa_shared::domain::{TenantId, Timestamp};

    wa_testkit::quota_conformance_tests!(dynamo_harness());

    /// The cost model: a busy bucket is one UpdateItem, an idle one two (the busy
    /// write's condition fails, then the restart); a day's count one UpdateItem.
    #[tokio::test]
    async fn each_call_costs_the_writes_the_cost_model_expects() {
        let Some(ledger) = dynamo_ledger().await else {
            return;
        };
        let updates = |l: &DynamoQuotaLedger| l.calls().snapshot().get("UpdateItem").copied();
        let acme = TenantId::parse("acme").unwrap();
        let quota = IntakeQuota::default();
        let t0 = Timestamp::from_millis(1_780_481_730_000);
        ledger.take_request(&acme, &quota, t0).await.unwrap();
        assert_eq!(updates(&ledger), Some(2), "idle: busy write fails, restart");
        ledger.take_request(&acme, &quota, t0).await.unwrap();
        assert_eq!(updates(&ledger), Some(3), "busy: one write");
        ledger
            .reserve_message(&acme, UtcDay::of(t0), 10)
            .await
            .unwrap();
        assert_eq!(updates(&ledger), Some(4));
    }
}
