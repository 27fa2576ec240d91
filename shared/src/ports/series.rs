//! `TrafficSeries`: per-minute counters of the tenants' traffic (transitions,
//! latency and webhook-lag histograms; [`crate::domain::series`]), kept by the
//! store so the status page's charts never scan messages (issue 17 point 1).
//!
//! Counts only ever grow (`count = count + n`); two days of minutes are kept
//! ([`KEEP_MINUTES`](crate::domain::series::KEEP_MINUTES)): TTL on DynamoDB,
//! pruning on SQLite. A failed write loses counts, never a message: callers log it
//! and go on.

use crate::domain::TenantId;
use crate::domain::series::{Minute, SeriesPoint};
use async_trait::async_trait;

/// The most minutes [`TrafficSeries::read`] reads at once (the kept two days).
pub const MAX_SERIES_MINUTES: i64 = crate::domain::series::KEEP_MINUTES;

/// Why a series call failed.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// The backend failed or could not be reached; the call may be retried.
    #[error("traffic series backend failed during {operation}")]
    Backend {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The minutes asked for are empty or more than [`MAX_SERIES_MINUTES`].
    #[error("the minutes {from}..{until} are not 1 to {MAX_SERIES_MINUTES} minutes")]
    Range {
        /// First minute (inclusive), minutes since the epoch.
        from: i64,
        /// Last minute (exclusive).
        until: i64,
    },
}

/// The tenants' per-minute traffic counters.
#[async_trait]
pub trait TrafficSeries: Send + Sync {
    /// Add each point's count to its (tenant, minute, metric) counter.
    async fn record(&self, points: &[SeriesPoint]) -> Result<(), SeriesError>;

    /// `tenant`'s non-zero counters from `from` (inclusive) to `until` (exclusive),
    /// summed per `step` minutes (a point's minute is its step's first, `from` plus a
    /// multiple of `step`; a step under 1 counts as 1), ordered by minute then metric
    /// key; unknown stored keys are skipped.
    async fn read(
        &self,
        tenant: &TenantId,
        from: Minute,
        until: Minute,
        step: i64,
    ) -> Result<Vec<SeriesPoint>, SeriesError>;
}

/// The first minute of the `step` holding `minute`, counted from `from`.
pub fn step_start(from: Minute, minute: Minute, step: i64) -> Minute {
    let step = step.max(1);
    from.plus((minute.index() - from.index()).div_euclid(step) * step)
}

/// `from..until` checked against [`MAX_SERIES_MINUTES`].
pub fn check_range(from: Minute, until: Minute) -> Result<(), SeriesError> {
    let n = until.index().saturating_sub(from.index());
    if !(1..=MAX_SERIES_MINUTES).contains(&n) {
        return Err(SeriesError::Range {
            from: from.index(),
            until: until.index(),
        });
    }
    Ok(())
}

/// A series that keeps nothing and reads nothing: the ports of functions that record
/// no traffic (intake, the reconciler, the events and delivery functions on AWS).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSeries;

#[async_trait]
impl TrafficSeries for NoSeries {
    async fn record(&self, _points: &[SeriesPoint]) -> Result<(), SeriesError> {
        Ok(())
    }

    async fn read(
        &self,
        _tenant: &TenantId,
        from: Minute,
        until: Minute,
        _step: i64,
    ) -> Result<Vec<SeriesPoint>, SeriesError> {
        check_range(from, until)?;
        Ok(Vec::new())
    }
}
