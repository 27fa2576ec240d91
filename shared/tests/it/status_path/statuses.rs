//! Status webhooks through the real handler: every kind, duplicates, out of order,
//! concurrency, and the lost-answer send matched by its callback data. The cases in
//! `on_every_backend!` run on SQLite (`sqlite::`) and on DynamoDB + SQS (`dynamo::`).

use crate::status_path::support::*;
use serde_json::json;
use std::sync::Arc;
use wa_shared::app::http::body_bytes;
use wa_shared::app::webhook::handle_http;
use wa_shared::domain::failure::{FailureClass, FailureSource};
use wa_shared::domain::graph::CallbackData;
use wa_shared::domain::lifecycle::flags;
use wa_shared::domain::webhook::parse_envelope;
use wa_shared::domain::{MessageId, MessageState, Timestamp};

on_every_backend!(
    every_status_kind_moves_the_message_and_stamps_metas_time,
    a_failed_status_stores_class_code_title_and_details,
    the_same_status_twice_changes_nothing_but_the_duplicate_counter,
    read_before_delivered_before_sent_ends_read_with_every_timestamp,
    failed_after_delivered_is_recorded_and_flagged_but_keeps_delivered,
    thirty_statuses_in_random_order_from_eight_concurrent_requests_end_right,
    a_send_whose_answer_was_lost_is_matched_by_its_callback_data_and_ends_delivered,
    a_status_without_our_callback_data_is_found_by_its_wamid,
    a_status_for_an_unknown_message_is_counted_and_acknowledged,
    a_body_of_many_statuses_applies_each_once_whatever_their_order,
);

/// One body with a `delivered` and a `read` of 40 messages, shuffled, and each repeated
/// (Meta batches up to 1,000 and duplicates): the statuses are applied concurrently
/// and every message ends `read`, each milestone counted once.
async fn a_body_of_many_statuses_applies_each_once_whatever_their_order(mut w: World) {
    const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut ids = Vec::new();
    let mut items = Vec::new();
    for n in 0..40usize {
        let suffix = format!("{}{}", CROCKFORD[n / 32] as char, CROCKFORD[n % 32] as char);
        let wamid = format!("wamid.MANY{n:02}");
        ids.push(
            w.accepted(&format!("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2{suffix}"), &wamid)
                .await,
        );
        for (status, secs) in [("delivered", 1_750_030_200), ("read", 1_750_030_300)] {
            let item = json!({"id": wamid, "status": status, "timestamp": secs.to_string(),
                "recipient_id": "16505551234"});
            items.push(item.clone());
            items.push(item);
        }
    }
    // A fixed shuffle: reads before deliveries, duplicates apart.
    items.reverse();
    let half = items.len() / 2;
    items.rotate_left(half / 3);
    // moto answers far slower than DynamoDB: no apply budget, so this checks the
    // concurrent application, not the parking (tested in `inbox`).
    w.functions.webhook.settings.apply_budget = None;
    let resp = w.post(&statuses_body(items)).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    let parked = w.inbox_event().await;
    assert!(
        parked.records.is_empty(),
        "applied, not parked, on {}",
        w.backend
    );
    for id in &ids {
        let m = w.message(id).await;
        assert_eq!(m.state, MessageState::Read, "{id} on {}", w.backend);
        assert!(m.timestamps.delivered_at.is_some());
    }
    let tenant = [("Tenant", TENANT)];
    assert_eq!(w.metric("Read", &tenant), 40.0);
    assert_eq!(
        w.metric("Delivered", &tenant),
        40.0,
        "once each, on {}",
        w.backend
    );
    assert_eq!(w.metric("DuplicateWebhook", &tenant), 80.0);
}

/// Create the message a fixture's status is about (tenant and id from its callback data).
async fn message_for_fixture(w: &World, path: &str) -> (MessageId, Timestamp) {
    let req = signed_event(path);
    let batch = parse_envelope(&body_bytes(&req).unwrap()).unwrap();
    let status = batch.statuses().next().unwrap();
    let cb = CallbackData::decode(status.biz_opaque_callback_data.as_deref().unwrap()).unwrap();
    assert_eq!(cb.tenant.as_str(), TENANT);
    let id = w
        .accepted(cb.message_id.as_str(), status.wamid.as_str())
        .await;
    (id, status.timestamp.unwrap())
}

async fn every_status_kind_moves_the_message_and_stamps_metas_time(w: World) {
    use MessageState::*;
    let cases = [
        ("sent", Sent),
        ("delivered", Delivered),
        ("read", Read),
        ("played", Read),
        ("failed", Failed),
    ];
    for (n, (status, state)) in cases.into_iter().enumerate() {
        let wamid = format!("wamid.K{n}");
        let id = w
            .accepted(&format!("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2K{n}"), &wamid)
            .await;
        let secs = 1_750_030_100 + n as i64;
        let cb = format!("wa1:{TENANT}:{id}");
        let resp = w.post(&status_body(&wamid, status, secs, Some(&cb))).await;
        assert_eq!(status_code(&resp), 200, "{status}: {}", body_text(&resp));
        let m = w.message(&id).await;
        assert_eq!(m.state, state, "{status} on {}", w.backend);
        let stamped = match state {
            Sent => m.timestamps.sent_at,
            Delivered => m.timestamps.delivered_at,
            Read => m.timestamps.read_at,
            _ => m.timestamps.failed_at,
        };
        assert_eq!(stamped, Some(Timestamp::from_secs(secs)), "{status}");
        assert!(
            m.history.contains_key(&format!("webhook.{status}:{wamid}")),
            "{status}: {:?}",
            m.history.keys()
        );
        // Only `sent` still waits for more webhooks: the rest leave the sweep index.
        assert_eq!(m.sweep_key.is_some(), state == Sent, "{status}");
    }
    // What happened, not the state reached: a message Meta reports only `delivered`
    // was also sent, one reported only `read` (or `played`) was sent and delivered.
    assert_eq!(w.metric("Sent", &[("Tenant", TENANT)]), 4.0);
    assert_eq!(w.metric("Delivered", &[("Tenant", TENANT)]), 3.0);
    assert_eq!(w.metric("Read", &[("Tenant", TENANT)]), 2.0);
    assert_eq!(w.metric("Failed", &[("Tenant", TENANT)]), 1.0);
}

/// Each `events/webhook/post-status-*.json` moves the message it names.
#[tokio::test]
async fn every_status_fixture_moves_the_message_it_names() {
    let cases = [
        ("webhook/post-status-sent.json", MessageState::Sent, "Sent"),
        (
            "webhook/post-status-delivered.json",
            MessageState::Delivered,
            "Delivered",
        ),
        ("webhook/post-status-read.json", MessageState::Read, "Read"),
        (
            "webhook/post-status-played.json",
            MessageState::Read,
            "Read",
        ),
        (
            "webhook/post-status-failed.json",
            MessageState::Failed,
            "Failed",
        ),
    ];
    for (path, state, metric) in cases {
        let w = World::new().await;
        let (id, meta_time) = message_for_fixture(&w, path).await;
        let resp = handle_http(&w.functions.webhook, &signed_event(path)).await;
        assert_eq!(status_code(&resp), 200, "{path}: {}", body_text(&resp));
        let m = w.message(&id).await;
        assert_eq!(m.state, state, "{path}");
        let stamped = match state {
            MessageState::Sent => m.timestamps.sent_at,
            MessageState::Delivered => m.timestamps.delivered_at,
            MessageState::Read => m.timestamps.read_at,
            _ => m.timestamps.failed_at,
        };
        assert_eq!(stamped, Some(meta_time), "{path}");
        assert_eq!(w.metric(metric, &[("Tenant", TENANT)]), 1.0, "{path}");
        assert!(
            m.sweep_key.is_some() == matches!(state, MessageState::Sent),
            "{path}"
        );
    }
}

async fn a_failed_status_stores_class_code_title_and_details(w: World) {
    let path = "webhook/post-status-failed.json";
    let (id, _) = message_for_fixture(&w, path).await;
    assert_eq!(
        status_code(&handle_http(&w.functions.webhook, &signed_event(path)).await),
        200
    );
    let m = w.message(&id).await;
    let f = m.failure.unwrap();
    assert_eq!(f.class, FailureClass::Recipient);
    assert_eq!(f.code, Some(131026));
    assert_eq!(f.title, "Message undeliverable");
    assert_eq!(f.detail.as_deref(), Some("Message Undeliverable."));
    assert_eq!(f.source, FailureSource::Webhook);
    assert_eq!(
        w.metric("Failed", &[("Tenant", TENANT), ("Class", "recipient")]),
        1.0
    );
    let entry = m
        .history
        .values()
        .find(|e| e.event == "webhook.failed")
        .unwrap();
    assert_eq!(
        entry.detail.as_ref().unwrap()["provider"]["errors"][0]["code"],
        131026
    );
}

#[tokio::test]
async fn pricing_and_conversation_are_kept_in_the_history_entry() {
    let w = World::new().await;
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2P1", "wamid.P1")
        .await;
    let mut item = json!({"id": "wamid.P1", "status": "sent", "timestamp": "1750030000",
        "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"},
        "conversation": {"id": "conv-1", "origin": {"type": "utility"}}});
    item["recipient_id"] = json!("16505551234");
    assert_eq!(status_code(&w.post(&statuses_body(vec![item])).await), 200);
    let m = w.message(&id).await;
    let entry = m.history.get("webhook.sent:wamid.P1").unwrap();
    let provider = &entry.detail.as_ref().unwrap()["provider"];
    assert_eq!(provider["pricing"]["category"], "utility");
    assert_eq!(provider["pricing"]["pricing_model"], "PMP");
    assert_eq!(provider["conversation"]["id"], "conv-1");
}

async fn the_same_status_twice_changes_nothing_but_the_duplicate_counter(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2D1", "wamid.D1")
        .await;
    let body = status_body("wamid.D1", "delivered", 1_750_030_000, None);
    assert_eq!(status_code(&w.post(&body).await), 200);
    let once = w.message(&id).await;
    w.advance(std::time::Duration::from_secs(60));
    assert_eq!(status_code(&w.post(&body).await), 200);
    assert_eq!(w.message(&id).await, once);
    assert_eq!(w.metric("DuplicateWebhook", &[("Tenant", TENANT)]), 1.0);
    assert_eq!(w.metric("Delivered", &[("Tenant", TENANT)]), 1.0);
}

async fn read_before_delivered_before_sent_ends_read_with_every_timestamp(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2N1", "wamid.O1")
        .await;
    for (status, secs) in [
        ("read", 1_750_030_300),
        ("delivered", 1_750_030_200),
        ("sent", 1_750_030_100),
    ] {
        assert_eq!(
            status_code(&w.post(&status_body("wamid.O1", status, secs, None)).await),
            200
        );
    }
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Read);
    assert_eq!(
        m.timestamps.read_at,
        Some(Timestamp::from_secs(1_750_030_300))
    );
    assert_eq!(
        m.timestamps.delivered_at,
        Some(Timestamp::from_secs(1_750_030_200))
    );
    assert_eq!(
        m.timestamps.sent_at,
        Some(Timestamp::from_secs(1_750_030_100))
    );
    assert_eq!(w.metric("OutOfOrderWebhook", &[("Tenant", TENANT)]), 2.0);
    assert!(m.sweep_key.is_none());
}

async fn failed_after_delivered_is_recorded_and_flagged_but_keeps_delivered(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2F1", "wamid.F1")
        .await;
    w.post(&status_body("wamid.F1", "delivered", 1_750_030_100, None))
        .await;
    let resp = w
        .post(&status_body("wamid.F1", "failed", 1_750_030_200, None))
        .await;
    assert_eq!(status_code(&resp), 200);
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Delivered);
    assert!(m.failure.is_none());
    assert!(m.flags.contains(flags::FAILED_AFTER_DELIVERED));
    assert!(m.history.contains_key("webhook.failed:wamid.F1"));
}

async fn thirty_statuses_in_random_order_from_eight_concurrent_requests_end_right(w: World) {
    let w = Arc::new(w);
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2C1", "wamid.C1")
        .await;
    let cb = format!("wa1:{TENANT}:{id}");
    let kinds = [
        ("sent", 1_750_030_100),
        ("delivered", 1_750_030_200),
        ("read", 1_750_030_300),
    ];
    let mut items: Vec<_> = (0..30).map(|i| kinds[i % 3]).collect();
    // Deterministic shuffle (xorshift), so a failure reproduces.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    let mut tasks = Vec::new();
    for chunk in items.chunks(items.len().div_ceil(8)) {
        let body = statuses_body(
            chunk
                .iter()
                .map(|(status, secs)| {
                    json!({"id": "wamid.C1", "status": status,
                    "timestamp": secs.to_string(), "biz_opaque_callback_data": cb})
                })
                .collect(),
        );
        let w = w.clone();
        tasks.push(tokio::spawn(async move { w.post(&body).await.status_code }));
    }
    assert_eq!(tasks.len(), 8);
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Read);
    assert_eq!(
        m.timestamps.sent_at,
        Some(Timestamp::from_secs(1_750_030_100))
    );
    assert_eq!(
        m.timestamps.delivered_at,
        Some(Timestamp::from_secs(1_750_030_200))
    );
    assert_eq!(
        m.timestamps.read_at,
        Some(Timestamp::from_secs(1_750_030_300))
    );
    let webhook_entries = m
        .history
        .keys()
        .filter(|k| k.starts_with("webhook."))
        .count();
    assert_eq!(webhook_entries, 3);
    assert_eq!(w.metric("DuplicateWebhook", &[("Tenant", TENANT)]), 27.0);
}

async fn a_send_whose_answer_was_lost_is_matched_by_its_callback_data_and_ends_delivered(w: World) {
    // Accept-then-timeout: Meta took the request, the sender never saw the wamid.
    let id = w.ambiguous("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2M1").await;
    assert!(w.message(&id).await.wamid.is_none());
    let cb = format!("wa1:{TENANT}:{id}");
    for (status, secs) in [("sent", 1_750_030_100), ("delivered", 1_750_030_200)] {
        let resp = w
            .post(&status_body("wamid.LOST1", status, secs, Some(&cb)))
            .await;
        assert_eq!(status_code(&resp), 200);
    }
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Delivered);
    assert_eq!(m.wamid.as_ref().map(|w| w.as_str()), Some("wamid.LOST1"));
    assert_eq!(m.attempt, 1, "never sent twice");
    // Later, the reconciler finds nothing to resolve: the webhook won.
    w.advance(w.ports.lifecycle.ambiguous_grace * 2);
    let report = wa_shared::app::reconciler::run(&w.functions.reconciler)
        .await
        .unwrap();
    assert!(report.actions.is_empty(), "{report:?}");
    assert!(w.drain(&w.send_queue).await.is_empty());
    assert_eq!(w.message(&id).await.state, MessageState::Delivered);
}

async fn a_status_without_our_callback_data_is_found_by_its_wamid(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2W1", "wamid.W1")
        .await;
    let resp = w
        .post(&status_body(
            "wamid.W1",
            "sent",
            1_750_030_100,
            Some("someone-elses-data"),
        ))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(w.message(&id).await.state, MessageState::Sent);
}

async fn a_status_for_an_unknown_message_is_counted_and_acknowledged(w: World) {
    let resp = w
        .post(&status_body(
            "wamid.NOBODY",
            "delivered",
            1_750_030_100,
            None,
        ))
        .await;
    assert_eq!(status_code(&resp), 200);
    let cb = format!("wa1:{TENANT}:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2ZZ");
    let resp = w
        .post(&status_body(
            "wamid.NOBODY2",
            "read",
            1_750_030_100,
            Some(&cb),
        ))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(w.metric("UnknownMessageStatus", &[]), 2.0);
}

#[tokio::test]
async fn a_batch_of_statuses_from_the_fixture_applies_each_one() {
    let w = World::new().await;
    let req = signed_event("webhook/post-statuses-batch.json");
    let batch = parse_envelope(&body_bytes(&req).unwrap()).unwrap();
    let mut ids = Vec::new();
    for s in batch.statuses() {
        let Some(cb) = s
            .biz_opaque_callback_data
            .as_deref()
            .and_then(|d| CallbackData::decode(d).ok())
        else {
            continue;
        };
        if cb.tenant.as_str() == TENANT && !ids.contains(&cb.message_id) {
            w.accepted(cb.message_id.as_str(), s.wamid.as_str()).await;
            ids.push(cb.message_id);
        }
    }
    assert_eq!(ids.len(), 4);
    assert_eq!(
        status_code(&handle_http(&w.functions.webhook, &req).await),
        200
    );
    let states: Vec<MessageState> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(w.message(id).await.state);
        }
        v
    };
    use MessageState::*;
    // The fourth status names demo's message but comes from a number demo does not own
    // (another number of its WABA, not in its profile), and the last two come from a
    // number nobody here owns: verified routing ignores all three, counted, not errors.
    assert_eq!(states, vec![Sent, Delivered, Read, Accepted]);
    assert_eq!(w.metric("UnroutedWebhook", &[]), 3.0);
    assert_eq!(w.metric("UnknownMessageStatus", &[]), 0.0);
}
