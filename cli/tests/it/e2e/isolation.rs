//! Tenant isolation: one tenant's flood must not delay another tenant's messages.

use crate::e2e::support::*;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const FLOOD: usize = 5_000;
const QUIET: usize = 20;

/// `demo` floods 5,000 messages through the API; meanwhile `other` sends 20. Each
/// tenant has its own queue and workers, so `other`'s messages go from queued to
/// accepted in under 2 s (p99 of 20 = the slowest one) while `demo`'s backlog is deep.
#[tokio::test]
async fn a_tenant_flooding_5000_messages_does_not_delay_another_tenants_20() {
    let dev = Dev::start(
        &test_dir("isolation_flood"),
        Some(&two_tenants_with(
            // The flood is the point here, not demo's intake quota (tests/it/e2e/quotas.rs).
            FLOOD_QUOTA,
            "",
            // A flood this size is a load test of the store: fsync per commit is not the point.
            "[store]\nsynchronous = \"normal\"\n[sandbox.webhook]\nsent_after_ms = 200\ndelivered_after_ms = 400\nread_after_ms = \"never\"\n",
        )),
    );
    let started = Instant::now();
    let mut flood = JoinSet::new();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..32 {
        let (api, next) = (dev.api.clone(), next.clone());
        flood.spawn(async move {
            let mut accepted = 0;
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= FLOOD {
                    return accepted;
                }
                let (status, _, body) = api
                    .post(
                        DEMO_KEY,
                        Some(&format!("flood-{n}")),
                        &order_shipped(&recipient(n)),
                    )
                    .await;
                assert_eq!(status, 202, "{body}");
                accepted += 1;
            }
        });
    }
    // Let the flood build a backlog, then send the quiet tenant's messages one by one.
    while next.load(std::sync::atomic::Ordering::Relaxed) < 1_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ids = Vec::new();
    for n in 0..QUIET {
        let (status, _, body) = dev
            .post(
                OTHER_KEY,
                Some(&format!("quiet-{n}")),
                &order_shipped(&recipient(5_000 + n)),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies = Vec::new();
    for id in &ids {
        let message = dev
            .wait_until(OTHER_KEY, id, Duration::from_secs(30), |m| {
                m["timestamps"]["accepted_at"].is_string()
            })
            .await;
        let queued = millis(message["timestamps"]["queued_at"].as_str().unwrap());
        let accepted = millis(message["timestamps"]["accepted_at"].as_str().unwrap());
        latencies.push(accepted - queued);
    }
    let sent: usize = flood.join_all().await.into_iter().sum();
    assert_eq!(sent, FLOOD);
    latencies.sort_unstable();
    // Nearest-rank p99 of 20 samples is the slowest one.
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    let demo_depth = dev.sandbox_stats().await["sends_accepted"]
        .as_u64()
        .unwrap();
    println!(
        "flood of {FLOOD} in {:?}; other tenant queued->accepted ms: p50 {} p99 {} max {}; \
         sandbox had accepted {demo_depth} sends by then",
        started.elapsed(),
        latencies[latencies.len() / 2],
        p99,
        latencies[latencies.len() - 1]
    );
    assert!(p99 < 2_000, "p99 {p99} ms: {latencies:?}");
    // The flood was still in progress: the other tenant did not wait for it.
    assert!(
        (demo_depth as usize) < FLOOD + QUIET,
        "the flood had already drained; the test proved nothing"
    );
}
