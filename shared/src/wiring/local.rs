//! The local wiring: the embedded SQLite backend (store, directory and queues in one
//! file) and each function's deps over it, for `wa dev` and the tests.
//!
//! [`Backend::open`] builds the adapters over one [`SqliteDb`] (the quota and pacing
//! ledgers too);
//! [`Backend::ports`] makes them [`Ports`]; [`intake`], [`sender`], [`webhook`] and
//! [`reconciler`] build one function's deps from any `Ports` (the tests also pass
//! DynamoDB ports from [`super::aws::ports`]), and [`functions`] all four for `wa dev`.

use crate::adapters::sqlite::{SqliteDb, SqliteError};
use crate::adapters::{
    SqliteCostLedger, SqliteDirectory, SqliteEventLog, SqliteMessageStore, SqlitePacingLedger,
    SqliteQuotaLedger, SqliteTrafficSeries, SqliteWorkQueue,
};
use crate::app::reconciler::ReconcilerSettings;
use crate::app::sender::SenderSettings;
use crate::app::webhook::WebhookSettings;
use crate::app::{IntakeDeps, Ports, ReconcilerDeps, SenderDeps, WebhookDeps};
use crate::domain::LifecyclePolicy;
use crate::metrics::Metrics;
use crate::ports::{
    Clock, CostLedger, CostLedgerError, DirectoryError, EventLogError, PacingError, PacingLedger,
    Provider, QueueError, QuotaError, QuotaLedger, SeriesError, StoreError, TokenSource,
};
use std::sync::Arc;
use std::time::Duration;

/// Why the embedded backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The SQLite file could not be opened.
    #[error("cannot open the store: {0}")]
    Sqlite(#[from] SqliteError),
    /// The message store's tables could not be set up.
    #[error("message store: {0}")]
    Store(#[from] StoreError),
    /// The directory's tables could not be set up.
    #[error("directory: {0}")]
    Directory(#[from] DirectoryError),
    /// The queues' tables could not be set up.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    /// The event log's table could not be set up.
    #[error("event log: {0}")]
    Events(#[from] EventLogError),
    /// The quota ledger's tables could not be set up.
    #[error("quota ledger: {0}")]
    Quotas(#[from] QuotaError),
    /// The pacing ledger's table could not be set up.
    #[error("pacing ledger: {0}")]
    Pacing(#[from] PacingError),
    /// The cost ledger's tables could not be set up.
    #[error("cost ledger: {0}")]
    Costs(#[from] CostLedgerError),
    /// The traffic series' table could not be set up.
    #[error("traffic series: {0}")]
    Series(#[from] SeriesError),
}

/// The three SQLite adapters over one file, kept concrete for the runtime's own use
/// (the status page reads the store's overview; tests read rows back).
#[derive(Clone)]
pub struct Backend {
    /// Message items.
    pub store: Arc<SqliteMessageStore>,
    /// Tenants, keys, routing, templates, contacts.
    pub directory: Arc<SqliteDirectory>,
    /// Per-tenant queues and the inbox.
    pub queue: Arc<SqliteWorkQueue>,
    /// The event log (the outbox the store writes events into).
    pub events: Arc<SqliteEventLog>,
    /// The tenants' intake quota state (intake's only).
    pub quotas: Arc<SqliteQuotaLedger>,
    /// The numbers' and recipients' send schedules (the sender's only).
    pub pacing: Arc<SqlitePacingLedger>,
    /// The tenants' message costs (the webhook's only; `wa costs`, the status page).
    pub costs: Arc<SqliteCostLedger>,
    /// Per-minute traffic counters (the sender's and the webhook's; the status page).
    pub series: Arc<SqliteTrafficSeries>,
    /// The clock the queue's timers and the ports use.
    pub clock: Arc<dyn Clock>,
}

impl Backend {
    /// The adapters over `db` (their tables are created or migrated now).
    pub async fn open(db: SqliteDb, clock: Arc<dyn Clock>) -> Result<Self, LocalError> {
        Ok(Self {
            store: Arc::new(SqliteMessageStore::new(db.clone()).await?),
            directory: Arc::new(SqliteDirectory::new(db.clone()).await?),
            queue: Arc::new(SqliteWorkQueue::new(db.clone(), clock.clone()).await?),
            events: Arc::new(SqliteEventLog::new(db.clone()).await?),
            pacing: Arc::new(SqlitePacingLedger::new(db.clone()).await?),
            costs: Arc::new(SqliteCostLedger::new(db.clone()).await?),
            series: Arc::new(SqliteTrafficSeries::new(db.clone()).await?),
            quotas: Arc::new(SqliteQuotaLedger::new(db).await?),
            clock,
        })
    }

    /// The ports every function uses, over this backend.
    pub fn ports(&self, metrics: Metrics, lifecycle: LifecyclePolicy) -> Ports {
        Ports {
            store: self.store.clone(),
            directory: self.directory.clone(),
            queue: self.queue.clone(),
            events: self.events.clone(),
            series: self.series.clone(),
            clock: self.clock.clone(),
            metrics,
            lifecycle,
        }
    }
}

/// Every function's settings in one process.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// How long intake caches tenant, key and template reads.
    pub intake_cache_ttl: Duration,
    /// How long the sender caches them for its policy re-check.
    pub sender_cache_ttl: Duration,
    /// The sender's concurrency and pacing policy.
    pub sender: SenderSettings,
    /// Secrets, inbox and body limit of the webhook.
    pub webhook: WebhookSettings,
    /// The reconciler's bounds.
    pub reconciler: ReconcilerSettings,
}

impl Default for LocalSettings {
    /// The Lambdas' defaults.
    fn default() -> Self {
        Self {
            intake_cache_ttl: crate::app::intake::DEFAULT_CACHE_TTL,
            sender_cache_ttl: crate::app::sender::DEFAULT_CACHE_TTL,
            sender: SenderSettings::default(),
            webhook: WebhookSettings::default(),
            reconciler: ReconcilerSettings::default(),
        }
    }
}

/// Intake over `ports`, its quotas kept in `quotas`.
pub fn intake(ports: &Ports, quotas: Arc<dyn QuotaLedger>, settings: &LocalSettings) -> IntakeDeps {
    IntakeDeps {
        ports: ports.with_directory_cache(settings.intake_cache_ttl),
        quotas,
        settings: Default::default(),
    }
}

/// The sender over `ports`, pacing in `pacing`, sending through `provider` with `tokens`.
pub fn sender(
    ports: &Ports,
    pacing: Arc<dyn PacingLedger>,
    provider: Arc<dyn Provider>,
    tokens: Arc<dyn TokenSource>,
    settings: &LocalSettings,
) -> SenderDeps {
    SenderDeps {
        ports: ports.with_directory_cache(settings.sender_cache_ttl),
        provider,
        tokens,
        pacing,
        settings: settings.sender.clone(),
    }
}

/// The webhook over `ports`, counting costs in `costs`.
pub fn webhook(ports: &Ports, costs: Arc<dyn CostLedger>, settings: &LocalSettings) -> WebhookDeps {
    WebhookDeps {
        ports: ports.clone(),
        costs,
        settings: settings.webhook.clone(),
    }
}

/// The reconciler over `ports`.
pub fn reconciler(ports: &Ports, settings: &LocalSettings) -> ReconcilerDeps {
    ReconcilerDeps {
        ports: ports.clone(),
        settings: settings.reconciler.clone(),
    }
}

/// The four functions of one process (`wa dev`).
#[derive(Clone)]
pub struct Functions {
    /// Intake.
    pub intake: IntakeDeps,
    /// The sender.
    pub sender: SenderDeps,
    /// The webhook.
    pub webhook: WebhookDeps,
    /// The reconciler.
    pub reconciler: ReconcilerDeps,
}

/// All four functions over `ports` (intake's quotas in `quotas`, the sender's
/// schedules in `pacing`, the webhook's cost counters in `costs`).
pub fn functions(
    ports: &Ports,
    quotas: Arc<dyn QuotaLedger>,
    pacing: Arc<dyn PacingLedger>,
    costs: Arc<dyn CostLedger>,
    provider: Arc<dyn Provider>,
    tokens: Arc<dyn TokenSource>,
    settings: &LocalSettings,
) -> Functions {
    Functions {
        intake: intake(ports, quotas, settings),
        sender: sender(ports, pacing, provider, tokens, settings),
        webhook: webhook(ports, costs, settings),
        reconciler: reconciler(ports, settings),
    }
}
