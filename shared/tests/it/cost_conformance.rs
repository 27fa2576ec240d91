//! The `CostLedger` conformance suite, run against every adapter: the embedded
//! SQLite ledger always, DynamoDB on moto when `AWS_ENDPOINT_URL` is set
//! (`scripts/with-moto.sh cargo nextest run -p wa-shared --all-features --test it -E 'test(/cost_conformance/)'`).

use std::sync::Arc;
use wa_shared::adapters::dynamo::schema::{QUOTAS, create_table};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{DynamoCostLedger, SqliteCostLedger};
use wa_shared::ports::CostLedger;
use wa_testkit::cost_conformance::{CostHarness, OneCostCallAtATime};
use wa_testkit::{moto, unique_name};

/// The embedded ledger on a fresh database file (a pool of several connections, so
/// the concurrent case really runs in parallel).
struct SqliteHarness {
    ledger: Arc<SqliteCostLedger>,
    _dir: tempfile::TempDir,
}

async fn sqlite_harness() -> Option<SqliteHarness> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
        .await
        .unwrap();
    Some(SqliteHarness {
        ledger: Arc::new(SqliteCostLedger::new(db).await.unwrap()),
        _dir: dir,
    })
}

impl CostHarness for SqliteHarness {
    fn ledger(&self) -> Arc<dyn CostLedger> {
        self.ledger.clone()
    }
}

/// DynamoDB on moto, on a `quotas` table of its own (moto's transactions are not
/// isolated: writes go one at a time, see `OneCostCallAtATime`).
struct DynamoHarness {
    ledger: Arc<OneCostCallAtATime<DynamoCostLedger>>,
}

async fn dynamo_ledger() -> Option<DynamoCostLedger> {
    let sdk = moto::sdk_config_or_skip().await?;
    let table = unique_name("quotas");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &QUOTAS, &table)
        .await
        .unwrap();
    Some(DynamoCostLedger::new(&sdk, table))
}

async fn dynamo_harness() -> Option<DynamoHarness> {
    Some(DynamoHarness {
        ledger: Arc::new(OneCostCallAtATime::new(dynamo_ledger().await?)),
    })
}

impl CostHarness for DynamoHarness {
    fn ledger(&self) -> Arc<dyn CostLedger> {
        self.ledger.clone()
    }
}

mod sqlite {
    use super::*;
    wa_testkit::cost_conformance_tests!(sqlite_harness());

    /// The schema is created once, as a recorded migration, and reopening the same
    /// file keeps the counts.
    #[tokio::test]
    async fn the_schema_is_a_recorded_migration_and_survives_a_reopen() {
        use wa_shared::domain::costs::{CallingCode, PricedStatus, parse_day};
        use wa_shared::domain::{MessageId, TenantId};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wa.sqlite");
        let db = SqliteDb::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        let ledger = SqliteCostLedger::new(db.clone()).await.unwrap();
        let day = parse_day("2026-06-03").unwrap();
        let status = PricedStatus {
            tenant: TenantId::parse("acme").unwrap(),
            message_id: MessageId::generate(),
            day,
            category: "utility".into(),
            billable: true,
            calling_code: CallingCode::parse("44").unwrap(),
        };
        assert!(ledger.record_pricing(&status).await.unwrap());
        assert!(
            db.applied_migrations()
                .await
                .unwrap()
                .contains(&"costs/0001_tables".to_owned())
        );
        drop((ledger, db));
        let db = SqliteDb::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        let again = SqliteCostLedger::new(db).await.unwrap();
        assert!(!again.record_pricing(&status).await.unwrap());
        let until = wa_shared::domain::costs::next_day(day);
        let totals = again.cost_totals(&status.tenant, day, until).await.unwrap();
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].messages, 1);
    }
}

mod dynamo {
    use super::*;
    use wa_shared::domain::costs::{CallingCode, PricedStatus, next_day, parse_day};
    use wa_shared::domain::{MessageId, TenantId};

    wa_testkit::cost_conformance_tests!(dynamo_harness());

    /// The cost model: counting is one TransactWriteItems, counted or not (a marker's
    /// failed condition is "already counted", not an error); a period is one
    /// BatchGetItem per 100 days.
    #[tokio::test]
    async fn each_call_costs_the_requests_the_cost_model_expects() {
        let Some(ledger) = dynamo_ledger().await else {
            return;
        };
        let calls = |l: &DynamoCostLedger, op: &str| l.calls().snapshot().get(op).copied();
        let day = parse_day("2026-06-03").unwrap();
        let status = PricedStatus {
            tenant: TenantId::parse("acme").unwrap(),
            message_id: MessageId::generate(),
            day,
            category: "marketing".into(),
            billable: true,
            calling_code: CallingCode::parse("1415").unwrap(),
        };
        assert!(ledger.record_pricing(&status).await.unwrap());
        assert_eq!(calls(&ledger, "TransactWriteItems"), Some(1));
        assert!(!ledger.record_pricing(&status).await.unwrap());
        assert_eq!(calls(&ledger, "TransactWriteItems"), Some(2));
        let totals = ledger
            .cost_totals(&status.tenant, day, next_day(day))
            .await
            .unwrap();
        assert_eq!(totals.len(), 1);
        assert_eq!(calls(&ledger, "BatchGetItem"), Some(1));
        ledger
            .cost_totals(&status.tenant, day.minus_days(150), next_day(day))
            .await
            .unwrap();
        assert_eq!(calls(&ledger, "BatchGetItem"), Some(3));
    }
}
