//! Helpers of the sandbox tests: a configuration, a real HTTP client, and a webhook
//! receiver on 127.0.0.1 that can be told to fail its first answers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use wa_sandbox::{
    LimitsConfig, PhoneNumberConfig, RetryConfig, RunningSandbox, SandboxConfig, TemplatesSource,
    WebhookConfig,
};

pub const PHONE: &str = "106540352242922";
pub const DISPLAY: &str = "15550783881";
pub const WABA: &str = "102290129340398";
pub const TOKEN: &str = "sandbox-token-1";
pub const SECRET: &str = "app-secret-1";
pub const VERSION: &str = "v25.0";

/// One phone number, the fixture catalog, quick webhooks, Meta's limits.
pub fn config() -> SandboxConfig {
    let catalog = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tests/fixtures/templates/catalog.json");
    SandboxConfig {
        phone_numbers: vec![PhoneNumberConfig {
            id: PHONE.into(),
            display_phone_number: DISPLAY.into(),
            waba_id: WABA.into(),
            access_token: TOKEN.into(),
            throughput_mps: None,
        }],
        templates: TemplatesSource::File(catalog),
        webhook: WebhookConfig {
            app_secret: SECRET.into(),
            sent_after_ms: 10,
            delivered_after_ms: Some(60),
            read_after_ms: Some(110),
            batch_window_ms: 5,
            timeout_ms: 2_000,
            retry: RetryConfig {
                initial_backoff_ms: 20,
                ..RetryConfig::default()
            },
            ..WebhookConfig::default()
        },
        ..SandboxConfig::default()
    }
}

/// Limits out of the way (load and fault tests).
pub fn no_limits() -> LimitsConfig {
    LimitsConfig {
        throughput_enabled: false,
        pair_rate_enabled: false,
        ..LimitsConfig::default()
    }
}

pub async fn start(config: SandboxConfig) -> RunningSandbox {
    RunningSandbox::start(config).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub fn messages_url(sandbox: &RunningSandbox) -> String {
    format!("{}/{VERSION}/{PHONE}/messages", sandbox.base_url())
}

/// POST a send with the right token; returns (status, JSON body).
pub async fn send(
    client: &reqwest::Client,
    sandbox: &RunningSandbox,
    body: &Value,
) -> (u16, Value) {
    send_with_token(client, sandbox, body, Some(TOKEN)).await
}

pub async fn send_with_token(
    client: &reqwest::Client,
    sandbox: &RunningSandbox,
    body: &Value,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request = client.post(messages_url(sandbox)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// POST all `bodies` at once (one task each); answers in the order given.
pub async fn send_concurrently(
    client: &reqwest::Client,
    url: &str,
    bodies: impl IntoIterator<Item = Value>,
) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// An `order_shipped` (en_US) send: two body values and a URL suffix.
pub fn order_shipped(to: &str, callback: Option<&str>) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "template",
        "template": {"name": "order_shipped", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#1234"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "ABC123"}]}
        ]}
    });
    if let Some(c) = callback {
        body["biz_opaque_callback_data"] = json!(c);
    }
    body
}

pub fn text(to: &str, body: &str) -> Value {
    json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}})
}

/// A callback data string of ours for message number `n`.
pub fn callback(n: u32) -> String {
    format!("wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X{n:07}")
}

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: Option<String>,
    pub body: Bytes,
    /// When it arrived.
    pub at: tokio::time::Instant,
}

/// A webhook receiver that answers `fail_first` POSTs with 500, then holds the next
/// `hang_first` answers for `hang` (taking them, but too late for a sender with a
/// shorter timeout), then answers 200.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answered: Arc<Mutex<u32>>,
    fail_first: u32,
    hang_first: u32,
    hang: Duration,
    notify: Arc<Notify>,
}

impl Receiver {
    pub async fn start(fail_first: u32) -> Self {
        Self::start_with(fail_first, 0, Duration::ZERO).await
    }

    /// A receiver whose first `hang_first` answers take `hang`.
    pub async fn hanging(hang_first: u32, hang: Duration) -> Self {
        Self::start_with(0, hang_first, hang).await
    }

    async fn start_with(fail_first: u32, hang_first: u32, hang: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let receiver = Self {
            url,
            received: Arc::default(),
            answered: Arc::default(),
            fail_first,
            hang_first,
            hang,
            notify: Arc::new(Notify::new()),
        };
        let app = axum::Router::new()
            .route("/webhook", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    /// Every POST taken (2xx), in arrival order.
    pub fn taken(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Wait until `pred` holds on the taken POSTs, or panic after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            let taken = self.taken();
            if pred(&taken) {
                return taken;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "receiver condition not met within {timeout:?}; got {} POSTs",
                    taken.len()
                );
            }
        }
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = {
        let mut answered = r.answered.lock().unwrap();
        *answered += 1;
        *answered
    };
    if n <= r.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let at = tokio::time::Instant::now();
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    r.received.lock().unwrap().push(Received {
        signature,
        body,
        at,
    });
    r.notify.notify_waiters();
    if n <= r.fail_first + r.hang_first {
        tokio::time::sleep(r.hang).await;
    }
    StatusCode::OK
}

/// Every status in the taken POSTs: (wamid, status, callback data), in arrival order.
pub fn statuses(taken: &[Received]) -> Vec<(String, String, Option<String>)> {
    taken
        .iter()
        .flat_map(|r| {
            let batch = wa_shared::domain::webhook::parse_envelope(&r.body).unwrap();
            batch
                .statuses()
                .map(|s| {
                    (
                        s.wamid.as_str().to_owned(),
                        s.status.as_str().to_owned(),
                        s.biz_opaque_callback_data.clone(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
