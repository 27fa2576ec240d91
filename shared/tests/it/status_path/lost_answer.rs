//! A send whose HTTP answer was lost, end to end: the real sender with the real Graph
//! client (`GraphProvider`) against the Graph sandbox with accept-then-timeout (Meta
//! takes the message and its webhooks flow, but the answer never reaches us), and the
//! sandbox's signed webhooks through the real webhook handler (`handle_http`) behind a
//! small HTTP endpoint. The message must end `delivered`, found by its
//! `biz_opaque_callback_data`, sent exactly once. Runs on SQLite and on DynamoDB + SQS.

use crate::status_path::support::*;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use secrecy::SecretString;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use wa_sandbox::{
    FaultConfig, PhoneNumberConfig, RequestOutcome, RunningSandbox, SandboxConfig, TemplatesSource,
    WebhookConfig,
};
use wa_shared::adapters::tokens::StaticTokenSource;
use wa_shared::adapters::{GraphConfig, GraphProvider};
use wa_shared::app::WebhookDeps;
use wa_shared::app::webhook::handle_http;
use wa_shared::domain::{MessageId, MessageState, Wamid};

on_every_backend!(a_send_whose_http_answer_was_lost_ends_delivered_and_was_sent_once);

/// The tenant's Graph token, as the sandbox knows it.
const GRAPH_TOKEN: &str = "EAAG-sandbox-token";
/// How long the sender's Graph client waits for an answer.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(300);
/// How long the sandbox holds the answer: far longer than the client waits.
const HOLD: Duration = Duration::from_secs(5);

/// Our webhook URL as Meta sees it: every POST goes to the real handler, once the test
/// opens the gate (so the webhooks land after the sender gave up, deterministically).
struct WebhookEndpoint {
    url: String,
    gate: watch::Sender<bool>,
}

impl WebhookEndpoint {
    async fn start(deps: WebhookDeps) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let (gate, open) = watch::channel(false);
        let app = Router::new()
            .route("/webhook", post(receive))
            .with_state((Arc::new(deps), open));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, gate }
    }

    fn open(&self) {
        self.gate.send_replace(true);
    }
}

async fn receive(
    State((deps, mut open)): State<(Arc<WebhookDeps>, watch::Receiver<bool>)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let _ = open.wait_for(|open| *open).await;
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let text = String::from_utf8(body.to_vec()).unwrap();
    let resp = handle_http(&deps, &post_request(&text, signature)).await;
    let status = StatusCode::from_u16(u16::try_from(resp.status_code).unwrap()).unwrap();
    (status, body_text(&resp))
}

/// Meta for the tenant's number: every send accepted, every answer withheld.
fn lossy_meta(webhook_url: &str) -> SandboxConfig {
    let catalog =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates/catalog.json");
    SandboxConfig {
        phone_numbers: vec![PhoneNumberConfig {
            id: PHONE_NUMBER_ID.into(),
            display_phone_number: "15550783881".into(),
            waba_id: WABA_ID.into(),
            access_token: GRAPH_TOKEN.into(),
            throughput_mps: None,
        }],
        templates: TemplatesSource::File(catalog),
        faults: FaultConfig {
            accept_then_timeout_rate: 1.0,
            accept_then_timeout_hold_ms: Some(HOLD.as_millis() as u64),
            ..FaultConfig::default()
        },
        webhook: WebhookConfig {
            url: Some(webhook_url.to_owned()),
            app_secret: APP_SECRET.into(),
            sent_after_ms: 50,
            delivered_after_ms: Some(100),
            read_after_ms: None,
            batch_window_ms: 5,
            ..WebhookConfig::default()
        },
        ..SandboxConfig::default()
    }
}

async fn a_send_whose_http_answer_was_lost_ends_delivered_and_was_sent_once(mut w: World) {
    let endpoint = WebhookEndpoint::start(w.functions.webhook.clone()).await;
    let meta = RunningSandbox::start(lossy_meta(&endpoint.url))
        .await
        .unwrap();
    w.functions.sender.provider = Arc::new(
        GraphProvider::new(&GraphConfig {
            base_url: meta.base_url(),
            timeout: CLIENT_TIMEOUT,
            connect_timeout: Duration::from_millis(200),
            ..GraphConfig::default()
        })
        .unwrap(),
    );
    let token_ref = w.profile().await.token_ref;
    w.functions.sender.tokens = Arc::new(StaticTokenSource::new([(
        token_ref,
        SecretString::from(GRAPH_TOKEN.to_owned()),
    )]));

    let request = json!({"to": RECIPIENT, "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
    let resp = w.intake(intake_request("lost-answer-1", &request)).await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    let id = MessageId::parse(body_json(&resp)["id"].as_str().unwrap()).unwrap();
    let batch = w.event(&w.send_queue).await;
    assert_eq!(batch.records.len(), 1);

    let started = Instant::now();
    let failures = wa_shared::app::sender::handle(&w.functions.sender, batch.clone())
        .await
        .batch_item_failures;
    assert!(
        started.elapsed() < HOLD,
        "the client gave up before the answer"
    );
    assert!(
        failures.is_empty(),
        "an ambiguous send is never blindly retried"
    );
    w.settle(&w.send_queue, &batch, &[]).await;

    // We do not know whether Meta took it: no wamid, so no wamid index entry either.
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Sending, "on {}", w.backend);
    assert!(m.ambiguous_at.is_some());
    assert!(m.wamid.is_none());
    // But Meta did take it.
    let requests = meta.sandbox.requests();
    assert_eq!(requests.len(), 1);
    let RequestOutcome::Accepted {
        wamid,
        answer_withheld: true,
    } = &requests[0].outcome
    else {
        panic!("{:?}", requests[0].outcome);
    };
    let wamid = Wamid::parse(wamid).unwrap();
    assert!(w.store.find_by_wamid(&wamid).await.unwrap().is_none());

    // The webhooks land (in either order): only their callback data can lead to the
    // message. The sandbox counts a status once our handler answered 200 (stored).
    endpoint.open();
    let deadline = Instant::now() + Duration::from_secs(10);
    while meta.sandbox.stats().webhooks.statuses_delivered < 2 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            meta.sandbox.stats().webhooks
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Delivered, "on {}", w.backend);
    assert_eq!(m.wamid.as_ref(), Some(&wamid));
    assert_eq!(m.attempt, 1, "never sent twice");
    assert!(m.timestamps.sent_at.is_some() && m.timestamps.delivered_at.is_some());
    assert_eq!(
        w.store.find_by_wamid(&wamid).await.unwrap(),
        Some((w.tenant.clone(), id.clone()))
    );
    let callback = format!("wa1:{TENANT}:{id}");
    assert_eq!(
        requests[0].callback_data.as_deref(),
        Some(callback.as_str())
    );

    // Nothing is left to resolve or resend, not even a duplicate SQS delivery.
    w.advance(w.ports.lifecycle.ambiguous_grace * 2);
    let report = wa_shared::app::reconciler::run(&w.functions.reconciler)
        .await
        .unwrap();
    assert!(report.actions.is_empty(), "{report:?}");
    let again = wa_shared::app::sender::handle(&w.functions.sender, batch).await;
    assert!(again.batch_item_failures.is_empty());
    assert!(w.drain(&w.send_queue).await.is_empty());
    assert_eq!(w.message(&id).await.state, MessageState::Delivered);
    let stats = meta.sandbox.stats();
    assert_eq!(stats.requests, 1, "exactly one send reached Meta");
    assert_eq!(stats.accepted_per_message.get(&callback), Some(&1));
    assert_eq!(stats.attempts_per_message.get(&callback), Some(&1));
    assert_eq!(stats.answers_withheld, 1);
}
