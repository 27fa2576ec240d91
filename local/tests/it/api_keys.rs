//! API keys follow wa dev's wa.toml across restarts (issue 14): a key removed from a
//! tenant's `api_keys`, or every key of a tenant removed from the file, no longer
//! authenticates after the restart (401 `invalid_api_key`), while the keys still in
//! the file keep working.

use serde_json::{Value, json};
use tokio::net::TcpListener;
use wa_local::{DevConfig, DevServer};

/// The file's tenants: `(id, phone number id, api keys)`.
type Tenants<'a> = &'a [(&'a str, &'a str, &'a [&'a str])];

async fn start(dir: &std::path::Path, tenants: Tenants<'_>) -> DevServer {
    let mut text = String::from("data = \"dev.sqlite\"\n");
    for (id, phone, keys) in tenants {
        let keys = keys
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ");
        text.push_str(&format!(
            "\n[[tenants]]\nid = \"{id}\"\napi_keys = [{keys}]\nphone_number_id = \"{phone}\"\nwaba_id = \"2000{phone}\"\n"
        ));
    }
    let path = dir.join("wa.toml");
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

/// POST a template message with `key`; the status and the JSON body.
async fn send(dev: &DevServer, key: &str, n: u32) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", dev.url()))
        .bearer_auth(key)
        .header("idempotency-key", format!("keys-{n}"))
        .json(
            &json!({"to": format!("+1415555{:04}", 3000 + n), "template": {
            "name": "order_shipped", "language": "en_US", "body": ["Ana", "#1234"],
            "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}}),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn assert_revoked((status, body): (u16, Value)) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("revoked"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_removed_from_the_file_is_revoked_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(
        dir.path(),
        &[("acme", "1000011", &["key_kept", "key_dropped"])],
    )
    .await;
    assert_eq!(send(&dev, "key_kept", 1).await.0, 202);
    assert_eq!(send(&dev, "key_dropped", 2).await.0, 202);
    dev.stop().await;

    let dev = start(dir.path(), &[("acme", "1000011", &["key_kept"])]).await;
    assert_revoked(send(&dev, "key_dropped", 3).await);
    let (status, body) = send(&dev, "key_kept", 4).await;
    assert_eq!(status, 202, "{body}");
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_removed_from_the_file_no_longer_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let both: Tenants<'_> = &[
        ("acme", "1000021", &["key_acme"]),
        ("beta", "1000022", &["key_beta"]),
    ];
    let dev = start(dir.path(), both).await;
    assert_eq!(send(&dev, "key_beta", 1).await.0, 202);
    dev.stop().await;

    let dev = start(dir.path(), &[("acme", "1000021", &["key_acme"])]).await;
    assert_revoked(send(&dev, "key_beta", 2).await);
    assert_eq!(send(&dev, "key_acme", 3).await.0, 202);
    dev.stop().await;

    // Back in the file, it authenticates again with the file's key.
    let dev = start(dir.path(), both).await;
    let (status, body) = send(&dev, "key_beta", 4).await;
    assert_eq!(status, 202, "{body}");
    dev.stop().await;
}
