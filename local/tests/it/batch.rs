//! `POST /v1/messages/batch` through the built `wa dev` and its sandbox: a batch is
//! answered item by item, its valid messages are sent and reach `read` while its
//! invalid ones are refused with their index in every field path, a key reused with
//! another body inside the batch is a 409 for that item only, and the same batch
//! again replays the stored messages.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wa_local::{DevConfig, DevServer};

const KEY: &str = "key_batch";

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
phone_number_id = "1000301"
waba_id = "2000301"
"#
    );
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

fn template(name: &str) -> Value {
    json!({"name": "order_shipped", "language": "en_US", "body": [name, "#1234"],
           "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]})
}

async fn post_batch(http: &reqwest::Client, url: &str, batch: &Value) -> (u16, Value) {
    let resp = http
        .post(format!("{url}/v1/messages/batch"))
        .bearer_auth(KEY)
        .json(batch)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn statuses(answer: &Value) -> Vec<i64> {
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect()
}

async fn read_eventually(http: &reqwest::Client, url: &str, id: &str) {
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
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never read: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_is_answered_item_by_item_and_its_valid_messages_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let http = reqwest::Client::new();
    let url = dev.url();
    let batch = json!({"messages": [
        {"idempotency_key": "b-1", "to": "+14155550501", "template": template("Ana")},
        {"idempotency_key": "b-2", "to": "+14155550502", "template": template("Bo")},
        {"idempotency_key": "b-3", "to": "+14155550503",
         "template": {"name": "no_such_template", "language": "en_US"}},
        {"idempotency_key": "b-1", "to": "+14155550501", "template": template("Other")},
        {"idempotency_key": "b-5", "to": "+14155550505", "template": template("Cy")},
    ]});
    let (status, answer) = post_batch(&http, &url, &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(statuses(&answer), [202, 202, 422, 409, 202], "{answer}");
    assert_eq!(answer["accepted"], 3);
    assert_eq!(answer["refused"], 2);
    let problem = &answer["results"][2]["error"]["details"][0];
    assert_eq!(problem["field"], "messages[2].template.name", "{answer}");
    assert_eq!(problem["code"], "unknown_template");
    assert_eq!(
        answer["results"][3]["error"]["code"], "idempotency_key_reused",
        "{answer}"
    );
    for i in [0, 1, 4] {
        let id = answer["results"][i]["message"]["id"].as_str().unwrap();
        read_eventually(&http, &url, id).await;
    }
    let sends = dev
        .sandbox()
        .unwrap()
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .count();
    assert_eq!(sends, 3, "one Graph send per valid item");

    // The same batch again: the stored messages replayed, the rest refused again.
    let (status, again) = post_batch(&http, &url, &batch).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(statuses(&again), [200, 200, 422, 409, 200], "{again}");
    assert_eq!(again["results"][0]["message"]["status"], "read");

    // A malformed batch is one 422 naming the field.
    let (status, bad) = post_batch(&http, &url, &json!({"messages": []})).await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["error"]["details"][0]["field"], "messages");
    dev.stop().await;
}
