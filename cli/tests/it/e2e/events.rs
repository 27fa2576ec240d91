//! Events out of the built `wa dev`: a `kill -9` in the middle of deliveries loses
//! no event, and `wa events list|replay` work on its SQLite file.

use crate::e2e::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use wa_local::events::WebhookSecret;

/// Fast recovery after the crash, fast webhooks, retries on a compressed clock.
const FAST: &str = r#"
[graph]
timeout_ms = 1500

[lifecycle]
lease_ms = 3000
queued_grace_ms = 2000
ambiguous_grace_ms = 3000
webhook_horizon_ms = 4000

[reconciler]
interval_ms = 500

[sender]
visibility_timeout_ms = 3000

[sandbox.webhook]
sent_after_ms = 50
delivered_after_ms = 150
read_after_ms = 300

[events]
time_scale = 0.001
poll_interval_ms = 20
"#;

/// Verified deliveries (ids, in arrival order, duplicates kept) and failed verifications.
#[derive(Clone, Default)]
struct Received {
    ids: Arc<Mutex<Vec<String>>>,
    rejected: Arc<AtomicUsize>,
}

async fn receiver(secret: WebhookSecret) -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let got = Received::default();
    let state = (Arc::new(secret), got.clone());
    let app = axum::Router::new()
        .route(
            "/hooks",
            axum::routing::post(
                |State((secret, got)): State<(Arc<WebhookSecret>, Received)>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                    let now = wa_local::events::dispatcher::now_ms() / 1000;
                    let verified = secret.verify(
                        h("webhook-id"),
                        h("webhook-timestamp"),
                        h("webhook-signature"),
                        &body,
                        now,
                    );
                    if verified.is_err() {
                        got.rejected.fetch_add(1, Ordering::SeqCst);
                        return StatusCode::UNAUTHORIZED;
                    }
                    let id = h("webhook-id").unwrap_or_default().to_owned();
                    got.ids.lock().unwrap().push(id);
                    StatusCode::OK
                },
            ),
        )
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

impl Received {
    fn unique(&self) -> BTreeSet<String> {
        self.ids.lock().unwrap().iter().cloned().collect()
    }
    fn total(&self) -> usize {
        self.ids.lock().unwrap().len()
    }
}

/// `wa events ARGS --data DIR/dev.sqlite`: stdout (the command must succeed).
fn wa_events(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa"))
        .arg("events")
        .args(args)
        .arg("--data")
        .arg(dir.join("dev.sqlite"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wa events {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The ids `wa events list --json` prints for tenant `other`.
fn logged_ids(dir: &Path) -> BTreeSet<String> {
    wa_events(
        dir,
        &[
            "list", "--since", "1h", "--tenant", "other", "--json", "--max", "100000",
        ],
    )
    .lines()
    .map(|l| {
        let v: Value = serde_json::from_str(l).unwrap();
        v["id"].as_str().unwrap().to_owned()
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_delivery_loses_no_event_and_replay_sends_them_again() {
    let dir = test_dir("events_kill");
    let secret = WebhookSecret::from_key(b"e2e-events-secret-of-thirty-two!");
    let (url, got) = receiver(secret.clone()).await;
    let config = two_tenants(&format!(
        "\n[[tenants.endpoints]]\nurl = \"{url}\"\nsecret = \"{}\"\n{FAST}",
        secret.to_whsec()
    ));
    let dev = Dev::start(&dir, Some(&config));

    // Load tenant `other` until some events have been delivered, then kill -9.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = JoinSet::new();
    for _ in 0..8 {
        let (api, stop, next) = (dev.api.clone(), stop.clone(), next.clone());
        clients.spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::Relaxed) && next.load(Ordering::Relaxed) < 200 {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let body = order_shipped(&recipient(n));
                if let Some((202, answer)) =
                    api.try_post(OTHER_KEY, &format!("ev-{n}"), &body).await
                {
                    acknowledged.push(answer["id"].as_str().unwrap().to_owned());
                }
            }
            acknowledged
        });
    }
    let started = Instant::now();
    while got.total() < 60 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "only {} events delivered",
            got.total()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    dev.kill_hard();
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<String> = clients.join_all().await.into_iter().flatten().collect();
    let before_restart = got.unique().len();
    let logged_at_kill = logged_ids(&dir);

    // Restart on the same file: what was logged but not delivered goes out now, and
    // the messages in flight finish (the reconciler repairs what the crash cut).
    let dev = Dev::start(&dir, Some(&config));
    for id in &acknowledged {
        dev.wait_until(OTHER_KEY, id, Duration::from_secs(20), |m: &Value| {
            ["read", "delivered", "failed"].contains(&m["status"].as_str().unwrap_or_default())
        })
        .await;
    }
    let started = Instant::now();
    let logged = loop {
        let logged = logged_ids(&dir);
        let delivered = got.unique();
        let missing: Vec<&String> = logged.difference(&delivered).collect();
        if missing.is_empty() {
            break logged;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} of {} logged events never delivered, e.g. {:?}",
            missing.len(),
            logged.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(logged_at_kill.is_subset(&logged));
    assert_eq!(got.rejected.load(Ordering::SeqCst), 0);
    assert_eq!(got.unique(), logged, "nothing but the log's events");
    let duplicates = got.total() - got.unique().len();
    println!(
        "kill -9 with {before_restart} of {} logged events delivered; after the restart all {} \
         delivered ({} messages, {duplicates} duplicate deliveries)",
        logged_at_kill.len(),
        logged.len(),
        acknowledged.len()
    );

    // The log as a table, then a replay of everything: every event comes again.
    let table = wa_events(&dir, &["list", "--since", "1h", "--tenant", "other"]);
    assert!(
        table.contains("message.accepted") && table.contains(&format!("{} event(s)", logged.len())),
        "{table}"
    );
    let total_before = got.total();
    let replay = wa_events(&dir, &["replay", "--since", "1h", "--endpoint", &url]);
    assert!(
        replay.contains(&format!("{} deliveries queued again", logged.len())),
        "{replay}"
    );
    let started = Instant::now();
    while got.total() < total_before + logged.len() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replay: {} of {} delivered again",
            got.total() - total_before,
            logged.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead_only = wa_events(&dir, &["replay", "--since", "1h", "--only-dead"]);
    assert!(
        dead_only.contains("0 deliveries queued again"),
        "{dead_only}"
    );
    let status_page = dev
        .http
        .get(&dev.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status_page.contains("id=\"endpoints\"") && status_page.contains("data-health=\"ok\""));
}
