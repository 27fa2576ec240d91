//! Tenant holds through the real sender handler, on SQLite and on DynamoDB/SQS
//! (moto): a tenant-class answer (190, an expired token) holds the tenant; its
//! other messages then wait without a Graph call or an attempt; a probe per interval
//! sends one of them for real; when Graph takes it the hold is released and every
//! waiting message goes out, none exhausted however many probes failed.

use crate::send_path::support::*;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use wa_shared::domain::graph::SendOutcome;
use wa_shared::domain::{FailureClass, MessageId, MessageState, TenantId};
use wa_shared::ports::{Provider, ProviderRequest};
use wa_testkit::{moto, unique_name};

/// Graph with a switch: while `expired`, every send gets Meta's 190.
#[derive(Default)]
struct TokenSwitch {
    expired: AtomicBool,
    calls: AtomicUsize,
    inner: ScriptedProvider,
}

#[async_trait]
impl Provider for TokenSwitch {
    async fn send(&self, request: ProviderRequest<'_>) -> SendOutcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.expired.load(Ordering::SeqCst) {
            let to = request.body["to"].as_str().unwrap_or_default().to_owned();
            self.inner.script(
                &to,
                graph_error(
                    401,
                    190,
                    "Error validating access token: Session has expired",
                ),
            );
        }
        self.inner.send(request).await
    }
}

fn demo() -> TenantId {
    TenantId::parse("demo").unwrap()
}

const PROBE: Duration = Duration::from_secs(2);

/// Queue `n` templates to distinct recipients.
async fn queue(p: &Pipeline, first: usize, n: usize) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for i in first..first + n {
        ids.push(
            p.queue_template(&format!("+1415555{:04}", 1000 + i), &format!("hold-{i}"))
                .await,
        );
    }
    ids
}

/// Receive and send until the queue gives nothing (moto: wait up to `patience`).
async fn drain(p: &Pipeline, patience: Duration) {
    let start = std::time::Instant::now();
    loop {
        let batch = p.receive().await;
        if batch.records.is_empty() {
            if start.elapsed() >= patience {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        p.send(batch).await;
    }
}

async fn run(mut p: Pipeline, graph: Arc<TokenSwitch>, real_queue_time: bool, probes: usize) {
    p.functions.sender.settings.hold_probe_interval = PROBE;
    // One recipient probes every PROBE: far more often than Meta's pair rate lets a
    // real probe interval (minutes) go; pacing is not what this test is about.
    p.functions.sender.settings.pacing.pair_burst = 1_000;
    p.functions.sender.settings.pacing.pair_window = Duration::from_secs(3_600);
    let patience = if real_queue_time {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    // The token expires: the first send earns a 190 and holds the tenant.
    graph.expired.store(true, Ordering::SeqCst);
    let first = queue(&p, 0, 1).await;
    drain(&p, patience).await;
    assert_eq!(graph.calls.load(Ordering::SeqCst), 1);
    let hold = p.directory.tenant(&demo()).await.unwrap().unwrap().hold;
    let hold = hold.expect("the tenant is held");
    assert_eq!(hold.code, Some(190));
    assert_eq!(p.metric("TenantHeld", &[("Tenant", "demo")]), 1.0);

    // Ten more: none reaches Graph, none spends an attempt.
    let waiting = queue(&p, 1, 10).await;
    drain(&p, patience).await;
    assert_eq!(graph.calls.load(Ordering::SeqCst), 1, "held: no Graph call");
    for id in &waiting {
        let m = p.stored(id).await;
        assert_eq!((m.state, m.attempt), (MessageState::Queued, 0));
    }
    // Ten dropped (on moto, the probe carrier may also come back early and be
    // queued again for the probe).
    assert!(p.metric("TenantOnHold", &[("Tenant", "demo")]) >= 10.0);

    // Probes fail (on SQLite six, more than the retry budget of five): one Graph call
    // each, and the probing message is not exhausted.
    for probe in 1..=probes {
        p.clock.advance(PROBE);
        if real_queue_time {
            tokio::time::sleep(PROBE).await;
        }
        drain(&p, patience).await;
        assert_eq!(
            graph.calls.load(Ordering::SeqCst),
            1 + probe,
            "probe {probe}"
        );
    }
    let m = p.stored(&first[0]).await;
    assert_eq!(m.state, MessageState::Queued, "{m:?}");
    assert_eq!(
        m.failure.as_ref().map(|f| f.class),
        Some(FailureClass::Tenant)
    );
    assert!(
        p.directory
            .tenant(&demo())
            .await
            .unwrap()
            .unwrap()
            .hold
            .is_some()
    );

    // The token works again: the next probe releases the hold and every waiting
    // message is sent at once.
    graph.expired.store(false, Ordering::SeqCst);
    p.clock.advance(PROBE);
    if real_queue_time {
        tokio::time::sleep(PROBE).await;
    }
    drain(&p, patience.max(Duration::from_millis(1))).await;
    assert!(
        p.directory
            .tenant(&demo())
            .await
            .unwrap()
            .unwrap()
            .hold
            .is_none()
    );
    assert_eq!(p.metric("TenantHoldReleased", &[("Tenant", "demo")]), 1.0);
    for id in first.iter().chain(&waiting) {
        let m = p.stored(id).await;
        assert_eq!(m.state, MessageState::Accepted, "{id}: {m:?}");
    }
    assert_eq!(graph.calls.load(Ordering::SeqCst), 1 + probes + 11);
}

#[tokio::test]
async fn a_tenant_on_hold_waits_probes_and_resumes_on_sqlite() {
    let graph = Arc::new(TokenSwitch::default());
    let p = Pipeline::new(graph.clone()).await;
    run(p, graph, false, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_on_hold_waits_probes_and_resumes_on_dynamodb_and_sqs() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let graph = Arc::new(TokenSwitch::default());
    let p = Pipeline::on_aws(graph.clone(), &sdk, &unique_name("hold")).await;
    run(p, graph, true, 2).await;
}
