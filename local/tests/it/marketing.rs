//! Marketing rules through the built `wa dev` and its sandbox, driven by the
//! sandbox's Meta-side controls: a `user_preferences` stop, a stop the pipeline only
//! learns from a 131050, a template re-categorized as MARKETING, and a user at the
//! per-user marketing cap (131049).

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wa_local::{DevConfig, DevServer};
use wa_sandbox::{MarketingCap, TemplateCategoryChange, UserPreference};

const KEY: &str = "key_marketing";
const PHONE: &str = "1000001";

async fn start(dir: &std::path::Path) -> DevServer {
    start_with(dir, "").await
}

/// `wa dev` with `extra` TOML before the sandbox section.
async fn start_with(dir: &std::path::Path, extra: &str) -> DevServer {
    let path = dir.join("wa.toml");
    let text = format!(
        r#"data = "dev.sqlite"
{extra}

[sandbox]
seed = 5

[sandbox.webhook]
sent_after_ms = 20
delivered_after_ms = 40
read_after_ms = 60

[[tenants]]
id = "acme"
api_keys = ["{KEY}"]
phone_number_id = "{PHONE}"
waba_id = "2000{PHONE}"
"#
    );
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn send(&self, key: &str, to: &str, template: &str) -> Value {
        let template = match template {
            "welcome_offer" => json!({"name": "welcome_offer", "language": "en_US"}),
            _ => json!({"name": "order_shipped", "language": "en_US", "body": ["Ana", "#1234"],
                "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}),
        };
        let resp = self
            .http
            .post(format!("{}/v1/messages", self.url))
            .bearer_auth(KEY)
            .header("idempotency-key", key)
            .json(&json!({"to": to, "template": template}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        resp.json().await.unwrap()
    }

    async fn get(&self, id: &str) -> Value {
        self.http
            .get(format!("{}/v1/messages/{id}", self.url))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Wait until the message has a failure with `code` (or is done otherwise).
    async fn failure_code(&self, id: &str) -> Option<i64> {
        let start = Instant::now();
        loop {
            let m = self.get(id).await;
            if let Some(code) = m["failure"]["code"].as_i64() {
                return Some(code);
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("no failure on {m}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Send MARKETING `welcome_offer` until intake suppresses it with `reason` (the
    /// webhook that teaches it may still be on its way).
    async fn suppressed_eventually(&self, key: &str, to: &str, template: &str, reason: &str) {
        let start = Instant::now();
        for n in 0.. {
            let m = self.send(&format!("{key}-{n}"), to, template).await;
            if m["status"] == "suppressed" {
                assert_eq!(m["suppression"]["reason"], reason, "{m}");
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "never suppressed: {m}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metas_marketing_signals_from_the_sandbox_shape_what_wa_dev_sends() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let sandbox = dev.sandbox().unwrap().clone();
    let api = Api {
        http: reqwest::Client::new(),
        url: dev.url(),
    };

    // A user_preferences stop: the next MARKETING template is suppressed, UTILITY is not.
    sandbox
        .user_preference(&UserPreference {
            phone_number_id: PHONE.into(),
            wa_id: "14155550301".into(),
            value: "stop".into(),
            notify: true,
        })
        .unwrap();
    api.suppressed_eventually(
        "ana-m",
        "+14155550301",
        "welcome_offer",
        "marketing_opted_out",
    )
    .await;
    let utility = api.send("ana-u", "+14155550301", "order_shipped").await;
    assert_eq!(utility["status"], "queued", "{utility}");

    // A stop wa dev never heard of: the send fails by webhook with 131050, which
    // records it, so the next MARKETING template is suppressed before sending.
    sandbox
        .user_preference(&UserPreference {
            phone_number_id: PHONE.into(),
            wa_id: "14155550302".into(),
            value: "stop".into(),
            notify: false,
        })
        .unwrap();
    let first = api.send("bruno-m", "+14155550302", "welcome_offer").await;
    let id = first["id"].as_str().unwrap();
    assert_eq!(api.failure_code(id).await, Some(131050));
    api.suppressed_eventually(
        "bruno-m2",
        "+14155550302",
        "welcome_offer",
        "marketing_opted_out",
    )
    .await;

    // order_shipped becomes MARKETING (the completed category change): now it is
    // suppressed for the stopped user too.
    sandbox
        .template_category(&TemplateCategoryChange {
            waba_id: None,
            name: "order_shipped".into(),
            language: "en_US".into(),
            new_category: "MARKETING".into(),
        })
        .unwrap();
    api.suppressed_eventually(
        "ana-u2",
        "+14155550301",
        "order_shipped",
        "marketing_opted_out",
    )
    .await;

    // A user at the per-user marketing cap: the send fails by webhook with 131049.
    sandbox.marketing_cap(&MarketingCap {
        wa_id: "14155550303".into(),
        capped: true,
    });
    let capped = api.send("carla-m", "+14155550303", "welcome_offer").await;
    let id = capped["id"].as_str().unwrap();
    assert_eq!(api.failure_code(id).await, Some(131049));
    // Its 24 h wait does not fit the default max age (24 h): exhausted with the reason.
    let refused = api.get(id).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["failure"]["class"], "exhausted", "{refused}");
    // The limit holds Carla's next MARKETING template for 24 h, longer than wa dev's
    // default max age: it is exhausted with the 131049 and never reaches Graph, even
    // once the sandbox would take it.
    sandbox.marketing_cap(&MarketingCap {
        wa_id: "14155550303".into(),
        capped: false,
    });
    let next = api.send("carla-m2", "+14155550303", "welcome_offer").await;
    let next_id = next["id"].as_str().unwrap();
    assert_eq!(api.failure_code(next_id).await, Some(131049));
    let held = api.get(next_id).await;
    assert_eq!(held["failure"]["class"], "exhausted", "{held}");
    let sent_to_graph = sandbox.requests().iter().any(|r| {
        r.callback_data
            .as_deref()
            .is_some_and(|c| c.ends_with(next_id))
    });
    assert!(!sent_to_graph, "the held marketing template was sent");
    dev.stop().await;
}

/// With a max age of three days, a 131049 by webhook puts the message back to
/// `queued` for its retry after Meta's 24 h, with the 131049 shown, and sends nothing
/// in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_131049_by_webhook_puts_the_message_back_to_wait_out_the_24_hours() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_with(dir.path(), "\n[sender]\nmax_age_ms = 259200000\n").await;
    let sandbox = dev.sandbox().unwrap().clone();
    let api = Api {
        http: reqwest::Client::new(),
        url: dev.url(),
    };
    sandbox.marketing_cap(&MarketingCap {
        wa_id: "14155550304".into(),
        capped: true,
    });
    let capped = api.send("dora-m", "+14155550304", "welcome_offer").await;
    let id = capped["id"].as_str().unwrap();
    assert_eq!(api.failure_code(id).await, Some(131049));
    let waiting = api.get(id).await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert_eq!(waiting["failure"]["class"], "throttled", "{waiting}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sends = sandbox
        .requests()
        .iter()
        .filter(|r| r.callback_data.as_deref().is_some_and(|c| c.ends_with(id)))
        .count();
    assert_eq!(sends, 1, "sent again within the 24 h");
    assert_eq!(api.get(id).await["status"], "queued");
    dev.stop().await;
}
