//! The sender with the real Graph client against the in-process Graph sandbox.

use crate::send_path::support::*;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wa_sandbox::{
    FaultConfig, LimitsConfig, PhoneNumberConfig, RunningSandbox, SandboxConfig, Secret,
    TemplatesSource,
};
use wa_shared::adapters::graph::{GraphConfig, GraphProvider};
use wa_shared::domain::graph::SendOutcome;
use wa_shared::domain::{FailureClass, MessageId, MessageState, TenantId};
use wa_shared::ports::Provider;
use wa_shared::ports::provider::ProviderRequest;

const ANA: &str = "+14155550123";
const BRUNO: &str = "+14155550124";
const CARLA: &str = "+14155550125";
const DIEGO: &str = "+14155550126";

fn catalog() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates/catalog.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture catalog without the Spanish `order_shipped`: the sandbox rejects sends of
/// it with 132001 while our directory still has it.
fn catalog_without_spanish() -> Value {
    let mut c = catalog();
    c["data"]
        .as_array_mut()
        .unwrap()
        .retain(|t| !(t["name"] == "order_shipped" && t["language"] == "es"));
    c
}

fn sandbox_config(templates: Value, faults: FaultConfig, limits: LimitsConfig) -> SandboxConfig {
    SandboxConfig {
        phone_numbers: vec![PhoneNumberConfig {
            id: PHONE_NUMBER_ID.into(),
            display_phone_number: "15550783881".into(),
            waba_id: "102290129340398".into(),
            access_token: Secret("EAAG-test-token".into()),
            throughput_mps: None,
        }],
        templates: TemplatesSource::Inline(templates),
        faults,
        limits,
        ..SandboxConfig::default()
    }
}

fn graph(sandbox: &RunningSandbox, timeout: Duration) -> Arc<dyn Provider> {
    Arc::new(
        GraphProvider::new(&GraphConfig {
            base_url: sandbox.base_url(),
            timeout,
            connect_timeout: Duration::from_millis(100),
            ..GraphConfig::default()
        })
        .unwrap(),
    )
}

/// Sends to some recipients through another provider (another sandbox).
struct ByRecipient {
    routes: HashMap<String, Arc<dyn Provider>>,
    default: Arc<dyn Provider>,
}

#[async_trait]
impl Provider for ByRecipient {
    async fn send(&self, request: ProviderRequest<'_>) -> SendOutcome {
        let to = request.body["to"].as_str().unwrap_or_default();
        self.routes
            .get(to)
            .unwrap_or(&self.default)
            .send(request)
            .await
    }
}

async fn queue(p: &Pipeline, to: &str, language: &str, key: &str) -> wa_shared::domain::MessageId {
    let body = json!({"to": to, "template": {"name": "order_shipped", "language": language,
        "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
    let req = with_header(
        with_body(request("intake/send-template.json"), &body),
        "idempotency-key",
        Some(key),
    );
    let resp = p.intake(req).await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    wa_shared::domain::MessageId::parse(
        crate::send_path::support::body(&resp)["id"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_batch_with_permanent_retryable_ambiguous_and_duplicate_records_against_the_sandbox() {
    // One recipient at a time: a second message to Bruno within the pair-rate interval
    // is throttled (131056).
    let limits = LimitsConfig {
        pair_rate_burst: 1,
        pair_rate_interval_ms: 60_000,
        ..LimitsConfig::default()
    };
    let meta = RunningSandbox::start(sandbox_config(
        catalog_without_spanish(),
        FaultConfig::default(),
        limits,
    ))
    .await
    .unwrap();
    let lossy_faults = FaultConfig {
        accept_then_timeout_rate: 1.0,
        accept_then_timeout_hold_ms: Some(2_000),
        ..FaultConfig::default()
    };
    let lossy = RunningSandbox::start(sandbox_config(
        catalog(),
        lossy_faults,
        LimitsConfig::default(),
    ))
    .await
    .unwrap();
    let provider = ByRecipient {
        routes: HashMap::from([(CARLA.to_owned(), graph(&lossy, Duration::from_millis(300)))]),
        default: graph(&meta, Duration::from_secs(5)),
    };
    let p = Pipeline::new(Arc::new(provider)).await;

    let warm_up = queue(&p, BRUNO, "en_US", "bruno-1").await;
    let done = queue(&p, DIEGO, "en_US", "diego-1").await;
    let earlier = p.receive().await;
    let done_record = earlier
        .records
        .iter()
        .find(|r| r.body.as_deref().unwrap().contains(done.as_str()))
        .unwrap()
        .clone();
    assert!(p.send(earlier).await.is_empty());
    assert_eq!(p.stored(&warm_up).await.state, MessageState::Accepted);

    let permanent = queue(&p, ANA, "es", "ana-es").await;
    let retryable = queue(&p, BRUNO, "en_US", "bruno-2").await;
    let ambiguous = queue(&p, CARLA, "en_US", "carla-1").await;
    let mut batch = p.receive().await;
    batch.records.push(done_record);
    assert_eq!(batch.records.len(), 4);
    let started = Instant::now();
    let failures = p.send(batch).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the lost answer was not cut short"
    );

    assert_eq!(failures.len(), 1, "{failures:?}");
    let m = p.stored(&permanent).await;
    assert_eq!(m.state, MessageState::Failed);
    let f = m.failure.unwrap();
    assert_eq!((f.class, f.code), (FailureClass::Rejected, Some(132001)));

    let m = p.stored(&retryable).await;
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.failure.unwrap().code, Some(131056));

    let m = p.stored(&ambiguous).await;
    assert_eq!(m.state, MessageState::Sending);
    assert!(m.ambiguous_at.is_some());
    // Meta (the lossy sandbox) did take it: only a webhook can tell us.
    assert_eq!(lossy.sandbox.stats().sends_accepted, 1);

    assert_eq!(p.stored(&done).await.state, MessageState::Accepted);
    let stats = meta.sandbox.stats();
    // warm-up, done, permanent, retryable: the duplicate never reached Graph.
    assert_eq!(stats.requests, 4);
    assert_eq!(stats.max_accepted_per_message(), 1);
}

#[tokio::test]
async fn an_sqs_message_delivered_twice_reaches_the_sandbox_once() {
    let meta = RunningSandbox::start(sandbox_config(
        catalog(),
        FaultConfig::default(),
        LimitsConfig::default(),
    ))
    .await
    .unwrap();
    let p = Pipeline::new(graph(&meta, Duration::from_secs(5))).await;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    let batch = p.receive().await;
    let record = batch.records[0].clone();
    let mut twice = batch.clone();
    twice.records.push(record.clone());
    assert!(p.send(twice).await.is_empty());
    let mut again = batch;
    again.records = vec![record];
    assert!(p.send(again).await.is_empty());

    let stats = meta.sandbox.stats();
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.sends_accepted, 1);
    let m = p.stored(&fixture_id()).await;
    assert_eq!(m.state, MessageState::Accepted);
    assert!(m.wamid.unwrap().as_str().starts_with("wamid."));
}

#[tokio::test]
async fn pacing_keeps_a_full_batch_load_under_the_sandbox_throughput_limit() {
    // 80 msg/s with a bucket of a tenth of a second: bursts are refused quickly.
    let limits = LimitsConfig {
        default_throughput_mps: 80.0,
        throughput_burst_seconds: 0.1,
        pair_rate_enabled: false,
        ..LimitsConfig::default()
    };
    let meta = RunningSandbox::start(sandbox_config(catalog(), FaultConfig::default(), limits))
        .await
        .unwrap();
    let p = Pipeline::new(graph(&meta, Duration::from_secs(5))).await;
    let tenant = TenantId::parse("demo").unwrap();
    let mut profile = p.directory.tenant(&tenant).await.unwrap().unwrap();
    // Pace a little under the limit, as an operator configures it.
    profile.throughput_mps = 70;
    p.directory.put_tenant(&profile).await.unwrap();

    for n in 0..60 {
        let to = format!("+1415555{:04}", 1000 + n);
        queue(&p, &to, "en_US", &format!("load-{n}")).await;
    }
    let mut sent = 0;
    while sent < 60 {
        let batch = p.receive().await;
        assert!(!batch.records.is_empty(), "queue ran dry after {sent}");
        sent += batch.records.len();
        assert!(p.send(batch).await.is_empty());
    }
    let stats = meta.sandbox.stats();
    assert_eq!(stats.sends_accepted, 60);
    assert_eq!(stats.rejected(130429), 0, "{stats:?}");
    let accepted = p
        .store
        .list_by_tenant(&tenant, Some(MessageState::Accepted), None, 100, None)
        .await
        .unwrap();
    assert_eq!(accepted.items.len(), 60);
}

/// Queue `template` (no parameters) to `to` through intake.
async fn queue_plain(p: &Pipeline, to: &str, template: &str, key: &str) -> MessageId {
    let body = json!({"to": to, "template": {"name": template, "language": "en_US"}});
    let req = with_header(
        with_body(request("intake/send-template.json"), &body),
        "idempotency-key",
        Some(key),
    );
    let resp = p.intake(req).await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    MessageId::parse(
        crate::send_path::support::body(&resp)["id"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

/// Which path of the sandbox each message was posted to.
fn endpoint_of(meta: &RunningSandbox, id: &MessageId) -> Vec<String> {
    meta.sandbox
        .requests()
        .into_iter()
        .filter(|r| {
            r.callback_data
                .as_deref()
                .is_some_and(|c| c.ends_with(id.as_str()))
        })
        .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn marketing_templates_go_to_the_marketing_messages_api_only_when_the_tenant_chose_it() {
    let limits = LimitsConfig {
        pair_rate_enabled: false,
        ..LimitsConfig::default()
    };
    let meta = RunningSandbox::start(sandbox_config(catalog(), FaultConfig::default(), limits))
        .await
        .unwrap();
    let p = Pipeline::new(graph(&meta, Duration::from_secs(5))).await;
    let off_marketing = queue_plain(&p, ANA, "welcome_offer", "off-marketing").await;
    let off_utility = queue(&p, BRUNO, "en_US", "off-utility").await;
    assert!(p.send(p.receive().await).await.is_empty());

    let tenant = TenantId::parse("demo").unwrap();
    let mut profile = p.directory.tenant(&tenant).await.unwrap().unwrap();
    profile.marketing_messages_api = true;
    p.directory.put_tenant(&profile).await.unwrap();
    // Past the sender's directory cache.
    p.clock.advance(Duration::from_secs(10));
    let on_marketing = queue_plain(&p, CARLA, "welcome_offer", "on-marketing").await;
    let on_utility = queue(&p, DIEGO, "en_US", "on-utility").await;
    assert!(p.send(p.receive().await).await.is_empty());

    for id in [&off_marketing, &off_utility, &on_marketing, &on_utility] {
        assert_eq!(p.stored(id).await.state, MessageState::Accepted, "{id}");
    }
    assert_eq!(endpoint_of(&meta, &off_marketing), ["messages"]);
    assert_eq!(endpoint_of(&meta, &off_utility), ["messages"]);
    assert_eq!(endpoint_of(&meta, &on_marketing), ["marketing_messages"]);
    assert_eq!(endpoint_of(&meta, &on_utility), ["messages"]);
}
