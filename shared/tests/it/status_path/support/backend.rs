//! The backends a [`World`](super::World) runs on, and the outage switch in front of
//! its store.

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wa_shared::adapters::ManualClock;
use wa_shared::domain::lifecycle::Transition;
use wa_shared::domain::{LifecyclePolicy, Message, MessageId, TenantId, Timestamp, Wamid};
use wa_shared::ports::{ApplyOutcome, CreateOutcome, MessageStore, Page, StoreError};

/// Which adapters a [`World`] runs on.
#[derive(Clone)]
pub enum Backend {
    /// The embedded adapters on one in-memory SQLite database.
    Sqlite,
    /// DynamoDB and SQS on moto, through this SDK configuration.
    Moto(Box<wa_shared::adapters::aws::SdkConfig>),
}

impl Backend {
    /// Moto's configuration, or `None` after printing the skip notice (a failure
    /// instead under `WA_REQUIRE_MOTO=1`, as `make test` runs).
    pub async fn moto_or_skip() -> Option<Self> {
        wa_testkit::moto::sdk_config_or_skip()
            .await
            .map(|sdk| Self::Moto(Box::new(sdk)))
    }
}

/// One test per backend for each listed body `async fn case(w: World)` of the
/// calling module: `sqlite::case` always, `dynamo::case` on moto.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::status_path::support::World::new().await).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(backend) = $crate::status_path::support::Backend::moto_or_skip().await else {
                        return;
                    };
                    super::$case($crate::status_path::support::World::on(backend).await).await;
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
    async fn list_messages(
        &self,
        t: &TenantId,
        query: &wa_shared::ports::MessageQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.check("list_messages")?;
        self.inner.list_messages(t, query, limit, cursor).await
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
impl Backend {
    /// The test's ports on this backend (the testkit's, by the runtimes' wiring).
    pub(crate) async fn open(
        self,
        clock: Arc<ManualClock>,
        metrics: wa_shared::metrics::Metrics,
    ) -> wa_testkit::backends::TestBackend {
        match self {
            Backend::Sqlite => wa_testkit::backends::sqlite(clock, metrics).await,
            Backend::Moto(sdk) => {
                let prefix = wa_testkit::unique_name("status");
                wa_testkit::backends::moto(&sdk, &prefix, clock, metrics).await
            }
        }
    }
}
