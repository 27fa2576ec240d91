use super::*;
use crate::domain::failure::{Failure, FailureClass, FailureSource};
use crate::domain::{LifecyclePolicy, MessageId, NewMessage, PhoneNumber};
use proptest::prelude::*;

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn message(created_ms: i64) -> Message {
    let new = NewMessage {
        tenant: tenant(),
        id: MessageId::generate(),
        to: PhoneNumber::parse("+14155550123").unwrap(),
        template_name: None,
        template_language: None,
        request: serde_json::json!({}),
        request_hash: "h".into(),
        metadata: None,
    };
    Message::new_queued(
        new,
        Timestamp::from_millis(created_ms),
        &LifecyclePolicy::default(),
    )
}

#[test]
fn keys_round_trip_and_foreign_keys_are_refused() {
    let mut metrics = vec![
        SeriesMetric::Accepted,
        SeriesMetric::Delivered,
        SeriesMetric::Read,
        SeriesMetric::Failed("recipient".into()),
        SeriesMetric::Suppressed("opted_out".into()),
    ];
    for span in Span::ALL {
        for bucket in 0..BUCKETS {
            metrics.push(SeriesMetric::Latency { span, bucket });
        }
    }
    for m in metrics {
        assert_eq!(SeriesMetric::parse(&m.key()), Some(m.clone()), "{m}");
    }
    assert_eq!(
        SeriesMetric::Latency {
            span: Span::QueuedAccepted,
            bucket: 4
        }
        .key(),
        "lat.queued_accepted.le_1000"
    );
    assert_eq!(
        SeriesMetric::Latency {
            span: Span::WebhookLag,
            bucket: BUCKETS - 1
        }
        .key(),
        "lag.webhook.le_inf"
    );
    for bad in [
        "",
        "sent",
        "failed.",
        "failed.Bad",
        "suppressed.a b",
        "lat.queued_accepted.le_7",
        "lat.queued_accepted",
        "lag.webhook.le_",
    ] {
        assert_eq!(SeriesMetric::parse(bad), None, "{bad}");
    }
}

#[test]
fn buckets_are_inclusive_upper_bounds() {
    assert_eq!(bucket_of(-5), 0);
    assert_eq!(bucket_of(50), 0);
    assert_eq!(bucket_of(51), 1);
    assert_eq!(bucket_of(1_000), 4);
    assert_eq!(bucket_of(3_600_000), LATENCY_BOUNDS_MS.len() - 1);
    assert_eq!(bucket_of(3_600_001), LATENCY_BOUNDS_MS.len());
}

#[test]
fn percentiles_come_from_bucket_counts() {
    let mut b = [0u64; BUCKETS];
    assert_eq!(percentile(&b, 0.5), None);
    b[bucket_of(80)] = 90; // 90 fast ones
    b[bucket_of(4_000)] = 9;
    b[BUCKETS - 1] = 1;
    assert_eq!(percentile(&b, 0.5), Some(Percentile::AtMost(100)));
    assert_eq!(percentile(&b, 0.9), Some(Percentile::AtMost(100)));
    assert_eq!(percentile(&b, 0.95), Some(Percentile::AtMost(5_000)));
    assert_eq!(percentile(&b, 0.99), Some(Percentile::AtMost(5_000)));
    assert_eq!(percentile(&b, 1.0), Some(Percentile::Above(3_600_000)));
}

#[test]
fn an_accept_counts_and_times_from_creation() {
    let m = message(1_000);
    let now = Timestamp::from_millis(61_500);
    let points = accepted(&m, now);
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].metric, SeriesMetric::Accepted);
    assert_eq!(points[0].minute, Minute::from_index(1));
    assert_eq!(
        points[1].metric,
        SeriesMetric::Latency {
            span: Span::QueuedAccepted,
            bucket: bucket_of(60_500)
        }
    );
}

#[test]
fn a_read_that_skipped_delivered_counts_both_and_the_lag() {
    let mut m = message(0);
    m.state = MessageState::Read;
    m.timestamps.accepted_at = Some(Timestamp::from_millis(100));
    m.timestamps.read_at = Some(Timestamp::from_millis(900));
    let now = Timestamp::from_millis(2_000);
    let points = advanced(
        &m,
        ProviderStatusKind::Read,
        Some(Timestamp::from_millis(1_000)),
        now,
    );
    let metrics: Vec<_> = points.iter().map(|p| p.metric.clone()).collect();
    assert_eq!(
        metrics,
        vec![
            SeriesMetric::Delivered,
            SeriesMetric::Read,
            SeriesMetric::Latency {
                span: Span::WebhookLag,
                bucket: bucket_of(1_000)
            }
        ]
    );
}

#[test]
fn a_delivery_times_accepted_to_delivered_and_a_failure_counts_its_class() {
    let mut m = message(0);
    m.state = MessageState::Delivered;
    m.timestamps.accepted_at = Some(Timestamp::from_millis(100));
    m.timestamps.delivered_at = Some(Timestamp::from_millis(2_100));
    let points = advanced(
        &m,
        ProviderStatusKind::Delivered,
        None,
        Timestamp::from_millis(3_000),
    );
    assert_eq!(points[0].metric, SeriesMetric::Delivered);
    assert_eq!(
        points[1].metric,
        SeriesMetric::Latency {
            span: Span::AcceptedDelivered,
            bucket: bucket_of(2_000)
        }
    );
    assert_eq!(points.len(), 2, "no status time, no lag");

    m.state = MessageState::Failed;
    m.failure = Some(Failure {
        class: FailureClass::Recipient,
        code: Some(131026),
        title: "undeliverable".into(),
        detail: None,
        source: FailureSource::Webhook,
    });
    let points = advanced(
        &m,
        ProviderStatusKind::Failed,
        None,
        Timestamp::from_millis(3_000),
    );
    assert_eq!(points[0].metric, SeriesMetric::Failed("recipient".into()));
}

#[test]
fn grids_cover_the_last_hour_by_minute_and_the_last_day_by_hour() {
    let now = Timestamp::from_millis(10 * 86_400_000 + 3 * 3_600_000 + 17 * 60_000 + 5);
    let hour = Grid::hour_by_minute(now);
    assert_eq!(hour.slot(Minute::of(now)), Some(59));
    assert_eq!(hour.slot(Minute::of(now).plus(-59)), Some(0));
    assert_eq!(hour.slot(Minute::of(now).plus(-60)), None);
    assert_eq!(hour.slot(Minute::of(now).plus(1)), None);
    assert_eq!(hour.until(), Minute::of(now).plus(1));
    let day = Grid::day_by_hour(now);
    assert_eq!(day.slot(Minute::of(now)), Some(23));
    assert_eq!(day.slot(Minute::of(now).hour_start()), Some(23));
    assert_eq!(day.slot(Minute::of(now).hour_start().plus(-1)), Some(22));
    assert_eq!(day.slot(day.from), Some(0));
    assert_eq!(day.slot(day.from.plus(-1)), None);
    assert!(day.until() > Minute::of(now));
}

#[test]
fn folding_sums_tenants_and_minutes_into_slots() {
    let now = Timestamp::from_millis(7_200_000);
    let day = Grid::day_by_hour(now);
    let other = TenantId::parse("globex").unwrap();
    let at = Minute::of(now).start();
    let points = [
        SeriesPoint::one(&tenant(), at, SeriesMetric::Accepted),
        SeriesPoint::one(&other, at.plus_millis(-60_000), SeriesMetric::Accepted),
        SeriesPoint::one(&other, at, SeriesMetric::Failed("tenant".into())),
        SeriesPoint::timed(&other, at, Span::QueuedAccepted, 300),
        SeriesPoint::timed(&other, at, Span::QueuedAccepted, 300),
        SeriesPoint::timed(&other, at, Span::QueuedAccepted, 20_000),
    ];
    let folded = day.fold(&points);
    let accepted = folded.row(&SeriesMetric::Accepted);
    assert_eq!(accepted[23], 1);
    assert_eq!(accepted[22], 1);
    assert_eq!(accepted.iter().sum::<u64>(), 2);
    assert_eq!(
        folded.by_label(false),
        vec![("tenant".into(), {
            let mut r = vec![0; 24];
            r[23] = 1;
            r
        })]
    );
    assert!(folded.by_label(true).is_empty());
    let p50 = folded.percentiles(Span::QueuedAccepted, 0.5);
    assert_eq!(p50[23], Some(500));
    assert_eq!(p50[0], None);
    assert_eq!(
        folded.percentiles(Span::QueuedAccepted, 0.99)[23],
        Some(30_000)
    );
    assert_eq!(folded.observations(Span::QueuedAccepted), 3);
}

proptest! {
    #[test]
    fn a_percentile_bounds_the_share_of_observations_below_it(
        values in proptest::collection::vec(0i64..5_000_000, 1..200),
        q in 0.01f64..=1.0,
    ) {
        let mut b = [0u64; BUCKETS];
        for v in &values {
            b[bucket_of(*v)] += 1;
        }
        let p = percentile(&b, q).unwrap();
        let below = values.iter().filter(|v| **v <= p.millis()).count() as f64;
        if let Percentile::AtMost(_) = p {
            // At least q of the observations are at or below the bound.
            prop_assert!(below >= (q * values.len() as f64).ceil() - 1e-9);
        }
        // Monotone in q.
        let lower = percentile(&b, q / 2.0).unwrap();
        prop_assert!(lower.millis() <= p.millis());
    }

    #[test]
    fn every_minute_of_a_grid_lands_in_exactly_its_slot(now in 0i64..4_000_000_000_000, back in 0i64..3_000) {
        let now = Timestamp::from_millis(now);
        for grid in [Grid::hour_by_minute(now), Grid::day_by_hour(now)] {
            let m = Minute::of(now).plus(-back);
            match grid.slot(m) {
                Some(s) => {
                    prop_assert!(grid.slot_start(s) <= m);
                    prop_assert!(m < grid.slot_start(s).plus(grid.step));
                }
                None => prop_assert!(m < grid.from || m >= grid.until()),
            }
        }
    }
}
