//! Meta misbehaving: errors, lost answers, duplicated, reordered and dropped webhooks.

use crate::e2e::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const MESSAGES: usize = 400;

/// Where a message may end: read, delivered (the read receipt may never come: users
/// can turn them off), or failed with a class; never stuck in queued/sending/accepted/sent.
const SETTLED: [&str; 3] = ["read", "delivered", "failed"];

#[tokio::test]
async fn under_sandbox_faults_every_message_settles_and_none_is_sent_twice() {
    // 400 sends from 8 clients at once: the faults are the point, not demo's quota.
    let config = two_tenants_with(
        FLOOD_QUOTA,
        "",
        r#"
[graph]
timeout_ms = 1500                 # a withheld answer becomes ambiguous after 1.5 s

[lifecycle]
lease_ms = 5000
queued_grace_ms = 3000
ambiguous_grace_ms = 4000         # then on_ambiguous = fail (the default) applies
webhook_horizon_ms = 5000         # accepted/sent with no further webhook: unconfirmed

[reconciler]
interval_ms = 500

[sender]
visibility_timeout_ms = 5000

[sandbox]
seed = 20261125

[sandbox.webhook]
sent_after_ms = 100
delivered_after_ms = 300
read_after_ms = 600

[sandbox.faults]
accept_then_timeout_rate = 0.02
accept_then_timeout_hold_ms = 2500

[[sandbox.faults.errors]]
code = 131000
http_status = 500
rate = 0.05

[sandbox.faults.webhook]
duplicate_rate = 0.10
reorder_rate = 0.20
drop_rate = 0.02
"#,
    );
    let dev = Dev::start(&test_dir("faults"), Some(&config));
    let mut posts = JoinSet::new();
    for chunk in 0..8 {
        let api = dev.api.clone();
        posts.spawn(async move {
            let mut ids = Vec::new();
            for n in (chunk..MESSAGES).step_by(8) {
                let (status, _, body) = api
                    .post(
                        DEMO_KEY,
                        Some(&format!("fault-{n}")),
                        &order_shipped(&recipient(n)),
                    )
                    .await;
                assert_eq!(status, 202, "{body}");
                ids.push(body["id"].as_str().unwrap().to_owned());
            }
            ids
        });
    }
    let ids: Vec<String> = posts.join_all().await.into_iter().flatten().collect();
    assert_eq!(ids.len(), MESSAGES);

    // Wait until every message is settled and nothing has moved for 3 s.
    let started = Instant::now();
    let mut last: Option<BTreeMap<String, usize>> = None;
    let mut stable_since = Instant::now();
    let final_states = loop {
        let mut states = Vec::with_capacity(ids.len());
        for id in &ids {
            let (status, message) = dev.get(DEMO_KEY, id).await;
            assert_eq!(status, 200);
            states.push(message);
        }
        let counts = count_by_state(&states);
        let settled = states
            .iter()
            .all(|m| SETTLED.contains(&m["status"].as_str().unwrap_or_default()));
        if last.as_ref() != Some(&counts) {
            stable_since = Instant::now();
            last = Some(counts.clone());
        }
        if settled && stable_since.elapsed() > Duration::from_secs(3) {
            break states;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not settled after 90 s: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let stats = dev.sandbox_stats().await;
    let twice: Vec<(&String, &Value)> = stats["accepted_per_message"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n.as_u64() > Some(1))
        .collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    // The faults really happened.
    let w = &stats["webhooks"];
    for (what, n) in [
        ("injected errors", &stats["injected_errors"]),
        ("withheld answers", &stats["answers_withheld"]),
        ("duplicated statuses", &w["statuses_duplicated"]),
        ("reordered statuses", &w["statuses_reordered"]),
        ("dropped statuses", &w["statuses_dropped"]),
    ] {
        assert!(n.as_u64() > Some(0), "no {what}: {stats:#}");
    }
    // A send whose answer was lost is never sent again: its webhooks (echoing our
    // callback data) resolve it, or, without them, it fails as ambiguous or unconfirmed.
    let requests: Vec<Value> = dev
        .http
        .get(format!("{}/_sandbox/requests", dev.sandbox))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let withheld: Vec<&str> = requests
        .iter()
        .filter(|r| r["outcome"]["answer_withheld"] == true)
        .filter_map(|r| r["callback_data"].as_str())
        .collect();
    assert!(!withheld.is_empty());
    let mut resolved_by_webhook = 0;
    for callback in withheld {
        let id = callback.rsplit(':').next().unwrap();
        let m = final_states
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("withheld send {id} is not one of ours"));
        // An earlier attempt may have failed (an injected 5xx); the withheld one was the
        // last: every claim made exactly one Graph call, and none came after it.
        let graph_calls = &stats["attempts_per_message"][callback];
        match m["status"].as_str().unwrap() {
            "delivered" | "read" => {
                assert_eq!(&m["attempts"], graph_calls, "{m:#}");
                resolved_by_webhook += 1;
            }
            // No webhook at all (ambiguous), or only `sent` and then silence (unconfirmed).
            _ => assert!(
                ["ambiguous", "unconfirmed"]
                    .contains(&m["failure"]["class"].as_str().unwrap_or("")),
                "{m:#}"
            ),
        }
    }
    assert!(
        resolved_by_webhook > 0,
        "no lost answer was resolved by its webhooks"
    );
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    for m in &final_states {
        if m["status"] == "failed" {
            let class = m["failure"]["class"].as_str().unwrap_or("none").to_owned();
            *classes.entry(class).or_default() += 1;
        }
    }
    // An accepted message never fails for a transient error; a failed one says why.
    assert!(!classes.contains_key("none"), "{classes:?}");
    let accepted = stats["sends_accepted"].as_u64().unwrap() as usize;
    let failed_unsent = final_states
        .iter()
        .filter(|m| m["status"] == "failed" && m["wamid"].is_null())
        .count();
    assert!(
        accepted + failed_unsent >= MESSAGES,
        "{accepted} accepted, {failed_unsent} failed unsent"
    );
    println!(
        "{MESSAGES} messages settled in {:?}: {:?}; failed by class {classes:?}; sandbox: {} injected \
         errors, {} withheld answers, {} duplicated / {} reordered / {} dropped statuses",
        started.elapsed(),
        last.unwrap_or_default(),
        stats["injected_errors"],
        stats["answers_withheld"],
        w["statuses_duplicated"],
        w["statuses_reordered"],
        w["statuses_dropped"],
    );
}

fn count_by_state(messages: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for m in messages {
        *counts
            .entry(m["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    counts
}
