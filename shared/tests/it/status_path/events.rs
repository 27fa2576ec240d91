//! The events the workflow emits, read back through the pull API (`GET /v1/events`):
//! a message's advancing events once each, in `sequence` order, whatever Meta's
//! duplicates and reorders; an inbound button reply as `message.received` with the id
//! of the message it answers; every event valid against its published JSON Schema.

use crate::status_path::support::*;
use serde_json::Value;
use wa_shared::app::http::ApiGatewayV2httpRequest;

/// `GET /v1/events` with these query parameters, as the tenant.
fn list_request(query: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest =
        serde_json::from_str(&event_file("intake/list-events.json")).unwrap();
    let mut map = std::collections::HashMap::new();
    for (k, v) in query {
        map.insert((*k).to_owned(), vec![(*v).to_owned()]);
    }
    req.query_string_parameters = map.into();
    req
}

/// Every event of the tenant, paging two at a time, each checked against its schema.
async fn all_events(w: &World) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "2")];
        if let Some(a) = &after {
            query.push(("after", a));
        }
        let resp = w.intake(list_request(&query)).await;
        assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
        let page = body_json(&resp);
        for e in page["events"].as_array().unwrap() {
            wa_testkit::events::assert_valid(e);
            out.push(e.clone());
        }
        if page["more"] != true {
            return out;
        }
        after = page["next"].as_str().map(str::to_owned);
    }
}

/// On SQLite the store writes a transition's events in its own transaction (the
/// outbox), so they are there as soon as the transition is.
#[tokio::test]
async fn a_messages_advancing_events_are_logged_once_each_in_sequence_order() {
    let w = World::new().await;
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2E1", "wamid.E1")
        .await;
    // read before delivered, a duplicate sent and a late sent: Meta's order is not ours.
    for (status, secs) in [
        ("sent", 1_750_030_100),
        ("read", 1_750_030_300),
        ("sent", 1_750_030_100),
        ("delivered", 1_750_030_200),
    ] {
        let resp = w.post(&status_body("wamid.E1", status, secs, None)).await;
        assert_eq!(status_code(&resp), 200);
    }
    let events = all_events(&w).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["message.accepted", "message.sent", "message.read"]);
    let sequences: Vec<u64> = events
        .iter()
        .map(|e| e["data"]["sequence"].as_u64().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|p| p[0] < p[1]), "{sequences:?}");
    for e in &events {
        assert_eq!(e["data"]["message_id"], id.as_str());
        assert_eq!(e["tenant"], TENANT);
    }
    // Meta's pricing of the `sent` status rides on its event.
    assert_eq!(events[1]["data"]["pricing"]["category"], "marketing");
    // Nothing new on a replay of the same webhooks.
    let resp = w
        .post(&status_body("wamid.E1", "read", 1_750_030_300, None))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(all_events(&w).await.len(), 3);
}

async fn an_inbound_button_reply_arrives_as_message_received_with_its_context(w: World) {
    let resp = w.post(&event_file("meta/inbound-button.json")).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    let events = all_events(&w).await;
    let received: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "message.received")
        .collect();
    assert_eq!(received.len(), 1, "{events:?} on {}", w.backend);
    let data = &received[0]["data"];
    assert_eq!(data["kind"], "button");
    assert_eq!(data["button"]["payload"], "reschedule_delivery");
    assert_eq!(
        data["context"]["message_id"],
        "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    );
    // Meta's retry of the same body: the same event id, logged once.
    let resp = w.post(&event_file("meta/inbound-button.json")).await;
    assert_eq!(status_code(&resp), 200);
    let again = all_events(&w).await;
    assert_eq!(
        again
            .iter()
            .filter(|e| e["type"] == "message.received")
            .count(),
        1
    );
}

async fn a_stop_keyword_emits_contact_opted_out(w: World) {
    let resp = w.post(&event_file("meta/inbound-stop.json")).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    let types: Vec<String> = all_events(&w)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(types.contains(&"contact.opted_out".to_owned()), "{types:?}");
}

async fn a_template_paused_by_meta_emits_template_status_changed(w: World) {
    let t: wa_shared::domain::template::Template = serde_json::from_value(serde_json::json!({
        "name": "spring_sale", "language": "en_US", "status": "APPROVED",
        "category": "MARKETING", "components": []}))
    .unwrap();
    w.ports
        .directory
        .put_template(&w.tenant, &t, w.now())
        .await
        .unwrap();
    let resp = w
        .post(&event_file("meta/template-status-paused.json"))
        .await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    let events = all_events(&w).await;
    let changed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "template.status_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{events:?}");
    assert_eq!(changed[0]["data"]["status"], "PAUSED");
}

async fn bad_positions_and_limits_are_named(w: World) {
    for (query, code) in [
        (vec![("after", "not-a-position")], "invalid_cursor"),
        (vec![("limit", "0")], "invalid_limit"),
        (vec![("limit", "501")], "invalid_limit"),
    ] {
        let resp = w.intake(list_request(&query)).await;
        assert_eq!(status_code(&resp), 400, "{query:?}");
        assert_eq!(body_json(&resp)["error"]["code"], code, "{query:?}");
    }
}

on_every_backend!(
    an_inbound_button_reply_arrives_as_message_received_with_its_context,
    a_stop_keyword_emits_contact_opted_out,
    a_template_paused_by_meta_emits_template_status_changed,
    bad_positions_and_limits_are_named,
);
