//! Restarts and crashes: the SQLite file is the whole state of `wa dev`.

use crate::e2e::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Fast recovery timings, so a crash is repaired within seconds.
const FAST_RECOVERY: &str = r#"
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
"#;

fn stop_gracefully(dev: Dev) {
    let pid = dev.pid().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    dev.wait_exit(Duration::from_secs(15));
}

#[tokio::test]
async fn a_restart_keeps_messages_idempotency_keys_and_contacts() {
    let dir = test_dir("durability_restart");
    let config = two_tenants(FAST_RECOVERY);
    let dev = Dev::start(&dir, Some(&config));
    let mut ids = Vec::new();
    for n in 0..10 {
        let (status, _, body) = dev
            .post(
                DEMO_KEY,
                Some(&format!("restart-{n}")),
                &order_shipped(&recipient(n)),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let mut before = Vec::new();
    for id in &ids {
        before.push(
            dev.wait_until(DEMO_KEY, id, Duration::from_secs(20), |m| {
                m["status"] == "read"
            })
            .await,
        );
    }
    let opted_out = "+14155550199";
    dev.inbound(DEMO_PHONE, opted_out, "STOP").await;
    dev.post_until(
        DEMO_KEY,
        "probe",
        &order_shipped(opted_out),
        "suppressed",
        "STOP never applied",
    )
    .await;
    stop_gracefully(dev);

    let dev = Dev::start(&dir, Some(&config));
    for (id, old) in ids.iter().zip(&before) {
        let (status, now) = dev.get(DEMO_KEY, id).await;
        assert_eq!(status, 200);
        assert_eq!(&now, old, "message changed across the restart");
    }
    let (status, headers, replay) = dev
        .post(DEMO_KEY, Some("restart-0"), &order_shipped(&recipient(0)))
        .await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(headers["idempotent-replayed"], "true");
    let (status, _, suppressed) = dev
        .post(DEMO_KEY, Some("after-restart"), &order_shipped(opted_out))
        .await;
    assert_eq!(status, 202);
    assert_eq!(suppressed["status"], "suppressed", "{suppressed}");
    assert_eq!(dev.sandbox_stats().await["sends_accepted"], 0);
}

#[tokio::test]
async fn kill_9_under_load_loses_no_acknowledged_message_and_resumes() {
    let dir = test_dir("durability_kill");
    // 16 clients as fast as intake answers: the crash is the point, not demo's quota.
    let config = two_tenants_with(FLOOD_QUOTA, "", FAST_RECOVERY);
    let dev = Dev::start(&dir, Some(&config));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = JoinSet::new();
    for _ in 0..16 {
        let (api, stop, next) = (dev.api.clone(), stop.clone(), next.clone());
        clients.spawn(async move {
            let (mut acknowledged, mut unanswered) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let key = format!("kill-{n}");
                match api
                    .try_post(DEMO_KEY, &key, &order_shipped(&recipient(n)))
                    .await
                {
                    Some((202, body)) => {
                        acknowledged.push((key, body["id"].as_str().unwrap().to_owned()));
                    }
                    Some((status, body)) => panic!("{status} {body}"),
                    // The process died with the request in flight: the caller retries.
                    None => unanswered.push((key, n)),
                }
            }
            (acknowledged, unanswered)
        });
    }
    // Kill in the middle of intake, sends and webhooks.
    let load_started = Instant::now();
    while next.load(Ordering::Relaxed) < 600 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    dev.kill_hard();
    let killed_after = load_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let results = clients.join_all().await;
    let acknowledged: Vec<(String, String)> = results.iter().flat_map(|(a, _)| a.clone()).collect();
    let unanswered: Vec<(String, usize)> = results.iter().flat_map(|(_, u)| u.clone()).collect();
    assert!(
        acknowledged.len() >= 500,
        "only {} acknowledged",
        acknowledged.len()
    );

    let dev = Dev::start(&dir, Some(&config));
    // Callers retry what was never answered, with the same key: never a second message.
    let mut retried = BTreeSet::new();
    for (key, n) in &unanswered {
        let (status, _, body) = dev
            .post(DEMO_KEY, Some(key), &order_shipped(&recipient(*n)))
            .await;
        assert!(status == 202 || status == 200, "{status} {body}");
        retried.insert(body["id"].as_str().unwrap().to_owned());
    }
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    let deadline = Duration::from_secs(60);
    for (_, id) in &acknowledged {
        let message = dev
            .wait_until(DEMO_KEY, id, deadline, |m: &Value| {
                ["read", "delivered", "failed"].contains(&m["status"].as_str().unwrap_or_default())
            })
            .await;
        if message["status"] == "failed" {
            // Only what the crash made unknowable: an answer or webhooks lost with the process.
            let class = message["failure"]["class"].as_str().unwrap_or_default();
            assert!(["unconfirmed", "ambiguous"].contains(&class), "{message:#}");
        }
        *states
            .entry(message["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for id in &retried {
        dev.wait_until(DEMO_KEY, id, deadline, |m| {
            ["read", "delivered", "failed"].contains(&m["status"].as_str().unwrap_or_default())
        })
        .await;
    }
    println!(
        "killed after {killed_after:?}: {} acknowledged, {} unanswered and retried; after the \
         restart: {states:?}",
        acknowledged.len(),
        unanswered.len()
    );
}

/// `wa dev` refuses a store file that is empty or not SQLite, saying which, instead of
/// starting silently on an empty store.
#[test]
fn wa_dev_refuses_a_file_that_is_not_a_store() {
    let dir = test_dir("durability_not_a_store");
    for (name, content, needle) in [
        ("empty.sqlite", &b""[..], "empty file"),
        (
            "text.sqlite",
            &b"these are not the rows you are looking for"[..],
            "not an SQLite database",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa"))
            .args([
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--sandbox-listen",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(&path)
            .env_remove("WA_GRAPH_BASE_URL")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "{name} left as it was"
        );
    }
}
