//! Durability: a store failure parks the signed body on the inbox, the inbox replay
//! applies it, and when parking fails too Meta gets a 500 and retries. On DynamoDB +
//! SQS (`dynamo::`) the inbox is a real SQS queue and the replay a real redelivery.

use crate::status_path::support::*;
use wa_shared::app::webhook::{ParkedBody, handle_inbox};
use wa_shared::domain::{MessageState, Timestamp};
use wa_shared::ports::QueueRef;

on_every_backend!(
    a_store_failure_parks_the_signed_body_and_the_replay_applies_it,
    when_parking_fails_too_the_answer_is_500_so_meta_retries,
    a_parked_body_whose_signature_does_not_verify_is_not_applied,
    a_body_not_applied_within_the_budget_is_parked_and_its_replay_applies_the_rest,
    a_body_too_large_for_one_inbox_message_is_parked_in_signed_parts,
);

/// A 2.7 MB body (Meta sends up to 3 MB) cannot be parked as one SQS message (256 KiB):
/// it is parked as several envelopes, each signed like Meta's, and replaying them all
/// applies every status of the body.
async fn a_body_too_large_for_one_inbox_message_is_parked_in_signed_parts(w: World) {
    let ids = [
        ("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2N1", "wamid.L1"),
        ("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2N2", "wamid.L2"),
        ("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2N3", "wamid.L3"),
    ];
    let mut messages = Vec::new();
    for (id, wamid) in ids {
        messages.push(w.accepted(id, wamid).await);
    }
    // 300 statuses of 9 KB each (Meta's padding here: an unknown field); ours are the
    // first, the middle and the last.
    let statuses: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            let wamid = match i {
                0 => "wamid.L1".to_owned(),
                150 => "wamid.L2".to_owned(),
                299 => "wamid.L3".to_owned(),
                _ => format!("wamid.OTHER{i:04}"),
            };
            serde_json::json!({"id": wamid, "status": "delivered", "timestamp": "1750030200",
                "recipient_id": "16505551234", "padding": "p".repeat(9_000)})
        })
        .collect();
    let body = statuses_body(statuses);
    assert!(body.len() > 2_600_000, "{}", body.len());
    w.store_down(true);
    let resp = w.post(&body).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    w.store_down(false);

    let mut parts = 0;
    loop {
        let event = w.inbox_event().await;
        if event.records.is_empty() {
            break;
        }
        parts += event.records.len();
        let failures: Vec<String> = handle_inbox(&w.functions.webhook, event.clone())
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert!(failures.is_empty(), "on {}: {failures:?}", w.backend);
        w.settle(&w.inbox, &event, &[]).await;
    }
    assert!(parts >= 11, "parked in {parts} parts on {}", w.backend);
    for id in messages {
        assert_eq!(
            w.message(&id).await.state,
            MessageState::Delivered,
            "on {}",
            w.backend
        );
    }
}

/// A body that outlives the apply budget (here: none at all left after the first
/// event) is parked whole and answered 200. Its replay has the same budget: out of
/// time, it parks the body again with the count of events applied (and acknowledges
/// the record, so no receive count is spent), and the next replay resumes there.
async fn a_body_not_applied_within_the_budget_is_parked_and_its_replay_applies_the_rest(
    mut w: World,
) {
    let first = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2J7", "wamid.I7")
        .await;
    let second = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2J8", "wamid.I8")
        .await;
    let body = statuses_body(vec![
        serde_json::json!({"id": "wamid.I7", "status": "delivered", "timestamp": "1750030200",
            "recipient_id": "16505551234"}),
        serde_json::json!({"id": "wamid.I8", "status": "delivered", "timestamp": "1750030201",
            "recipient_id": "16505551234"}),
    ]);
    w.functions.webhook.settings.apply_budget = Some(std::time::Duration::ZERO);
    let resp = w.post(&body).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    assert_eq!(w.message(&first).await.state, MessageState::Accepted);
    assert_eq!(w.message(&second).await.state, MessageState::Accepted);
    assert_eq!(w.metric("WebhookParkedOutOfTime", &[]), 1.0);

    // A replay with no time left: parked again as it was, the record acknowledged.
    let event = w.inbox_event().await;
    assert_eq!(event.records.len(), 1, "parked whole, once");
    let failures = handle_inbox(&w.functions.webhook, event.clone())
        .await
        .batch_item_failures;
    assert!(failures.is_empty(), "out of time is not a failure");
    w.settle(&w.inbox, &event, &[]).await;
    assert_eq!(w.metric("WebhookReplayOutOfTime", &[]), 1.0);
    assert_eq!(w.message(&first).await.state, MessageState::Accepted);
    let again = w.inbox_event().await;
    assert_eq!(again.records.len(), 1, "parked again, once");
    let mut parked: ParkedBody =
        serde_json::from_str(again.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(parked.applied, 0, "nothing applied yet");
    assert_eq!(
        parked.raw().unwrap(),
        body.as_bytes(),
        "the same signed bytes"
    );
    w.settle(&w.inbox, &again, &[]).await;

    // As a replay that applied the first event before its time ran out leaves it: the
    // next replay (with time) applies only what follows.
    parked.applied = 1;
    wa_shared::app::webhook::park(&w.functions.webhook, &parked)
        .await
        .unwrap();
    w.functions.webhook.settings.apply_budget = Some(std::time::Duration::from_secs(30));
    let resumed = w.inbox_event().await;
    assert_eq!(resumed.records.len(), 1);
    let failures = handle_inbox(&w.functions.webhook, resumed.clone())
        .await
        .batch_item_failures;
    assert!(failures.is_empty());
    w.settle(&w.inbox, &resumed, &[]).await;
    assert_eq!(
        w.message(&first).await.state,
        MessageState::Accepted,
        "skipped as applied, on {}",
        w.backend
    );
    assert_eq!(w.message(&second).await.state, MessageState::Delivered);
    assert!(w.drain(&w.inbox).await.is_empty(), "done: nothing parked");
}

async fn a_store_failure_parks_the_signed_body_and_the_replay_applies_it(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2J1", "wamid.I1")
        .await;
    let body = status_body("wamid.I1", "delivered", 1_750_030_200, None);
    w.store_down(true);
    let resp = w.post(&body).await;
    assert_eq!(
        status_code(&resp),
        200,
        "parked is stored: Meta need not retry"
    );
    assert_eq!(w.message(&id).await.state, MessageState::Accepted);

    // While the store is still down, the replay asks for the record to come back.
    let event = w.inbox_event().await;
    assert_eq!(event.records.len(), 1);
    let parked: ParkedBody =
        serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(parked.raw().unwrap(), body.as_bytes());
    let failures: Vec<String> = handle_inbox(&w.functions.webhook, event.clone())
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(failures, [event.records[0].message_id.clone().unwrap()]);
    w.settle(&w.inbox, &event, &failures).await;

    // The queue delivers it again; now the store is back.
    w.store_down(false);
    let again = w.inbox_event().await;
    assert_eq!(again.records.len(), 1, "the failed record came back");
    assert_eq!(again.records[0].body, event.records[0].body);
    let failures = handle_inbox(&w.functions.webhook, again.clone())
        .await
        .batch_item_failures;
    assert!(failures.is_empty());
    w.settle(&w.inbox, &again, &[]).await;
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Delivered);
    assert_eq!(
        m.timestamps.delivered_at,
        Some(Timestamp::from_secs(1_750_030_200))
    );
    assert!(w.drain(&w.inbox).await.is_empty(), "applied and deleted");
}

async fn when_parking_fails_too_the_answer_is_500_so_meta_retries(mut w: World) {
    w.accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2J2", "wamid.I2")
        .await;
    w.store_down(true);
    // A queue that does not exist (on SQS: a URL of a queue never created).
    let gone = format!("{}-gone", w.inbox.as_str());
    w.functions.webhook.settings.inbox = Some(QueueRef::new(gone));
    let resp = w
        .post(&status_body("wamid.I2", "sent", 1_750_030_200, None))
        .await;
    assert_eq!(status_code(&resp), 500);
    assert!(!body_text(&resp).contains("outage"));
    w.functions.webhook.settings.inbox = None;
    let resp = w
        .post(&status_body("wamid.I2", "sent", 1_750_030_200, None))
        .await;
    assert_eq!(status_code(&resp), 500);
}

async fn a_parked_body_whose_signature_does_not_verify_is_not_applied(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2J3", "wamid.I3")
        .await;
    let body = status_body("wamid.I3", "read", 1_750_030_200, None);
    let forged = ParkedBody::new(body.as_bytes(), "sha256=00", w.now());
    wa_shared::app::webhook::park(&w.functions.webhook, &forged)
        .await
        .unwrap();
    let event = w.inbox_event().await;
    assert_eq!(
        handle_inbox(&w.functions.webhook, event)
            .await
            .batch_item_failures
            .len(),
        1
    );
    assert_eq!(w.message(&id).await.state, MessageState::Accepted);
    assert_eq!(w.metric("SignatureRejected", &[]), 1.0);
}

#[tokio::test]
async fn the_inbox_sqs_fixture_replays_once_signed() {
    let w = World::new().await;
    let mut event: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_str(&event_file("webhook/inbox-sqs.json")).unwrap();
    let record = &mut event.records[0];
    let mut parked: ParkedBody = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
    let raw = parked.raw().unwrap();
    parked.signature = wa_shared::domain::webhook::sign(APP_SECRET.as_bytes(), &raw);
    record.body = Some(serde_json::to_string(&parked).unwrap());
    let batch = wa_shared::domain::webhook::parse_envelope(&raw).unwrap();
    let status = batch.statuses().next().unwrap();
    let cb = wa_shared::domain::graph::CallbackData::decode(
        status.biz_opaque_callback_data.as_deref().unwrap(),
    )
    .unwrap();
    let id = w
        .accepted(cb.message_id.as_str(), status.wamid.as_str())
        .await;
    assert!(
        handle_inbox(&w.functions.webhook, event)
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(w.message(&id).await.state, MessageState::Read);
}
