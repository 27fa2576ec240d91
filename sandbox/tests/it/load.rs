//! Throughput of the sandbox itself (ignored by default; run it in release):
//! `cargo test --release -p wa-sandbox --test it -- --ignored --nocapture sandbox_throughput`
//! Environment: `SANDBOX_LOAD_SENDS` (default 20000), `SANDBOX_LOAD_CLIENTS` (default 64).

use crate::support::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "load measurement; run explicitly in release"]
async fn sandbox_throughput() {
    let sends: u32 = std::env::var("SANDBOX_LOAD_SENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let clients: u32 = std::env::var("SANDBOX_LOAD_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.limits = no_limits();
    config.webhook.url = Some(receiver.url.clone());
    config.webhook.batch_window_ms = 20;
    config.webhook.max_batch = 1_000;
    config.recording.bodies = false;
    let sandbox = start(config).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()
        .unwrap();
    let url = messages_url(&sandbox);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for i in (c..sends).step_by(clients as usize) {
                    let body = order_shipped(&format!("+1415{i:07}"), Some(&callback(i)));
                    let r = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let rate = f64::from(sends) / elapsed.as_secs_f64();
    println!(
        "sandbox: {sends} sends from {clients} concurrent clients in {elapsed:.2?} = {rate:.0} sends/s (client, server and webhook receiver share this machine)"
    );
    let expected = u64::from(sends) * 3;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sandbox.sandbox.stats().webhooks.statuses_delivered < expected
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = sandbox.sandbox.stats();
    println!(
        "webhooks: {} statuses in {} POSTs, {:.2?} after the last send",
        stats.webhooks.statuses_delivered,
        stats.webhooks.posts_ok,
        started.elapsed() - elapsed
    );
    assert_eq!(stats.sends_accepted, u64::from(sends));
}
