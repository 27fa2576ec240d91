//! A tenant with several business numbers: a send chooses one with `from`, intake
//! refuses a number the tenant does not own (422, field `from`), and the sender sends
//! (and paces) from the chosen number; without `from`, the default number.

use crate::send_path::support::*;
use serde_json::json;
use std::sync::Arc;
use wa_shared::domain::{MessageState, PhoneNumberId, TenantId};

const SECOND: &str = "106540352241111";

fn order_shipped(from: Option<&str>) -> serde_json::Value {
    let mut body = json!({"to": "+14155550123", "template": {"name": "order_shipped",
        "language": "en_US", "body": ["Ana", "#1234"],
        "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
    if let Some(from) = from {
        body["from"] = json!(from);
    }
    body
}

async fn with_second_number(p: &Pipeline) {
    let demo = TenantId::parse("demo").unwrap();
    let mut profile = p.directory.tenant(&demo).await.unwrap().unwrap();
    profile.other_phone_number_ids = vec![PhoneNumberId::parse(SECOND).unwrap()];
    p.directory.put_tenant(&profile).await.unwrap();
}

async fn submit(p: &Pipeline, key: &str, body: &serde_json::Value) -> (i64, serde_json::Value) {
    let req = with_header(
        with_body(request("intake/send-template.json"), body),
        "idempotency-key",
        Some(key),
    );
    let resp = p.intake(req).await;
    (resp.status_code, self::body(&resp))
}

#[tokio::test]
async fn a_send_goes_out_from_the_number_it_chose_and_else_from_the_default() {
    let graph = Arc::new(ScriptedProvider::default());
    let p = Pipeline::new(graph.clone()).await;
    with_second_number(&p).await;
    let (status, chosen) = submit(&p, "from-second", &order_shipped(Some(SECOND))).await;
    assert_eq!(status, 202, "{chosen}");
    assert!(p.send(p.receive().await).await.is_empty());
    let (status, default) = submit(&p, "from-default", &order_shipped(None)).await;
    assert_eq!(status, 202, "{default}");
    assert!(p.send(p.receive().await).await.is_empty());
    assert_eq!(graph.numbers(), [SECOND, PHONE_NUMBER_ID]);
    for answer in [&chosen, &default] {
        let id = wa_shared::domain::MessageId::parse(answer["id"].as_str().unwrap()).unwrap();
        assert_eq!(p.stored(&id).await.state, MessageState::Accepted);
    }
    // `from` is part of the request: the same key with another number is a conflict.
    let (status, conflict) = submit(&p, "from-second", &order_shipped(None)).await;
    assert_eq!(status, 409, "{conflict}");
}

#[tokio::test]
async fn a_number_the_tenant_does_not_own_is_refused_with_the_field_at_fault() {
    let graph = Arc::new(ScriptedProvider::default());
    let p = Pipeline::new(graph.clone()).await;
    // Tenant `other`'s number, and a malformed one.
    let (status, body) = submit(&p, "foreign", &order_shipped(Some("106540352240000"))).await;
    assert_eq!(status, 422, "{body}");
    let problem = &body["error"]["details"][0];
    assert_eq!(problem["field"], "from", "{body}");
    assert_eq!(problem["code"], "unknown_sender_number", "{body}");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains(PHONE_NUMBER_ID),
        "{body}"
    );
    let (status, body) = submit(&p, "malformed", &order_shipped(Some("+1 555"))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "from", "{body}");
    assert_eq!(
        body["error"]["details"][0]["code"], "invalid_value",
        "{body}"
    );
    assert!(p.receive().await.records.is_empty(), "nothing enqueued");
    assert!(graph.calls().is_empty());
}

#[tokio::test]
async fn a_number_the_tenant_gave_up_after_intake_fails_the_send_without_a_graph_call() {
    let graph = Arc::new(ScriptedProvider::default());
    let p = Pipeline::new(graph.clone()).await;
    with_second_number(&p).await;
    let (status, answer) = submit(&p, "given-up", &order_shipped(Some(SECOND))).await;
    assert_eq!(status, 202, "{answer}");
    let demo = TenantId::parse("demo").unwrap();
    let mut profile = p.directory.tenant(&demo).await.unwrap().unwrap();
    profile.other_phone_number_ids.clear();
    p.directory.put_tenant(&profile).await.unwrap();
    assert!(p.send(p.receive().await).await.is_empty());
    let id = wa_shared::domain::MessageId::parse(answer["id"].as_str().unwrap()).unwrap();
    let m = p.stored(&id).await;
    assert_eq!(m.state, MessageState::Failed);
    assert!(m.failure.unwrap().title.contains("no longer owns"));
    assert!(graph.calls().is_empty());
}
