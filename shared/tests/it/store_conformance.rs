//! The `MessageStore` conformance suite, run against every adapter: the embedded
//! SQLite store always, DynamoDB on moto when `AWS_ENDPOINT_URL` is set
//! (`scripts/with-moto.sh cargo test -p wa-shared --all-features --test it store_conformance`).
//! Also the cost model: AWS calls and write units per lifecycle step.

// Harness setup outside #[test] fns: a failure there is a failed test.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::sync::Arc;
use wa_shared::adapters::SqliteMessageStore;
use wa_shared::adapters::dynamo::schema::{MESSAGES, create_table};
use wa_shared::adapters::dynamo::{DynamoMessageStore, messages::pk};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteError, SqliteOptions};
use wa_shared::domain::{MessageId, TenantId};
use wa_shared::ports::MessageStore;
use wa_testkit::store_conformance::{OneWriteAtATime, StoreHarness};
use wa_testkit::{moto, unique_name};

/// The embedded store on a fresh database file.
struct SqliteHarness {
    store: Arc<SqliteMessageStore>,
    db: SqliteDb,
    _dir: tempfile::TempDir,
}

async fn sqlite_harness() -> Option<SqliteHarness> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
        .await
        .unwrap();
    let store = SqliteMessageStore::new(db.clone()).await.unwrap();
    Some(SqliteHarness {
        store: Arc::new(store),
        db,
        _dir: dir,
    })
}

#[async_trait]
impl StoreHarness for SqliteHarness {
    fn store(&self) -> Arc<dyn MessageStore> {
        self.store.clone()
    }
    fn property_cases(&self) -> u32 {
        64
    }
    async fn stored_expires_at(&self, tenant: &TenantId, id: &MessageId) -> Option<i64> {
        let key = pk(tenant, id);
        self.db
            .call(move |c| {
                // STRICT table: an INTEGER column holds only integers.
                c.query_row(
                    "SELECT expires_at FROM store_messages WHERE pk = ?1",
                    [key],
                    |r| r.get(0),
                )
                .map_err(SqliteError::from)
            })
            .await
            .ok()
    }
}

/// DynamoDB on moto: a fresh `messages` table per test, made from the schema. The
/// suite sees the store through [`OneWriteAtATime`] because moto, unlike DynamoDB,
/// does not apply concurrent conditional writes atomically.
struct DynamoHarness {
    store: Arc<OneWriteAtATime<DynamoMessageStore>>,
    client: Client,
}

async fn dynamo_harness() -> Option<DynamoHarness> {
    let config = moto::sdk_config_or_skip().await?;
    let client = Client::new(&config);
    let table = format!("{}-messages", unique_name("store"));
    create_table(&client, &MESSAGES, &table).await.unwrap();
    Some(DynamoHarness {
        store: Arc::new(OneWriteAtATime::new(DynamoMessageStore::from_client(
            client.clone(),
            table,
        ))),
        client,
    })
}

#[async_trait]
impl StoreHarness for DynamoHarness {
    fn store(&self) -> Arc<dyn MessageStore> {
        self.store.clone()
    }
    fn property_cases(&self) -> u32 {
        8
    }
    async fn stored_expires_at(&self, tenant: &TenantId, id: &MessageId) -> Option<i64> {
        let out = self
            .client
            .get_item()
            .table_name(self.store.inner().table())
            .key("pk", AttributeValue::S(pk(tenant, id)))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        match out.item()?.get("expires_at")? {
            AttributeValue::N(n) => n.parse().ok(),
            _ => None,
        }
    }
}

mod sqlite {
    use super::*;
    use wa_shared::domain::lifecycle::ProviderStatusKind;
    use wa_shared::domain::{Message, Timestamp};
    use wa_testkit::store_conformance::{
        accepted, at, claim, create, queued, record, status, wamid,
    };

    wa_testkit::store_conformance_tests!(sqlite_harness());

    /// The row's indexed columns, as the queries read them.
    type Columns = (String, Option<String>, Option<String>, Option<i64>, i64);

    async fn columns(h: &SqliteHarness, m: &Message) -> Columns {
        let key = pk(&m.tenant, &m.id);
        h.db.call(move |c| {
            c.query_row(
                "SELECT state, wamid, sweep_key, sweep_at, expires_at
                 FROM store_messages WHERE pk = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .map_err(SqliteError::from)
        })
        .await
        .unwrap()
    }

    fn of_body(m: &Message) -> Columns {
        (
            m.state.as_str().to_owned(),
            m.wamid.as_ref().map(|w| w.as_str().to_owned()),
            m.sweep_key.clone(),
            m.sweep_at.map(Timestamp::as_millis),
            m.expires_at,
        )
    }

    /// A transition sets only the indexed columns whose value changed: whichever it
    /// sets, each column still says what the stored message says, at every step.
    #[tokio::test]
    async fn the_indexed_columns_follow_the_message_through_its_lifecycle() {
        let h = sqlite_harness().await.unwrap();
        let m = queued("acme", at(0));
        create(&h, &m).await;
        assert_eq!(columns(&h, &m).await, of_body(&m));
        let claimed = claim(&h, &m, 10).await;
        assert_eq!(columns(&h, &m).await, of_body(&claimed));
        let w = wamid("wamid.columns");
        let steps = [
            accepted(claimed.attempt, &w, 20),
            status(ProviderStatusKind::Sent, &w, 30),
            // A duplicate changes nothing but the body's history.
            status(ProviderStatusKind::Sent, &w, 31),
            status(ProviderStatusKind::Read, &w, 40),
            // Late: only fills delivered_at.
            status(ProviderStatusKind::Delivered, &w, 50),
        ];
        for event in &steps {
            record(&h, &m, event).await;
            let stored = h.store.get(&m.tenant, &m.id).await.unwrap().unwrap();
            assert_eq!(columns(&h, &m).await, of_body(&stored), "{event:?}");
        }
        let found = h.store.find_by_wamid(&w).await.unwrap();
        assert_eq!(found, Some((m.tenant.clone(), m.id.clone())));
    }
}

mod dynamo {
    use super::*;
    use wa_shared::domain::Message;
    use wa_shared::domain::lifecycle::ProviderStatusKind;
    use wa_shared::ports::{CreateOutcome, Recorded};
    use wa_testkit::store_conformance::{accepted, at, policy, queued, status, wamid};

    wa_testkit::store_conformance_tests!(dynamo_harness());

    /// The cost model: one message from intake to `read`, each step one DynamoDB call.
    /// Prints calls, the capacity moto reports (constants) and the write units real
    /// DynamoDB bills by item size (table + index writes).
    #[tokio::test]
    async fn one_message_costs_one_write_per_lifecycle_step() {
        let Some(h) = dynamo_harness().await else {
            return;
        };
        let store = h.store.inner();
        let m = queued("acme", at(0));
        let w = wamid("wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI");
        let mut rows = Vec::new();
        let mut before: Option<Message> = None;
        for step in [
            "intake put",
            "claim",
            "dispatch",
            "accept",
            "webhook sent",
            "webhook delivered",
            "webhook read",
        ] {
            let (calls0, units0) = (store.calls(), store.consumed_capacity());
            let after = match step {
                "intake put" => {
                    assert_eq!(
                        store.create_if_absent(&m).await.unwrap(),
                        CreateOutcome::Created
                    );
                    m.clone()
                }
                "claim" => store
                    .claim_for_send(&m.tenant, &m.id, at(10), &policy())
                    .await
                    .unwrap()
                    .unwrap(),
                _ => {
                    let event = match step {
                        // The sender's write-ahead mark before its Graph call: blind.
                        "dispatch" => wa_shared::domain::LifecycleEvent::new(
                            at(15),
                            wa_shared::domain::lifecycle::EventKind::Dispatched { attempt: 1 },
                        ),
                        "accept" => accepted(1, &w, 20),
                        "webhook sent" => status(ProviderStatusKind::Sent, &w, 30),
                        "webhook delivered" => status(ProviderStatusKind::Delivered, &w, 40),
                        _ => status(ProviderStatusKind::Read, &w, 50),
                    };
                    let recorded =
                        wa_shared::ports::record_event(store, &m.tenant, &m.id, &event, &policy())
                            .await
                            .unwrap();
                    let Recorded::Written { message, .. } = recorded else {
                        panic!("{step}: {recorded:?}");
                    };
                    *message
                }
            };
            let calls: u64 = store.calls().values().sum::<u64>() - calls0.values().sum::<u64>();
            let reported: f64 =
                store.consumed_capacity().values().sum::<f64>() - units0.values().sum::<f64>();
            let estimate =
                DynamoMessageStore::estimate_write_units(before.as_ref(), &after).unwrap();
            assert_eq!(calls, 1, "{step} must be one call");
            rows.push((
                step,
                calls,
                reported,
                estimate,
                DynamoMessageStore::item_size(&after).unwrap(),
            ));
            before = Some(after);
        }
        println!(
            "step               | calls | moto units | est. WCU table + indexes = total | item bytes"
        );
        let mut total = 0;
        for (step, calls, reported, e, bytes) in &rows {
            total += e.total();
            println!(
                "{step:<18} | {calls:>5} | {reported:>10.1} | {:>9} + {:>7} = {:>5} | {bytes:>10}",
                e.table,
                e.indexes,
                e.total()
            );
        }
        println!("total estimated write units per delivered-and-read message: {total}");
    }
}
