//! The cost ledger end to end through the built `wa dev` (issue 17 point 2): templates
//! sent to the sandbox, whose status webhooks carry `pricing` as Meta's do (on `sent`
//! and `delivered`), every one posted twice and half of them reordered by the fault
//! profile; the ledger counts each message once in its category, and the status
//! page's `#costs` panel shows those counts with the sample-rates flag.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wa_local::{DevConfig, DevServer};
use wa_shared::adapters::SqliteCostLedger;
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::domain::TenantId;
use wa_shared::domain::costs::{CostCount, next_day};
use wa_shared::domain::quota::UtcDay;
use wa_shared::ports::{Clock, CostLedger};

const KEY: &str = "key_costs";

async fn start(dir: &std::path::Path) -> DevServer {
    let path = dir.join("wa.toml");
    let text = format!(
        r#"data = "dev.sqlite"

[sandbox]
seed = 11

[sandbox.webhook]
sent_after_ms = 20
delivered_after_ms = 40
read_after_ms = 60
batch_window_ms = 10

[sandbox.faults.webhook]
duplicate_rate = 1.0
reorder_rate = 0.5

[[tenants]]
id = "acme"
api_keys = ["{KEY}"]
phone_number_id = "1000401"
waba_id = "2000401"
"#
    );
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

async fn send(http: &reqwest::Client, url: &str, key: &str, to: &str, template: Value) -> String {
    let resp = http
        .post(format!("{url}/v1/messages"))
        .bearer_auth(KEY)
        .header("idempotency-key", key)
        .json(&json!({"to": to, "template": template}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
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
        assert!(start.elapsed() < Duration::from_secs(20), "never read: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Messages counted per category over yesterday and today (a run across midnight
/// counts each message on one of them).
async fn counted(ledger: &SqliteCostLedger) -> Vec<(String, bool, u64)> {
    let today = UtcDay::of(wa_shared::adapters::SystemClock.now());
    let rows: Vec<CostCount> = ledger
        .cost_totals(
            &TenantId::parse("acme").unwrap(),
            today.minus_days(1),
            next_day(today),
        )
        .await
        .unwrap();
    let mut out: Vec<(String, bool, u64)> = Vec::new();
    for r in rows {
        match out
            .iter_mut()
            .find(|(c, b, _)| *c == r.category && *b == r.billable)
        {
            Some(row) => row.2 += r.messages,
            None => out.push((r.category, r.billable, r.messages)),
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_message_is_counted_once_per_category_despite_duplicates_and_reorders() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let http = reqwest::Client::new();
    let url = dev.url();
    let shipped = |name: &str| {
        json!({"name": "order_shipped", "language": "en_US", "body": [name, "#1234"],
               "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]})
    };
    let mut ids = Vec::new();
    for (n, to) in ["+14155550601", "+14155550602", "+447911123456"]
        .iter()
        .enumerate()
    {
        ids.push(send(&http, &url, &format!("u-{n}"), to, shipped("Ana")).await);
    }
    let offer = json!({"name": "welcome_offer", "language": "en_US"});
    ids.push(send(&http, &url, "m-1", "+919876543210", offer).await);
    for id in &ids {
        read_eventually(&http, &url, id).await;
    }

    let path = dir.path().join("dev.sqlite");
    assert!(path.exists(), "wa dev's file at {}", path.display());
    let db = SqliteDb::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    let ledger = SqliteCostLedger::new(db).await.unwrap();
    let want = vec![
        ("marketing".to_owned(), true, 1),
        ("utility".to_owned(), true, 3),
    ];
    // Wait for every status (sent and delivered priced, read not), each posted twice,
    // to be taken by wa dev's webhook: nothing counts twice.
    let sandbox = dev.sandbox().unwrap();
    let start = Instant::now();
    loop {
        let w = sandbox.stats().webhooks;
        if w.statuses_scheduled == 12 && w.statuses_delivered == 24 {
            assert_eq!(w.statuses_duplicated, 12, "{w:?}");
            assert!(w.statuses_reordered > 0, "{w:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{w:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counted(&ledger).await, want);
    let sends = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .count();
    assert_eq!(sends, 4, "one Graph send per message");

    let page = http
        .get(format!("{url}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let panel = &page[page.find("<section id=\"costs\">").expect("a #costs panel")..];
    assert!(
        panel.contains("data-tenant=\"acme\" data-category=\"utility\""),
        "{panel}"
    );
    assert!(panel.contains("data-messages=\"3\""), "{panel}");
    assert!(
        panel.contains("data-tenant=\"acme\" data-category=\"marketing\""),
        "{panel}"
    );
    assert!(panel.contains("data-rates=\"sample\""), "{panel}");
    dev.stop().await;
}
