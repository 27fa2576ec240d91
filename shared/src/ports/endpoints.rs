//! `EndpointRegistry` and `EndpointSecrets`: a tenant's event endpoints on AWS,
//! their health and their dead letters, and their signing secrets (DESIGN §10).
//!
//! The registry never holds a secret: an endpoint names its secret by reference, and
//! only [`EndpointSecrets`] reads it (Secrets Manager on AWS). `wa dev` configures
//! its endpoints in `wa.toml` and keeps their state in its SQLite file instead.

use crate::domain::TenantId;
use crate::domain::endpoints::{DeadLetter, Endpoint, EndpointHealth, signing::WebhookSecret};
use crate::domain::time::Timestamp;
use async_trait::async_trait;
use std::time::Duration;

/// Why a registry or secrets call failed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointRegistryError {
    /// An endpoint with this id already exists.
    #[error("endpoint {0} already exists")]
    AlreadyExists(String),
    /// The backend failed or could not be reached; the call may be retried.
    #[error("endpoint registry backend failed during {operation}")]
    Backend {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored item could not be decoded (named by its key, never its secret).
    #[error("stored endpoint item {key} is corrupt")]
    Corrupt {
        /// The item's key.
        key: String,
        /// The decoding error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The tenants' endpoints, their health and dead letters.
#[async_trait]
pub trait EndpointRegistry: Send + Sync {
    /// Add `endpoint`; [`EndpointRegistryError::AlreadyExists`] if its id is taken.
    async fn add(&self, endpoint: &Endpoint) -> Result<(), EndpointRegistryError>;

    /// `tenant`'s endpoints, oldest first.
    async fn list(&self, tenant: &TenantId) -> Result<Vec<Endpoint>, EndpointRegistryError>;

    /// One endpoint, if it exists.
    async fn get(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<Endpoint>, EndpointRegistryError>;

    /// Remove an endpoint (its dead letters too); whether it existed.
    async fn remove(&self, tenant: &TenantId, id: &str) -> Result<bool, EndpointRegistryError>;

    /// A 2xx answer at `at`: the endpoint is healthy again. Nothing if it is gone.
    async fn record_success(
        &self,
        tenant: &TenantId,
        id: &str,
        at: Timestamp,
    ) -> Result<(), EndpointRegistryError>;

    /// A failed attempt at `at`: one more failure in a row, failing since the first,
    /// attempts paused for `hold`. The health after the write, or `None` if the
    /// endpoint is gone. Concurrent failures each count.
    async fn record_failure(
        &self,
        tenant: &TenantId,
        id: &str,
        at: Timestamp,
        error: &str,
        hold: Duration,
    ) -> Result<Option<EndpointHealth>, EndpointRegistryError>;

    /// Claim the one probe of a failing endpoint: move its `hold_until` from `seen`
    /// (what the caller read) to `until`. `true` if this caller won; `false` if
    /// another one changed it first (or the endpoint is gone), so only one attempt
    /// at a time tests an endpoint that is failing.
    async fn claim_probe(
        &self,
        tenant: &TenantId,
        id: &str,
        seen: Option<Timestamp>,
        until: Timestamp,
    ) -> Result<bool, EndpointRegistryError>;

    /// Disable or enable an endpoint (enabling also clears its failure state);
    /// whether it exists.
    async fn set_disabled(
        &self,
        tenant: &TenantId,
        id: &str,
        disabled: bool,
    ) -> Result<bool, EndpointRegistryError>;

    /// Keep a dead letter (one per endpoint and event: a second one replaces it).
    async fn put_dead_letter(&self, letter: &DeadLetter) -> Result<(), EndpointRegistryError>;

    /// Up to `limit` of `tenant`'s dead letters, of one endpoint or all, oldest
    /// endpoint first, then by event id.
    async fn dead_letters(
        &self,
        tenant: &TenantId,
        endpoint: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, EndpointRegistryError>;

    /// Drop a dead letter (after it was queued again).
    async fn remove_dead_letter(
        &self,
        tenant: &TenantId,
        endpoint: &str,
        event_id: &str,
    ) -> Result<(), EndpointRegistryError>;
}

/// The endpoints' signing secrets.
#[async_trait]
pub trait EndpointSecrets: Send + Sync {
    /// Keep `secret` for `tenant`'s endpoint `endpoint`; its reference.
    async fn create(
        &self,
        tenant: &TenantId,
        endpoint: &str,
        secret: &WebhookSecret,
    ) -> Result<String, EndpointRegistryError>;

    /// The secret a reference names.
    async fn read(&self, secret_ref: &str) -> Result<WebhookSecret, EndpointRegistryError>;

    /// Delete a secret (after its endpoint was removed).
    async fn delete(&self, secret_ref: &str) -> Result<(), EndpointRegistryError>;
}
