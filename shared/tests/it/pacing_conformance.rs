//! The `PacingLedger` conformance suite, run against every adapter: the embedded
//! SQLite ledger always, DynamoDB on moto when `AWS_ENDPOINT_URL` is set
//! (`scripts/with-moto.sh cargo nextest run -p wa-shared --all-features --test it -E 'test(/pacing/)'`).

use std::sync::Arc;
use wa_shared::adapters::dynamo::schema::{QUOTAS, create_table};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{DynamoPacingLedger, SqlitePacingLedger};
use wa_shared::ports::PacingLedger;
use wa_testkit::pacing_conformance::{OnePacingCallAtATime, PacingHarness};
use wa_testkit::{moto, unique_name};

/// The embedded ledger on a fresh database file (a pool of several connections, so
/// the concurrent case really runs in parallel).
struct SqliteHarness {
    ledger: Arc<SqlitePacingLedger>,
    _dir: tempfile::TempDir,
}

async fn sqlite_harness() -> Option<SqliteHarness> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
        .await
        .unwrap();
    Some(SqliteHarness {
        ledger: Arc::new(SqlitePacingLedger::new(db).await.unwrap()),
        _dir: dir,
    })
}

impl PacingHarness for SqliteHarness {
    fn ledger(&self) -> Arc<dyn PacingLedger> {
        self.ledger.clone()
    }
}

/// DynamoDB on moto, on a `quotas` table of its own (moto's conditional writes are
/// not atomic: calls go one at a time, see `OnePacingCallAtATime`).
struct DynamoHarness {
    ledger: Arc<OnePacingCallAtATime<DynamoPacingLedger>>,
}

async fn dynamo_ledger() -> Option<DynamoPacingLedger> {
    let sdk = moto::sdk_config_or_skip().await?;
    let table = unique_name("pacing");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &QUOTAS, &table)
        .await
        .unwrap();
    Some(DynamoPacingLedger::new(&sdk, table))
}

async fn dynamo_harness() -> Option<DynamoHarness> {
    Some(DynamoHarness {
        ledger: Arc::new(OnePacingCallAtATime::new(dynamo_ledger().await?)),
    })
}

impl PacingHarness for DynamoHarness {
    fn ledger(&self) -> Arc<dyn PacingLedger> {
        self.ledger.clone()
    }
}

mod sqlite {
    use super::*;
    wa_testkit::pacing_conformance_tests!(sqlite_harness());
}

mod dynamo {
    use super::*;
    use std::time::Duration;
    use wa_shared::domain::pacing::{PaceKey, PaceRule};
    use wa_shared::domain::{PhoneNumber, PhoneNumberId, Timestamp};

    wa_testkit::pacing_conformance_tests!(dynamo_harness());

    /// The cost model: a send of a busy number is one UpdateItem; a first message to a
    /// recipient one UpdateItem; a message joining a recipient's burst two (the guess
    /// that the recipient is rested fails, then the swap).
    #[tokio::test]
    async fn each_reservation_costs_the_writes_the_cost_model_expects() {
        let Some(ledger) = dynamo_ledger().await else {
            return;
        };
        let updates = |l: &DynamoPacingLedger| l.calls().snapshot().get("UpdateItem").copied();
        let t0 = Timestamp::from_millis(1_780_481_730_000);
        let hour = Duration::from_secs(3600);
        let number = PhoneNumberId::parse("106540352242922").unwrap();
        let rate = PaceRule::per_second(80, 4);
        let key = PaceKey::Number(number.clone());
        ledger.reserve(&key, &rate, t0, hour).await.unwrap();
        assert_eq!(
            updates(&ledger),
            Some(2),
            "idle: busy guess fails, new burst"
        );
        ledger.reserve(&key, &rate, t0, hour).await.unwrap();
        assert_eq!(updates(&ledger), Some(3), "busy: one write");
        let to = PaceKey::Pair(number, PhoneNumber::parse("+14155550123").unwrap());
        let pair = PaceRule::bursts(
            Duration::from_secs(6),
            45,
            Duration::from_secs(6),
            Duration::from_millis(500),
        );
        ledger.reserve(&to, &pair, t0, hour).await.unwrap();
        assert_eq!(updates(&ledger), Some(4), "a rested recipient: one write");
        ledger.reserve(&to, &pair, t0, hour).await.unwrap();
        assert_eq!(updates(&ledger), Some(6), "joining a burst: two writes");
    }
}
