//! The sender's traffic counters: an accept is counted with its queued→accepted time
//! in the accept's minute, and a series that fails never fails the send (it is
//! logged and counted as `SeriesWriteFailed`).

use crate::send_path::support::*;
use std::sync::Arc;
use std::time::Duration;
use wa_shared::domain::series::{Minute, SeriesMetric, SeriesPoint, Span, bucket_of};
use wa_shared::domain::{MessageState, TenantId};
use wa_shared::ports::{SeriesError, TrafficSeries};

/// A series whose every call fails.
struct BrokenSeries;

#[async_trait::async_trait]
impl TrafficSeries for BrokenSeries {
    async fn record(&self, _: &[SeriesPoint]) -> Result<(), SeriesError> {
        Err(SeriesError::Backend {
            operation: "record",
            source: "the series is down".into(),
        })
    }

    async fn read(
        &self,
        _: &TenantId,
        _: Minute,
        _: Minute,
        _: i64,
    ) -> Result<Vec<SeriesPoint>, SeriesError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn an_accept_counts_once_with_its_queued_to_accepted_time() {
    let p = Pipeline::new(Arc::new(ScriptedProvider::default())).await;
    let id = p.queue_template("+14155550123", "series-1").await;
    p.clock.advance(Duration::from_millis(1_500));
    assert!(p.send(p.receive().await).await.is_empty());
    assert_eq!(p.stored(&id).await.state, MessageState::Accepted);

    let now = Minute::of(p.clock_now());
    let demo = TenantId::parse("demo").unwrap();
    let points = p
        .functions
        .sender
        .ports
        .series
        .read(&demo, now.plus(-5), now.plus(1), 1)
        .await
        .unwrap();
    let metrics: Vec<_> = points.iter().map(|p| (p.metric.clone(), p.count)).collect();
    assert!(
        metrics.contains(&(SeriesMetric::Accepted, 1)),
        "{metrics:?}"
    );
    assert!(
        metrics.contains(&(
            SeriesMetric::Latency {
                span: Span::QueuedAccepted,
                bucket: bucket_of(1_500)
            },
            1
        )),
        "{metrics:?}"
    );
    assert_eq!(p.metric("SeriesWriteFailed", &[]), 0.0);
}

#[tokio::test]
async fn a_failing_series_never_fails_the_send() {
    let mut p = Pipeline::new(Arc::new(ScriptedProvider::default())).await;
    p.functions.sender.ports = p.functions.sender.ports.with_series(Arc::new(BrokenSeries));
    let id = p.queue_template("+14155550123", "series-2").await;
    p.clock.advance(Duration::from_millis(1_500));
    assert!(p.send(p.receive().await).await.is_empty());
    assert_eq!(p.stored(&id).await.state, MessageState::Accepted);
    assert_eq!(p.metric("Accepted", &[("Tenant", "demo")]), 1.0);
    assert_eq!(p.metric("SeriesWriteFailed", &[("Tenant", "demo")]), 1.0);
}
