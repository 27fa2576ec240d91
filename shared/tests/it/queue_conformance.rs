//! The `WorkQueue` conformance suite, run against every adapter: the embedded
//! SQLite queue always, SQS on moto when `AWS_ENDPOINT_URL` is set
//! (`scripts/with-moto.sh cargo test -p wa-shared --all-features --test it queue_conformance`).

// Harness setup outside #[test] fns: a failure there is a failed test.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{ManualClock, SqliteWorkQueue, SqsWorkQueue};
use wa_shared::domain::Timestamp;
use wa_shared::ports::WorkQueue;
use wa_testkit::moto;
use wa_testkit::queue_conformance::QueueHarness;

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
    wa_testkit::queue_conformance_tests!(sqlite_harness());
}

mod sqs {
    use super::*;
    wa_testkit::queue_conformance_tests!(sqs_harness());

    /// The cost model counts calls: 25 bodies cost three SendMessageBatch calls.
    #[tokio::test]
    async fn batch_send_of_25_costs_three_sqs_calls() {
        let Some(harness) = sqs_harness().await else {
            return;
        };
        let spec = wa_shared::queues::SEND.spec;
        let name = wa_testkit::unique_name("cost");
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

    /// `ensure_queue` applies a whole definition on SQS, SSE included, to a new queue
    /// pair and again to an existing one that drifted (what `wa tenants add` relies on).
    #[tokio::test]
    async fn ensure_queue_applies_the_send_queue_definition_to_both_queues() {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        use wa_shared::queues::SEND;
        let Some(config) = moto::sdk_config_or_skip().await else {
            return;
        };
        let client = aws_sdk_sqs::Client::new(&config);
        let queues = SqsWorkQueue::from_client(client.clone());
        let name = wa_testkit::unique_name("def");
        let drifted = wa_shared::ports::QueueSpec {
            visibility_timeout: Duration::from_secs(30),
            encrypted: false,
            ..SEND.spec
        };
        queues.ensure_queue(&name, &drifted).await.unwrap();
        let queue = queues.ensure_queue(&name, &SEND.spec).await.unwrap();
        let attributes = |url: String| {
            let client = client.clone();
            async move {
                client
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(A::All)
                    .send()
                    .await
                    .unwrap()
                    .attributes()
                    .cloned()
                    .unwrap()
            }
        };
        let q = attributes(queue.as_str().to_owned()).await;
        let secs = |d: Duration| d.as_secs().to_string();
        assert_eq!(q[&A::VisibilityTimeout], secs(SEND.spec.visibility_timeout));
        assert_eq!(
            q[&A::MessageRetentionPeriod],
            secs(SEND.spec.message_retention)
        );
        assert_eq!(q[&A::SqsManagedSseEnabled], "true");
        let redrive: serde_json::Value = serde_json::from_str(&q[&A::RedrivePolicy]).unwrap();
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            SEND.spec.max_receive_count.to_string()
        );
        let dlq_url = client
            .get_queue_url()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let d = attributes(dlq_url).await;
        assert_eq!(
            d[&A::MessageRetentionPeriod],
            secs(SEND.spec.dead_letter_retention)
        );
        assert_eq!(d[&A::SqsManagedSseEnabled], "true");
        assert!(
            redrive["deadLetterTargetArn"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{name}-dlq"))
        );
    }
}
