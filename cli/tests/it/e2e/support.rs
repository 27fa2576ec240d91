//! A real `wa dev` process on free ports, and helpers to talk to it.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo tenant's key (both `wa dev`'s demo and [`two_tenants`] use it).
pub const DEMO_KEY: &str = "wa_demo_key";
/// The second tenant's key in [`two_tenants`].
pub const OTHER_KEY: &str = "wa_other_key";
/// The demo business number.
pub const DEMO_PHONE: &str = "106540352242922";

/// A `wa.toml` with tenants `demo` and `other` on their own numbers, fast timings,
/// and `extra` appended (more sections, or overrides of nothing set here).
pub fn two_tenants(extra: &str) -> String {
    two_tenants_with("", "", extra)
}

/// An intake quota no flood of these tests reaches (for tests of what follows a flood).
pub const FLOOD_QUOTA: &str = "intake_quota = { requests_per_second = 100000, burst = 1000000 }";

/// [`two_tenants`] with `demo_keys` and `other_keys` added to each tenant's table
/// (e.g. an `intake_quota`).
pub fn two_tenants_with(demo_keys: &str, other_keys: &str, extra: &str) -> String {
    format!(
        r#"
[webhook]
app_secret = "e2e-app-secret"
verify_token = "e2e-verify"

[[tenants]]
id = "demo"
api_keys = ["{DEMO_KEY}"]
phone_number_id = "{DEMO_PHONE}"
waba_id = "102290129340398"
{demo_keys}

[[tenants]]
id = "other"
api_keys = ["{OTHER_KEY}"]
phone_number_id = "106540352240000"
waba_id = "102290129340000"
{other_keys}
{extra}
"#
    )
}

/// A running `wa dev`; killed (and its data kept in `dir`) when dropped.
pub struct Dev {
    /// How to reach it (cheap to clone into tasks).
    pub api: Api,
    child: Child,
}

impl std::ops::Deref for Dev {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The API and sandbox of a running `wa dev`.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The embedded sandbox's URL.
    pub sandbox: String,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory for one test's data, config and logs (kept under the target dir
/// so a failure can be read afterwards).
pub fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("e2e")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Dev {
    /// Start `wa dev` with `config` (None: the demo) on free ports, data in `dir`.
    pub fn start(dir: &Path, config: Option<&str>) -> Self {
        // Logs go to a file: a full pipe would block the process.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("wa-dev.log"))
            .unwrap();
        Self::start_logging_to(dir, config, Stdio::from(log), "warn")
    }

    /// [`Dev::start`] with its logs (at `rust_log`) going to `stderr`.
    pub fn start_logging_to(
        dir: &Path,
        config: Option<&str>,
        stderr: Stdio,
        rust_log: &str,
    ) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wa"));
        cmd.arg("dev")
            .args(["--listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0"])
            .arg("--data")
            .arg(dir.join("dev.sqlite"));
        if let Some(text) = config {
            let path = dir.join("wa.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        let mut child = cmd
            .env("RUST_LOG", rust_log)
            .env_remove("WA_GRAPH_BASE_URL")
            .env_remove("WA_APP_SECRET")
            .env_remove("WA_VERIFY_TOKEN")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        let mut sandbox = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("wa dev listening on ") {
                url = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("sandbox listening on ") {
                sandbox = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        // Keep draining stdout so the banner's remainder never blocks the child.
        std::thread::spawn(move || for _ in lines {});
        let (Some(url), Some(sandbox)) = (url, sandbox) else {
            let log = std::fs::read_to_string(dir.join("wa-dev.log")).unwrap_or_default();
            panic!("wa dev did not start; its log:\n{log}");
        };
        Self {
            api: Api {
                url,
                sandbox,
                http: reqwest::Client::builder()
                    .pool_max_idle_per_host(64)
                    .build()
                    .unwrap(),
            },
            child,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the process to exit by itself (after a SIGTERM), or panic after `limit`.
    pub fn wait_exit(mut self, limit: Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "wa dev exited with {status}");
                return;
            }
            assert!(
                started.elapsed() < limit,
                "wa dev did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill the process at once (SIGKILL), as a crash would.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Api {
    /// `POST /v1/messages` with `key`, optional idempotency key; (status, headers, body).
    pub async fn post(
        &self,
        key: &str,
        idempotency_key: Option<&str>,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.post_raw(key, idempotency_key, body.to_string()).await
    }

    /// `POST /v1/messages` that may find the process gone: `None` when no answer came.
    pub async fn try_post(
        &self,
        key: &str,
        idempotency_key: &str,
        body: &Value,
    ) -> Option<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}/v1/messages", self.url))
            .bearer_auth(key)
            .header("idempotency-key", idempotency_key)
            .json(body)
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        let body = resp.json().await.ok()?;
        Some((status, body))
    }

    /// The same with a raw body.
    pub async fn post_raw(
        &self,
        key: &str,
        idempotency_key: Option<&str>,
        body: String,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/messages", self.url))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// `GET /v1/messages/{id}` with `key`: (status, body).
    pub async fn get(&self, key: &str, id: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}/v1/messages/{id}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    /// Poll a message until `done` holds for it, or panic after `limit`.
    pub async fn wait_until(
        &self,
        key: &str,
        id: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let (status, message) = self.get(key, id).await;
            assert_eq!(status, 200, "{message}");
            if done(&message) {
                return message;
            }
            assert!(
                started.elapsed() < limit,
                "{id} still not there after {limit:?}: {message:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POST `body` (a new idempotency key `{key_prefix}-{n}` each try) every 100 ms
    /// until the 202 answer's status is `want` (a webhook it depends on has been
    /// applied), or panic with `what` after 20 s. Returns that answer.
    pub async fn post_until(
        &self,
        key: &str,
        key_prefix: &str,
        body: &Value,
        want: &str,
        what: &str,
    ) -> Value {
        for n in 0..200 {
            let (status, _, answer) = self
                .post(key, Some(&format!("{key_prefix}-{n}")), body)
                .await;
            assert_eq!(status, 202, "{answer}");
            if answer["status"] == want {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: the answer never became {want}");
    }

    /// The sandbox's counters.
    pub async fn sandbox_stats(&self) -> Value {
        self.http
            .get(format!("{}/_sandbox/stats", self.sandbox))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Ask the sandbox to post an inbound text from `from` to `phone`.
    pub async fn inbound(&self, phone: &str, from: &str, text: &str) {
        let resp = self
            .http
            .post(format!("{}/_sandbox/inbound", self.sandbox))
            .json(&json!({"phone_number_id": phone, "from": from, "text": text}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{:?}", resp.text().await);
    }
}

/// The `order_shipped` request to `to`.
pub fn order_shipped(to: &str) -> Value {
    json!({"to": to, "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}})
}

/// A distinct valid US number for `n` (555-01xx numbers are fictional).
pub fn recipient(n: usize) -> String {
    format!("+1415555{:04}", n % 10_000)
}

/// Milliseconds since the epoch of the API's RFC 3339 text (`2026-11-25T21:18:20.780Z`).
pub fn millis(text: &str) -> i64 {
    let num = |range: std::ops::Range<usize>| -> i64 {
        text.get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a timestamp: {text}"))
    };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss) = (num(11..13), num(14..16), num(17..19));
    let ms = if text.as_bytes().get(19) == Some(&b'.') {
        num(20..23)
    } else {
        0
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms
}

#[test]
fn rfc3339_text_becomes_epoch_millis() {
    assert_eq!(millis("1970-01-01T00:00:00.000Z"), 0);
    assert_eq!(millis("2026-06-03T10:15:30.000Z"), 1_780_481_730_000);
    assert_eq!(millis("2000-03-01T00:00:01Z"), 951_868_801_000);
}
