//! Pacing measured against the Graph sandbox's limits, in real time: four sender
//! instances (each its own connection pool on one SQLite file, like four processes,
//! each with its own directory cache) drain one tenant's queue through the real
//! handler, as Lambda's event source mapping would.
//!
//! The figures are printed (`--no-capture`); the assertions are behaviour only: the
//! share of 130429s at steady state, no 131056, and messages to a busy recipient
//! delayed, not failed.

use crate::send_path::support::*;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wa_sandbox::{
    LimitsConfig, PhoneNumberConfig, RequestOutcome, RunningSandbox, SandboxConfig, Secret,
    TemplatesSource,
};
use wa_shared::adapters::SystemClock;
use wa_shared::adapters::graph::{GraphConfig, GraphProvider};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions, Synchronous};
use wa_shared::adapters::tokens::StaticTokenSource;
use wa_shared::app::sender::{PacingPolicy, SenderSettings};
use wa_shared::app::{IntakeDeps, SenderDeps};
use wa_shared::domain::quota::IntakeQuota;
use wa_shared::domain::template::TemplateCatalog;
use wa_shared::domain::tenant::ApiKeyHash;
use wa_shared::domain::{LifecyclePolicy, Message, MessageId, MessageState, TenantId};
use wa_shared::metrics::{Metrics, MetricsSink};
use wa_shared::ports::{MessageStore, QueueRef, ReceiptHandle, WorkQueue};
use wa_shared::wiring::local::{self, LocalSettings};

/// Sender instances draining the queue together.
const INSTANCES: usize = 4;
/// Meta's default throughput, the tenant's `throughput_mps` and the sandbox's limit.
const THROUGHPUT_MPS: u32 = 80;

/// One tenant, the sandbox, intake and `INSTANCES` senders over one SQLite file.
struct Fleet {
    sandbox: RunningSandbox,
    intake: IntakeDeps,
    store: Arc<dyn MessageStore>,
    queues: Arc<dyn WorkQueue>,
    queue: QueueRef,
    senders: Vec<SenderDeps>,
    _dir: tempfile::TempDir,
}

fn catalog() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates/catalog.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn open(path: &std::path::Path) -> local::Backend {
    let options = SqliteOptions {
        max_connections: 4,
        busy_timeout: Duration::from_secs(30),
        synchronous: Synchronous::Normal,
    };
    let db = SqliteDb::open(path, options).await.unwrap();
    local::Backend::open(db, Arc::new(SystemClock))
        .await
        .unwrap()
}

impl Fleet {
    async fn start(pacing: PacingPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wa.sqlite");
        let backend = open(&path).await;
        let metrics = || Metrics::new(MetricsSink::Discard, "test");
        let ports = backend.ports(metrics(), LifecyclePolicy::default());
        let queue = ports
            .queue
            .ensure_queue("demo", &wa_shared::queues::SEND.spec)
            .await
            .unwrap();
        let tenant = TenantId::parse("demo").unwrap();
        let mut profile = profile("demo", PHONE_NUMBER_ID, &queue);
        profile.throughput_mps = THROUGHPUT_MPS;
        profile.max_concurrency = INSTANCES as u32;
        profile.intake_quota = IntakeQuota {
            requests_per_second: 100_000,
            burst: 1_000_000,
            messages_per_day: None,
        };
        ports.directory.put_tenant(&profile).await.unwrap();
        ports
            .directory
            .put_api_key(&ApiKeyHash::of_key(API_KEY), &tenant)
            .await
            .unwrap();
        let templates = TemplateCatalog::from_json(&catalog().to_string()).unwrap();
        for t in templates.iter() {
            ports
                .directory
                .put_template(&tenant, t, START)
                .await
                .unwrap();
        }
        // Meta's limits, as the sandbox has them by default.
        let sandbox = RunningSandbox::start(SandboxConfig {
            phone_numbers: vec![PhoneNumberConfig {
                id: PHONE_NUMBER_ID.into(),
                display_phone_number: "15550783881".into(),
                waba_id: "102290129340398".into(),
                access_token: Secret("EAAG-test-token".into()),
                throughput_mps: Some(f64::from(THROUGHPUT_MPS)),
            }],
            templates: TemplatesSource::Inline(catalog()),
            limits: LimitsConfig::default(),
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let provider = Arc::new(
            GraphProvider::new(&GraphConfig {
                base_url: sandbox.base_url(),
                timeout: Duration::from_secs(10),
                ..GraphConfig::default()
            })
            .unwrap(),
        );
        let tokens = Arc::new(StaticTokenSource::new([(
            TOKEN_REF.to_owned(),
            SecretString::from("EAAG-test-token"),
        )]));
        let settings = LocalSettings {
            sender: SenderSettings {
                pacing,
                ..SenderSettings::default()
            },
            ..LocalSettings::default()
        };
        let intake = local::intake(&ports, backend.quotas.clone(), &settings);
        let mut senders = Vec::new();
        for _ in 0..INSTANCES {
            let own = open(&path).await;
            let ports = own.ports(metrics(), LifecyclePolicy::default());
            senders.push(local::sender(
                &ports,
                own.pacing.clone(),
                provider.clone(),
                tokens.clone(),
                &settings,
            ));
        }
        Self {
            sandbox,
            intake,
            store: ports.store.clone(),
            queues: ports.queue.clone(),
            queue,
            senders,
            _dir: dir,
        }
    }

    /// Queue one template message to `to` through intake.
    async fn queue_to(&self, to: &str, key: &str) -> MessageId {
        let body = json!({"to": to, "template": {"name": "order_shipped", "language": "en_US",
            "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
        let req = with_header(
            with_body(request("intake/send-template.json"), &body),
            "idempotency-key",
            Some(key),
        );
        let resp = wa_shared::app::intake::handle(&self.intake, req).await;
        assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
        MessageId::parse(
            crate::send_path::support::body(&resp)["id"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    }

    /// Run every sender instance until `done` says so (or `deadline` passes).
    async fn drain(&self, deadline: Duration, mut done: impl AsyncFnMut() -> bool) {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for deps in &self.senders {
            let (deps, queues, queue, stop) = (
                deps.clone(),
                self.queues.clone(),
                self.queue.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    poll_once(&deps, &*queues, &queue).await;
                }
            }));
        }
        let started = Instant::now();
        while started.elapsed() < deadline && !done().await {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.unwrap();
        }
    }

    async fn stored(&self, id: &MessageId) -> Message {
        let tenant = TenantId::parse("demo").unwrap();
        self.store.get(&tenant, id).await.unwrap().unwrap()
    }

    /// Sends the sandbox answered: (ms since it started, the code it refused with).
    fn sends(&self) -> Vec<(u64, Option<i64>)> {
        self.sandbox
            .sandbox
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
            .map(|r| {
                let code = match r.outcome {
                    RequestOutcome::Rejected { code, .. } => Some(code),
                    _ => None,
                };
                (r.at_ms, code)
            })
            .collect()
    }
}

/// One receive and one handler run, as the event source mapping does: records the
/// handler does not report are deleted.
async fn poll_once(deps: &SenderDeps, queues: &dyn WorkQueue, queue: &QueueRef) {
    let received = queues
        .receive(
            queue,
            10,
            Duration::from_secs(30),
            Duration::from_millis(200),
        )
        .await
        .unwrap();
    if received.is_empty() {
        return;
    }
    let receipts: Vec<(String, ReceiptHandle)> = received
        .iter()
        .map(|m| (m.id.as_str().to_owned(), m.receipt.clone()))
        .collect();
    let event = sqs_event(received.into_iter().map(|m| {
        (
            m.id.as_str().to_owned(),
            m.receipt.as_str().to_owned(),
            m.body,
        )
    }));
    let failures: Vec<String> = wa_shared::app::sender::handle(deps, event)
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    for (id, receipt) in receipts {
        if !failures.contains(&id) {
            queues.delete(queue, &receipt).await.unwrap();
        }
    }
}

fn recipient(n: usize) -> String {
    format!("+1415555{:04}", 1000 + n)
}

fn percentile(mut values: Vec<i64>, p: f64) -> i64 {
    values.sort_unstable();
    let rank = ((values.len() as f64) * p).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Issue 13, point 2: four instances together keep a number under its throughput.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pacing_four_sender_instances_keep_a_number_under_its_throughput() {
    const MESSAGES: usize = 1_200;
    let fleet = Fleet::start(PacingPolicy::default()).await;
    for n in 0..MESSAGES {
        fleet.queue_to(&recipient(n), &format!("load-{n}")).await;
    }
    let started = Instant::now();
    let sandbox = fleet.sandbox.sandbox.clone();
    fleet
        .drain(Duration::from_secs(240), async || {
            sandbox.stats().sends_accepted >= MESSAGES as u64
        })
        .await;
    let elapsed = started.elapsed();

    let sends = fleet.sends();
    let accepted = sends.iter().filter(|(_, code)| code.is_none()).count();
    let throttled =
        |s: &[(u64, Option<i64>)]| s.iter().filter(|(_, code)| *code == Some(130_429)).count();
    let first = sends.iter().map(|(at, _)| *at).min().unwrap();
    let last = sends.iter().map(|(at, _)| *at).max().unwrap();
    // Steady state: past the first second of sending.
    let steady: Vec<_> = sends
        .iter()
        .copied()
        .filter(|(at, _)| *at >= first + 1_000)
        .collect();
    let rate = accepted as f64 / ((last - first).max(1) as f64 / 1000.0);
    println!(
        "throughput: {INSTANCES} instances, {MESSAGES} messages, limit {THROUGHPUT_MPS}/s: \
         {} sends, {accepted} accepted in {:.1} s ({rate:.1}/s over the sending period); \
         130429: {} of all sends ({:.2}%), {} of {} at steady state ({:.2}%)",
        sends.len(),
        elapsed.as_secs_f64(),
        throttled(&sends),
        100.0 * throttled(&sends) as f64 / sends.len() as f64,
        throttled(&steady),
        steady.len(),
        100.0 * throttled(&steady) as f64 / steady.len().max(1) as f64,
    );
    assert_eq!(accepted, MESSAGES, "every message goes out");
    assert!(
        throttled(&steady) * 100 <= steady.len(),
        "more than 1% of the steady-state sends earned a 130429"
    );
}

/// What one run of the busy-recipient measurement saw.
struct RecipientRun {
    others_p95_ms: i64,
    hot_accepted: usize,
    hot_waiting: usize,
    pair_rate_hits: usize,
    throughput_hits: usize,
}

/// 300 messages to 300 recipients, and with `hot` 60 more to one recipient (every
/// sixth message); the run ends when the 300 are accepted (`wait_for_hot`: when all
/// 360 are).
async fn recipient_run(hot: bool, wait_for_hot: bool) -> RecipientRun {
    const OTHERS: usize = 300;
    let fleet = Fleet::start(PacingPolicy::default()).await;
    let (mut others, mut busy) = (Vec::new(), Vec::new());
    for n in 0..OTHERS {
        others.push(fleet.queue_to(&recipient(n), &format!("other-{n}")).await);
        if hot && n % 5 == 4 {
            let key = format!("hot-{}", busy.len());
            busy.push(fleet.queue_to("+14155559999", &key).await);
        }
    }
    let watched: Vec<MessageId> = if wait_for_hot {
        others.iter().chain(&busy).cloned().collect()
    } else {
        others.clone()
    };
    let deadline = Duration::from_secs(if wait_for_hot { 420 } else { 120 });
    let fleet = &fleet;
    fleet
        .drain(deadline, async || {
            for id in &watched {
                if fleet.stored(id).await.state != MessageState::Accepted {
                    return false;
                }
            }
            true
        })
        .await;

    let mut latencies = Vec::new();
    for id in &others {
        let m = fleet.stored(id).await;
        assert_eq!(m.state, MessageState::Accepted);
        let accepted = m.timestamps.accepted_at.unwrap();
        latencies.push(accepted.millis_since(m.created_at));
    }
    let (mut hot_accepted, mut hot_waiting) = (0, 0);
    for id in &busy {
        let m = fleet.stored(id).await;
        match m.state {
            MessageState::Accepted => hot_accepted += 1,
            // Deferred, unclaimed: no attempt spent, nothing failed.
            MessageState::Queued if m.attempt == 0 && m.failure.is_none() => hot_waiting += 1,
            other => panic!("a message to the busy recipient is {other:?}: {m:?}"),
        }
    }
    let sends = fleet.sends();
    let hits = |code| sends.iter().filter(|(_, c)| *c == Some(code)).count();
    RecipientRun {
        others_p95_ms: percentile(latencies, 0.95),
        hot_accepted,
        hot_waiting,
        pair_rate_hits: hits(131_056),
        throughput_hits: hits(130_429),
    }
}

/// Issue 13, point 3: 60 messages to one recipient among 300 to others, at Meta's pair
/// rate (6 s, bursts of 45): none earns a 131056, the recipient's excess waits unclaimed
/// (its burst is repaid only 270 s later), and the others go at full rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pacing_a_busy_recipient_waits_while_others_go_at_full_rate() {
    let alone = recipient_run(false, false).await;
    let mixed = recipient_run(true, false).await;
    println!(
        "busy recipient: others' queued->accepted p95 {} ms alone, {} ms beside 60 to one \
         recipient (ratio {:.2}); to that recipient: {} accepted, {} waiting unclaimed; \
         131056: {}, 130429: {} and {}",
        alone.others_p95_ms,
        mixed.others_p95_ms,
        mixed.others_p95_ms as f64 / alone.others_p95_ms.max(1) as f64,
        mixed.hot_accepted,
        mixed.hot_waiting,
        mixed.pair_rate_hits,
        alone.throughput_hits,
        mixed.throughput_hits,
    );
    assert_eq!(mixed.pair_rate_hits, 0);
    assert_eq!(mixed.hot_accepted + mixed.hot_waiting, 60);
    assert!(
        mixed.hot_accepted <= 45,
        "at most one burst before it is repaid"
    );
}

/// The same run until all 60 messages to the busy recipient are accepted: the 15
/// past the burst go once it is repaid, 270 s later. Slow: run it with
/// `--run-ignored only`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "takes about five minutes (Meta's pair rate repays a burst of 45 in 270 s)"]
async fn pacing_a_busy_recipients_messages_all_go_once_the_burst_is_repaid() {
    let started = Instant::now();
    let run = recipient_run(true, true).await;
    println!(
        "busy recipient, full run: {} accepted in {:.0} s; 131056: {}; others' p95 {} ms",
        run.hot_accepted,
        started.elapsed().as_secs_f64(),
        run.pair_rate_hits,
        run.others_p95_ms,
    );
    assert_eq!(run.pair_rate_hits, 0);
    assert_eq!(run.hot_accepted, 60);
}
