//! `QuotaLedger`: the per-tenant intake quota state every intake instance shares
//! (docs/quotas.md).
//!
//! Two kinds of state per tenant: the rate bucket (its theoretical arrival time, see
//! [`crate::domain::quota`]) and a count of new messages per UTC day. Each call is
//! one atomic step on the backend (a conditional write, a transaction), so two
//! intake instances never both take the last request or message of a quota.

use crate::domain::TenantId;
use crate::domain::Timestamp;
use crate::domain::quota::{IntakeQuota, UtcDay};
use async_trait::async_trait;
use std::time::Duration;

/// Why a ledger call failed.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The backend failed or could not be reached; the call may be retried.
    #[error("quota ledger backend failed during {operation}")]
    Backend {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Concurrent writers kept changing the bucket under this call.
    #[error("the rate bucket kept changing during {attempts} attempts")]
    Contended {
        /// Conditional writes tried.
        attempts: usize,
    },
}

/// The rate rule's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The request is within the tenant's rate.
    Admitted,
    /// Over the rate: a request is admitted again after `retry_after`.
    Refused {
        /// Time until a request passes.
        retry_after: Duration,
    },
}

/// The tenants' intake quota state, shared by every intake instance.
#[async_trait]
pub trait QuotaLedger: Send + Sync {
    /// Take one request from `tenant`'s rate bucket at `now`, under `quota`'s rate
    /// and burst ([`crate::domain::quota::RequestRate`]).
    async fn take_request(
        &self,
        tenant: &TenantId,
        quota: &IntakeQuota,
        now: Timestamp,
    ) -> Result<Admission, QuotaError>;

    /// Count one message on `tenant`'s `day` if fewer than `limit` are counted;
    /// `false` (and nothing counted) when the day is full.
    async fn reserve_message(
        &self,
        tenant: &TenantId,
        day: UtcDay,
        limit: u32,
    ) -> Result<bool, QuotaError>;

    /// Give back one message counted on `day` (the request turned out to be a replay
    /// of a stored message); never goes below zero.
    async fn release_message(&self, tenant: &TenantId, day: UtcDay) -> Result<(), QuotaError>;

    /// Messages counted on `tenant`'s `day` (zero when none).
    async fn messages_counted(&self, tenant: &TenantId, day: UtcDay) -> Result<u64, QuotaError>;
}
