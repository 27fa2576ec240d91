//! Recording traffic counters ([`crate::ports::TrafficSeries`]) at a transition, for
//! the sender and the webhook alike: a failed write never fails the pipeline, it is
//! logged with its tenant and counted (`SeriesWriteFailed`).

use super::Ports;
use crate::app::errors::ErrorChain;
use crate::domain::series::SeriesPoint;
use tracing::warn;

/// Add `points` to the series; on failure log and count `SeriesWriteFailed` per tenant.
pub(crate) async fn record(ports: &Ports, points: &[SeriesPoint]) {
    if points.is_empty() {
        return;
    }
    if let Err(e) = ports.series.record(points).await {
        let tenant = points[0].tenant.as_str();
        warn!(tenant, points = points.len(), error = %ErrorChain(&e), "traffic series write failed; the charts miss these counts");
        ports
            .metrics
            .count("SeriesWriteFailed", &[("Tenant", tenant)]);
    }
}
