//! The `wa dev` status page in a real browser: Debian's headless Chromium, driven by
//! ChromeDriver over the W3C WebDriver HTTP protocol (reqwest + serde_json).
//!
//! Messages of two tenants are taken through their lifecycles with the store's own
//! `record_event`, the page is served on 127.0.0.1:0, and the browser reads the
//! counts, clicks a message, reads its timeline, sees the page refresh itself and
//! takes a screenshot (`target/status-page.png`).
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` (override: `WA_CHROMIUM`,
//! `WA_CHROMEDRIVER`) the test prints a notice and passes, unless
//! `WA_REQUIRE_CHROMIUM=1` (set by `make test`, after `scripts/ensure-chromium.sh`).

use anyhow::{Context, anyhow, ensure};
use base64::Engine;
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{SqliteMessageStore, SystemClock};
use wa_shared::domain::lifecycle::{EventKind, LifecycleEvent, ProviderStatus, ProviderStatusKind};
use wa_shared::domain::{
    Failure, FailureClass, FailureSource, LifecyclePolicy, Message, MessageId, NewMessage,
    PhoneNumber, Suppression, SuppressionReason, TenantId, Timestamp, Wamid,
};
use wa_shared::ports::{Clock, CreateOutcome, MessageStore, Recorded, record_event};

/// W3C WebDriver's key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn binary(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

// ---------------------------------------------------------------- the store

/// Builds messages and records real lifecycle events on them through the port.
struct Fixture {
    store: Arc<SqliteMessageStore>,
    policy: LifecyclePolicy,
    t0: Timestamp,
}

impl Fixture {
    fn at(&self, secs: i64) -> Timestamp {
        self.t0.plus_millis(secs * 1000)
    }

    /// A stored `queued` message created at `t0 + created` seconds.
    async fn queued(
        &self,
        tenant: &str,
        to: &str,
        template: Option<&str>,
        created: i64,
    ) -> Message {
        let m = Message::new_queued(new(tenant, to, template), self.at(created), &self.policy);
        assert_eq!(
            self.store.create_if_absent(&m).await.unwrap(),
            CreateOutcome::Created
        );
        m
    }

    async fn claim(&self, m: &Message, secs: i64) {
        let claimed = self
            .store
            .claim_for_send(&m.tenant, &m.id, self.at(secs), &self.policy)
            .await
            .unwrap();
        assert!(claimed.is_some(), "claim of {}", m.id);
    }

    async fn record(&self, m: &Message, at: Timestamp, kind: EventKind) -> &'static str {
        let event = LifecycleEvent::new(at, kind);
        match record_event(self.store.as_ref(), &m.tenant, &m.id, &event, &self.policy)
            .await
            .unwrap()
        {
            Recorded::Written { decision, .. } => decision.as_str(),
            other => panic!("{} not written for {}: {other:?}", event.kind.name(), m.id),
        }
    }

    async fn accept(&self, m: &Message, secs: i64) -> Wamid {
        self.claim(m, secs).await;
        let wamid = Wamid::parse(&format!("wamid.{}", m.id)).unwrap();
        let kind = EventKind::Accepted {
            attempt: 1,
            wamid: wamid.clone(),
            message_status: Some("accepted".into()),
        };
        // The Graph API answers a moment after the claim.
        let answered = self.at(secs).plus_millis(300);
        assert_eq!(self.record(m, answered, kind).await, "advanced");
        wamid
    }

    async fn webhook(
        &self,
        m: &Message,
        w: &Wamid,
        status: ProviderStatusKind,
        secs: i64,
    ) -> &'static str {
        let failure = (status == ProviderStatusKind::Failed).then(|| Failure {
            class: FailureClass::Recipient,
            code: Some(131026),
            title: "Message undeliverable".into(),
            detail: None,
            source: FailureSource::Webhook,
        });
        let kind = EventKind::Provider(ProviderStatus {
            wamid: w.clone(),
            status,
            occurred_at: self.at(secs).plus_millis(-500),
            failure,
            detail: Some(json!({"pricing": {"billable": true, "category": "utility"}})),
        });
        self.record(m, self.at(secs), kind).await
    }
}

fn new(tenant: &str, to: &str, template: Option<&str>) -> NewMessage {
    NewMessage {
        tenant: TenantId::parse(tenant).unwrap(),
        id: MessageId::generate(),
        to: PhoneNumber::parse(to).unwrap(),
        template_name: template.map(str::to_owned),
        template_language: template.map(|_| "en_US".to_owned()),
        request: json!({"to": to}),
        request_hash: "sha256:test".into(),
        metadata: None,
    }
}

/// Seven messages: acme {queued, delivered, read, failed}, beta {accepted, suppressed,
/// read}. Returns the beta `read` message, whose history has a late `delivered` (out of
/// order) and a `failed` after `read` (an anomaly).
async fn seed(f: &Fixture) -> Message {
    use ProviderStatusKind::*;
    let a_read = f
        .queued("acme", "+14155550101", Some("order_shipped"), 0)
        .await;
    let w = f.accept(&a_read, 1).await;
    for (status, secs) in [(Sent, 2), (Delivered, 3), (Read, 4)] {
        assert_eq!(f.webhook(&a_read, &w, status, secs).await, "advanced");
    }
    let a_delivered = f
        .queued("acme", "+14155550102", Some("login_code"), 5)
        .await;
    let w = f.accept(&a_delivered, 6).await;
    for (status, secs) in [(Sent, 7), (Delivered, 8)] {
        f.webhook(&a_delivered, &w, status, secs).await;
    }
    let a_failed = f
        .queued("acme", "+14155550103", Some("welcome_offer"), 9)
        .await;
    f.claim(&a_failed, 10).await;
    let rejected = Failure {
        class: FailureClass::Rejected,
        code: Some(132001),
        title: "Template name does not exist in the translation".into(),
        detail: None,
        source: FailureSource::Graph,
    };
    let kind = EventKind::SendFailed {
        attempt: 1,
        failure: rejected,
    };
    let answered = f.at(10).plus_millis(300);
    assert_eq!(f.record(&a_failed, answered, kind).await, "advanced");
    f.queued("acme", "+14155550104", None, 11).await;

    let b_accepted = f
        .queued("beta", "+14155550105", Some("order_shipped"), 12)
        .await;
    f.accept(&b_accepted, 13).await;
    let refused = Message::new_suppressed(
        new("beta", "+14155550106", Some("welcome_offer")),
        Suppression {
            reason: SuppressionReason::OptedOut,
            detail: None,
        },
        f.at(14),
        &f.policy,
    );
    f.store.create_if_absent(&refused).await.unwrap();

    let b_read = f
        .queued("beta", "+14155550107", Some("order_shipped"), 15)
        .await;
    let w = f.accept(&b_read, 16).await;
    assert_eq!(f.webhook(&b_read, &w, Read, 17).await, "advanced");
    assert_eq!(
        f.webhook(&b_read, &w, Delivered, 18).await,
        "timestamp_filled"
    );
    assert_eq!(f.webhook(&b_read, &w, Failed, 19).await, "anomaly");
    b_read
}

// ---------------------------------------------------------------- WebDriver

/// An HTTP client for 127.0.0.1 only: never through a proxy from the environment.
fn local_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// ChromeDriver as a child process in its own process group; killed (with the browser
/// it started) on drop, also when the test fails.
struct Driver {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Driver {
    async fn start(chromedriver: &Path, dir: &Path) -> anyhow::Result<Self> {
        // A port that was free a moment ago: bound by us, then released for ChromeDriver.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = local_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = match http.get(format!("{}/status", driver.base)).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool()),
                Err(_) => None,
            };
            if ready == Some(true) {
                return Ok(driver);
            }
            ensure!(
                Instant::now() < deadline,
                "chromedriver not ready after 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Driver {
    /// The end of ChromeDriver's log, for failure messages (the temp dir goes away).
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: ChromeDriver and any Chromium it left behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver error answer (`{"value": {"error", "message"}}`).
#[derive(Debug, thiserror::Error)]
#[error("webdriver {error}: {message}")]
struct WebDriverError {
    error: String,
    message: String,
}

struct Session {
    http: reqwest::Client,
    url: String,
}

impl Session {
    async fn new(driver: &Driver, chromium: &Path, profile: &Path) -> anyhow::Result<Self> {
        let http = local_client();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--no-proxy-server", "--window-size=1400,1400",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let answer: Value = http
            .post(format!("{}/session", driver.base))
            .json(&capabilities)
            .send()
            .await?
            .json()
            .await?;
        let id = answer["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session: {answer}"))?;
        Ok(Self {
            url: format!("{}/session/{id}", driver.base),
            http,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await?.json().await?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            return Err(WebDriverError {
                error: error.to_owned(),
                message: value["message"].as_str().unwrap_or_default().to_owned(),
            }
            .into());
        }
        Ok(value)
    }

    async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    async fn current_url(&self) -> anyhow::Result<String> {
        let v = self.call(reqwest::Method::GET, "/url", None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    async fn find_all(&self, css: &str) -> anyhow::Result<Vec<String>> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
            .collect())
    }

    async fn find(&self, css: &str) -> anyhow::Result<String> {
        self.find_all(css)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no element matches {css}"))
    }

    /// The text of the first element matching `css`. The page reloads itself every
    /// 2 s, so an element found just before a reload goes stale: look again.
    async fn text(&self, css: &str) -> anyhow::Result<String> {
        self.retry(css, |s, css| async move {
            let element = s.find(&css).await?;
            let v = s
                .call(
                    reqwest::Method::GET,
                    &format!("/element/{element}/text"),
                    None,
                )
                .await?;
            Ok(v.as_str().unwrap_or_default().to_owned())
        })
        .await
    }

    async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.retry(css, |s, css| async move {
            let element = s.find(&css).await?;
            s.call(
                reqwest::Method::POST,
                &format!("/element/{element}/click"),
                Some(json!({})),
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn retry<'a, T, F, Fut>(&'a self, css: &str, f: F) -> anyhow::Result<T>
    where
        F: Fn(&'a Session, String) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let mut last = None;
        for _ in 0..20 {
            match f(self, css.to_owned()).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let transient = e.downcast_ref::<WebDriverError>().is_some_and(|w| {
                        w.error == "stale element reference" || w.error == "no such element"
                    }) || e.to_string().starts_with("no element matches");
                    if !transient {
                        return Err(e);
                    }
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("{css}: gave up")))
    }

    /// Wait until the text of `css` is `expected` (the page refreshes on its own).
    async fn wait_for_text(
        &self,
        css: &str,
        expected: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text(css).await.unwrap_or_default();
            if text == expected {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{css} still says {text:?}, not {expected:?}, after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await?;
        let b64 = v
            .as_str()
            .ok_or_else(|| anyhow!("screenshot is not a string"))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }

    async fn delete(self) {
        let _ = self.http.delete(&self.url).send().await;
    }
}

// ---------------------------------------------------------------- the test

/// Width and height of a PNG, checking its signature and IHDR chunk.
fn png_size(png: &[u8]) -> anyhow::Result<(u32, u32)> {
    ensure!(png.len() > 24, "{} bytes is no PNG", png.len());
    ensure!(png[..8] == *b"\x89PNG\r\n\x1a\n", "no PNG signature");
    ensure!(&png[12..16] == b"IHDR", "no IHDR chunk first");
    let word = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    Ok((word(16), word(20)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_counts_and_a_clicked_messages_timeline_in_chromium() {
    let chromium = binary("WA_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = binary("WA_CHROMEDRIVER", "/usr/bin/chromedriver");
    if !chromium.is_file() || !chromedriver.is_file() {
        let required = std::env::var("WA_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "WA_REQUIRE_CHROMIUM=1 but {} or {} is missing (run scripts/ensure-chromium.sh)",
            chromium.display(),
            chromedriver.display()
        );
        println!(
            "SKIPPED: {} or {} not found; run scripts/ensure-chromium.sh (make test does)",
            chromium.display(),
            chromedriver.display()
        );
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
        .await
        .unwrap();
    let store = Arc::new(SqliteMessageStore::new(db).await.unwrap());
    let fixture = Fixture {
        store: store.clone(),
        policy: LifecyclePolicy::default(),
        t0: SystemClock.now().plus_millis(-60_000),
    };
    let selected = seed(&fixture).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = wa_local::status_page::router(store.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let driver = Driver::start(&chromedriver, dir.path()).await.unwrap();
    let profile = dir.path().join("chromium-profile");
    let session = Session::new(&driver, &chromium, &profile)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\nchromedriver log:\n{}", driver.log_tail()));
    // Drive with errors, not panics, so the session is always closed.
    let outcome = drive(&session, &base, &fixture, &selected).await;
    let page = match &outcome {
        Ok(_) => Value::Null,
        Err(_) => (session.call(reqwest::Method::GET, "/source", None).await)
            .unwrap_or_else(|e| json!(format!("(no page source: {e:#})"))),
    };
    session.delete().await;
    let screenshot = outcome.unwrap_or_else(|e| {
        panic!(
            "{e:#}\nchromedriver log:\n{}\npage source:\n{}",
            driver.log_tail(),
            page.as_str().unwrap_or_default()
        )
    });

    let (width, height) = png_size(&screenshot).unwrap();
    assert!(
        width >= 800 && height >= 600,
        "screenshot is {width}x{height}"
    );
    assert!(
        screenshot.len() > 20_000,
        "screenshot of {} bytes looks blank",
        screenshot.len()
    );
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("status-page.png");
    std::fs::write(&path, &screenshot).unwrap();
    println!("screenshot ({width}x{height}): {}", path.display());
}

async fn drive(
    s: &Session,
    base: &str,
    fixture: &Fixture,
    selected: &Message,
) -> anyhow::Result<Vec<u8>> {
    s.goto(&format!("{base}/")).await?;

    // Counts per tenant and state, with totals.
    for (tenant, state, expected) in [
        ("acme", "queued", "1"),
        ("acme", "delivered", "1"),
        ("acme", "read", "1"),
        ("acme", "failed", "1"),
        ("acme", "accepted", "0"),
        ("acme", "total", "4"),
        ("beta", "accepted", "1"),
        ("beta", "suppressed", "1"),
        ("beta", "read", "1"),
        ("beta", "total", "3"),
    ] {
        let css = format!("#counts td[data-tenant='{tenant}'][data-state='{state}']");
        let text = s.text(&css).await?;
        ensure!(
            text == expected,
            "{tenant}/{state}: {text:?}, expected {expected}"
        );
    }
    for (state, expected) in [("read", "2"), ("failed", "1"), ("total", "7")] {
        let text = s
            .text(&format!("#counts tfoot td[data-state='{state}']"))
            .await?;
        ensure!(
            text == expected,
            "all tenants/{state}: {text:?}, expected {expected}"
        );
    }

    // The latest messages, newest first, recipients masked.
    let rows = s.find_all("#latest tbody tr").await?;
    ensure!(rows.len() == 7, "{} rows in #latest", rows.len());
    let first = s.text("#latest tbody tr:first-child").await?;
    ensure!(first.contains(selected.id.as_str()), "newest row: {first}");
    ensure!(
        first.contains("+1******0107") && first.contains("read"),
        "newest row: {first}"
    );
    let failed = s.text("#latest tbody tr[data-state='failed']").await?;
    ensure!(
        failed.contains("rejected") && failed.contains("welcome_offer"),
        "{failed}"
    );
    let source = s.call(reqwest::Method::GET, "/source", None).await?;
    ensure!(
        !source.as_str().unwrap_or_default().contains("41555501"),
        "an unmasked recipient is on the page"
    );

    // Click the message: its timeline, in time order, with the late and the
    // contradicting webhook marked.
    s.click(&format!("#latest tr[data-id='{}'] a", selected.id))
        .await?;
    let path = format!("/ui/messages/beta/{}", selected.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.current_url().await?.ends_with(&path) {
        ensure!(Instant::now() < deadline, "the click did not open {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let facts = s.text("#timeline dl.facts").await?;
    ensure!(facts.contains("failed_after_delivered"), "facts: {facts}");
    let mut events = Vec::new();
    for i in 1..=6 {
        let row = format!("#history tbody tr:nth-child({i})");
        events.push(s.text(&row).await?);
    }
    let expected = [
        ("queued", "advanced"),
        ("claimed", "advanced"),
        ("accepted", "advanced"),
        ("read", "advanced"),
        ("delivered", "out of order"),
        ("failed", "anomaly"),
    ];
    for (row, (event, outcome)) in events.iter().zip(expected) {
        ensure!(
            row.contains(event) && row.contains(outcome),
            "history row {row:?} should be {event} / {outcome}; all: {events:#?}"
        );
    }
    ensure!(events[5].contains("131026"), "failure code: {}", events[5]);
    ensure!(
        s.find_all("#history tbody tr").await?.len() == 6,
        "six history entries"
    );
    let times = s.text("#state-times").await?;
    let order: Vec<_> = ["queued", "sending", "accepted", "read", "delivered"]
        .iter()
        .map(|st| times.find(st))
        .collect();
    ensure!(
        order.iter().all(Option::is_some) && order.is_sorted(),
        "state timestamps out of order: {times}"
    );

    // The page refreshes itself and keeps the selection: a new message shows up.
    fixture
        .queued("gamma", "+14155550108", Some("welcome_offer"), 30)
        .await;
    s.wait_for_text(
        "#counts td[data-tenant='gamma'][data-state='total']",
        "1",
        Duration::from_secs(10),
    )
    .await?;
    ensure!(
        s.current_url().await?.ends_with(&path),
        "the selection was lost"
    );
    s.text("#timeline h2").await?;
    s.screenshot().await
}

// ---------------------------------------------------------------- the charts

/// `wa dev` with a sandbox that fails a share of sends (131009: rejected; 131000:
/// transient, retried) and one recipient after acceptance (131026 by webhook), two
/// tenants, quick webhooks.
async fn start_faulty_dev(dir: &Path) -> wa_local::DevServer {
    let path = dir.join("wa.toml");
    let mut text = String::from(
        r#"data = "dev.sqlite"

[sender]
hold_probe_ms = 60000

[sandbox]
seed = 7
failing_recipients = ["+14155550199"]

[sandbox.webhook]
sent_after_ms = 30
delivered_after_ms = 80
read_after_ms = 150

[[sandbox.faults.errors]]
code = 131009
rate = 0.2

[[sandbox.faults.errors]]
code = 131000
http_status = 500
rate = 0.1
"#,
    );
    for (tenant, phone) in [("acme", "1000001"), ("beta", "1000002")] {
        text.push_str(&format!(
            r#"
[[tenants]]
id = "{tenant}"
api_keys = ["key_{tenant}"]
phone_number_id = "{phone}"
waba_id = "2000{phone}"
max_concurrency = 4
"#
        ));
    }
    std::fs::write(&path, text).unwrap();
    let config = wa_local::DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

/// Send `n` template messages as `tenant`, every seventh to the failing recipient.
async fn send_many(http: &reqwest::Client, url: &str, tenant: &str, n: usize) {
    for i in 0..n {
        let to = if i % 7 == 3 {
            "+14155550199".to_owned()
        } else {
            format!("+1415555{:04}", 3000 + i)
        };
        let resp = http
            .post(format!("{url}/v1/messages"))
            .bearer_auth(format!("key_{tenant}"))
            .header("idempotency-key", format!("chart-{tenant}-{i}"))
            .json(&json!({"to": to, "template": {
                "name": "order_shipped", "language": "en_US", "body": ["Ana", "#1234"],
                "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    }
}

/// A figure's series total (`data-total` of its legend entry), 0 when absent.
async fn series_total(s: &Session, figure: &str, series: &str) -> anyhow::Result<u64> {
    let css = format!("#chart-{figure} li[data-series='{series}']");
    let found = s.find_all(&css).await?;
    if found.is_empty() {
        return Ok(0);
    }
    let v = s
        .call(
            reqwest::Method::GET,
            &format!("/element/{}/attribute/data-total", found[0]),
            None,
        )
        .await?;
    Ok(v.as_str().unwrap_or("0").parse()?)
}

/// An attribute of the first element matching `css`.
async fn attribute(s: &Session, css: &str, name: &str) -> anyhow::Result<String> {
    let el = s.find(css).await?;
    let v = s
        .call(
            reqwest::Method::GET,
            &format!("/element/{el}/attribute/{name}"),
            None,
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_status_page_charts_a_faulty_run_in_chromium() {
    let chromium = binary("WA_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = binary("WA_CHROMEDRIVER", "/usr/bin/chromedriver");
    if !chromium.is_file() || !chromedriver.is_file() {
        let required = std::env::var("WA_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "WA_REQUIRE_CHROMIUM=1 but {} or {} is missing (run scripts/ensure-chromium.sh)",
            chromium.display(),
            chromedriver.display()
        );
        println!("SKIPPED: chromium or chromedriver not found; run scripts/ensure-chromium.sh");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dev = start_faulty_dev(dir.path()).await;
    let (http, url) = (reqwest::Client::new(), dev.url());
    // beta's token expires: its first send holds it (190), the chart section lists it.
    dev.sandbox()
        .unwrap()
        .expire_token(&wa_sandbox::TokenExpiry {
            phone_number_id: "1000002".into(),
            duration_ms: 600_000,
        })
        .unwrap();
    send_many(&http, &url, "acme", 40).await;
    send_many(&http, &url, "beta", 3).await;
    // Let the sends, retries and webhooks settle.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let driver = Driver::start(&chromedriver, dir.path()).await.unwrap();
    let profile = dir.path().join("chromium-profile");
    let session = Session::new(&driver, &chromium, &profile)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\nchromedriver log:\n{}", driver.log_tail()));
    let outcome = drive_charts(&session, &url).await;
    let page = match &outcome {
        Ok(_) => Value::Null,
        Err(_) => (session.call(reqwest::Method::GET, "/source", None).await)
            .unwrap_or_else(|e| json!(format!("(no page source: {e:#})"))),
    };
    session.delete().await;
    let (screenshot, load_ms) = outcome.unwrap_or_else(|e| {
        panic!(
            "{e:#}\nchromedriver log:\n{}\npage source:\n{}",
            driver.log_tail(),
            page.as_str().unwrap_or_default()
        )
    });
    dev.stop().await;

    let (width, height) = png_size(&screenshot).unwrap();
    assert!(width >= 800 && height >= 600, "{width}x{height}");
    assert!(screenshot.len() > 20_000, "a blank screenshot?");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("status-page-charts.png");
    std::fs::write(&path, &screenshot).unwrap();
    // `WA_UPDATE_DOCS_SCREENSHOT=1` refreshes the README's picture.
    if std::env::var("WA_UPDATE_DOCS_SCREENSHOT").is_ok_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img/status-page.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::write(&docs, &screenshot).unwrap();
    }
    println!(
        "screenshot ({width}x{height}): {}; page loaded in {load_ms} ms",
        path.display()
    );
}

/// Check the charts of the faulty run, switch range and tenant, and take the
/// screenshot (all tenants, last hour); returns it and the first load's time.
async fn drive_charts(s: &Session, base: &str) -> anyhow::Result<(Vec<u8>, u128)> {
    let started = Instant::now();
    s.goto(&format!("{base}/")).await?;
    let load_ms = started.elapsed().as_millis();
    s.find("#charts svg").await?;
    ensure!(
        s.find_all("#charts figure.chart svg").await?.len() == 6,
        "six charts"
    );
    let accepted = series_total(s, "transitions", "accepted").await?;
    let delivered = series_total(s, "transitions", "delivered").await?;
    let read = series_total(s, "transitions", "read").await?;
    let failed = series_total(s, "transitions", "failed").await?;
    ensure!(accepted >= 20, "accepted {accepted}");
    ensure!(
        delivered >= 10 && read >= 10,
        "delivered {delivered}, read {read}"
    );
    ensure!(failed >= 3, "failed {failed}");
    // By class: the sandbox's 131009 (rejected) and 131026 by webhook (recipient).
    let rejected = series_total(s, "failed", "rejected").await?;
    let recipient = series_total(s, "failed", "recipient").await?;
    ensure!(
        rejected >= 1 && recipient >= 1,
        "rejected {rejected}, recipient {recipient}"
    );
    ensure!(
        rejected + recipient <= failed,
        "classes {rejected}+{recipient} > failed {failed}"
    );
    // Percentiles: every accept and delivery was timed, the lag of each status too.
    for figure in [
        "latency-queued-accepted",
        "latency-accepted-delivered",
        "webhook-lag",
    ] {
        let observed: u64 = attribute(s, &format!("#chart-{figure}"), "data-total")
            .await?
            .parse()?;
        ensure!(observed > 0, "{figure}: nothing timed");
        let points: u64 = attribute(s, &format!("#chart-{figure}"), "data-points")
            .await?
            .parse()?;
        ensure!(points > 0, "{figure}: no percentile plotted");
    }
    // beta is on hold for its expired token (190), with the reason.
    let holds = s.text("#holds").await?;
    ensure!(
        holds.contains("beta") && holds.contains("190"),
        "holds: {holds}"
    );

    // The day by hour holds the same counts.
    s.click("#charts nav a[data-range='day']").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while attribute(s, "#charts", "data-range")
        .await
        .unwrap_or_default()
        != "day"
    {
        ensure!(Instant::now() < deadline, "the range switch did not apply");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let day_accepted = series_total(s, "transitions", "accepted").await?;
    ensure!(
        day_accepted >= accepted,
        "day {day_accepted} < hour {accepted}"
    );

    // One tenant: beta sent nothing (held), acme everything.
    s.goto(&format!("{base}/?range=hour&tenant=beta")).await?;
    ensure!(attribute(s, "#charts", "data-tenant").await? == "beta");
    ensure!(series_total(s, "transitions", "accepted").await? == 0);
    s.goto(&format!("{base}/?range=hour&tenant=acme")).await?;
    ensure!(series_total(s, "transitions", "accepted").await? >= accepted.min(20));

    s.goto(&format!("{base}/")).await?;
    s.find("#charts svg").await?;
    Ok((s.screenshot().await?, load_ms))
}

/// The page's load time in Chromium (Navigation Timing: request to the load event)
/// over a store of a million messages (ignored: a benchmark, see `status_page_load`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: fills a store with a million messages (about a minute)"]
async fn status_page_load_in_chromium_with_a_million_messages() {
    let chromium = binary("WA_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = binary("WA_CHROMEDRIVER", "/usr/bin/chromedriver");
    if !chromium.is_file() || !chromedriver.is_file() {
        println!("SKIPPED: chromium or chromedriver not found; run scripts/ensure-chromium.sh");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = crate::status_page_load::million(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let driver = Driver::start(&chromedriver, dir.path()).await.unwrap();
    let session = Session::new(&driver, &chromium, &dir.path().join("chromium-profile"))
        .await
        .unwrap();
    let mut report = Vec::new();
    for path in ["/", "/?range=day"] {
        let mut times = Vec::new();
        for _ in 0..9 {
            session.goto(&format!("{base}{path}")).await.unwrap();
            let ms = session
                .call(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(
                        json!({"script": "const n = performance.getEntriesByType('navigation')[0]; \
                        return n.loadEventEnd - n.startTime;", "args": []}),
                    ),
                )
                .await
                .unwrap();
            times.push(ms.as_f64().unwrap_or(f64::NAN));
            assert_eq!(session.find_all("#charts svg").await.unwrap().len(), 6);
        }
        times.sort_by(f64::total_cmp);
        report.push(format!(
            "Chromium {path}: median {:.0} ms (min {:.0}, max {:.0})",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        ));
    }
    session.delete().await;
    for line in report {
        println!("{line}");
    }
}
