//! A tenant with two business numbers through the built `wa dev` and its sandbox: a
//! send with `from` goes out from that number (the sandbox serves both), its status
//! webhooks come back from that number and reach `read`; a number the tenant does not
//! own is refused by intake with the field at fault.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wa_local::{DevConfig, DevServer};

const KEY: &str = "key_numbers";
const DEFAULT: &str = "1000101";
const SECOND: &str = "1000102";

async fn start(dir: &std::path::Path) -> DevServer {
    let path = dir.join("wa.toml");
    let text = format!(
        r#"data = "dev.sqlite"

[sandbox]
seed = 7

[sandbox.webhook]
sent_after_ms = 20
delivered_after_ms = 40
read_after_ms = 60

[[tenants]]
id = "acme"
api_keys = ["{KEY}"]
phone_number_id = "{DEFAULT}"
other_phone_number_ids = ["{SECOND}"]
waba_id = "2000101"

[[tenants]]
id = "beta"
api_keys = ["key_numbers_beta"]
phone_number_id = "1000201"
waba_id = "2000101"
"#
    );
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

async fn send(http: &reqwest::Client, url: &str, key: &str, from: Option<&str>) -> (u16, Value) {
    let mut body = json!({"to": "+14155550401", "template": {"name": "order_shipped",
        "language": "en_US", "body": ["Ana", "#1234"],
        "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
    if let Some(from) = from {
        body["from"] = json!(from);
    }
    let resp = http
        .post(format!("{url}/v1/messages"))
        .bearer_auth(KEY)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn read_eventually(http: &reqwest::Client, url: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let m: Value = http
            .get(format!("{url}/v1/messages/{id}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if m["status"] == "read" {
            return m;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never read: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_from_the_tenants_second_number_goes_out_from_it_and_reaches_read() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let sandbox = dev.sandbox().unwrap().clone();
    let http = reqwest::Client::new();
    let url = dev.url();

    let (status, second) = send(&http, &url, "n-second", Some(SECOND)).await;
    assert_eq!(status, 202, "{second}");
    let (status, default) = send(&http, &url, "n-default", None).await;
    assert_eq!(status, 202, "{default}");
    for m in [&second, &default] {
        read_eventually(&http, &url, m["id"].as_str().unwrap()).await;
    }
    let sends: Vec<String> = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .map(|r| r.path)
        .collect();
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert!(
        sends.iter().any(|p| p.contains(&format!("/{SECOND}/"))),
        "{sends:?}"
    );
    assert!(
        sends.iter().any(|p| p.contains(&format!("/{DEFAULT}/"))),
        "{sends:?}"
    );

    // The pull API is served by wa dev as on API Gateway: acme's events only.
    let page: Value = http
        .get(format!("{url}/v1/events?limit=100"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"));
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "message.read" && e["data"]["message_id"] == second["id"]),
        "{page}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["tenant"] == "acme" || e.get("tenant").is_none()),
        "{page}"
    );

    // Tenant beta's number (same WABA) is not acme's to send from.
    let (status, refused) = send(&http, &url, "n-beta", Some("1000201")).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["details"][0]["field"], "from", "{refused}");
    assert_eq!(
        refused["error"]["details"][0]["code"], "unknown_sender_number",
        "{refused}"
    );
    dev.stop().await;
}
