//! The webhook's traffic counters through the real handler, on SQLite and on
//! DynamoDB: each milestone once (a repeated status counts nothing), the
//! accepted→delivered time of each delivery, and the lag of each applied status.

use crate::status_path::support::*;
use serde_json::json;
use std::time::Duration;
use wa_shared::domain::TenantId;
use wa_shared::domain::series::{Minute, SeriesMetric, Span};

on_every_backend!(statuses_are_counted_once_with_their_delivery_time_and_lag);

async fn statuses_are_counted_once_with_their_delivery_time_and_lag(w: World) {
    let mut ids = Vec::new();
    for n in 0..5 {
        let wamid = format!("wamid.SERIES{n}");
        ids.push(
            w.accepted(&format!("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2S{n}"), &wamid)
                .await,
        );
    }
    w.advance(Duration::from_secs(2));
    // Meta's times: 1 s before our clock (seconds, as Meta sends them).
    let at = (w.now().as_millis() / 1000 - 1).to_string();
    for status in ["delivered", "read"] {
        let mut items = Vec::new();
        for n in 0..5 {
            let item = json!({"id": format!("wamid.SERIES{n}"), "status": status,
                "timestamp": at, "recipient_id": "16505551234"});
            items.push(item.clone());
            items.push(item);
        }
        let resp = w.post(&statuses_body(items)).await;
        assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    }
    let now = Minute::of(w.now());
    let tenant = TenantId::parse(TENANT).unwrap();
    let points = w
        .functions
        .webhook
        .ports
        .series
        .read(&tenant, now.plus(-10), now.plus(1), 1)
        .await
        .unwrap();
    let total = |want: &dyn Fn(&SeriesMetric) -> bool| -> u64 {
        points
            .iter()
            .filter(|p| want(&p.metric))
            .map(|p| p.count)
            .sum()
    };
    let on = w.backend;
    assert_eq!(total(&|m| *m == SeriesMetric::Delivered), 5, "{on}");
    assert_eq!(total(&|m| *m == SeriesMetric::Read), 5, "{on}");
    let spans = |span: Span| {
        total(&move |m| matches!(m, SeriesMetric::Latency { span: s, .. } if *s == span))
    };
    assert_eq!(spans(Span::AcceptedDelivered), 5, "{on}");
    assert_eq!(spans(Span::WebhookLag), 10, "{on}: duplicates are not lag");
    assert_eq!(w.metric("SeriesWriteFailed", &[]), 0.0);
}
