//! Events out of `wa dev`: the whole runtime (`wa_local::start`: intake, sender,
//! sandbox with its signed Meta webhooks, webhook, event dispatcher) delivering to
//! Standard Webhooks receivers on 127.0.0.1.
//!
//! Two receivers verify every request: one in-process with our own verifier
//! ([`WebhookSecret::verify`]) and `scripts/events-receiver.py`, which uses the
//! independent `standardwebhooks` Python package (installed into `.venv/events` by
//! `scripts/events-venv.sh`, which the tests run first). Retries run on a
//! compressed clock (`[events] time_scale`).
//!
//! Issue 12, point 6: 2,000 messages with duplicated and reordered Meta webhooks
//! (`both_verifiers_see_exactly_the_advancing_events_of_each_message_in_sequence_order`),
//! a receiver answering 500 to 30% of requests and timing out on 10%, a dead endpoint
//! of tenant A against tenant B's delays (p99 printed), and an inbound button reply
//! posted, signed, to wa dev's `/webhook` as Meta would.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use wa_local::events::dispatcher::{Attempt, attempt, http_client, now_ms};
use wa_local::events::store::{DueDelivery, event_millis};
use wa_local::events::{EndpointConfig, MAX_ATTEMPTS, WebhookSecret};
use wa_local::{DevConfig, DevServer};
use wa_shared::domain::TenantId;
use wa_shared::domain::events::{Event, EventType};
use wa_shared::domain::webhook::sign;
use wa_shared::ports::EventLog;

const KEY_A: &str = "key_tenant_a";
const KEY_B: &str = "key_tenant_b";
/// `[webhook] app_secret`: wa dev checks the signatures of Meta's webhooks with it.
const APP_SECRET: &str = "events-test-app-secret";

// ------------------------------------------------------------------ the runtime

/// Fast sandbox webhooks, optionally with duplicated and reordered ones.
fn sandbox(duplicates_and_reorders: bool) -> String {
    let rate = if duplicates_and_reorders { 0.3 } else { 0.0 };
    format!(
        r#"
[webhook]
app_secret = "{APP_SECRET}"

[sandbox]
seed = 11

[sandbox.webhook]
sent_after_ms = 20
delivered_after_ms = 60
read_after_ms = 120

[sandbox.faults.webhook]
duplicate_rate = {rate}
reorder_rate = {rate}
"#
    )
}

fn tenant(id: &str, key: &str, phone: &str, endpoints: &[(&str, &WebhookSecret)]) -> String {
    let mut text = format!(
        "\n[[tenants]]\nid = \"{id}\"\napi_keys = [\"{key}\"]\nphone_number_id = \"{phone}\"\n\
         waba_id = \"2000{phone}\"\nmax_concurrency = 4\n"
    );
    for (url, secret) in endpoints {
        text.push_str(&format!(
            "\n[[tenants.endpoints]]\nurl = \"{url}\"\nsecret = \"{}\"\n",
            secret.to_whsec()
        ));
    }
    text
}

struct Dev {
    server: DevServer,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(config: &str) -> Dev {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wa.toml");
    let text = format!("data = \"dev.sqlite\"\n{config}");
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = wa_local::start(config, listener).await.unwrap();
    Dev {
        server,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// Send `order_shipped` to a distinct recipient for `n`; the message id and the number
/// of 429 answers (the tenant's intake quota) waited out as `Retry-After` says.
async fn send(http: reqwest::Client, url: String, key: String, n: usize) -> (String, usize) {
    let body = json!({"to": format!("+1415555{:04}", n % 10_000), "template": {
        "name": "order_shipped", "language": "en_US", "body": ["Ana", "#1234"],
        "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
    let mut throttled = 0;
    loop {
        let resp = http
            .post(format!("{url}/v1/messages"))
            .bearer_auth(&key)
            .header("idempotency-key", format!("events-{n}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        if resp.status() == 429 && throttled < 1000 {
            throttled += 1;
            let wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(status, 202, "{answer}");
        return (answer["id"].as_str().unwrap().to_owned(), throttled);
    }
}

impl Dev {
    /// Send `n` messages (numbered from `first`), 8 at a time; their ids in order.
    async fn send_many(&self, key: &str, first: usize, n: usize) -> Vec<String> {
        self.send_concurrently(key, first, n, 8).await.0
    }

    /// Send `n` messages (numbered from `first`) from `workers` clients at once; their
    /// ids in order, and how many 429s were waited out.
    async fn send_concurrently(
        &self,
        key: &str,
        first: usize,
        n: usize,
        workers: usize,
    ) -> (Vec<String>, usize) {
        let (next, end) = (Arc::new(AtomicUsize::new(first)), first + n);
        let mut set = JoinSet::new();
        for _ in 0..workers.min(n) {
            let (http, url, key) = (self.http.clone(), self.server.url(), key.to_owned());
            let next = next.clone();
            set.spawn(async move {
                let mut sent = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= end {
                        return sent;
                    }
                    sent.push((n, send(http.clone(), url.clone(), key.clone(), n).await));
                }
            });
        }
        let mut got: Vec<(usize, (String, usize))> =
            set.join_all().await.into_iter().flatten().collect();
        got.sort_unstable_by_key(|(n, _)| *n);
        let throttled = got.iter().map(|(_, (_, t))| t).sum();
        (got.into_iter().map(|(_, (id, _))| id).collect(), throttled)
    }

    async fn status(&self, key: &str, id: &str) -> String {
        let v: Value = self
            .http
            .get(format!("{}/v1/messages/{id}", self.server.url()))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["status"].as_str().unwrap_or_default().to_owned()
    }

    /// Wait until every message is `read`.
    async fn wait_read(&self, key: &str, ids: &[String], limit: Duration) {
        let started = Instant::now();
        for id in ids {
            loop {
                let status = self.status(key, id).await;
                if status == "read" {
                    break;
                }
                assert!(
                    started.elapsed() < limit,
                    "{id} is {status} after {limit:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Wait until `tenant`'s log holds a `message.read` of every message of `ids`,
    /// reading it on from the last position seen every 200 ms.
    async fn wait_logged_read(&self, tenant: &str, ids: &[String], limit: Duration) {
        let tenant = TenantId::parse(tenant).unwrap();
        let mut unread: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut after: Option<String> = None;
        let started = Instant::now();
        loop {
            let page = self
                .server
                .event_log()
                .list(&tenant, after.as_deref(), 500)
                .await
                .unwrap();
            for e in &page.events {
                if e.event.event_type == EventType::MessageRead {
                    unread.remove(e.event.data["message_id"].as_str().unwrap_or_default());
                }
            }
            if let Some(last) = page.events.last() {
                after = Some(last.position.clone());
            }
            if unread.is_empty() {
                return;
            }
            if page.more {
                continue;
            }
            assert!(
                started.elapsed() < limit,
                "{} of {} messages not read after {limit:?}, e.g. {:?}",
                unread.len(),
                ids.len(),
                unread.iter().take(5).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every event of `tenant` in the log, in log order.
    async fn log(&self, tenant: &str) -> Vec<Event> {
        let tenant = TenantId::parse(tenant).unwrap();
        let mut after: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let page = self
                .server
                .event_log()
                .list(&tenant, after.as_deref(), 500)
                .await
                .unwrap();
            out.extend(page.events.iter().map(|e| e.event.clone()));
            match page.events.last() {
                Some(last) if page.more => after = Some(last.position.clone()),
                _ => return out,
            }
        }
    }

    async fn page(&self) -> String {
        self.http
            .get(format!("{}/", self.server.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

// ------------------------------------------------------------------ receivers

/// One request the in-process receiver took.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    event: Event,
    body: String,
    received_ms: i64,
}

/// An in-process receiver verifying with our own verifier; it answers 500 while
/// `failing` is set.
#[derive(Clone)]
struct Receiver {
    url: String,
    secret: Arc<WebhookSecret>,
    /// Verified requests answered 200.
    ok: Arc<Mutex<Vec<Received>>>,
    /// Every verified request's id (whatever the answer).
    attempts: Arc<Mutex<Vec<String>>>,
    /// Requests that failed verification.
    rejected: Arc<Mutex<Vec<String>>>,
    failing: Arc<AtomicBool>,
}

impl Receiver {
    async fn start(secret: WebhookSecret) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            url: format!("http://{}/hooks", listener.local_addr().unwrap()),
            secret: Arc::new(secret),
            ok: Arc::default(),
            attempts: Arc::default(),
            rejected: Arc::default(),
            failing: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/hooks", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn ids(&self) -> BTreeSet<String> {
        self.ok
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.id.clone())
            .collect()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = r.secret.verify(
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        now_ms() / 1000,
    );
    if let Err(e) = verified {
        r.rejected.lock().unwrap().push(e.to_string());
        return StatusCode::UNAUTHORIZED;
    }
    let id = header("webhook-id").unwrap_or_default().to_owned();
    r.attempts.lock().unwrap().push(id.clone());
    if r.failing.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let event: Event = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            r.rejected
                .lock()
                .unwrap()
                .push(format!("not an event: {e}"));
            return StatusCode::BAD_REQUEST;
        }
    };
    r.ok.lock().unwrap().push(Received {
        id,
        event,
        body: String::from_utf8_lossy(&body).into_owned(),
        received_ms: now_ms(),
    });
    StatusCode::NO_CONTENT
}

/// `scripts/events-receiver.py` (the `standardwebhooks` package verifies), killed on drop.
struct PythonReceiver {
    child: Child,
    url: String,
    out: PathBuf,
    /// How far [`PythonReceiver::ok_ids`] has read `out`, and the ids it found.
    tail: Mutex<(usize, BTreeSet<String>)>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's python, installed by `scripts/events-venv.sh` if needed.
fn events_python() -> PathBuf {
    let output = Command::new(repo().join("scripts/events-venv.sh"))
        .output()
        .expect("running scripts/events-venv.sh");
    assert!(
        output.status.success(),
        "scripts/events-venv.sh failed (python3 and PyPI are needed for the standardwebhooks \
         receiver):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

impl PythonReceiver {
    fn start(secret: &WebhookSecret, dir: &Path, faults: &[&str]) -> Self {
        let out = dir.join(format!("received-{}.jsonl", now_ms()));
        let mut child = Command::new(events_python())
            .arg(repo().join("scripts/events-receiver.py"))
            .arg("--secret")
            .arg(secret.to_whsec())
            .arg("--out")
            .arg(&out)
            .args(faults)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the receiver did not start: {line:?}"));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/hooks"),
            out,
            tail: Mutex::default(),
        }
    }

    /// The ids answered 200 so far, reading only the lines written since the last call
    /// (cheap enough to poll while thousands of events arrive).
    fn ok_ids(&self) -> BTreeSet<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut tail = self.tail.lock().unwrap();
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.out) {
            file.seek(SeekFrom::Start(tail.0 as u64)).unwrap();
            file.read_to_string(&mut text).unwrap();
        }
        // Only whole lines: the receiver may be writing the last one.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        for line in text[..complete].lines() {
            let line: Value = serde_json::from_str(line).unwrap();
            if line["answer"] == 200 {
                tail.1.insert(line["id"].as_str().unwrap().to_owned());
            }
        }
        tail.0 += complete;
        tail.1.clone()
    }

    /// Every line the receiver wrote.
    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Events answered 200, as the receiver parsed them after verifying.
    fn received(&self) -> Vec<(String, Event)> {
        self.lines()
            .into_iter()
            .filter(|l| l["answer"] == 200)
            .map(|l| {
                (
                    l["id"].as_str().unwrap().to_owned(),
                    serde_json::from_value(l["event"].clone()).unwrap(),
                )
            })
            .collect()
    }

    fn rejected(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["verified"] == false)
            .collect()
    }
}

impl Drop for PythonReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until `received()` holds every id of `want`, or panic after `limit`.
async fn wait_all(
    what: &str,
    want: &BTreeSet<String>,
    limit: Duration,
    received: impl Fn() -> BTreeSet<String>,
) {
    let started = Instant::now();
    loop {
        let got = received();
        if want.is_subset(&got) {
            return;
        }
        let missing: Vec<_> = want.difference(&got).take(5).collect();
        assert!(
            started.elapsed() < limit,
            "{what}: {} of {} events missing after {limit:?}, e.g. {missing:?}",
            want.difference(&got).count(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rank(t: EventType) -> usize {
    [
        EventType::MessageAccepted,
        EventType::MessageSent,
        EventType::MessageDelivered,
        EventType::MessageRead,
    ]
    .iter()
    .position(|x| *x == t)
    .unwrap_or_else(|| panic!("{t} is not an advancing event"))
}

/// After dedup by id: exactly the log's events, identical, and per message the
/// advancing events in strictly increasing `sequence` (and lifecycle) order, ending
/// with `message.read`.
fn check_per_message(who: &str, received: &[(String, Event)], log: &[Event], messages: &[String]) {
    let mut unique: BTreeMap<&str, &Event> = BTreeMap::new();
    for (id, event) in received {
        assert_eq!(id, &event.id, "{who}: webhook-id is the event id");
        if let Some(seen) = unique.insert(id, event) {
            assert_eq!(seen, event, "{who}: {id} came twice with different content");
        }
    }
    let logged: BTreeMap<&str, &Event> = log.iter().map(|e| (e.id.as_str(), e)).collect();
    assert_eq!(
        unique, logged,
        "{who}: the received events are exactly the log's"
    );
    let mut per_message: HashMap<&str, Vec<&Event>> = HashMap::new();
    for e in unique.values() {
        let m = e.data["message_id"].as_str().unwrap();
        per_message.entry(m).or_default().push(e);
    }
    assert_eq!(
        per_message.len(),
        messages.len(),
        "{who}: every message has events"
    );
    for m in messages {
        let mut events = per_message.remove(m.as_str()).unwrap_or_default();
        events.sort_by_key(|e| e.data["sequence"].as_u64().unwrap());
        let seqs: Vec<u64> = events
            .iter()
            .map(|e| e.data["sequence"].as_u64().unwrap())
            .collect();
        let ranks: Vec<usize> = events.iter().map(|e| rank(e.event_type)).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]) && ranks.windows(2).all(|w| w[0] < w[1]),
            "{who}: {m}: sequences {seqs:?}, types {:?}",
            events.iter().map(|e| e.event_type).collect::<Vec<_>>()
        );
        assert_eq!(
            events.last().map(|e| e.event_type),
            Some(EventType::MessageRead),
            "{who}: {m}"
        );
        for e in &events {
            assert_eq!(e.id, format!("evt_{m}_{}", e.data["sequence"]));
        }
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ------------------------------------------------------------------ tests

/// Messages of the large run (issue 12: 2,000, with duplicated and reordered Meta
/// webhooks).
const MESSAGES: usize = 2_000;
/// Clients sending them at once.
const SENDERS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_verifiers_see_exactly_the_advancing_events_of_each_message_in_sequence_order() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let secret = WebhookSecret::from_key(b"events-test-secret-of-32-bytes!!");
    let ours = Receiver::start(secret.clone()).await;
    let python = PythonReceiver::start(&secret, dir.path(), &[]);
    let dev = start(&format!(
        "{}\n[events]\ntime_scale = 0.001\npoll_interval_ms = 20\nmax_in_flight = 16\n{}",
        sandbox(true),
        tenant(
            "acme",
            KEY_A,
            "1000001",
            &[(&ours.url, &secret), (&python.url, &secret)]
        )
    ))
    .await;
    let (ids, throttled) = dev.send_concurrently(KEY_A, 0, MESSAGES, SENDERS).await;
    let sent = started.elapsed();
    dev.wait_logged_read("acme", &ids, Duration::from_secs(120))
        .await;
    let read = started.elapsed();
    let log = dev.log("acme").await;
    let want: BTreeSet<String> = log.iter().map(|e| e.id.clone()).collect();
    assert_eq!(want.len(), log.len(), "the log holds each id once");
    assert!(
        want.len() >= MESSAGES * 2,
        "only {} events logged",
        want.len()
    );
    wait_all("ours", &want, Duration::from_secs(120), || ours.ids()).await;
    wait_all("python", &want, Duration::from_secs(120), || {
        python.ok_ids()
    })
    .await;
    let delivered = started.elapsed();
    // Webhooks after `read` (late duplicates, reordered lower statuses) log nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        dev.log("acme").await.len(),
        log.len(),
        "nothing logged after read"
    );

    assert!(
        ours.rejected.lock().unwrap().is_empty(),
        "{:?}",
        ours.rejected
    );
    assert!(python.rejected().is_empty(), "{:?}", python.rejected());
    let received: Vec<(String, Event)> = ours
        .ok
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.id.clone(), r.event.clone()))
        .collect();
    // The body is the event exactly as logged, in its compact JSON.
    for r in ours.ok.lock().unwrap().iter() {
        assert_eq!(r.body, serde_json::to_string(&r.event).unwrap());
    }
    let python_received = python.received();
    check_per_message("ours", &received, &log, &ids);
    check_per_message("python", &python_received, &log, &ids);
    let webhooks = dev.server.sandbox().unwrap().stats().webhooks;
    let by_type = |t: EventType| log.iter().filter(|e| e.event_type == t).count();
    println!(
        "{} messages, {} events ({} accepted, {} sent, {} delivered, {} read) to both \
         receivers, verified by ours and by standardwebhooks; Meta webhooks duplicated {}, \
         reordered {}\n  sent in {:.1} s ({SENDERS} clients, {throttled} answers 429 of the \
         intake quota waited out), all read after {:.1} s, every event at both receivers \
         after {:.1} s; requests answered 200: ours {}, python {}",
        ids.len(),
        log.len(),
        by_type(EventType::MessageAccepted),
        by_type(EventType::MessageSent),
        by_type(EventType::MessageDelivered),
        by_type(EventType::MessageRead),
        webhooks.statuses_duplicated,
        webhooks.statuses_reordered,
        sent.as_secs_f64(),
        read.as_secs_f64(),
        delivered.as_secs_f64(),
        received.len(),
        python_received.len(),
    );
    assert!(webhooks.statuses_duplicated > 0 && webhooks.statuses_reordered > 0);
    let page = dev.page().await;
    assert!(page.contains("id=\"endpoints\""), "{page}");
    assert!(page.contains(&format!("data-url=\"{}\" data-health=\"ok\"", ours.url)));
    dev.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_failing_30_percent_and_timing_out_10_percent_still_gets_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let secret = WebhookSecret::from_key(&[42u8; 32]);
    let python = PythonReceiver::start(
        &secret,
        dir.path(),
        &[
            "--fail-rate",
            "0.3",
            "--timeout-rate",
            "0.1",
            "--hold",
            "1.0",
            "--max-faults-per-id",
            "3",
            "--seed",
            "5",
        ],
    );
    let dev = start(&format!(
        "{}\n[events]\ntime_scale = 0.002\ntimeout_ms = 300\npoll_interval_ms = 20\n{}",
        sandbox(false),
        tenant("acme", KEY_A, "1000001", &[(&python.url, &secret)])
    ))
    .await;
    let ids = dev.send_many(KEY_A, 0, 30).await;
    dev.wait_read(KEY_A, &ids, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = dev.log("acme").await;
    let want: BTreeSet<String> = log.iter().map(|e| e.id.clone()).collect();
    wait_all("faulty python", &want, Duration::from_secs(20), || {
        python.ok_ids()
    })
    .await;
    assert!(python.rejected().is_empty(), "{:?}", python.rejected());
    check_per_message("faulty python", &python.received(), &log, &ids);
    let lines = python.lines();
    let count = |answer: Value| lines.iter().filter(|l| l["answer"] == answer).count();
    let (fails, timeouts, oks) = (
        count(json!(500)),
        count(json!("timeout")),
        count(json!(200)),
    );
    println!(
        "faulty receiver: {} events, {} requests: {oks} answered 200, {fails} answered 500, {timeouts} timed out",
        want.len(),
        lines.len()
    );
    assert!(fails > 0 && timeouts > 0, "the faults did happen");
    let rows = dev
        .server
        .deliveries()
        .deliveries(&TenantId::parse("acme").unwrap(), &python.url)
        .await
        .unwrap();
    assert!(
        rows.iter().all(|(_, state, _)| state == "delivered"),
        "{rows:?}"
    );
    assert!(rows.iter().any(|(_, _, attempts)| *attempts > 1));
    dev.server.stop().await;
}

/// Tenants A and B send 30 messages each at once; B's endpoint answers, A's is
/// healthy too or dead (accepts connections, never answers: each attempt holds one
/// of A's slots for the whole 5 s timeout). B's delays from event timestamp to receipt,
/// sorted, and A's deliveries delivered / in all.
async fn isolation_run(a_dead: bool) -> (Vec<i64>, usize, usize) {
    let secret = WebhookSecret::from_key(&[7u8; 32]);
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a_url = if a_dead {
        format!("http://{}/hooks", hole.local_addr().unwrap())
    } else {
        Receiver::start(secret.clone()).await.url
    };
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in hole.incoming().flatten() {
            held.push(conn);
        }
    });
    let b = Receiver::start(secret.clone()).await;
    let dev = start(&format!(
        "{}\n[events]\ntime_scale = 0.001\ntimeout_ms = 5000\npoll_interval_ms = 20\n{}{}",
        sandbox(false),
        tenant("tenant-a", KEY_A, "1000001", &[(&a_url, &secret)]),
        tenant("tenant-b", KEY_B, "1000002", &[(&b.url, &secret)]),
    ))
    .await;
    let (_, b_ids) = tokio::join!(dev.send_many(KEY_A, 0, 30), dev.send_many(KEY_B, 100, 30));
    dev.wait_read(KEY_B, &b_ids, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log_b = dev.log("tenant-b").await;
    let want: BTreeSet<String> = log_b.iter().map(|e| e.id.clone()).collect();
    wait_all("tenant B", &want, Duration::from_secs(10), || b.ids()).await;
    let mut delays: Vec<i64> = {
        let got = b.ok.lock().unwrap();
        let mut first: HashMap<&str, i64> = HashMap::new();
        for r in got.iter() {
            first
                .entry(r.id.as_str())
                .or_insert(r.received_ms - event_millis(&r.event));
        }
        first.into_values().collect()
    };
    delays.sort_unstable();
    let a_rows = dev
        .server
        .deliveries()
        .deliveries(&TenantId::parse("tenant-a").unwrap(), &a_url)
        .await
        .unwrap();
    let a_delivered = a_rows.iter().filter(|(_, s, _)| s == "delivered").count();
    dev.server.stop().await;
    (delays, a_delivered, a_rows.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_endpoint_of_tenant_a_does_not_delay_tenant_b() {
    let (healthy, a_ok, _) = isolation_run(false).await;
    let (dead, a_dead_ok, a_waiting) = isolation_run(true).await;
    let figures = |d: &[i64]| {
        format!(
            "p50 {} ms, p99 {} ms, max {} ms ({} events)",
            percentile(d, 50.0),
            percentile(d, 99.0),
            d.last().unwrap(),
            d.len()
        )
    };
    let (p99_healthy, p99_dead) = (percentile(&healthy, 99.0), percentile(&dead, 99.0));
    println!(
        "tenant B's delay from event timestamp to receipt (30 messages per tenant at once):\n  \
         A's endpoint healthy: {}\n  A's endpoint dead:    {} (A: {a_waiting} events waiting, \
         {a_dead_ok} delivered)\n\
         TENANT B P99 DELAY: {p99_healthy} ms with A's endpoint healthy, {p99_dead} ms with \
         A's endpoint dead (each of A's attempts held 5 s)",
        figures(&healthy),
        figures(&dead)
    );
    assert!(a_ok > 0 && a_dead_ok == 0 && a_waiting > 0);
    // Were B's events queued behind A's attempts, each would wait for one of A's 5 s
    // timeouts: B's delays stay well under one.
    assert!(
        p99_dead < 2500,
        "tenant B's p99: {p99_dead} ms with A dead, {p99_healthy} ms with A healthy"
    );
}

/// Meta's webhook of a template quick-reply tap: `from` (digits) taps "Reschedule"
/// under the message `answered` (its wamid) that `display` (the business number)
/// sent; the inbound message's own id is `inbound`.
fn button_reply(
    phone_number_id: &str,
    waba_id: &str,
    display: &str,
    from: &str,
    inbound: &str,
    answered: &str,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display, "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Ana Souza"}, "wa_id": from}],
            "messages": [{
                "context": {"from": display, "id": answered},
                "from": from,
                "id": inbound,
                "timestamp": (now_ms() / 1000).to_string(),
                "type": "button",
                "button": {"payload": "reschedule_delivery", "text": "Reschedule"}
            }]
        }}]}]
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_button_reply_arrives_as_message_received_with_the_wamid_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let secret = WebhookSecret::from_key(&[21u8; 32]);
    let python = PythonReceiver::start(&secret, dir.path(), &[]);
    let dev = start(&format!(
        "{}\n[events]\ntime_scale = 0.001\npoll_interval_ms = 20\n{}",
        sandbox(false),
        tenant("acme", KEY_A, "1000001", &[(&python.url, &secret)])
    ))
    .await;
    // A message to +14155550007, read; its wamid is what the reply will quote.
    let ids = dev.send_many(KEY_A, 7, 1).await;
    dev.wait_read(KEY_A, &ids, Duration::from_secs(20)).await;
    let message: Value = dev
        .http
        .get(format!("{}/v1/messages/{}", dev.server.url(), ids[0]))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wamid = message["wamid"].as_str().unwrap().to_owned();

    // The contact taps a quick-reply button under it: Meta posts the signed webhook,
    // and posts it again (its retry after a lost answer).
    let display = "15550001000";
    let inbound = "wamid.HBgLMTQxNTU1NTAwMDcVAgASGBQzRUIwQlVUVE9OUkVQTFkwMDAxAA==";
    let body = button_reply(
        "1000001",
        "20001000001",
        display,
        "14155550007",
        inbound,
        &wamid,
    );
    let post = |body: Vec<u8>, signature: String| {
        dev.http
            .post(format!("{}/webhook", dev.server.url()))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
    };
    for _ in 0..2 {
        let resp = post(body.clone(), sign(APP_SECRET.as_bytes(), &body))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }
    // One signed with another secret is refused and tells nothing.
    let forged_inbound = "wamid.HBgLMTQxNTU1NTAwMDcVAgASGBQzRUIwRk9SR0VEMDAwMDAwMDAwMQA=";
    let forged = button_reply(
        "1000001",
        "20001000001",
        display,
        "14155550007",
        forged_inbound,
        &wamid,
    );
    let resp = post(forged.clone(), sign(b"not-the-app-secret", &forged))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let event_id = format!("evt_in_{inbound}");
    let started = Instant::now();
    let log = loop {
        let log = dev.log("acme").await;
        if log.iter().any(|e| e.id == event_id) {
            break log;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let want: BTreeSet<String> = log.iter().map(|e| e.id.clone()).collect();
    wait_all("python", &want, Duration::from_secs(20), || python.ok_ids()).await;
    assert!(python.rejected().is_empty(), "{:?}", python.rejected());
    let received = python.received();

    // Verified by standardwebhooks: message.received, the tap, and the wamid it answers.
    let (_, event) = received.iter().find(|(id, _)| *id == event_id).unwrap();
    assert_eq!(event.event_type, EventType::MessageReceived);
    assert_eq!(event.tenant.as_str(), "acme");
    let data = &event.data;
    assert_eq!(data["kind"], "button", "{data}");
    assert_eq!(data["type"], "button", "{data}");
    assert_eq!(data["inbound_id"], inbound, "{data}");
    assert_eq!(data["phone_number_id"], "1000001", "{data}");
    assert_eq!(data["from"], "14155550007", "{data}");
    assert_eq!(data["profile_name"], "Ana Souza", "{data}");
    assert_eq!(
        data["button"],
        json!({"payload": "reschedule_delivery", "text": "Reschedule"}),
        "{data}"
    );
    assert_eq!(
        data["context"],
        json!({"message_id": wamid, "from": display}),
        "{data}"
    );
    // The receiver can tell which of its messages was answered: the events of that
    // message, and only those, carry the quoted wamid.
    let answered: BTreeSet<&str> = received
        .iter()
        .filter(|(_, e)| {
            e.event_type != EventType::MessageReceived && e.data["wamid"] == wamid.as_str()
        })
        .map(|(_, e)| e.data["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(answered, BTreeSet::from([ids[0].as_str()]));
    // Meta's retry logged nothing twice; the forged tap nothing at all.
    let inbound_events: Vec<&str> = log
        .iter()
        .filter(|e| e.event_type == EventType::MessageReceived)
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(inbound_events, [event_id.as_str()]);
    println!(
        "button reply: {event_id} ({}) delivered to the standardwebhooks receiver {} time(s), \
         context.message_id {wamid} = the wamid of {}",
        event.event_type,
        received.iter().filter(|(id, _)| *id == event_id).count(),
        ids[0]
    );
    dev.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_then_a_disabled_endpoint_then_replay_delivers_everything() {
    let secret = WebhookSecret::from_key(&[9u8; 40]);
    let r = Receiver::start(secret.clone()).await;
    r.failing.store(true, Ordering::SeqCst);
    // Scaled: the 7 waits take 0.7 s; disabled after 3 s of failures.
    let dev = start(&format!(
        "{}\n[events]\ntime_scale = 0.00002\ndisable_after_ms = 150000000\npoll_interval_ms = 20\n{}",
        sandbox(false),
        tenant("acme", KEY_A, "1000001", &[(&r.url, &secret)])
    ))
    .await;
    let tenant_id = TenantId::parse("acme").unwrap();
    let deliveries = dev.server.deliveries().clone();
    let ids = dev.send_many(KEY_A, 0, 2).await;
    dev.wait_read(KEY_A, &ids, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = dev.log("acme").await;

    // Every event goes dead after MAX_ATTEMPTS verified attempts.
    let started = Instant::now();
    loop {
        let rows = deliveries.deliveries(&tenant_id, &r.url).await.unwrap();
        if rows.len() == first.len() && rows.iter().all(|(_, s, _)| s == "dead") {
            assert!(rows.iter().all(|(_, _, a)| *a == MAX_ATTEMPTS), "{rows:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = r.attempts.lock().unwrap().clone();
    for e in &first {
        let n = attempts.iter().filter(|id| **id == e.id).count();
        assert_eq!(n, MAX_ATTEMPTS as usize, "{}", e.id);
    }
    assert!(r.rejected.lock().unwrap().is_empty());

    // Failing for longer than disable_after: disabled, and shown.
    let started = Instant::now();
    loop {
        let health = deliveries.health(Some(&tenant_id)).await.unwrap();
        if health[0].disabled_ms.is_some() {
            assert_eq!(health[0].dead, first.len() as u64);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{health:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = dev.page().await;
    assert!(page.contains("data-health=\"disabled\""), "{page}");
    assert!(page.contains(&format!("data-count=\"dead\">{}</td>", first.len())));

    // A disabled endpoint gets nothing; its new events wait (the backlog).
    let later = dev.send_many(KEY_A, 10, 1).await;
    dev.wait_read(KEY_A, &later, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let all = dev.log("acme").await;
    let health = deliveries.health(Some(&tenant_id)).await.unwrap();
    assert_eq!(
        health[0].pending,
        (all.len() - first.len()) as u64,
        "{health:?}"
    );
    assert_eq!(
        r.attempts.lock().unwrap().len(),
        attempts.len(),
        "no attempt while disabled"
    );

    // Replay: enabled again, dead letters and backlog delivered.
    r.failing.store(false, Ordering::SeqCst);
    let replayed = deliveries
        .replay(
            dev.server.event_log().as_ref(),
            &tenant_id,
            0,
            None,
            false,
            now_ms(),
        )
        .await
        .unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].requeued, all.len() as u64);
    let want: BTreeSet<String> = all.iter().map(|e| e.id.clone()).collect();
    wait_all("after replay", &want, Duration::from_secs(10), || r.ids()).await;
    let health = deliveries.health(Some(&tenant_id)).await.unwrap();
    assert_eq!(
        (
            health[0].dead,
            health[0].disabled_ms,
            health[0].failing_since_ms
        ),
        (0, None, None)
    );
    assert!(dev.page().await.contains("data-health=\"ok\""));
    dev.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_follow_no_redirect_and_read_at_most_64_kib() {
    let landed = Arc::new(AtomicBool::new(false));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = {
        let landed = landed.clone();
        let target = format!("{base}/target");
        axum::Router::new()
            .route(
                "/redirect",
                post(move || async move {
                    (StatusCode::TEMPORARY_REDIRECT, [("location", target)], "")
                }),
            )
            .route(
                "/target",
                post(move || async move {
                    landed.store(true, Ordering::SeqCst);
                    StatusCode::OK
                }),
            )
            .route(
                "/huge-error",
                post(|| async { (StatusCode::BAD_GATEWAY, "x".repeat(10 * 1024 * 1024)) }),
            )
            .route(
                "/huge-ok",
                post(|| async { (StatusCode::OK, "y".repeat(10 * 1024 * 1024)) }),
            )
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tenant = TenantId::parse("acme").unwrap();
    let secret = WebhookSecret::from_key(&[1u8; 32]).to_whsec();
    let endpoint = |path: &str| {
        EndpointConfig::parse(&tenant, &format!("{base}{path}"), &secret, None).unwrap()
    };
    let delivery = DueDelivery {
        id: 1,
        event_id: "evt_test_1".into(),
        body: "{}".into(),
        attempts: 0,
    };
    let client = http_client(Duration::from_secs(5)).unwrap();

    let redirected = attempt(&client, &endpoint("/redirect"), &delivery).await;
    assert!(
        matches!(redirected, Attempt::Refused { status: 307, .. }),
        "{redirected:?}"
    );
    assert!(!landed.load(Ordering::SeqCst), "the redirect was followed");

    let started = Instant::now();
    let huge = attempt(&client, &endpoint("/huge-error"), &delivery).await;
    let Attempt::Refused { status, excerpt } = huge else {
        panic!("{huge:?}")
    };
    assert_eq!(status, 502);
    assert!(
        excerpt.len() <= 200 && excerpt.starts_with("xxx"),
        "{excerpt}"
    );
    let ok = attempt(&client, &endpoint("/huge-ok"), &delivery).await;
    assert_eq!(ok, Attempt::Delivered(200));
    assert!(started.elapsed() < Duration::from_secs(5));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let refused = attempt(
        &client,
        &EndpointConfig::parse(&tenant, &dead, &secret, None).unwrap(),
        &delivery,
    )
    .await;
    assert!(
        matches!(&refused, Attempt::NoAnswer(why) if why.starts_with("connection failed")),
        "{refused:?}"
    );
}
