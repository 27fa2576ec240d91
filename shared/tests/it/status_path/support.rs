//! One pipeline world per test: the SQLite adapters (in memory) or DynamoDB + SQS on
//! moto (fresh tables and queues), a manual clock, in-memory metrics, one tenant
//! (`demo`, the tenant of the `events/meta` fixtures) with an API key and the fixture
//! template catalog, so intake can be chained after a webhook.
//!
//! [`on_every_backend!`] turns test bodies (`async fn case(w: World)`) into one test
//! per backend: `sqlite::case` and `dynamo::case`.

mod backend;

use backend::Outage;
pub(crate) use backend::{Backend, on_every_backend};

use async_trait::async_trait;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wa_shared::adapters::{GraphConfig, GraphProvider, ManualClock};
use wa_shared::app::Ports;
use wa_shared::app::http::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use wa_shared::app::webhook::{WebhookSettings, handle_http};
use wa_shared::domain::lifecycle::{EventKind, LifecycleEvent};
use wa_shared::domain::template::TemplateCatalog;
use wa_shared::domain::tenant::ApiKeyHash;
use wa_shared::domain::tenant::TenantProfile;
use wa_shared::domain::webhook::sign;
use wa_shared::domain::{
    LifecyclePolicy, Message, MessageId, NewMessage, PhoneNumber, TenantId, Timestamp, Wamid,
};
use wa_shared::metrics::{Metrics, total};
use wa_shared::ports::{
    Clock, MessageStore, QueueRef, ReceiptHandle, Recorded, TokenError, TokenSource, WorkQueue,
    record_event,
};
use wa_shared::wiring::local::{self, Functions, LocalSettings};
use wa_testkit::backends::TestBackend;

pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "local-verify-token";
pub const TENANT: &str = "demo";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const WABA_ID: &str = "102290129340398";
pub const RECIPIENT: &str = "+16505551234";
/// The tenant's API key (intake).
pub const API_KEY: &str = "wa_demo_key";
/// 2025-06-16T00:00:00Z: after every Meta timestamp in the fixtures' neighbourhood.
pub const START_MS: i64 = 1_750_032_000_000;

/// Tokens are never read by the webhook or the reconciler.
struct NoTokens;

#[async_trait]
impl TokenSource for NoTokens {
    async fn graph_token(&self, token_ref: &str) -> Result<SecretString, TokenError> {
        Err(TokenError::Unresolvable(token_ref.to_owned()))
    }
}

pub struct World {
    /// The ports the handlers see (the store behind the outage switch).
    pub ports: Ports,
    /// The four functions over them, built by the local wiring.
    pub functions: Functions,
    pub clock: Arc<ManualClock>,
    pub metric_lines: Arc<Mutex<Vec<Value>>>,
    /// The store itself; the handlers see it through the outage switch.
    pub store: Arc<dyn MessageStore>,
    pub queue: Arc<dyn WorkQueue>,
    pub send_queue: QueueRef,
    pub inbox: QueueRef,
    pub tenant: TenantId,
    /// Which backend, for assertion messages.
    pub backend: &'static str,
    outage: Arc<AtomicBool>,
}

impl World {
    /// A world on the embedded SQLite adapters.
    pub async fn new() -> Self {
        Self::on(Backend::Sqlite).await
    }

    /// A world on `backend`: fresh tables and queues, the tenant, its key and templates.
    pub async fn on(backend: Backend) -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(START_MS)));
        let (metrics, metric_lines) = Metrics::in_memory();
        let TestBackend {
            ports,
            quotas,
            pacing,
            costs,
            queue_prefix,
            name,
        } = backend.open(clock.clone(), metrics).await;
        let (store, directory, queue) = (
            ports.store.clone(),
            ports.directory.clone(),
            ports.queue.clone(),
        );
        let send_queue = queue
            .ensure_queue(
                &format!("{queue_prefix}send-demo"),
                &wa_shared::queues::SEND.spec,
            )
            .await
            .unwrap();
        let inbox = queue
            .ensure_queue(
                &format!("{queue_prefix}webhook-inbox"),
                &wa_shared::queues::WEBHOOK_INBOX.spec,
            )
            .await
            .unwrap();
        let tenant = TenantId::parse(TENANT).unwrap();
        let profile = wa_testkit::fixtures::tenant(TENANT)
            .phone_number_id(PHONE_NUMBER_ID)
            .waba_id(WABA_ID)
            .queue(send_queue.as_str())
            .token_ref("env:DEMO_TOKEN")
            .updated_at(Timestamp::from_millis(START_MS))
            .build();
        directory.put_tenant(&profile).await.unwrap();
        directory
            .put_api_key(&ApiKeyHash::of_key(API_KEY), &tenant)
            .await
            .unwrap();
        for t in fixture_catalog().iter() {
            directory
                .put_template(&tenant, t, Timestamp::from_millis(START_MS))
                .await
                .unwrap();
        }
        let outage = Arc::new(AtomicBool::new(false));
        // The handlers see the store through the outage switch.
        let ports = ports.with_store(Arc::new(Outage::new(store.clone(), outage.clone())));
        let settings = LocalSettings {
            webhook: WebhookSettings {
                app_secrets: vec![SecretString::from(APP_SECRET.to_owned())],
                verify_token: SecretString::from(VERIFY_TOKEN.to_owned()),
                inbox: Some(inbox.clone()),
                ..WebhookSettings::default()
            },
            ..LocalSettings::default()
        };
        // Only the lost-answer case sends; it gives the sender its own Graph client.
        let functions = local::functions(
            &ports,
            quotas,
            pacing,
            costs,
            Arc::new(GraphProvider::new(&GraphConfig::default()).unwrap()),
            Arc::new(NoTokens),
            &settings,
        );
        Self {
            ports,
            functions,
            clock,
            metric_lines,
            store,
            queue,
            send_queue,
            inbox,
            tenant,
            backend: name,
            outage,
        }
    }

    /// Change the lifecycle policy every function of the world reads.
    pub fn set_lifecycle(&mut self, change: impl Fn(&mut LifecyclePolicy)) {
        change(&mut self.ports.lifecycle);
        let f = &mut self.functions;
        change(&mut f.intake.ports.lifecycle);
        change(&mut f.sender.ports.lifecycle);
        change(&mut f.webhook.ports.lifecycle);
        change(&mut f.reconciler.ports.lifecycle);
    }

    /// Switch an outage of the handlers' store on or off.
    pub fn store_down(&self, down: bool) {
        self.outage.store(down, Ordering::SeqCst);
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Sum of a metric with these dimensions.
    pub fn metric(&self, name: &str, dims: &[(&str, &str)]) -> f64 {
        total(&self.metric_lines.lock().unwrap(), name, dims)
    }

    pub async fn profile(&self) -> TenantProfile {
        self.ports
            .directory
            .tenant(&self.tenant)
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn set_profile(&self, change: impl FnOnce(&mut TenantProfile)) {
        let mut p = self.profile().await;
        change(&mut p);
        self.ports.directory.put_tenant(&p).await.unwrap();
    }

    /// A fresh `queued` message of the tenant, as intake stores it (not enqueued).
    pub async fn queued(&self, id: &str) -> MessageId {
        let id = MessageId::parse(id).unwrap();
        let new = NewMessage {
            tenant: self.tenant.clone(),
            id: id.clone(),
            to: PhoneNumber::parse(RECIPIENT).unwrap(),
            template_name: Some("spring_sale".into()),
            template_language: Some("en_US".into()),
            request: json!({"to": RECIPIENT}),
            request_hash: "h".into(),
            metadata: None,
        };
        let m = Message::new_queued(new, self.now(), &self.ports.lifecycle);
        self.store.create_if_absent(&m).await.unwrap();
        id
    }

    /// A message claimed by a sender (attempt 1, lease running).
    pub async fn sending(&self, id: &str) -> MessageId {
        let id = self.queued(id).await;
        let claimed = self
            .store
            .claim_for_send(&self.tenant, &id, self.now(), &self.ports.lifecycle)
            .await
            .unwrap();
        assert!(claimed.is_some());
        id
    }

    /// A message whose Graph answer was lost: `sending`, ambiguous, no wamid.
    pub async fn ambiguous(&self, id: &str) -> MessageId {
        let id = self.sending(id).await;
        self.record(&id, EventKind::MarkedAmbiguous { attempt: 1 })
            .await;
        id
    }

    /// A message Meta accepted with `wamid`.
    pub async fn accepted(&self, id: &str, wamid: &str) -> MessageId {
        let id = self.sending(id).await;
        let kind = EventKind::Accepted {
            attempt: 1,
            wamid: Wamid::parse(wamid).unwrap(),
            message_status: Some("accepted".into()),
        };
        self.record(&id, kind).await;
        id
    }

    pub async fn record(&self, id: &MessageId, kind: EventKind) {
        let event = LifecycleEvent::new(self.now(), kind);
        let r = record_event(
            &*self.store,
            &self.tenant,
            id,
            &event,
            &self.ports.lifecycle,
        )
        .await
        .unwrap();
        assert!(matches!(r, Recorded::Written { .. }), "{r:?}");
    }

    pub async fn message(&self, id: &MessageId) -> Message {
        self.store.get(&self.tenant, id).await.unwrap().unwrap()
    }

    /// POST a body signed with the app secret.
    pub async fn post(&self, body: &str) -> ApiGatewayV2httpResponse {
        let sig = sign(APP_SECRET.as_bytes(), body.as_bytes());
        handle_http(&self.functions.webhook, &post_request(body, Some(&sig))).await
    }

    /// Everything visible on a queue (received, so invisible afterwards).
    pub async fn drain(&self, queue: &QueueRef) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let got = self
                .queue
                .receive(queue, 10, Duration::from_secs(600), Duration::ZERO)
                .await
                .unwrap();
            if got.is_empty() {
                return out;
            }
            out.extend(got.into_iter().map(|m| m.body));
        }
    }

    /// The inbox's visible messages as the SQS event Lambda would deliver (invisible
    /// for a minute afterwards, until [`World::settle`]).
    pub async fn inbox_event(&self) -> SqsEvent {
        self.event(&self.inbox).await
    }

    /// A queue's visible messages as the SQS event Lambda would deliver.
    pub async fn event(&self, queue: &QueueRef) -> SqsEvent {
        let got = self
            .queue
            .receive(queue, 10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        let mut event = SqsEvent::default();
        for m in got {
            let mut record = SqsMessage::default();
            record.message_id = Some(m.id.as_str().to_owned());
            record.receipt_handle = Some(m.receipt.as_str().to_owned());
            record.body = Some(m.body);
            event.records.push(record);
        }
        event
    }

    /// What Lambda's event source mapping does after a batch of `queue`: delete the
    /// records that were not reported, and (standing in for the visibility timeout
    /// running out) make the reported ones visible again at once.
    pub async fn settle(&self, queue: &QueueRef, event: &SqsEvent, failures: &[String]) {
        for record in &event.records {
            let id = record.message_id.clone().unwrap();
            let receipt = ReceiptHandle::new(record.receipt_handle.clone().unwrap());
            if failures.contains(&id) {
                self.queue
                    .change_visibility(queue, &receipt, Duration::ZERO)
                    .await
                    .unwrap();
            } else {
                self.queue.delete(queue, &receipt).await.unwrap();
            }
        }
    }

    /// Run intake on an API Gateway request.
    pub async fn intake(&self, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        wa_shared::app::intake::handle(&self.functions.intake, req).await
    }
}

/// The template catalog of the send path's fixtures (`order_shipped`, `spring_sale`, ...).
pub fn fixture_catalog() -> TemplateCatalog {
    TemplateCatalog::from_json(include_str!("../../fixtures/templates/catalog.json")).unwrap()
}

/// `POST /v1/messages` of `events/intake/send-template.json` with the tenant's key,
/// this idempotency key and this JSON body.
pub fn intake_request(key: &str, body: &Value) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest =
        serde_json::from_str(&event_file("intake/send-template.json")).unwrap();
    req.body = Some(body.to_string());
    req.headers.insert("idempotency-key", key.parse().unwrap());
    req.headers.insert(
        "authorization",
        format!("Bearer {API_KEY}").parse().unwrap(),
    );
    req
}

/// The JSON body of a response.
pub fn body_json(resp: &ApiGatewayV2httpResponse) -> Value {
    serde_json::from_str(&body_text(resp)).unwrap()
}

/// An API Gateway v2 POST /webhook with `body` and an optional signature header.
pub fn post_request(body: &str, signature: Option<&str>) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest = serde_json::from_value(json!({
        "version": "2.0", "routeKey": "POST /webhook", "rawPath": "/webhook",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/webhook"}, "requestId": "req-test"},
        "isBase64Encoded": false,
        "body": body,
    }))
    .unwrap();
    if let Some(sig) = signature {
        req.headers
            .insert("x-hub-signature-256", sig.parse().unwrap());
    }
    req
}

/// A file of the repository's `events/` folder.
pub fn event_file(path: &str) -> String {
    let full = format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// An `events/webhook/*.json` POST event, signed now with the test app secret (the
/// files never store signatures).
pub fn signed_event(path: &str) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest = serde_json::from_str(&event_file(path)).unwrap();
    let raw = wa_shared::app::http::body_bytes(&req).unwrap();
    let sig = sign(APP_SECRET.as_bytes(), &raw);
    req.headers
        .insert("x-hub-signature-256", sig.parse().unwrap());
    req
}

pub fn status_code(resp: &ApiGatewayV2httpResponse) -> i64 {
    resp.status_code
}

pub fn body_text(resp: &ApiGatewayV2httpResponse) -> String {
    match &resp.body {
        Some(Body::Text(t)) => t.clone(),
        Some(Body::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// A status webhook body for one message.
pub fn status_body(wamid: &str, status: &str, meta_secs: i64, callback: Option<&str>) -> String {
    let mut item = json!({
        "id": wamid, "status": status, "timestamp": meta_secs.to_string(),
        "recipient_id": "16505551234",
    });
    if let Some(cb) = callback {
        item["biz_opaque_callback_data"] = json!(cb);
    }
    if status == "failed" {
        item["errors"] = json!([{"code": 131026, "title": "Message undeliverable",
            "message": "Message undeliverable", "error_data": {"details": "Message Undeliverable."}}]);
    }
    if status == "sent" {
        item["pricing"] = json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"});
    }
    statuses_body(vec![item])
}

/// A `messages` change carrying these `statuses[]` items.
pub fn statuses_body(items: Vec<Value>) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": items,
        }}]}],
    })
    .to_string()
}
