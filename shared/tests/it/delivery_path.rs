//! Event delivery to signed HTTP endpoints on AWS (moto): the endpoint registry,
//! secrets and delivery queue adapters, then the `delivery` handler fed from the
//! real route (events put on a bus whose rule copies them into the deliveries
//! queue, received and handed over as Lambda's SQS event source would), against
//! receivers on 127.0.0.1 that verify every request's Standard Webhooks signature.
//! Skipped without moto (run through `scripts/with-moto.sh`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wa_shared::adapters::aws::SdkConfig;
use wa_shared::adapters::dynamo::{TableNames, create_tables};
use wa_shared::adapters::{
    DynamoEndpointRegistry, DynamoEventLog, EventBridgePublisher, SecretsManagerEndpointSecrets,
    SqsDeliveryQueue, SystemClock,
};
use wa_shared::app::delivery::urls::UrlRules;
use wa_shared::app::delivery::{
    BatchItemFailure, DeliveryDeps, DeliverySettings, SqsEvent, SqsMessage, handle, replay,
};
use wa_shared::domain::TenantId;
use wa_shared::domain::endpoints::signing::WebhookSecret;
use wa_shared::domain::endpoints::{
    DeadLetter, DeadReason, DeliveryJob, Endpoint, EndpointHealth, new_endpoint_id,
};
use wa_shared::domain::events::{Event, EventType};
use wa_shared::domain::time::Timestamp;
use wa_shared::metrics::{Metrics, total};
use wa_shared::ports::{EndpointRegistry, EndpointSecrets, EventPublisher};
use wa_testkit::{moto, unique_name};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap())
}

fn event(tenant: &str, n: usize, t: EventType) -> Event {
    Event {
        id: format!("evt_{tenant}_{n}_{}", t.as_str()),
        event_type: t,
        timestamp: Timestamp::from_millis(now_ms()).to_rfc3339(),
        tenant: TenantId::parse(tenant).unwrap(),
        data: json!({"message_id": format!("msg_{n}"), "status": "sent"}),
    }
}

// ------------------------------------------------------------------ receivers

/// How a receiver answers.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Ok = 0,
    /// 500 to the first two attempts of each event id.
    FailTwice = 1,
    /// 302 to somewhere else (never followed: a failure).
    Redirect = 2,
    /// Holds the answer far past the sender's timeout.
    Hang = 3,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    secret: WebhookSecret,
    mode: Arc<AtomicU8>,
    /// Verified and answered 2xx: (event id, received at ms, event).
    ok: Arc<Mutex<Vec<(String, i64, Event)>>>,
    /// Every request: its event id.
    requests: Arc<Mutex<Vec<String>>>,
    rejected: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = Receiver {
            url: format!("http://127.0.0.1:{port}/hooks"),
            secret: WebhookSecret::from_key(&rand_key()),
            mode: Arc::new(AtomicU8::new(mode as u8)),
            ok: Arc::default(),
            requests: Arc::default(),
            rejected: Arc::default(),
        };
        let app = Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn ids(&self) -> BTreeSet<String> {
        self.ok
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.clone())
            .collect()
    }
}

fn rand_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    let seed = ulid::Ulid::generate().0.to_le_bytes();
    for (i, b) in key.iter_mut().enumerate() {
        *b = seed[i % 16] ^ (i as u8).wrapping_mul(31);
    }
    key
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let id = h("webhook-id").unwrap_or("").to_owned();
    r.requests.lock().unwrap().push(id.clone());
    if let Err(e) = r.secret.verify(
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        &body,
        now_ms() / 1000,
    ) {
        r.rejected.lock().unwrap().push(format!("{id}: {e}"));
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mode = r.mode.load(Ordering::SeqCst);
    if mode == Mode::FailTwice as u8 {
        let seen = r
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|x| **x == id)
            .count();
        if seen <= 2 {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    } else if mode == Mode::Redirect as u8 {
        return (StatusCode::FOUND, [("location", "http://127.0.0.1:9/")]).into_response();
    } else if mode == Mode::Hang as u8 {
        tokio::time::sleep(Duration::from_secs(60)).await;
        return StatusCode::OK.into_response();
    }
    let event: Event = serde_json::from_slice(&body).unwrap();
    assert_eq!(event.id, id, "webhook-id is the event's id");
    r.ok.lock().unwrap().push((id, now_ms(), event));
    StatusCode::NO_CONTENT.into_response()
}

// ------------------------------------------------------------------ the stage

struct Stage {
    sdk: SdkConfig,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    bus: EventBridgePublisher,
    registry: Arc<DynamoEndpointRegistry>,
    secrets: Arc<SecretsManagerEndpointSecrets>,
    metric_lines: Arc<Mutex<Vec<Value>>>,
    deps: DeliveryDeps,
}

impl Stage {
    async fn new(sdk: SdkConfig, settings: DeliverySettings) -> Self {
        let prefix = unique_name("dlv");
        let tables = TableNames::with_prefix(&prefix);
        create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &tables)
            .await
            .unwrap();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{prefix}-deliveries"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let bus = format!("{prefix}-bus");
        moto::route_bus_to_queue(&sdk, &bus, &queue_url).await;
        let registry = Arc::new(DynamoEndpointRegistry::new(&sdk, tables.directory.clone()));
        let secrets = Arc::new(SecretsManagerEndpointSecrets::new(
            &sdk,
            format!("{prefix}/wa/endpoints/"),
        ));
        let (metrics, metric_lines) = Metrics::in_memory();
        let deps = DeliveryDeps::new(
            registry.clone(),
            secrets.clone(),
            Arc::new(SqsDeliveryQueue::new(&sdk, queue_url.clone())),
            Arc::new(DynamoEventLog::new(&sdk, tables.events.clone())),
            Arc::new(SystemClock),
            metrics,
            settings,
        )
        .unwrap();
        Self {
            bus: EventBridgePublisher::new(&sdk, bus),
            sdk,
            sqs,
            queue_url,
            registry,
            secrets,
            metric_lines,
            deps,
        }
    }

    /// Register an endpoint of `tenant` at the receiver (`types` filter optional).
    async fn endpoint(&self, tenant: &str, r: &Receiver, types: Option<&[EventType]>) -> String {
        let tenant = TenantId::parse(tenant).unwrap();
        let id = new_endpoint_id();
        let secret_ref = self.secrets.create(&tenant, &id, &r.secret).await.unwrap();
        self.registry
            .add(&Endpoint {
                tenant,
                id: id.clone(),
                url: r.url.clone(),
                types: types.map(|t| t.iter().copied().collect()),
                secret_ref,
                created_at: Timestamp::from_millis(now_ms()),
                disabled: false,
                health: EndpointHealth::default(),
            })
            .await
            .unwrap();
        id
    }

    async fn publish(&self, events: &[Event]) {
        for r in self.bus.publish(events).await {
            r.unwrap();
        }
    }

    /// Receive batches from the deliveries queue and hand them to the handler (as
    /// the event source mapping does: three batches in flight, failed records stay,
    /// the rest are deleted) until `done` or `limit`.
    async fn pump(&self, limit: Duration, done: impl Fn() -> bool + Sync) {
        // Lambda polls a queue with several batches in flight at once.
        tokio::join!(
            self.poll(limit, &done),
            self.poll(limit, &done),
            self.poll(limit, &done)
        );
    }

    async fn poll(&self, limit: Duration, done: &(impl Fn() -> bool + Sync)) {
        let start = Instant::now();
        while !done() && start.elapsed() < limit {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(30)
                .send()
                .await
                .unwrap();
            let messages = got.messages();
            if messages.is_empty() {
                continue;
            }
            let mut event = SqsEvent::default();
            event.records = messages
                .iter()
                .map(|m| {
                    let mut r = SqsMessage::default();
                    r.message_id = m.message_id().map(str::to_owned);
                    r.receipt_handle = m.receipt_handle().map(str::to_owned);
                    r.body = m.body().map(str::to_owned);
                    r
                })
                .collect();
            let answer = handle(&self.deps, event).await;
            let failed: BTreeSet<String> = answer
                .batch_item_failures
                .iter()
                .map(|f: &BatchItemFailure| f.item_identifier.clone())
                .collect();
            for m in messages {
                if !failed.contains(m.message_id().unwrap()) {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(m.receipt_handle().unwrap())
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
    }

    fn metric(&self, name: &str) -> f64 {
        total(&self.metric_lines.lock().unwrap(), name, &[])
    }
}

/// Tests' settings: loopback allowed, a day of retries in about ten seconds (each
/// SQS delay is at least a second).
fn fast() -> DeliverySettings {
    DeliverySettings {
        time_scale: 0.0001,
        timeout: Duration::from_secs(2),
        rules: UrlRules {
            allow_loopback: true,
        },
        // 3 days scaled would be 26 s, which a slow run can outlast: keep disabling
        // out of the tests that are not about it (259 s scaled).
        disable_after: Duration::from_secs(30 * 86_400),
        ..DeliverySettings::default()
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_registry_secrets_and_queue_adapters_keep_what_delivery_needs() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let stage = Stage::new(sdk, fast()).await;
    let acme = TenantId::parse("acme").unwrap();
    let r = Receiver::start(Mode::Ok).await;
    let id = stage
        .endpoint("acme", &r, Some(&[EventType::MessageDelivered]))
        .await;

    // The secret round-trips; a reference outside the prefix is refused.
    let endpoint = stage.registry.get(&acme, &id).await.unwrap().unwrap();
    assert!(
        endpoint.secret_ref.contains("/wa/endpoints/acme/"),
        "{}",
        endpoint.secret_ref
    );
    let read = stage.secrets.read(&endpoint.secret_ref).await.unwrap();
    assert_eq!(read.to_whsec(), r.secret.to_whsec());
    assert!(stage.secrets.read("other/secret").await.is_err());
    assert!(endpoint.wants(EventType::MessageDelivered) && !endpoint.wants(EventType::MessageRead));
    assert!(matches!(
        stage.registry.add(&endpoint).await,
        Err(wa_shared::ports::EndpointRegistryError::AlreadyExists(_))
    ));

    // Failures add up, a success clears them; disabling and enabling.
    let at = Timestamp::from_millis(1_000_000);
    let h = stage
        .registry
        .record_failure(&acme, &id, at, "answered 500", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((h.failures_in_a_row, h.failing_since), (1, Some(at)));
    assert_eq!(h.hold_until, Some(at.plus_millis(5_000)));
    let h = stage
        .registry
        .record_failure(
            &acme,
            &id,
            at.plus_millis(10),
            "timeout",
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((h.failures_in_a_row, h.failing_since), (2, Some(at)));
    assert_eq!(h.last_error.as_deref(), Some("timeout"));
    stage
        .registry
        .record_success(&acme, &id, at.plus_millis(20))
        .await
        .unwrap();
    let health = stage
        .registry
        .get(&acme, &id)
        .await
        .unwrap()
        .unwrap()
        .health;
    assert_eq!(health.failures_in_a_row, 0);
    assert_eq!(health.failing_since, None);
    assert_eq!(health.last_success_at, Some(at.plus_millis(20)));
    assert!(stage.registry.set_disabled(&acme, &id, true).await.unwrap());
    assert!(
        stage
            .registry
            .get(&acme, &id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert!(
        !stage
            .registry
            .set_disabled(&acme, "ep_missing", true)
            .await
            .unwrap()
    );
    assert!(
        stage
            .registry
            .record_failure(&acme, "ep_missing", at, "x", Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );

    // Dead letters: one per endpoint and event, listed, removed.
    for n in 0..3 {
        stage
            .registry
            .put_dead_letter(&DeadLetter {
                tenant: acme.clone(),
                endpoint: id.clone(),
                reason: DeadReason::AttemptsExhausted,
                attempts: 8,
                last_error: Some("answered 500".into()),
                dead_at: at,
                event: event("acme", n, EventType::MessageDelivered),
            })
            .await
            .unwrap();
    }
    let letters = stage
        .registry
        .dead_letters(&acme, Some(&id), 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 3);
    assert_eq!(
        stage
            .registry
            .dead_letters(&acme, None, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    stage
        .registry
        .remove_dead_letter(&acme, &id, &letters[0].event.id)
        .await
        .unwrap();
    assert_eq!(
        stage
            .registry
            .dead_letters(&acme, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // The endpoint list does not include dead letters.
    assert_eq!(stage.registry.list(&acme).await.unwrap().len(), 1);

    // A job round-trips through the queue.
    let job = DeliveryJob {
        tenant: acme.clone(),
        endpoint: id.clone(),
        attempts: 3,
        due_at_ms: 42,
        event: event("acme", 9, EventType::MessageRead),
    };
    stage
        .deps
        .queue
        .schedule(&[(job.clone(), Duration::ZERO)])
        .await
        .unwrap();
    let got = stage
        .sqs
        .receive_message()
        .queue_url(&stage.queue_url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let body = got.messages()[0].body().unwrap();
    assert_eq!(serde_json::from_str::<DeliveryJob>(body).unwrap(), job);

    // Removing the endpoint removes its dead letters.
    assert!(stage.registry.remove(&acme, &id).await.unwrap());
    assert!(stage.registry.get(&acme, &id).await.unwrap().is_none());
    assert!(
        stage
            .registry
            .dead_letters(&acme, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!stage.registry.remove(&acme, &id).await.unwrap());
    stage.secrets.delete(&endpoint.secret_ref).await.unwrap();
    let _ = stage.sdk.clone();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_endpoint_gets_its_events_signed_failures_retry_then_dead_letter_and_replay() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let stage = Stage::new(sdk, fast()).await;
    let acme = TenantId::parse("acme").unwrap();
    let good = Receiver::start(Mode::Ok).await;
    let flaky = Receiver::start(Mode::FailTwice).await;
    let redirect = Receiver::start(Mode::Redirect).await;
    let filtered = Receiver::start(Mode::Ok).await;
    let other = Receiver::start(Mode::Ok).await;
    stage.endpoint("acme", &good, None).await;
    stage.endpoint("acme", &flaky, None).await;
    let redirect_id = stage.endpoint("acme", &redirect, None).await;
    stage
        .endpoint("acme", &filtered, Some(&[EventType::MessageDelivered]))
        .await;
    stage.endpoint("globex", &other, None).await;

    let events = vec![
        event("acme", 1, EventType::MessageSent),
        event("acme", 1, EventType::MessageDelivered),
        event("acme", 2, EventType::MessageRead),
    ];
    stage.publish(&events).await;
    stage
        .publish(&[event("globex", 1, EventType::MessageSent)])
        .await;
    let all: BTreeSet<String> = events.iter().map(|e| e.id.clone()).collect();
    let dead = DeadLetterCount::watch(
        stage.registry.clone(),
        acme.clone(),
        Some(redirect_id.clone()),
    );
    stage
        .pump(Duration::from_secs(60), || {
            good.ids() == all
                && flaky.ids() == all
                && !filtered.ids().is_empty()
                && redirect.requests.lock().unwrap().len() >= 3 * 8
        })
        .await;
    // Let the last failures become dead letters.
    stage.pump(Duration::from_secs(5), || dead.get() == 3).await;

    assert_eq!(good.ids(), all);
    assert_eq!(flaky.ids(), all, "every event arrives after two 500s");
    assert_eq!(
        filtered.ids(),
        BTreeSet::from([events[1].id.clone()]),
        "the types filter holds"
    );
    assert_eq!(
        other.ids(),
        BTreeSet::from(["evt_globex_1_message.sent".to_owned()]),
        "a tenant's endpoint gets only its tenant's events"
    );
    for r in [&good, &flaky, &filtered, &other] {
        assert!(r.rejected.lock().unwrap().is_empty(), "{:?}", r.rejected);
    }
    // The body is the event exactly as published.
    for (_, _, e) in good.ok.lock().unwrap().iter() {
        assert!(events.contains(e));
    }
    // The redirect was never followed: 8 attempts per event, then a dead letter.
    let per_id = count_by_id(&redirect.requests.lock().unwrap());
    assert!(per_id.values().all(|n| *n == 8), "{per_id:?}");
    let letters = stage
        .registry
        .dead_letters(&acme, Some(&redirect_id), 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 3);
    assert!(
        letters
            .iter()
            .all(|l| l.reason == DeadReason::AttemptsExhausted
                && l.attempts == 8
                && l.last_error.as_deref().is_some_and(|e| e.contains("302")))
    );
    assert_eq!(stage.metric("EventsDeadLettered"), 3.0);
    assert!(stage.metric("EventsDeliveryRetried") >= 3.0 * 7.0 + 6.0);
    assert!(stage.metric("EventsDelivered") >= 3.0 * 2.0 + 2.0);
    let health = stage
        .registry
        .get(&acme, &redirect_id)
        .await
        .unwrap()
        .unwrap()
        .health;
    assert!(health.failing_since.is_some() && health.failures_in_a_row >= 8);

    // Fixed, then replayed: the dead letters are sent again, once.
    redirect.set(Mode::Ok);
    let summary = replay(&stage.deps, &acme, Some(&redirect_id), None)
        .await
        .unwrap();
    assert_eq!(summary.dead_letters, 3);
    stage
        .pump(Duration::from_secs(20), || redirect.ids() == all)
        .await;
    assert_eq!(redirect.ids(), all);
    assert!(
        stage
            .registry
            .dead_letters(&acme, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let health = stage
        .registry
        .get(&acme, &redirect_id)
        .await
        .unwrap()
        .unwrap()
        .health;
    assert_eq!((health.failures_in_a_row, health.failing_since), (0, None));
}

/// Tenants acme and globex get 30 events each, interleaved; globex's endpoint
/// answers, acme's hangs (`acme_dead`) or answers too. Globex's delays from publish
/// to receipt, sorted, and how many requests acme's endpoint got.
async fn isolation_run(sdk: SdkConfig, acme_dead: bool) -> (Vec<i64>, usize, f64) {
    let stage = Stage::new(sdk, fast()).await;
    let acme = Receiver::start(if acme_dead { Mode::Hang } else { Mode::Ok }).await;
    let live = Receiver::start(Mode::Ok).await;
    stage.endpoint("acme", &acme, None).await;
    stage.endpoint("globex", &live, None).await;
    let mut published = BTreeMap::new();
    for i in 0..30 {
        let batch = [
            event("acme", i, EventType::MessageSent),
            event("globex", i, EventType::MessageSent),
        ];
        published.insert(batch[1].id.clone(), now_ms());
        stage.publish(&batch).await;
    }
    let want: BTreeSet<String> = published.keys().cloned().collect();
    stage
        .pump(Duration::from_secs(60), || live.ids() == want)
        .await;
    assert_eq!(live.ids(), want, "every event of the live tenant arrived");
    let mut delays: Vec<i64> = live
        .ok
        .lock()
        .unwrap()
        .iter()
        .map(|(id, at, _)| at - published[id])
        .collect();
    delays.sort_unstable();
    if acme_dead {
        assert!(acme.ok.lock().unwrap().is_empty());
    }
    let requests = acme.requests.lock().unwrap().len();
    (delays, requests, stage.metric("EventsDeliveryDeferred"))
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_endpoint_of_one_tenant_does_not_hold_another_tenants_events() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let (baseline, _, _) = isolation_run(sdk.clone(), false).await;
    let (delays, requests, deferred) = isolation_run(sdk, true).await;
    println!(
        "globex's delay from publish to receipt (moto bus and queue, 30 events per tenant, \
         3 batches in flight): p50 {} ms, p99 {} ms while acme's endpoint hangs; p50 {} ms, \
         p99 {} ms while it answers; the hanging endpoint got {requests} requests for 30 events, \
         {deferred} deliveries waited for its circuit",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        percentile(&baseline, 0.5),
        percentile(&baseline, 0.99),
    );
    // The circuit: after the first timeouts the dead endpoint's other events wait
    // for its pause or its one probe instead of each spending a timeout.
    assert!(deferred > 0.0);
    assert!(
        requests < 30,
        "{requests} requests: the circuit did not hold"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_addresses_are_never_called_and_a_long_failing_endpoint_is_disabled() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let settings = DeliverySettings {
        // Failing for 20 ms (scaled) disables.
        disable_after: Duration::from_millis(200_000),
        rules: UrlRules::default(),
        ..fast()
    };
    let stage = Stage::new(sdk, settings).await;
    let acme = TenantId::parse("acme").unwrap();
    let secret = WebhookSecret::from_key(&rand_key());
    let id = new_endpoint_id();
    let secret_ref = stage.secrets.create(&acme, &id, &secret).await.unwrap();
    // Written straight to the registry (`wa tenants endpoints add` refuses it).
    stage
        .registry
        .add(&Endpoint {
            tenant: acme.clone(),
            id: id.clone(),
            url: "https://169.254.169.254/latest/meta-data".into(),
            types: None,
            secret_ref,
            created_at: Timestamp::from_millis(now_ms()),
            disabled: false,
            health: EndpointHealth::default(),
        })
        .await
        .unwrap();
    stage
        .publish(&[
            event("acme", 1, EventType::MessageSent),
            event("acme", 2, EventType::MessageSent),
        ])
        .await;
    let dead = DeadLetterCount::watch(stage.registry.clone(), acme.clone(), None);
    stage
        .pump(Duration::from_secs(30), || dead.get() == 2)
        .await;
    let endpoint = stage.registry.get(&acme, &id).await.unwrap().unwrap();
    assert!(endpoint.disabled, "{endpoint:?}");
    let error = endpoint.health.last_error.unwrap_or_default();
    assert!(error.contains("link-local"), "{error}");
    let letters = stage.registry.dead_letters(&acme, None, 10).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert!(
        letters
            .iter()
            .all(|l| l.reason == DeadReason::EndpointDisabled)
    );
    assert!(stage.metric("EndpointDisabled") >= 1.0);
}

fn count_by_id(ids: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id.clone()).or_insert(0) += 1;
    }
    m
}

/// A tenant's dead-letter count, kept current by a background task so that a pump's
/// synchronous `done` reads it without blocking: blocking in place there would also
/// suspend the pump's own receives (same task, `join!`) and once hung a CI run.
struct DeadLetterCount {
    count: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DeadLetterCount {
    fn watch(
        registry: Arc<DynamoEndpointRegistry>,
        tenant: TenantId,
        endpoint: Option<String>,
    ) -> Self {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(letters) = registry
                    .dead_letters(&tenant, endpoint.as_deref(), 10)
                    .await
                {
                    seen.store(letters.len(), Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { count, task }
    }

    fn get(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for DeadLetterCount {
    fn drop(&mut self) {
        self.task.abort();
    }
}
