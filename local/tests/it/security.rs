//! The security suite of issue 14 (point 4), through the real `wa dev` HTTP server
//! (`wa_local::start` on a free port, embedded sandbox):
//! - `POST /webhook` with a forged, missing, malformed or replayed-over-another-body
//!   `X-Hub-Signature-256` is refused and changes nothing in the store; the genuine
//!   signed body then applies;
//! - one tenant's API key can neither read another tenant's message (404, the same
//!   answer as for an id that does not exist) nor replay it through a reused
//!   `Idempotency-Key`; no key or a wrong key is a 401 with a JSON error;
//! - oversized and deeply nested bodies are refused with a 4xx, and the server keeps
//!   answering.
//!
//! That no secret reaches a log line is checked on the built binary's captured logs:
//! `cli/tests/it/e2e/secrets_in_logs.rs`.
//!
//! Time bounds here only detect a hang (30 s): the tests assert behaviour, not speed.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wa_local::events::dispatcher::now_ms;
use wa_local::{DevConfig, DevServer};
use wa_shared::domain::webhook::sign;
use wa_shared::domain::{IdempotencyKey, MessageId, TenantId};

const KEY_A: &str = "key_security_a";
const KEY_B: &str = "key_security_b";
const PHONE_A: &str = "1000001";
const PHONE_B: &str = "1000002";
const APP_SECRET: &str = "security-test-app-secret";
/// Only detects a hang: every answer here comes far sooner.
const HANG: Duration = Duration::from_secs(30);

/// Tenants `acme` (A) and `beta` (B) on their own numbers. The sandbox accepts sends
/// but posts no status webhook during a test, so the only webhooks are the test's.
async fn start(dir: &std::path::Path) -> DevServer {
    let path = dir.join("wa.toml");
    let mut text = format!(
        r#"data = "dev.sqlite"

[webhook]
app_secret = "{APP_SECRET}"

[sandbox]
seed = 14

[sandbox.webhook]
sent_after_ms = 600000
delivered_after_ms = "never"
read_after_ms = "never"
"#
    );
    for (id, key, phone) in [("acme", KEY_A, PHONE_A), ("beta", KEY_B, PHONE_B)] {
        text.push_str(&format!(
            "\n[[tenants]]\nid = \"{id}\"\napi_keys = [\"{key}\"]\nphone_number_id = \"{phone}\"\n\
             waba_id = \"2000{phone}\"\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

struct Client {
    http: reqwest::Client,
    url: String,
}

/// An answer: status and JSON body (`Null` when the body is not JSON).
type Answer = (u16, Value);

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn order_shipped(to: &str) -> Value {
    json!({"to": to, "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}})
}

impl Client {
    fn new(dev: &DevServer) -> Self {
        Self {
            http: reqwest::Client::builder().timeout(HANG).build().unwrap(),
            url: dev.url(),
        }
    }

    /// `POST /v1/messages` with a raw body; `auth` is the whole `Authorization` value.
    async fn post_raw(&self, auth: Option<&str>, key: Option<&str>, body: Vec<u8>) -> Answer {
        let mut req = self
            .http
            .post(format!("{}/v1/messages", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        answer(req.send().await.unwrap()).await
    }

    async fn post(&self, api_key: &str, key: &str, body: &Value) -> Answer {
        let auth = format!("Bearer {api_key}");
        self.post_raw(Some(&auth), Some(key), body.to_string().into_bytes())
            .await
    }

    async fn get_with(&self, auth: Option<&str>, id: &str) -> Answer {
        let mut req = self.http.get(format!("{}/v1/messages/{id}", self.url));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        answer(req.send().await.unwrap()).await
    }

    async fn get(&self, api_key: &str, id: &str) -> Answer {
        self.get_with(Some(&format!("Bearer {api_key}")), id).await
    }

    /// `POST /webhook` with `signature` as `X-Hub-Signature-256` (none when `None`).
    async fn webhook(&self, body: Vec<u8>, signature: Option<&str>) -> Answer {
        let mut req = self
            .http
            .post(format!("{}/webhook", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            req = req.header("x-hub-signature-256", signature);
        }
        answer(req.send().await.unwrap()).await
    }

    /// Poll A's message until `done` holds, or panic after [`HANG`].
    async fn wait_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (status, message) = self.get(KEY_A, id).await;
            assert_eq!(status, 200, "{message}");
            if done(&message) {
                return message;
            }
            assert!(started.elapsed() < HANG, "{message:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Meta's `delivered` status webhook for `wamid`, sent from A's number.
fn delivered(wamid: &str, recipient: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": format!("2000{PHONE_A}"), "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": PHONE_A, "phone_number_id": PHONE_A},
            "statuses": [{
                "id": wamid,
                "status": "delivered",
                "timestamp": (now_ms() / 1000).to_string(),
                "recipient_id": recipient.trim_start_matches('+'),
            }]
        }}]}]
    }))
    .unwrap()
}

/// What a webhook may change of a message: its state, history and timestamps.
fn applied_part(message: &Value) -> Value {
    json!({
        "status": message["status"],
        "history": message["history"],
        "timestamps": message["timestamps"],
        "updated_at": message["updated_at"],
        "failure": message["failure"],
    })
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_missing_malformed_and_replayed_webhook_signatures_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let api = Client::new(&dev);

    // A's message, accepted by the sandbox: it has a wamid and waits for webhooks.
    let to = "+14155550141";
    let (status, sent) = api.post(KEY_A, "sig-1", &order_shipped(to)).await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    let before = api.wait_until(&id, |m| m["status"] == "accepted").await;
    let wamid = before["wamid"].as_str().unwrap().to_owned();

    let body = delivered(&wamid, to);
    let genuine = sign(APP_SECRET.as_bytes(), &body);
    // The genuine signature over a body with one byte changed (a replay with a
    // modified body): the recipient's last digit.
    let mut modified = body.clone();
    let at = modified
        .windows(b"14155550141".len())
        .position(|w| w == b"14155550141")
        .unwrap()
        + b"1415555014".len();
    modified[at] = b'2';
    let not_hex = format!("sha256={}", "zz".repeat(32));
    let wrong_prefix = genuine.replacen("sha256=", "sha1=", 1);
    let upper_prefix = genuine.replacen("sha256=", "SHA256=", 1);
    let truncated = genuine[..genuine.len() - 2].to_owned();
    let other_secret = sign(b"not-the-app-secret", &body);
    let refused: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("forged (another secret)", body.clone(), Some(&other_secret)),
        ("missing header", body.clone(), None),
        ("replayed over a modified body", modified, Some(&genuine)),
        ("sha256= and no hex", body.clone(), Some(&not_hex)),
        ("wrong prefix", body.clone(), Some(&wrong_prefix)),
        ("prefix in capitals", body.clone(), Some(&upper_prefix)),
        ("truncated", body.clone(), Some(&truncated)),
        ("empty", body.clone(), Some("")),
        ("prefix only", body.clone(), Some("sha256=")),
    ];
    for (case, payload, signature) in refused {
        let (status, answer) = api.webhook(payload, signature).await;
        assert_eq!(status, 401, "{case}: {answer}");
        assert_eq!(error_code(&answer), "invalid_signature", "{case}: {answer}");
        // Why it was refused, never the expected MAC.
        let text = answer.to_string();
        assert!(!text.contains(&genuine[7..]), "{case}: {text}");
    }

    // Nothing changed: same state, history and timestamps.
    let (status, after) = api.get(KEY_A, &id).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(applied_part(&after), applied_part(&before));
    assert_eq!(after["status"], "accepted");

    // The genuine signed body applies.
    let (status, answer) = api.webhook(body, Some(&genuine)).await;
    assert_eq!(status, 200, "{answer}");
    let now = api.wait_until(&id, |m| m["status"] == "delivered").await;
    assert!(now["timestamps"]["delivered_at"].is_string(), "{now:#}");
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenants_key_cannot_read_or_replay_another_tenants_message() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let api = Client::new(&dev);

    let request = order_shipped("+14155550142");
    let (status, a) = api.post(KEY_A, "shared-key", &request).await;
    assert_eq!(status, 202, "{a}");
    let a_id = a["id"].as_str().unwrap().to_owned();
    assert_eq!(api.get(KEY_A, &a_id).await.0, 200);

    // B reading A's message: the very answer of an id nobody has (no existence leak).
    let (status, b_reads_a) = api.get(KEY_B, &a_id).await;
    assert_eq!(status, 404, "{b_reads_a}");
    let unknown = MessageId::for_idempotency_key(
        &TenantId::parse("acme").unwrap(),
        &IdempotencyKey::parse("never-used").unwrap(),
    );
    let (status, b_reads_nothing) = api.get(KEY_B, unknown.as_ref()).await;
    assert_eq!(status, 404, "{b_reads_nothing}");
    let without_request_id = |v: &Value| {
        let mut v = v.clone();
        v["error"]["request_id"] = Value::Null;
        v
    };
    assert_eq!(
        without_request_id(&b_reads_a),
        without_request_id(&b_reads_nothing)
    );
    let text = b_reads_a.to_string();
    for secret_of_a in ["acme", "14155550142", "order_shipped", "queued", "accepted"] {
        assert!(!text.contains(secret_of_a), "{secret_of_a} in {text}");
    }

    // B reusing A's Idempotency-Key with A's very body: B's own new message (202: a
    // replay is answered 200).
    let (status, b) = api.post(KEY_B, "shared-key", &request).await;
    assert_eq!(status, 202, "not a new message: {b}");
    let b_id = b["id"].as_str().unwrap().to_owned();
    assert_ne!(b_id, a_id, "B got A's message back: {b}");
    assert_eq!(api.get(KEY_B, &b_id).await.0, 200);
    assert_eq!(api.get(KEY_A, &b_id).await.0, 404);
    // Replaying it gives B's message again, never A's.
    let (status, again) = api.post(KEY_B, "shared-key", &request).await;
    assert_eq!(status, 200, "a replay: {again}");
    assert_eq!(again["id"], b_id.as_str(), "{again}");
    // A still has its own, unchanged.
    let (status, a_again) = api.post(KEY_A, "shared-key", &request).await;
    assert_eq!(status, 200, "a replay: {a_again}");
    assert_eq!(a_again["id"], a_id.as_str(), "{a_again}");

    // No key, a wrong key, another scheme: 401 with a JSON error, and nothing stored.
    let body = order_shipped("+14155550143").to_string().into_bytes();
    let cases = [
        (None, "missing_api_key"),
        (Some("Bearer ".to_owned()), "missing_api_key"),
        (Some(format!("Basic {KEY_A}")), "missing_api_key"),
        (Some("Bearer not-a-key".to_owned()), "invalid_api_key"),
        (Some(format!("Bearer {KEY_A}x")), "invalid_api_key"),
    ];
    for (n, (auth, code)) in cases.iter().enumerate() {
        let key = format!("unauthenticated-{n}");
        let (status, answer) = api
            .post_raw(auth.as_deref(), Some(&key), body.clone())
            .await;
        assert_eq!(status, 401, "{auth:?}: {answer}");
        assert_eq!(error_code(&answer), *code, "{auth:?}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
        let (status, answer) = api.get_with(auth.as_deref(), &a_id).await;
        assert_eq!(status, 401, "GET {auth:?}: {answer}");
        assert_eq!(error_code(&answer), *code, "GET {auth:?}: {answer}");
        // Had it been stored for A, this is the id it would have.
        let would_be = MessageId::for_idempotency_key(
            &TenantId::parse("acme").unwrap(),
            &IdempotencyKey::parse(&key).unwrap(),
        );
        assert_eq!(api.get(KEY_A, would_be.as_ref()).await.0, 404);
    }
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_and_deeply_nested_bodies_are_refused_and_the_server_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let api = Client::new(&dev);
    let auth = format!("Bearer {KEY_A}");

    // Intake reads at most 64 KiB: one byte more, and 4 MiB, are a 413 naming both.
    let limit = wa_shared::app::intake::MAX_BODY_BYTES;
    for size in [limit + 1, 4 * 1024 * 1024] {
        let padding = "x".repeat(size - 20);
        let body = format!("{{\"to\": \"{padding}\"}}");
        let mut body = body.into_bytes();
        body.resize(size, b' ');
        assert_eq!(body.len(), size);
        let (status, answer) = api.post_raw(Some(&auth), Some("big"), body).await;
        assert_eq!(status, 413, "{answer}");
        assert_eq!(error_code(&answer), "payload_too_large", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&size.to_string()) && message.contains(&limit.to_string()),
            "{message}"
        );
    }

    // The webhook reads at most 3 MiB, signed or not.
    let limit = wa_shared::app::webhook::DEFAULT_MAX_BODY_BYTES;
    assert_eq!(limit, 3 * 1024 * 1024);
    let body = vec![b' '; limit + 1];
    let signature = sign(APP_SECRET.as_bytes(), &body);
    for signature in [None, Some(signature.as_str())] {
        let (status, answer) = api.webhook(body.clone(), signature).await;
        assert_eq!(status, 413, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&(limit + 1).to_string()) && message.contains(&limit.to_string()),
            "{message}"
        );
    }

    // 100,000 nested arrays: a 4xx, never a crash or a 5xx. Intake refuses them for
    // their size (200 kB); 30,000 fit in its 64 KiB and are refused by the parser.
    let nest = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
    let nested = nest(100_000);
    let (status, answer) = api
        .post_raw(Some(&auth), Some("nested"), nested.clone())
        .await;
    assert_eq!(status, 413, "{answer}");
    let (status, answer) = api
        .post_raw(Some(&auth), Some("nested-1"), nest(30_000))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(error_code(&answer), "malformed_json", "{answer}");
    // Nested objects inside an otherwise valid request.
    let deep_to = format!(
        "{{\"to\": {}1{}, \"text\": {{\"body\": \"hi\"}}}}",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    let (status, answer) = api
        .post_raw(Some(&auth), Some("nested-2"), deep_to.into_bytes())
        .await;
    assert!((400..500).contains(&status), "{status}: {answer}");
    // Unsigned, the webhook refuses it before reading it; signed, it is not an envelope.
    let (status, answer) = api.webhook(nested.clone(), None).await;
    assert_eq!(status, 401, "{answer}");
    let signature = sign(APP_SECRET.as_bytes(), &nested);
    let (status, answer) = api.webhook(nested, Some(&signature)).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(error_code(&answer), "invalid_webhook_body", "{answer}");
    // Deep nesting inside a signed envelope's `value`: the envelope is read without
    // recursing into it (serde_json skips raw values iteratively), the change then
    // fails to parse and is skipped as unreadable (200, Meta's tolerance): no 5xx.
    let deep_envelope = format!(
        "{{\"object\": \"whatsapp_business_account\", \"entry\": [{{\"id\": \"1\", \"changes\": \
         [{{\"field\": \"messages\", \"value\": {}0{}}}]}}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    )
    .into_bytes();
    let signature = sign(APP_SECRET.as_bytes(), &deep_envelope);
    let (status, answer) = api.webhook(deep_envelope, Some(&signature)).await;
    assert!(
        status == 200 || (400..500).contains(&status),
        "{status}: {answer}"
    );

    // Still answering: a send goes through and can be read.
    let (status, sent) = api
        .post(KEY_A, "after-abuse", &order_shipped("+14155550144"))
        .await;
    assert_eq!(status, 202, "{sent}");
    let (status, read) = api.get(KEY_A, sent["id"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{read}");
    dev.stop().await;
}
