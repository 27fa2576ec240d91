//! Tenant holds through the built `wa dev` and its sandbox: the number's access
//! token expires for a while (the sandbox answers 190), the tenant is held, its
//! waiting messages make no Graph call, and when the token works again one probe
//! releases the hold and every message is sent, none failed or exhausted.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wa_local::{DevConfig, DevServer};
use wa_sandbox::TokenExpiry;
use wa_shared::adapters::SqliteDirectory;
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::domain::TenantId;
use wa_shared::domain::tenant::TenantHold;
use wa_shared::ports::Directory;

const KEY: &str = "key_holds";
const PHONE: &str = "1000001";

async fn start(dir: &std::path::Path) -> DevServer {
    let path = dir.join("wa.toml");
    let text = format!(
        r#"data = "dev.sqlite"

[sender]
hold_probe_ms = 400

[sandbox]
seed = 3

[sandbox.webhook]
sent_after_ms = 20
delivered_after_ms = 40
read_after_ms = 60

[[tenants]]
id = "acme"
api_keys = ["{KEY}"]
phone_number_id = "{PHONE}"
waba_id = "2000{PHONE}"
max_concurrency = 4
"#
    );
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

async fn send(http: &reqwest::Client, url: &str, n: usize) -> String {
    let resp = http
        .post(format!("{url}/v1/messages"))
        .bearer_auth(KEY)
        .header("idempotency-key", format!("hold-{n}"))
        .json(
            &json!({"to": format!("+1415555{:04}", 2000 + n), "template": {
            "name": "order_shipped", "language": "en_US", "body": ["Ana", "#1234"],
            "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn state(http: &reqwest::Client, url: &str, id: &str) -> String {
    let m: Value = http
        .get(format!("{url}/v1/messages/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    m["status"].as_str().unwrap_or_default().to_owned()
}

async fn hold(dir: &std::path::Path) -> Option<TenantHold> {
    let db = SqliteDb::open(dir.join("dev.sqlite"), SqliteOptions::default())
        .await
        .unwrap();
    let directory = SqliteDirectory::new(db).await.unwrap();
    let acme = TenantId::parse("acme").unwrap();
    directory.tenant(&acme).await.unwrap().unwrap().hold
}

/// Sends the sandbox answered with 190.
fn token_errors(dev: &DevServer) -> usize {
    dev.sandbox()
        .unwrap()
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/messages") && r.http_status == 401)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_token_holds_the_tenant_until_a_probe_sends_every_waiting_message() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let (http, url) = (reqwest::Client::new(), dev.url());
    dev.sandbox()
        .unwrap()
        .expire_token(&TokenExpiry {
            phone_number_id: PHONE.into(),
            duration_ms: 3_000,
        })
        .unwrap();
    let started = Instant::now();

    // The first send earns a 190 and holds the tenant.
    let mut ids = vec![send(&http, &url, 0).await];
    let held = loop {
        if let Some(h) = hold(dir.path()).await {
            break h;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no hold");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(held.code, Some(190));
    // Ten more while held: they wait.
    for n in 1..=10 {
        ids.push(send(&http, &url, n).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in &ids[1..] {
        assert_eq!(
            state(&http, &url, id).await,
            "queued",
            "{id} waits while held"
        );
    }

    // The token works again after 3 s: a probe releases the hold, all are sent.
    let sent = ["accepted", "sent", "delivered", "read"];
    loop {
        let mut states = Vec::new();
        for id in &ids {
            states.push(state(&http, &url, id).await);
        }
        if states.iter().all(|s| sent.contains(&s.as_str())) {
            break;
        }
        assert!(
            states
                .iter()
                .all(|s| s == "queued" || s == "sending" || sent.contains(&s.as_str())),
            "no message fails or is exhausted during a hold: {states:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(30), "{states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hold(dir.path()).await.is_none(), "released");
    let errors = token_errors(&dev);
    let took = started.elapsed();
    println!(
        "hold: {errors} Graph calls answered 190 during a 3 s token expiry with 11 messages \
         (probe every 400 ms); all sent after {took:?}"
    );
    // One failed call placed the hold, then at most one per probe interval: without
    // holds every waiting message would have earned its own 190.
    assert!(errors <= 1 + 3_000 / 400 + 2, "{errors} calls answered 190");
    dev.stop().await;
}
