//! The embedded pipeline for handler tests: SQLite store, directory and queues, a
//! manual clock, in-memory metrics, and a Graph provider chosen by the test.

use async_trait::async_trait;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wa_shared::adapters::ManualClock;
use wa_shared::adapters::tokens::StaticTokenSource;
use wa_shared::app::http::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use wa_shared::domain::graph::{SendOutcome, read_send_reply};
use wa_shared::domain::template::TemplateCatalog;
use wa_shared::domain::tenant::{ApiKeyHash, TenantProfile};
use wa_shared::domain::{Message, MessageId, TenantId, Timestamp};
use wa_shared::metrics::{self, Metrics};
use wa_shared::ports::provider::ProviderRequest;
use wa_shared::ports::{Directory, MessageStore, Provider, QueueRef, QuotaLedger, WorkQueue};
use wa_shared::wiring::local::{self, Functions, LocalSettings};
use wa_testkit::backends::TestBackend;

/// 2026-06-03T10:15:30Z, the time of the fixtures.
pub const START: Timestamp = Timestamp::from_millis(1_780_481_730_000);
/// The fixtures' API key (tenant `demo`).
pub const API_KEY: &str = "wa_demo_key";
/// The other tenant's key.
pub const OTHER_KEY: &str = "wa_other_key";
/// The token reference of both tenants, answered by a static token source.
pub const TOKEN_REF: &str = "test/demo-token";
/// The business phone number of `demo`.
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// The idempotency key of `events/intake/send-template.json`.
pub const FIXTURE_KEY: &str = "order-1234-shipped";

/// An event file of `events/`.
pub fn event(path: &str) -> Value {
    let file = format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// An API Gateway request from an event file.
pub fn request(path: &str) -> ApiGatewayV2httpRequest {
    serde_json::from_value(event(path)).unwrap()
}

/// `request` with a new JSON body.
pub fn with_body(mut req: ApiGatewayV2httpRequest, body: &Value) -> ApiGatewayV2httpRequest {
    req.body = Some(body.to_string());
    req
}

/// `request` with a header set (or removed with `None`).
pub fn with_header(
    mut req: ApiGatewayV2httpRequest,
    name: &'static str,
    value: Option<&str>,
) -> ApiGatewayV2httpRequest {
    match value {
        Some(v) => {
            req.headers.insert(name, v.parse().unwrap());
        }
        None => {
            req.headers.remove(name);
        }
    }
    req
}

/// The JSON body of a response.
pub fn body(resp: &ApiGatewayV2httpResponse) -> Value {
    match &resp.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

/// A response header.
pub fn header<'a>(resp: &'a ApiGatewayV2httpResponse, name: &str) -> Option<&'a str> {
    resp.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The id `events/intake/send-template.json` creates.
pub fn fixture_id() -> MessageId {
    MessageId::for_idempotency_key(
        &TenantId::parse("demo").unwrap(),
        &wa_shared::domain::IdempotencyKey::parse(FIXTURE_KEY).unwrap(),
    )
}

/// One canned answer of [`ScriptedProvider`].
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP answer, read by the real reply parser.
    Http(u16, Value),
    /// A classified outcome as the provider adapter would return it.
    Outcome(SendOutcome),
    /// The provider panics (a bug on one record's path).
    Panic,
}

/// A Graph provider with canned answers per recipient (accepted by default); it
/// records every request body.
#[derive(Debug, Default)]
pub struct ScriptedProvider {
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    calls: Mutex<Vec<Value>>,
    numbers: Mutex<Vec<String>>,
}

impl ScriptedProvider {
    /// Answer the next send to `to` with `reply`.
    pub fn script(&self, to: &str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .entry(to.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// The request bodies so far.
    pub fn calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().clone()
    }

    /// The phone number id of each request so far (the Graph path's number).
    pub fn numbers(&self) -> Vec<String> {
        self.numbers.lock().unwrap().clone()
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    async fn send(&self, request: ProviderRequest<'_>) -> SendOutcome {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(request.body.clone());
            calls.len()
        };
        self.numbers
            .lock()
            .unwrap()
            .push(request.phone_number_id.as_str().to_owned());
        let to = request.body["to"].as_str().unwrap_or_default().to_owned();
        let reply = self
            .script
            .lock()
            .unwrap()
            .get_mut(&to)
            .and_then(VecDeque::pop_front);
        match reply {
            Some(Reply::Outcome(o)) => o,
            Some(Reply::Panic) => panic!("scripted provider panic for {to}"),
            Some(Reply::Http(status, body)) => read_send_reply(status, body.to_string().as_bytes()),
            None => read_send_reply(
                200,
                json!({"messaging_product": "whatsapp",
                       "contacts": [{"input": to, "wa_id": to.trim_start_matches('+')}],
                       "messages": [{"id": format!("wamid.TEST{n:04}"), "message_status": "accepted"}]})
                .to_string()
                .as_bytes(),
            ),
        }
    }
}

/// A Graph error answer in Meta's envelope.
pub fn graph_error(status: u16, code: i64, message: &str) -> Reply {
    Reply::Http(
        status,
        json!({"error": {"message": format!("(#{code}) {message}"), "type": "OAuthException",
                         "code": code, "error_data": {"messaging_product": "whatsapp", "details": message},
                         "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}}),
    )
}

/// The whole embedded pipeline of one test.
pub struct Pipeline {
    /// What the handlers take, built by the local wiring.
    pub functions: Functions,
    /// The clock of the handlers and the queue.
    pub clock: Arc<ManualClock>,
    /// EMF lines.
    pub metrics: Arc<Mutex<Vec<Value>>>,
    /// The tenant `demo`'s queue.
    pub queue: QueueRef,
    /// The queue adapter, to receive what intake enqueued.
    pub queues: Arc<dyn WorkQueue>,
    /// The directory, to change facts between calls.
    pub directory: Arc<dyn Directory>,
    /// The store, to read messages back.
    pub store: Arc<dyn MessageStore>,
    /// Intake's quota ledger, to read the day's counts.
    pub quotas: Arc<dyn QuotaLedger>,
}

/// A profile of `tenant` sending from `phone` through `queue`.
pub fn profile(tenant: &str, phone: &str, queue: &QueueRef) -> TenantProfile {
    wa_testkit::fixtures::tenant(tenant)
        .phone_number_id(phone)
        .waba_id(&format!("{phone}0"))
        .queue(queue.as_str())
        .token_ref(TOKEN_REF)
        .throughput_mps(1000)
        .updated_at(START)
        .build()
}

impl Pipeline {
    /// Tenants `demo` and `other`, the fixture catalog for both, Graph = `provider`, on
    /// the embedded SQLite adapters.
    pub async fn new(provider: Arc<dyn Provider>) -> Self {
        let clock = Arc::new(ManualClock::new(START));
        let (metrics, lines) = Metrics::in_memory();
        let backend = wa_testkit::backends::sqlite(clock.clone(), metrics).await;
        Self::on(provider, clock, backend, lines).await
    }

    /// The same on DynamoDB and SQS (moto): fresh tables and queues named after
    /// `prefix`. The queues keep real time; the handlers still read the manual clock.
    pub async fn on_aws(
        provider: Arc<dyn Provider>,
        sdk: &wa_shared::adapters::aws::SdkConfig,
        prefix: &str,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(START));
        let (metrics, lines) = Metrics::in_memory();
        let backend = wa_testkit::backends::moto(sdk, prefix, clock.clone(), metrics).await;
        Self::on(provider, clock, backend, lines).await
    }

    async fn on(
        provider: Arc<dyn Provider>,
        clock: Arc<ManualClock>,
        backend: TestBackend,
        metric_lines: Arc<Mutex<Vec<Value>>>,
    ) -> Self {
        let TestBackend {
            ports,
            quotas,
            pacing,
            costs,
            queue_prefix,
            ..
        } = backend;
        let (directory, queues) = (ports.directory.clone(), ports.queue.clone());
        let spec = wa_shared::queues::SEND.spec;
        let queue = queues
            .ensure_queue(&format!("{queue_prefix}demo"), &spec)
            .await
            .unwrap();
        let other_queue = queues
            .ensure_queue(&format!("{queue_prefix}other"), &spec)
            .await
            .unwrap();
        directory
            .put_tenant(&profile("demo", PHONE_NUMBER_ID, &queue))
            .await
            .unwrap();
        directory
            .put_tenant(&profile("other", "106540352240000", &other_queue))
            .await
            .unwrap();
        for (key, tenant) in [(API_KEY, "demo"), (OTHER_KEY, "other")] {
            let tenant = TenantId::parse(tenant).unwrap();
            directory
                .put_api_key(&ApiKeyHash::of_key(key), &tenant)
                .await
                .unwrap();
            let catalog =
                TemplateCatalog::from_json(include_str!("../../fixtures/templates/catalog.json"))
                    .unwrap();
            for t in catalog.iter() {
                directory.put_template(&tenant, t, START).await.unwrap();
            }
        }
        let tokens =
            StaticTokenSource::new([(TOKEN_REF.to_owned(), SecretString::from("EAAG-test-token"))]);
        let functions = local::functions(
            &ports,
            quotas.clone(),
            pacing,
            costs,
            provider,
            Arc::new(tokens),
            &LocalSettings::default(),
        );
        Self {
            store: ports.store.clone(),
            quotas,
            functions,
            clock,
            metrics: metric_lines,
            queue,
            queues,
            directory,
        }
    }

    /// Every function writes through `store` from now on (tests wrap the store to
    /// inject faults).
    pub fn use_store(&mut self, store: Arc<dyn MessageStore>) {
        let f = &mut self.functions;
        f.intake.ports.store = store.clone();
        f.sender.ports.store = store.clone();
        f.webhook.ports.store = store.clone();
        f.reconciler.ports.store = store;
    }

    /// The handlers' now.
    pub fn clock_now(&self) -> Timestamp {
        use wa_shared::ports::Clock;
        self.clock.now()
    }

    /// Run intake on a request.
    pub async fn intake(&self, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        wa_shared::app::intake::handle(&self.functions.intake, req).await
    }

    /// Sum of a metric with these dimensions.
    pub fn metric(&self, name: &str, dims: &[(&str, &str)]) -> f64 {
        metrics::total(&self.metrics.lock().unwrap(), name, dims)
    }

    /// The stored message of `demo`.
    pub async fn stored(&self, id: &MessageId) -> Message {
        self.store
            .get(&TenantId::parse("demo").unwrap(), id)
            .await
            .unwrap()
            .expect("message is stored")
    }

    /// What `demo`'s queue holds now, as the SQS event Lambda would deliver.
    pub async fn receive(&self) -> SqsEvent {
        let received = self
            .queues
            .receive(&self.queue, 10, Duration::from_secs(180), Duration::ZERO)
            .await
            .unwrap();
        sqs_event(received.into_iter().map(|m| {
            (
                m.id.as_str().to_owned(),
                m.receipt.as_str().to_owned(),
                m.body,
            )
        }))
    }

    /// Run the sender on a batch and, like Lambda's event source mapping, delete the
    /// records it did not report as failures. Returns the reported ids.
    pub async fn send(&self, batch: SqsEvent) -> Vec<String> {
        let receipts: Vec<(Option<String>, Option<String>)> = batch
            .records
            .iter()
            .map(|r| (r.message_id.clone(), r.receipt_handle.clone()))
            .collect();
        let failures: Vec<String> = wa_shared::app::sender::handle(&self.functions.sender, batch)
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        for (id, receipt) in receipts {
            if let (Some(id), Some(receipt)) = (id, receipt)
                && !failures.contains(&id)
            {
                // Fixture receipts are not this queue's: a stale receipt is no error.
                let _ = self
                    .queues
                    .delete(&self.queue, &wa_shared::ports::ReceiptHandle::new(receipt))
                    .await;
            }
        }
        failures
    }

    /// POST a message to `to` with `template` body values and return its id (asserting 202).
    pub async fn queue_template(&self, to: &str, key: &str) -> MessageId {
        let request_body = json!({"to": to, "template": {"name": "order_shipped", "language": "en_US",
            "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
        let req = with_header(
            with_body(request("intake/send-template.json"), &request_body),
            "idempotency-key",
            Some(key),
        );
        let resp = self.intake(req).await;
        assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
        MessageId::parse(body(&resp)["id"].as_str().unwrap()).unwrap()
    }
}

/// The body as text, for assertion messages.
pub fn body_text(resp: &ApiGatewayV2httpResponse) -> String {
    match &resp.body {
        Some(Body::Text(t)) => t.clone(),
        other => format!("{other:?}"),
    }
}

/// An SQS event of `(messageId, receiptHandle, body)` records.
pub fn sqs_event(records: impl IntoIterator<Item = (String, String, String)>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records
        .into_iter()
        .map(|(id, receipt, body)| {
            let mut m = SqsMessage::default();
            m.message_id = Some(id);
            m.receipt_handle = Some(receipt);
            m.body = Some(body);
            m.event_source = Some("aws:sqs".into());
            m
        })
        .collect();
    event
}

/// A store whose conditional writes of one event (by fingerprint prefix, e.g.
/// `sender.marked_ambiguous`) fail with a backend error the next `failures` times;
/// everything else goes to the wrapped store.
pub struct FailingWrites {
    inner: Arc<dyn MessageStore>,
    prefix: &'static str,
    failures: std::sync::atomic::AtomicU32,
    /// How many writes of that event were refused.
    pub refused: std::sync::atomic::AtomicU32,
}

impl FailingWrites {
    /// Fail the next `failures` writes of events whose fingerprint starts with `prefix`.
    pub fn new(inner: Arc<dyn MessageStore>, prefix: &'static str, failures: u32) -> Self {
        Self {
            inner,
            prefix,
            failures: failures.into(),
            refused: 0.into(),
        }
    }
}

#[async_trait]
impl MessageStore for FailingWrites {
    async fn create_if_absent(
        &self,
        message: &Message,
    ) -> Result<wa_shared::ports::CreateOutcome, wa_shared::ports::StoreError> {
        self.inner.create_if_absent(message).await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &MessageId,
    ) -> Result<Option<Message>, wa_shared::ports::StoreError> {
        self.inner.get(tenant, id).await
    }

    async fn find_by_wamid(
        &self,
        wamid: &wa_shared::domain::Wamid,
    ) -> Result<Option<(TenantId, MessageId)>, wa_shared::ports::StoreError> {
        self.inner.find_by_wamid(wamid).await
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        id: &MessageId,
        transition: &wa_shared::domain::lifecycle::Transition,
    ) -> Result<wa_shared::ports::ApplyOutcome, wa_shared::ports::StoreError> {
        use std::sync::atomic::Ordering;
        if transition.fingerprint.starts_with(self.prefix)
            && self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(wa_shared::ports::StoreError::Backend {
                operation: "update_message",
                source: "injected: the store is unreachable".into(),
            });
        }
        self.inner.apply(tenant, id, transition).await
    }

    async fn sweep(
        &self,
        sweep_key: &str,
        due: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<wa_shared::ports::Page, wa_shared::ports::StoreError> {
        self.inner.sweep(sweep_key, due, limit, cursor).await
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        query: &wa_shared::ports::MessageQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<wa_shared::ports::Page, wa_shared::ports::StoreError> {
        self.inner.list_messages(tenant, query, limit, cursor).await
    }
}
