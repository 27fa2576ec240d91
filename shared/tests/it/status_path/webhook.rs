//! The HTTP edge of the webhook: handshake, signature, limits, routing of the event shape.
//! The signature cases also run on DynamoDB + SQS (`dynamo::`).

use crate::status_path::support::*;
use wa_shared::app::http::ApiGatewayV2httpRequest;
use wa_shared::app::webhook::{WebhookInvocation, WebhookReply, handle, handle_http};
use wa_shared::domain::MessageState;

on_every_backend!(
    a_missing_or_wrong_signature_is_401_and_writes_nothing,
    a_body_signed_with_the_right_secret_is_applied,
);

fn get_event() -> ApiGatewayV2httpRequest {
    serde_json::from_str(&event_file("webhook/get-handshake.json")).unwrap()
}

#[tokio::test]
async fn the_handshake_with_our_verify_token_echoes_the_challenge_as_text() {
    let w = World::new().await;
    let resp = handle_http(&w.functions.webhook, &get_event()).await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(body_text(&resp), "1158201444");
    let ct = resp.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(ct.starts_with("text/plain"), "{ct}");
}

#[tokio::test]
async fn a_handshake_with_another_token_or_mode_is_forbidden() {
    let w = World::new().await;
    let mut wrong_token = get_event();
    wrong_token.query_string_parameters = [
        ("hub.mode", "subscribe"),
        ("hub.verify_token", "guess"),
        ("hub.challenge", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect::<std::collections::HashMap<String, String>>()
    .into();
    assert_eq!(
        status_code(&handle_http(&w.functions.webhook, &wrong_token).await),
        403
    );
    let mut no_query = get_event();
    no_query.query_string_parameters = Default::default();
    let resp = handle_http(&w.functions.webhook, &no_query).await;
    assert_eq!(status_code(&resp), 403);
    assert!(!body_text(&resp).contains(VERIFY_TOKEN));
}

async fn a_missing_or_wrong_signature_is_401_and_writes_nothing(w: World) {
    let wamid = "wamid.SIG1";
    let id = w.accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2S1", wamid).await;
    let before = w.message(&id).await;
    let body = status_body(wamid, "delivered", 1_750_030_000, None);
    let forged = wa_shared::domain::webhook::sign(b"not-the-secret", body.as_bytes());
    for sig in [None, Some(forged.as_str()), Some("sha256=zz"), Some("")] {
        let resp = handle_http(&w.functions.webhook, &post_request(&body, sig)).await;
        assert_eq!(status_code(&resp), 401, "{sig:?}");
        assert!(body_text(&resp).contains("invalid_signature"));
    }
    assert_eq!(w.message(&id).await, before);
    assert_eq!(w.metric("SignatureRejected", &[]), 4.0);
    assert!(w.drain(&w.inbox).await.is_empty());
}

async fn a_body_signed_with_the_right_secret_is_applied(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2S2", "wamid.SIG2")
        .await;
    let resp = w
        .post(&status_body("wamid.SIG2", "delivered", 1_750_030_000, None))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(w.message(&id).await.state, MessageState::Delivered);
    assert_eq!(w.metric("SignatureRejected", &[]), 0.0);
}

#[tokio::test]
async fn a_rotated_secret_still_verifies_while_both_are_configured() {
    let mut w = World::new().await;
    w.functions
        .webhook
        .settings
        .app_secrets
        .insert(0, secrecy::SecretString::from("new-secret".to_owned()));
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2S3", "wamid.SIG3")
        .await;
    // Signed with the old secret, which is still the second configured one.
    let resp = w
        .post(&status_body("wamid.SIG3", "sent", 1_750_030_000, None))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(w.message(&id).await.state, MessageState::Sent);
}

#[tokio::test]
async fn a_body_over_three_mebibytes_is_413_before_anything_else() {
    let w = World::new().await;
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let resp = w.post(&body).await;
    assert_eq!(status_code(&resp), 413);
    assert_eq!(w.metric("SignatureRejected", &[]), 0.0);
}

/// Meta documents webhook payloads of up to 3 MB: a 2.9 MB body is applied.
#[tokio::test]
async fn a_body_of_almost_three_megabytes_is_applied() {
    let w = World::new().await;
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2B9", "wamid.B9")
        .await;
    let mut envelope: serde_json::Value =
        serde_json::from_str(&status_body("wamid.B9", "delivered", 1_750_030_200, None)).unwrap();
    let size = envelope.to_string().len();
    envelope["pad"] = serde_json::Value::String("x".repeat(2_900_000 - size));
    let body = envelope.to_string();
    assert!(body.len() > 2_800_000 && body.len() <= 3_000_000);
    let resp = w.post(&body).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    assert_eq!(w.message(&id).await.state, MessageState::Delivered);
}

#[tokio::test]
async fn a_base64_encoded_body_is_verified_on_its_decoded_bytes() {
    let w = World::new().await;
    // The fixture's message: tenant demo, the wamid of events/meta/status-delivered.json.
    let req = signed_event("webhook/post-status-delivered-base64.json");
    assert!(req.is_base64_encoded);
    let raw = wa_shared::app::http::body_bytes(&req).unwrap();
    let batch = wa_shared::domain::webhook::parse_envelope(&raw).unwrap();
    let status = batch.statuses().next().unwrap();
    let cb = wa_shared::domain::graph::CallbackData::decode(
        status.biz_opaque_callback_data.as_deref().unwrap(),
    )
    .unwrap();
    let id = w
        .accepted(cb.message_id.as_str(), status.wamid.as_str())
        .await;
    let resp = handle_http(&w.functions.webhook, &req).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    assert_eq!(w.message(&id).await.state, MessageState::Delivered);
}

#[tokio::test]
async fn a_signed_body_that_is_not_a_webhook_is_a_bad_request() {
    let w = World::new().await;
    assert_eq!(
        status_code(&w.post("{\"object\":\"page\",\"entry\":[]}").await),
        400
    );
    assert_eq!(status_code(&w.post("not json").await), 400);
}

#[tokio::test]
async fn other_methods_are_not_allowed() {
    let w = World::new().await;
    let mut req = post_request("{}", None);
    req.request_context.http.method = "PUT".parse().unwrap();
    assert_eq!(
        status_code(&handle_http(&w.functions.webhook, &req).await),
        405
    );
}

#[tokio::test]
async fn the_lambda_entry_point_dispatches_on_the_event_shape() {
    let w = World::new().await;
    let http: WebhookInvocation =
        serde_json::from_str(&event_file("webhook/get-handshake.json")).unwrap();
    match handle(&w.functions.webhook, http).await {
        WebhookReply::Http(resp) => assert_eq!(resp.status_code, 200),
        other => panic!("{other:?}"),
    }
    let sqs: WebhookInvocation =
        serde_json::from_str(&event_file("webhook/inbox-sqs.json")).unwrap();
    // The stored fixture carries no signature: the replay refuses it and asks for a retry.
    match handle(&w.functions.webhook, sqs).await {
        WebhookReply::Inbox(resp) => assert_eq!(resp.batch_item_failures.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_webhook_post_event_wraps_its_meta_fixture_unchanged() {
    let dir = format!("{}/../events/webhook", env!("CARGO_MANIFEST_DIR"));
    let mut posts = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let event: WebhookInvocation = serde_json::from_str(&text).unwrap();
        let WebhookInvocation::Http(req) = event else {
            continue;
        };
        assert!(
            !req.headers.contains_key("x-hub-signature-256"),
            "{name} stores a signature"
        );
        if wa_shared::app::http::method(&req) != "POST" {
            continue;
        }
        posts += 1;
        let raw = wa_shared::app::http::body_bytes(&req).unwrap();
        wa_shared::domain::webhook::parse_envelope(&raw).unwrap();
        let meta = name
            .trim_start_matches("post-")
            .trim_end_matches(".json")
            .trim_end_matches("-base64")
            .replace("template-paused", "template-status-paused");
        let meta_text = event_file(&format!("meta/{meta}.json"));
        assert_eq!(
            raw,
            meta_text.as_bytes(),
            "{name} differs from meta/{meta}.json"
        );
    }
    assert!(posts >= 12, "{posts}");
}
