//! The backends a [`World`](super::World) runs on, and the outage switch in front of
//! its store.

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wa_shared::adapters::sqlite::SqliteDb;
use wa_shared::adapters::{ManualClock, SqliteDirectory, SqliteMessageStore, SqliteWorkQueue};
use wa_shared::domain::lifecycle::Transition;
use wa_shared::domain::{
    LifecyclePolicy, Message, MessageId, MessageState, TenantId, Timestamp, Wamid,
};
use wa_shared::ports::{
    ApplyOutcome, CreateOutcome, Directory, MessageStore, Page, StoreError, WorkQueue,
};

/// Which adapters a [`World`] runs on.
#[derive(Clone)]
pub enum Backend {
    /// The embedded adapters on one in-memory SQLite database.
    Sqlite,
    /// DynamoDB and SQS on moto, through this SDK configuration.
    #[cfg(feature = "testkit")]
    Moto(Box<wa_shared::adapters::aws::SdkConfig>),
}

impl Backend {
    /// Moto's configuration, or `None` after printing the skip notice (a failure
    /// instead under `WA_REQUIRE_MOTO=1`, as `make test` runs).
    #[cfg(feature = "testkit")]
    pub async fn moto_or_skip() -> Option<Self> {
        wa_shared::testkit::moto::sdk_config_or_skip()
            .await
            .map(|sdk| Self::Moto(Box::new(sdk)))
    }
}

/// One test per backend for each listed body `async fn case(w: World)` of the
/// calling module: `sqlite::case` always, `dynamo::case` on moto (feature `testkit`).
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::World::new().await).await;
                }
            )*
        }
        #[cfg(feature = "testkit")]
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(backend) = $crate::support::Backend::moto_or_skip().await else {
                        return;
                    };
                    super::$case($crate::support::World::on(backend).await).await;
                }
            )*
        }
    };
}
pub(crate) use on_every_backend;

/// A store that fails every call while its switch is on: an outage of the real store
/// underneath, not a mock.
pub(crate) struct Outage {
    inner: Arc<dyn MessageStore>,
    down: Arc<AtomicBool>,
}

impl Outage {
    /// The store `inner`, failing while `down` is set.
    pub(crate) fn new(inner: Arc<dyn MessageStore>, down: Arc<AtomicBool>) -> Self {
        Self { inner, down }
    }

    fn check(&self, operation: &'static str) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                operation,
                source: "injected outage".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl MessageStore for Outage {
    async fn create_if_absent(&self, m: &Message) -> Result<CreateOutcome, StoreError> {
        self.check("create_if_absent")?;
        self.inner.create_if_absent(m).await
    }
    async fn get(&self, t: &TenantId, id: &MessageId) -> Result<Option<Message>, StoreError> {
        self.check("get")?;
        self.inner.get(t, id).await
    }
    async fn find_by_wamid(&self, w: &Wamid) -> Result<Option<(TenantId, MessageId)>, StoreError> {
        self.check("find_by_wamid")?;
        self.inner.find_by_wamid(w).await
    }
    async fn apply(
        &self,
        t: &TenantId,
        id: &MessageId,
        tr: &Transition,
    ) -> Result<ApplyOutcome, StoreError> {
        self.check("apply")?;
        self.inner.apply(t, id, tr).await
    }
    async fn sweep(
        &self,
        key: &str,
        due: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.check("sweep")?;
        self.inner.sweep(key, due, limit, cursor).await
    }
    async fn list_by_tenant(
        &self,
        t: &TenantId,
        s: Option<MessageState>,
        since: Option<Timestamp>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.check("list_by_tenant")?;
        self.inner.list_by_tenant(t, s, since, limit, cursor).await
    }
    async fn claim_for_send(
        &self,
        t: &TenantId,
        id: &MessageId,
        now: Timestamp,
        p: &LifecyclePolicy,
    ) -> Result<Option<Message>, StoreError> {
        self.check("claim_for_send")?;
        self.inner.claim_for_send(t, id, now, p).await
    }
}

/// The ports of one backend, before the tenant is provisioned.
pub(crate) struct Adapters {
    pub store: Arc<dyn MessageStore>,
    pub directory: Arc<dyn Directory>,
    pub queue: Arc<dyn WorkQueue>,
    /// Prefix of the world's queue names (unique on SQS).
    pub queue_prefix: String,
    pub name: &'static str,
}

impl Backend {
    /// Fresh, empty adapters: an in-memory database, or tables made from the schema
    /// and a queue prefix no other test uses.
    pub(crate) async fn adapters(self, clock: Arc<ManualClock>) -> Adapters {
        match self {
            Backend::Sqlite => {
                let db = SqliteDb::open_in_memory().await.unwrap();
                let store = Arc::new(SqliteMessageStore::new(db.clone()).await.unwrap());
                let directory = Arc::new(SqliteDirectory::new(db.clone()).await.unwrap());
                let queue = Arc::new(SqliteWorkQueue::new(db, clock).await.unwrap());
                Adapters {
                    store,
                    directory,
                    queue,
                    queue_prefix: String::new(),
                    name: "sqlite",
                }
            }
            #[cfg(feature = "testkit")]
            Backend::Moto(sdk) => {
                use wa_shared::adapters::dynamo::{TableNames, create_tables};
                use wa_shared::adapters::{DynamoDirectory, DynamoMessageStore, SqsWorkQueue};
                let prefix = wa_shared::testkit::unique_name("status");
                let tables = TableNames::with_prefix(&prefix);
                create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &tables)
                    .await
                    .unwrap();
                // moto does not apply concurrent conditional writes to one item
                // atomically (DynamoDB does): one write at a time, as in the send path.
                let store = Arc::new(wa_shared::testkit::store_conformance::OneWriteAtATime::new(
                    DynamoMessageStore::new(&sdk, tables.messages),
                ));
                let directory = Arc::new(DynamoDirectory::new(&sdk, tables.directory));
                // SQS keeps real time; the handlers read the manual clock.
                let queue = Arc::new(SqsWorkQueue::new(&sdk));
                Adapters {
                    store,
                    directory,
                    queue,
                    queue_prefix: format!("{prefix}-"),
                    name: "dynamo",
                }
            }
        }
    }
}
