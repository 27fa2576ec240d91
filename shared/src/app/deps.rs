//! Everything a handler needs, built once per process (cold start), shared by
//! every invocation.

use crate::domain::LifecyclePolicy;
use crate::metrics::Metrics;
use crate::ports::tokens::TokenSource;
use crate::ports::{Clock, Directory, MessageStore, Provider, WorkQueue};
use std::sync::Arc;

/// The ports, metrics and settings every handler takes by reference.
///
/// Each function's own settings live in its app module and are added here as one
/// field each (`intake`, `sender`, `webhook`, `reconciler`).
#[derive(Clone)]
pub struct Deps {
    /// Message items (source of truth).
    pub store: Arc<dyn MessageStore>,
    /// Tenants, keys, routing, templates, contacts.
    pub directory: Arc<dyn Directory>,
    /// Per-tenant send queues and the webhook inbox.
    pub queue: Arc<dyn WorkQueue>,
    /// The Graph API (or its sandbox).
    pub provider: Arc<dyn Provider>,
    /// Tenants' Graph tokens.
    pub tokens: Arc<dyn TokenSource>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// EMF metric lines.
    pub metrics: Metrics,
    /// Leases, graces, horizons, shards, TTL, history cap.
    pub lifecycle: LifecyclePolicy,
    /// Intake's limits and lookup cache.
    pub intake: crate::app::intake::IntakeSettings,
    /// The sender's retry budget, concurrency, pacer and lookup cache.
    pub sender: crate::app::sender::SenderSettings,
    /// The webhook function's settings (secrets, inbox, body limit).
    pub webhook: super::webhook::WebhookSettings,
    /// The reconciler's settings (budget, page size, per-tenant caps).
    pub reconciler: super::reconciler::ReconcilerSettings,
}
