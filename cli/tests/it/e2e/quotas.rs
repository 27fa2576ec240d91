//! Per-tenant intake quotas through the built `wa dev`: a tenant over its quota gets
//! 429 with `Retry-After`; another tenant sending at the same time never does.

use crate::e2e::support::*;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const FLOOD: usize = 300;

fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {headers:?}"))
}

/// `demo` (5/s, burst 10) floods 300 requests from 16 clients while `other` (the
/// default quota) sends 40 from 4: demo gets 429s with `Retry-After` and its limit,
/// at most its burst plus its rate gets through, other gets 202 every time, and demo
/// is admitted again once it waits as told.
#[tokio::test]
async fn a_tenant_flooding_past_its_quota_gets_429s_and_another_tenant_none() {
    let config = two_tenants_with(
        "intake_quota = { requests_per_second = 5, burst = 10 }",
        "",
        "[store]\nsynchronous = \"normal\"\n",
    );
    let dev = Dev::start(&test_dir("quotas_flood"), Some(&config));
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut flood = JoinSet::new();
    for _ in 0..16 {
        let (api, next) = (dev.api.clone(), next.clone());
        flood.spawn(async move {
            let mut answers = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= FLOOD {
                    return answers;
                }
                let key = format!("flood-{n}");
                let (status, headers, body) = api
                    .post(DEMO_KEY, Some(&key), &order_shipped(&recipient(n)))
                    .await;
                answers.push((status, headers, body));
            }
        });
    }
    let mut quiet = JoinSet::new();
    for client in 0..4 {
        let api = dev.api.clone();
        quiet.spawn(async move {
            let mut statuses = Vec::new();
            for n in 0..10 {
                let key = format!("quiet-{client}-{n}");
                let (status, _, body) = api
                    .post(OTHER_KEY, Some(&key), &order_shipped(&recipient(5_000 + n)))
                    .await;
                statuses.push((status, body));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        });
    }
    let answers: Vec<_> = flood.join_all().await.into_iter().flatten().collect();
    let elapsed = started.elapsed();
    for (status, body) in quiet.join_all().await.into_iter().flatten() {
        assert_eq!(status, 202, "the quiet tenant got {status}: {body}");
    }

    let accepted = answers.iter().filter(|(s, _, _)| *s == 202).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(accepted + refused.len(), FLOOD, "only 202 and 429 expected");
    let most = 10 + (5.0 * elapsed.as_secs_f64()).ceil() as usize;
    println!(
        "demo: {accepted} accepted, {} refused in {elapsed:?} (at most {most} allowed)",
        refused.len()
    );
    assert!(accepted >= 10, "the burst passes: {accepted}");
    assert!(accepted <= most, "{accepted} accepted, at most {most}");
    let (_, headers, body) = refused.first().expect("the flood was refused");
    let wait = retry_after(headers);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(body["error"]["limit"]["requests_per_second"], 5);
    assert_eq!(body["error"]["limit"]["burst"], 10);
    assert_eq!(body["error"]["retry_after_seconds"], wait);
    assert!(body["error"]["request_id"].is_string());

    // A refused request was never stored: its key is free.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (status, _, body): (u16, _, Value) = dev
        .post(
            DEMO_KEY,
            Some("after-waiting"),
            &order_shipped(&recipient(7)),
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

/// `demo` may accept 3 new messages a day: the 4th is a 429 until midnight (UTC), also
/// after a restart (the count is in the SQLite file); replays are still answered, and
/// `other` is not limited by demo's day.
#[tokio::test]
async fn a_full_day_is_refused_until_midnight_and_survives_a_restart() {
    let dir = test_dir("quotas_daily");
    let config = two_tenants_with("intake_quota = { messages_per_day = 3 }", "", "");
    let dev = Dev::start(&dir, Some(&config));
    for n in 0..3 {
        let key = format!("day-{n}");
        let (status, _, body) = dev
            .post(DEMO_KEY, Some(&key), &order_shipped(&recipient(n)))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, headers, body) = dev
        .post(DEMO_KEY, Some("day-3"), &order_shipped(&recipient(3)))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "daily_quota_exceeded");
    assert_eq!(body["error"]["limit"]["messages_per_day"], 3);
    assert!((1..=86_400).contains(&retry_after(&headers)));
    let (status, headers, _) = dev
        .post(DEMO_KEY, Some("day-0"), &order_shipped(&recipient(0)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["idempotent-replayed"], "true");
    let (status, _, body) = dev
        .post(OTHER_KEY, Some("day-3"), &order_shipped(&recipient(3)))
        .await;
    assert_eq!(status, 202, "{body}");

    dev.kill_hard();
    let dev = Dev::start(&dir, Some(&config));
    let (status, _, body) = dev
        .post(DEMO_KEY, Some("day-3"), &order_shipped(&recipient(3)))
        .await;
    assert_eq!(status, 429, "the day's count survives a restart: {body}");
    let (status, _, body) = dev
        .post(DEMO_KEY, Some("day-1"), &order_shipped(&recipient(1)))
        .await;
    assert_eq!(status, 200, "{body}");
}
