//! `GET /v1/messages` through the built `wa dev`: the caller's messages only, newest
//! first, filtered by status, recipient and creation window, paged with a cursor that
//! new messages written between pages do not disturb; a bad parameter is a 400 naming
//! it.

use serde_json::{Value, json};
use tokio::net::TcpListener;
use wa_local::{DevConfig, DevServer};

async fn start(dir: &std::path::Path) -> DevServer {
    let path = dir.join("wa.toml");
    let text = r#"data = "dev.sqlite"

[[tenants]]
id = "acme"
api_keys = ["key_list_acme"]
phone_number_id = "1000401"
waba_id = "2000401"

[[tenants]]
id = "beta"
api_keys = ["key_list_beta"]
phone_number_id = "1000402"
waba_id = "2000402"
"#;
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

async fn send(http: &reqwest::Client, url: &str, key: &str, to: &str, n: usize) -> String {
    let resp = http
        .post(format!("{url}/v1/messages"))
        .bearer_auth(key)
        .header("idempotency-key", format!("list-{key}-{n}"))
        .json(
            &json!({"to": to, "template": {"name": "order_shipped", "language": "en_US",
            "body": ["Ana", format!("#{n}")],
            "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn list(http: &reqwest::Client, url: &str, key: &str, query: &str) -> (u16, Value) {
    let resp = http
        .get(format!("{url}/v1/messages?{query}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn ids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_lists_its_own_messages_with_filters_and_a_stable_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let http = reqwest::Client::new();
    let url = dev.url();
    let (ana, bo) = ("+14155550601", "+14155550602");
    let mut to_ana = Vec::new();
    for n in 0..5 {
        to_ana.push(send(&http, &url, "key_list_acme", ana, n).await);
        send(&http, &url, "key_list_acme", bo, 10 + n).await;
        // Distinct creation milliseconds keep "newest first" unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    send(&http, &url, "key_list_beta", ana, 99).await;

    // Ana's, two a page (the `+` percent-encoded), with two new ones written after
    // the first page: the pages after it are unchanged.
    let (status, first) = list(&http, &url, "key_list_acme", "to=%2B14155550601&limit=2").await;
    assert_eq!(status, 200, "{first}");
    let mut seen = ids(&first);
    for n in 20..22 {
        send(&http, &url, "key_list_acme", ana, n).await;
    }
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (status, page) = list(
            &http,
            &url,
            "key_list_acme",
            &format!("to=%2B14155550601&limit=2&cursor={c}"),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    let newest_first: Vec<String> = to_ana.iter().rev().cloned().collect();
    assert_eq!(
        seen, newest_first,
        "no duplicate, no gap, nothing new inside"
    );

    // All of acme's: 12, never beta's; a status filter; a window that ends before
    // everything.
    let (_, all) = list(&http, &url, "key_list_acme", "limit=100").await;
    assert_eq!(ids(&all).len(), 12, "{all}");
    assert!(all["next_cursor"].is_null());
    let (_, beta) = list(&http, &url, "key_list_beta", "").await;
    assert_eq!(ids(&beta).len(), 1);
    let (_, none) = list(&http, &url, "key_list_acme", "status=suppressed").await;
    assert!(ids(&none).is_empty(), "nothing was suppressed: {none}");
    for state in ["queued", "accepted", "read"] {
        let (_, page) = list(&http, &url, "key_list_acme", &format!("status={state}")).await;
        for m in page["messages"].as_array().unwrap() {
            assert_eq!(m["status"], state, "{page}");
        }
    }
    let (_, early) = list(&http, &url, "key_list_acme", "until=2000-01-01T00:00:00Z").await;
    assert!(ids(&early).is_empty());
    let (_, recent) = list(
        &http,
        &url,
        "key_list_acme",
        "since=2000-01-01T00:00:00Z&limit=3",
    )
    .await;
    assert_eq!(ids(&recent).len(), 3);
    assert!(recent["next_cursor"].is_string());

    // Bad parameters are 400s naming what is wrong.
    for (query, code) in [
        ("status=nope", "invalid_status"),
        ("to=14155550601", "invalid_recipient"),
        ("since=yesterday", "invalid_time"),
        ("limit=500", "invalid_limit"),
        ("cursor=garbage", "invalid_cursor"),
        ("page=2", "unknown_parameter"),
    ] {
        let (status, body) = list(&http, &url, "key_list_acme", query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
    dev.stop().await;
}
