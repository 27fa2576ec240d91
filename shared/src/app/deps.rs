//! What each function's handler needs, built once per process (cold start) by a
//! runtime's wiring (`crate::wiring`) and shared by every invocation.
//!
//! [`Ports`] holds what every function uses; each function's deps add only what that
//! function uses on top (the sender alone calls Graph and reads tokens).

use super::directory_cache::DirectoryCache;
use crate::app::intake::IntakeSettings;
use crate::app::reconciler::ReconcilerSettings;
use crate::app::sender::SenderSettings;
use crate::app::webhook::WebhookSettings;
use crate::domain::LifecyclePolicy;
use crate::metrics::Metrics;
use crate::ports::{
    Clock, CostLedger, Directory, EventLog, MessageStore, PacingLedger, Provider, QuotaLedger,
    TokenSource, TrafficSeries, WorkQueue,
};
use std::sync::Arc;
use std::time::Duration;

/// The ports, metrics and lifecycle policy the functions use.
#[derive(Clone)]
pub struct Ports {
    /// Message items (source of truth).
    pub store: Arc<dyn MessageStore>,
    /// Tenants, keys, routing, templates, contacts.
    pub directory: Arc<dyn Directory>,
    /// Per-tenant send queues and the webhook inbox.
    pub queue: Arc<dyn WorkQueue>,
    /// The tenants' event logs (the pull API; inbound and directory events).
    pub events: Arc<dyn EventLog>,
    /// Per-minute traffic counters for the status page's charts (the sender and the
    /// webhook record; a function that records none holds
    /// [`NoSeries`](crate::ports::series::NoSeries)).
    pub series: Arc<dyn TrafficSeries>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// EMF metric lines.
    pub metrics: Metrics,
    /// Leases, graces, horizons, retry budget, shards, TTL, history cap.
    pub lifecycle: LifecyclePolicy,
}

impl Ports {
    /// The same ports with the directory's hot reads cached for `ttl` (zero: none).
    pub fn with_directory_cache(&self, ttl: Duration) -> Self {
        let mut ports = self.clone();
        if !ttl.is_zero() {
            ports.directory = Arc::new(DirectoryCache::new(
                self.directory.clone(),
                self.clock.clone(),
                ttl,
            ));
        }
        ports
    }

    /// The same ports with another message store (tests wrap it to inject faults).
    pub fn with_store(&self, store: Arc<dyn MessageStore>) -> Self {
        let mut ports = self.clone();
        ports.store = store;
        ports
    }

    /// The same ports reading another clock (tests drive a manual one).
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Self {
        let mut ports = self.clone();
        ports.clock = clock;
        ports
    }

    /// The same ports counting traffic in `series`.
    pub fn with_series(&self, series: Arc<dyn TrafficSeries>) -> Self {
        let mut ports = self.clone();
        ports.series = series;
        ports
    }

    /// The same ports writing metrics elsewhere (tests read them in memory).
    pub fn with_metrics(&self, metrics: Metrics) -> Self {
        let mut ports = self.clone();
        ports.metrics = metrics;
        ports
    }
}

/// Intake: ports, the tenants' quota ledger and its limits; no Graph client.
#[derive(Clone)]
pub struct IntakeDeps {
    /// Shared ports (its directory cached: every request authenticates).
    pub ports: Ports,
    /// The tenants' intake quota state, shared by every intake instance.
    pub quotas: Arc<dyn QuotaLedger>,
    /// Body limit.
    pub settings: IntakeSettings,
}

/// The sender: ports, the Graph API (or its sandbox) and the tenants' tokens.
#[derive(Clone)]
pub struct SenderDeps {
    /// Shared ports (its directory cached briefly for the policy re-check).
    pub ports: Ports,
    /// The Graph API (or its sandbox).
    pub provider: Arc<dyn Provider>,
    /// Tenants' Graph tokens.
    pub tokens: Arc<dyn TokenSource>,
    /// The numbers' and recipients' send schedules, shared by every sender instance.
    pub pacing: Arc<dyn PacingLedger>,
    /// Concurrency and pacing policy.
    pub settings: SenderSettings,
}

/// The webhook function: ports, the cost ledger, secrets and inbox; no Graph client.
#[derive(Clone)]
pub struct WebhookDeps {
    /// Shared ports.
    pub ports: Ports,
    /// The tenants' message costs, counted from the statuses' `pricing`.
    pub costs: Arc<dyn CostLedger>,
    /// Secrets, inbox, body limit.
    pub settings: WebhookSettings,
}

/// The reconciler: ports and its sweep bounds; no Graph client.
#[derive(Clone)]
pub struct ReconcilerDeps {
    /// Shared ports.
    pub ports: Ports,
    /// Budget, page size, per-tenant caps.
    pub settings: ReconcilerSettings,
}
