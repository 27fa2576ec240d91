//! Scheduled and cancellable sends through the built `wa dev` and its sandbox: a
//! message with `send_at` waits `scheduled` (nothing reaches Graph), the reconciler's
//! sweep releases it once due and it reaches `read`; a cancelled scheduled message is
//! never sent; a queued message can be cancelled until the sender claims it; a message
//! whose sending has begun answers 409 `not_cancellable`; a `send_at` in the past is a
//! 422 naming the field.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wa_local::{DevConfig, DevServer};

const KEY: &str = "key_schedule";

async fn start(dir: &std::path::Path) -> DevServer {
    let path = dir.join("wa.toml");
    let text = format!(
        r#"data = "dev.sqlite"

[reconciler]
interval_ms = 250

[sandbox]
seed = 11

[sandbox.webhook]
sent_after_ms = 20
delivered_after_ms = 40
read_after_ms = 60

[[tenants]]
id = "acme"
api_keys = ["{KEY}"]
phone_number_id = "1000311"
waba_id = "2000311"
"#
    );
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

fn send_body(to: &str, send_at: Option<String>) -> Value {
    let mut body = json!({"to": to, "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
    if let Some(at) = send_at {
        body["send_at"] = json!(at);
    }
    body
}

fn in_ms(ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn post(http: &reqwest::Client, url: &str, key: &str, body: &Value) -> (u16, Value) {
    let resp = http
        .post(format!("{url}/v1/messages"))
        .bearer_auth(KEY)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn get(http: &reqwest::Client, url: &str, id: &str) -> Value {
    http.get(format!("{url}/v1/messages/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn cancel(http: &reqwest::Client, url: &str, id: &str) -> (u16, Value) {
    let resp = http
        .delete(format!("{url}/v1/messages/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn status_eventually(http: &reqwest::Client, url: &str, id: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let m = get(http, url, id).await;
        if m["status"] == want {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never {want}: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn graph_sends_of(dev: &DevServer, id: &str) -> usize {
    dev.sandbox()
        .unwrap()
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .filter(|r| r.callback_data.as_deref().is_some_and(|c| c.ends_with(id)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_message_waits_until_due_and_a_cancelled_one_is_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let http = reqwest::Client::new();
    let url = dev.url();

    // Due in 2 s: scheduled now, nothing sent.
    let (status, due) = post(
        &http,
        &url,
        "s-1",
        &send_body("+14155550601", Some(in_ms(2_000))),
    )
    .await;
    assert_eq!(status, 202, "{due}");
    assert_eq!(due["status"], "scheduled", "{due}");
    let due_id = due["id"].as_str().unwrap().to_owned();
    // Due in 3 s, cancelled before then.
    let (status, later) = post(
        &http,
        &url,
        "s-2",
        &send_body("+14155550602", Some(in_ms(3_000))),
    )
    .await;
    assert_eq!(status, 202, "{later}");
    let later_id = later["id"].as_str().unwrap().to_owned();

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get(&http, &url, &due_id).await["status"], "scheduled");
    assert_eq!(graph_sends_of(&dev, &due_id), 0, "sent before send_at");

    let (status, cancelled) = cancel(&http, &url, &later_id).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    // Cancelling again is idempotent.
    let (status, again) = cancel(&http, &url, &later_id).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "cancelled");

    // The reconciler releases the due message; it goes the whole way.
    let read = status_eventually(&http, &url, &due_id, "read").await;
    assert_eq!(graph_sends_of(&dev, &due_id), 1, "{read}");
    let released_at = read["timestamps"]["queued_at"].as_str().unwrap_or_default();
    assert!(
        released_at >= due["send_at"].as_str().unwrap(),
        "released at {released_at}, before send_at: {read}"
    );

    // Once sending has begun, cancelling is a 409 that says why.
    let (status, refused) = cancel(&http, &url, &due_id).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "not_cancellable", "{refused}");

    // Past the cancelled message's send_at and a few reconciler runs: still never sent.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(get(&http, &url, &later_id).await["status"], "cancelled");
    assert_eq!(
        graph_sends_of(&dev, &later_id),
        0,
        "a cancelled message was sent"
    );

    // A send_at in the past is refused with the field named; unknown ids are 404.
    let (status, past) = post(
        &http,
        &url,
        "s-3",
        &send_body("+14155550603", Some(in_ms(-600_000))),
    )
    .await;
    assert_eq!(status, 422, "{past}");
    assert_eq!(past["error"]["details"][0]["field"], "send_at", "{past}");
    assert_eq!(
        past["error"]["details"][0]["code"], "send_at_in_past",
        "{past}"
    );
    let (status, _) = cancel(&http, &url, "msg_00000000000000000000000000").await;
    assert_eq!(status, 404);
    dev.stop().await;
}
