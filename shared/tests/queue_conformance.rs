//! The `WorkQueue` conformance suite, run against every adapter: the embedded
//! SQLite queue always, SQS on moto when `AWS_ENDPOINT_URL` is set
//! (`scripts/with-moto.sh cargo test -p wa-shared --all-features --test queue_conformance`).

#![cfg(feature = "testkit")]
// Harness setup outside #[test] fns: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{ManualClock, SqliteWorkQueue, SqsWorkQueue};
use wa_shared::domain::Timestamp;
use wa_shared::ports::WorkQueue;
use wa_shared::testkit::moto;
use wa_shared::testkit::queue_conformance::QueueHarness;

/// The embedded queue on a fresh database file, with time on a manual clock.
struct SqliteHarness {
    queue: Arc<SqliteWorkQueue>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn sqlite_harness() -> Option<SqliteHarness> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_750_000_000)));
    let queue = SqliteWorkQueue::new(db, clock.clone()).await.unwrap();
    Some(SqliteHarness {
        queue: Arc::new(queue),
        clock,
        _dir: dir,
    })
}

#[async_trait]
impl QueueHarness for SqliteHarness {
    fn queue(&self) -> Arc<dyn WorkQueue> {
        self.queue.clone()
    }
    async fn pass_time(&self, by: Duration) {
        self.clock.advance(by);
    }
    fn settle(&self) -> Duration {
        Duration::ZERO
    }
}

/// SQS on moto, on real time.
struct SqsHarness {
    queue: Arc<SqsWorkQueue>,
}

async fn sqs_harness() -> Option<SqsHarness> {
    let config = moto::sdk_config_or_skip().await?;
    Some(SqsHarness {
        queue: Arc::new(SqsWorkQueue::new(&config)),
    })
}

#[async_trait]
impl QueueHarness for SqsHarness {
    fn queue(&self) -> Arc<dyn WorkQueue> {
        self.queue.clone()
    }
    async fn pass_time(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }
    fn settle(&self) -> Duration {
        Duration::from_secs(2)
    }
}

mod sqlite {
    use super::*;
    wa_shared::queue_conformance_tests!(sqlite_harness());
}

mod sqs {
    use super::*;
    wa_shared::queue_conformance_tests!(sqs_harness());

    /// The cost model counts calls: 25 bodies cost three SendMessageBatch calls.
    #[tokio::test]
    async fn batch_send_of_25_costs_three_sqs_calls() {
        let Some(harness) = sqs_harness().await else {
            return;
        };
        let spec = wa_shared::ports::QueueSpec::default();
        let name = wa_shared::testkit::unique_name("cost");
        let queue = harness.queue.ensure_queue(&name, &spec).await.unwrap();
        let before = harness.queue.calls();
        let bodies: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert!(
            harness
                .queue
                .send_many(&queue, &bodies)
                .await
                .unwrap()
                .is_complete()
        );
        let after = harness.queue.calls();
        let batches = |calls: &std::collections::BTreeMap<&str, u64>| {
            calls.get("SendMessageBatch").copied().unwrap_or(0)
        };
        assert_eq!(batches(&after) - batches(&before), 3);
        assert!(after.get("CreateQueue").copied().unwrap_or(0) >= 2);
    }
}
