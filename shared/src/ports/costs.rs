//! `CostLedger`: what Meta's status webhooks say each tenant's messages cost
//! (issue 17 point 2; docs/data-model.md).
//!
//! A status's `pricing` is counted once per message and category on the tenant's UTC
//! day ([`PricedStatus`]), whatever number of times and in whatever order its statuses
//! arrive (Meta puts `pricing` on `sent` and again on `delivered` or `read`, and
//! retries webhooks): each adapter keeps a marker per (tenant, message, category) and
//! raises the counter only in the same atomic step that writes the marker.

use crate::domain::TenantId;
use crate::domain::costs::{CostCount, PricedStatus};
use crate::domain::quota::UtcDay;
use async_trait::async_trait;

/// The longest period [`CostLedger::cost_totals`] reads at once (a year and a day).
pub const MAX_COST_DAYS: usize = 367;

/// Why a ledger call failed.
#[derive(Debug, thiserror::Error)]
pub enum CostLedgerError {
    /// The backend failed or could not be reached; the call may be retried.
    #[error("cost ledger backend failed during {operation}")]
    Backend {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The period asked for is empty or longer than [`MAX_COST_DAYS`].
    #[error("the period from {since} until {until} is not 1 to {MAX_COST_DAYS} days")]
    Period {
        /// First day (inclusive).
        since: UtcDay,
        /// Last day (exclusive).
        until: UtcDay,
    },
    /// A stored counter could not be read back (a key or value not of ours).
    #[error("a stored cost counter is not readable: {0}")]
    Corrupt(String),
}

/// The tenants' message costs, counted from status webhooks.
#[async_trait]
pub trait CostLedger: Send + Sync {
    /// Count `status` unless its message was already counted in its category:
    /// `true` when counted now, `false` when it had been (a repeated or reordered
    /// status). The marker and the counter change together or not at all.
    async fn record_pricing(&self, status: &PricedStatus) -> Result<bool, CostLedgerError>;

    /// The counters of `tenant` from day `since` (inclusive) to `until` (exclusive),
    /// every non-zero one, ordered by day, category, billable, calling code.
    async fn cost_totals(
        &self,
        tenant: &TenantId,
        since: UtcDay,
        until: UtcDay,
    ) -> Result<Vec<CostCount>, CostLedgerError>;
}

/// The days of a `cost_totals` call, checked against [`MAX_COST_DAYS`].
pub fn period_days(since: UtcDay, until: UtcDay) -> Result<Vec<UtcDay>, CostLedgerError> {
    let days = crate::domain::costs::days(since, until);
    if days.is_empty() || days.len() > MAX_COST_DAYS {
        return Err(CostLedgerError::Period { since, until });
    }
    Ok(days)
}
