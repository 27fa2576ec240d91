//! Every answer of `POST /v1/messages` and `GET /v1/messages/{id}`, over HTTP.

use crate::e2e::support::*;
use serde_json::json;

#[tokio::test]
async fn intake_answers_every_case_with_the_documented_status_and_shape() {
    let dev = Dev::start(&test_dir("intake_answers"), Some(&two_tenants("")));
    let request = order_shipped("+14155550123");

    // 202: queued.
    let (status, _, created) = dev.post(DEMO_KEY, Some("k-1"), &request).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["status"], "queued");
    assert_eq!(created["to"], "+14155550123");
    let id = created["id"].as_str().unwrap().to_owned();

    // 200: the same key and body replay the stored message.
    let (status, headers, replay) = dev.post(DEMO_KEY, Some("k-1"), &request).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(replay["id"], created["id"]);

    // 409: the same key with another body.
    let mut other = request.clone();
    other["template"]["body"][0] = json!("Bea");
    let (status, _, conflict) = dev.post(DEMO_KEY, Some("k-1"), &other).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "idempotency_key_reused");

    // 422: every problem with its field path.
    let invalid = json!({"to": "12", "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana\nB"], "buttons": [{"index": 0, "type": "url", "text": ""}]}});
    let (status, _, problems) = dev.post(DEMO_KEY, None, &invalid).await;
    assert_eq!(status, 422, "{problems}");
    assert_eq!(problems["error"]["code"], "validation_failed");
    let fields: Vec<&str> = problems["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for field in ["to", "template.body[0]", "template.body"] {
        assert!(fields.contains(&field), "{field} missing in {fields:?}");
    }
    assert!(problems["error"]["request_id"].is_string());

    // 401: no key, and a wrong key.
    let resp = dev
        .http
        .post(format!("{}/v1/messages", dev.url))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_api_key");
    let (status, _, wrong) = dev.post("wa_not_a_key", None, &request).await;
    assert_eq!(status, 401);
    assert_eq!(wrong["error"]["code"], "invalid_api_key");

    // 400: not JSON.
    let (status, _, bad) = dev.post_raw(DEMO_KEY, None, "{\"to\": ".into()).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["message"].is_string());

    // 413: over 64 KiB.
    let mut huge = request.clone();
    huge["metadata"] = json!({"blob": "x".repeat(70 * 1024)});
    let (status, _, too_large) = dev.post(DEMO_KEY, None, &huge).await;
    assert_eq!(status, 413, "{too_large}");
    assert_eq!(too_large["error"]["code"], "payload_too_large");

    // GET: the owner sees it, another tenant gets 404, a bad id is 404.
    let (status, message) = dev.get(DEMO_KEY, &id).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["template"]["name"], "order_shipped");
    let (status, hidden) = dev.get(OTHER_KEY, &id).await;
    assert_eq!(status, 404, "{hidden}");
    let (status, _) = dev.get(DEMO_KEY, "msg_nope").await;
    assert_eq!(status, 404);

    // Unknown routes answer in the same error shape.
    let resp = dev
        .http
        .get(format!("{}/v2/whatever", dev.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_message_and_one_send() {
    let dev = Dev::start(&test_dir("intake_concurrent_key"), None);
    let request = order_shipped("+14155550124");
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let (api, request) = (dev.api.clone(), request.clone());
        calls.spawn(async move { api.post(DEMO_KEY, Some("same-key"), &request).await });
    }
    let answers = calls.join_all().await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, _, body)| {
            assert!(*status == 202 || *status == 200, "{status} {body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    let id = ids.into_iter().next().unwrap();
    dev.wait_until(DEMO_KEY, &id, std::time::Duration::from_secs(20), |m| {
        m["status"] == "read"
    })
    .await;
    let stats = dev.sandbox_stats().await;
    assert_eq!(stats["sends_accepted"], 1, "{stats:#}");
}
