//! No secret reaches a log line (issue 14, point 4): the built `wa dev` runs with
//! `RUST_LOG=trace`, its stdout and stderr captured to files, through a short
//! workload that exercises every path that handles a secret: sends (one the sandbox
//! fails, one refused with an expired token that holds its tenant until a probe goes
//! through), API calls with a wrong or no key, Meta webhooks genuine and forged, the
//! handshake with a right and a wrong verify token, and events signed for a live
//! endpoint and retried against a dead one. Then no captured line may hold a Graph
//! token, the app secret, an endpoint signing secret (as `whsec_`, base64, hex or raw
//! key) or an API key.

use crate::e2e::support::*;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wa_local::events::WebhookSecret;
use wa_shared::domain::webhook::sign;

const DEMO_TOKEN: &str = "EAAG-fake-token-DO-NOT-LOG-1234";
const OTHER_TOKEN: &str = "EAAG-fake-token-DO-NOT-LOG-5678";
const APP_SECRET: &str = "app-secret-DO-NOT-LOG-9012";
const DEMO_API_KEY: &str = "wa-key-DO-NOT-LOG-demo-3456";
const OTHER_API_KEY: &str = "wa-key-DO-NOT-LOG-other-7890";
const VERIFY_TOKEN: &str = "verify-token-DO-NOT-LOG-2468";
/// The raw keys of the two endpoints' signing secrets (32 bytes each).
const LIVE_KEY: &[u8; 32] = b"endpoint-key-DO-NOT-LOG-live-001";
const DEAD_KEY: &[u8; 32] = b"endpoint-key-DO-NOT-LOG-dead-002";
const OTHER_PHONE: &str = "106540352240000";
/// Only detects a hang.
const LIMIT: Duration = Duration::from_secs(30);

/// `wa dev` with stdout and stderr in files; killed when dropped.
struct Logged {
    api: Api,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Logged {
    fn start(dir: &Path, config: &str) -> Self {
        let config_path = dir.join("wa.toml");
        std::fs::write(&config_path, config).unwrap();
        let (stdout, stderr) = (dir.join("stdout.log"), dir.join("stderr.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_wa"))
            .arg("dev")
            .args(["--listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0"])
            .arg("--data")
            .arg(dir.join("dev.sqlite"))
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "trace")
            .env_remove("AWS_LAMBDA_LOG_LEVEL")
            .env_remove("WA_GRAPH_BASE_URL")
            .env_remove("WA_APP_SECRET")
            .env_remove("WA_VERIFY_TOKEN")
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .unwrap();
        let mut logged = Self {
            api: Api {
                url: String::new(),
                sandbox: String::new(),
                http: reqwest::Client::builder().timeout(LIMIT).build().unwrap(),
            },
            child,
            stdout,
            stderr,
        };
        // The banner's first lines name the ports.
        let started = Instant::now();
        loop {
            let banner = std::fs::read_to_string(&logged.stdout).unwrap_or_default();
            let line = |prefix: &str| {
                banner
                    .lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
            };
            if let (Some(url), Some(sandbox)) =
                (line("wa dev listening on "), line("sandbox listening on "))
            {
                logged.api.url = url;
                logged.api.sandbox = sandbox;
                return logged;
            }
            if let Some(status) = logged.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&logged.stderr).unwrap_or_default();
                panic!("wa dev exited with {status}; its log:\n{log}");
            }
            assert!(started.elapsed() < LIMIT, "wa dev did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A Standard Webhooks receiver answering 200; how many requests it got.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let got = Arc::new(AtomicUsize::new(0));
    let count = got.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// A URL where nothing listens (the port was free a moment ago).
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/hooks", listener.local_addr().unwrap())
}

fn config(live_url: &str, dead_url: &str) -> String {
    let (live, dead) = (
        WebhookSecret::from_key(LIVE_KEY).to_whsec(),
        WebhookSecret::from_key(DEAD_KEY).to_whsec(),
    );
    format!(
        r#"
[webhook]
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"

[sender]
hold_probe_ms = 200

[sandbox]
failing_recipients = ["+14155550199"]

[sandbox.webhook]
sent_after_ms = 20
delivered_after_ms = 40
read_after_ms = 60

[events]
time_scale = 0.001
poll_interval_ms = 20

[[tenants]]
id = "demo"
api_keys = ["{DEMO_API_KEY}"]
phone_number_id = "{DEMO_PHONE}"
waba_id = "102290129340398"
token = "{DEMO_TOKEN}"

[[tenants.endpoints]]
url = "{live_url}"
secret = "{live}"

[[tenants]]
id = "other"
api_keys = ["{OTHER_API_KEY}"]
phone_number_id = "{OTHER_PHONE}"
waba_id = "102290129340000"
token = "{OTHER_TOKEN}"

[[tenants.endpoints]]
url = "{dead_url}"
secret = "{dead}"
"#,
    )
}

/// Every form a secret could take in a log line.
fn secrets() -> Vec<(&'static str, String)> {
    let mut all = vec![
        ("demo Graph token", DEMO_TOKEN.to_owned()),
        ("other Graph token", OTHER_TOKEN.to_owned()),
        ("app secret", APP_SECRET.to_owned()),
        ("demo API key", DEMO_API_KEY.to_owned()),
        ("other API key", OTHER_API_KEY.to_owned()),
    ];
    for (what, key) in [("live endpoint", LIVE_KEY), ("dead endpoint", DEAD_KEY)] {
        let whsec = WebhookSecret::from_key(key).to_whsec();
        let base64 = whsec.trim_start_matches("whsec_").to_owned();
        all.push((what, whsec));
        all.push((what, base64));
        all.push((what, String::from_utf8(key.to_vec()).unwrap()));
        all.push((what, hex::encode(key)));
        // As a Debug byte list would print it: the first bytes are enough.
        all.push((
            what,
            format!("{:?}", &key[..8]).trim_end_matches(']').to_owned(),
        ));
    }
    all
}

async fn post(api: &Api, key: &str, idempotency_key: &str, body: &Value) -> (u16, Value) {
    let (status, _, answer) = api.post(key, Some(idempotency_key), body).await;
    (status, answer)
}

async fn wait_for(api: &Api, key: &str, id: &str, states: &[&str]) -> Value {
    api.wait_until(key, id, LIMIT, |m| {
        states.contains(&m["status"].as_str().unwrap_or_default())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_token_secret_or_api_key_reaches_any_log_line_at_trace_level() {
    let dir = test_dir("secrets_in_logs");
    let (live_url, live_got) = receiver().await;
    let dev = Logged::start(&dir, &config(&live_url, &dead_url()));
    let api = &dev.api;
    let http = &api.http;

    // Sends: three that go through, one the sandbox fails (131026).
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, answer) = post(
            api,
            DEMO_API_KEY,
            &format!("logs-{n}"),
            &order_shipped(&recipient(500 + n)),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }
    let (status, answer) = post(
        api,
        DEMO_API_KEY,
        "logs-failing",
        &order_shipped("+14155550199"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let failing = answer["id"].as_str().unwrap().to_owned();

    // The other tenant's token is refused for a second (190): it is held, then a probe
    // sends its message.
    let resp = http
        .post(format!("{}/_sandbox/token_expiry", api.sandbox))
        .json(&json!({"phone_number_id": OTHER_PHONE, "duration_ms": 1000}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    let (status, answer) = post(
        api,
        OTHER_API_KEY,
        "logs-held",
        &order_shipped(&recipient(600)),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let held = answer["id"].as_str().unwrap().to_owned();

    // Refused API calls: a wrong key, no key, an invalid request.
    let (status, _) = api.get("wa-key-wrong", &ids[0]).await;
    assert_eq!(status, 401);
    let resp = http
        .get(format!("{}/v1/messages/{}", api.url, ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (status, answer) = post(api, DEMO_API_KEY, "logs-invalid", &json!({"to": "x"})).await;
    assert_eq!(status, 422, "{answer}");

    // Meta's side: the handshake right and wrong, webhooks forged, unsigned, replayed
    // over another body, and a genuine inbound message.
    for (token, want) in [(VERIFY_TOKEN, 200), ("not-the-verify-token", 403)] {
        let resp = http
            .get(format!(
                "{}/webhook?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
                api.url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want);
    }
    let body = json!({"object": "whatsapp_business_account", "entry": []}).to_string();
    let other_body =
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": []}]})
            .to_string();
    let genuine = sign(APP_SECRET.as_bytes(), body.as_bytes());
    for (payload, signature, want) in [
        (&body, Some(sign(b"forged", body.as_bytes())), 401),
        (&body, None, 401),
        (&other_body, Some(genuine.clone()), 401),
        (&body, Some("sha256=zz".to_owned()), 401),
        (&body, Some(genuine.clone()), 200),
    ] {
        let mut req = http
            .post(format!("{}/webhook", api.url))
            .header("content-type", "application/json")
            .body(payload.clone());
        if let Some(signature) = signature {
            req = req.header("x-hub-signature-256", signature);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), want, "{:?}", resp.text().await);
    }
    api.inbound(DEMO_PHONE, "+14155550500", "hello").await;

    // Everything settles: read, failed, held then sent, events delivered and retried.
    for id in &ids {
        wait_for(api, DEMO_API_KEY, id, &["read"]).await;
    }
    wait_for(api, DEMO_API_KEY, &failing, &["failed"]).await;
    wait_for(api, OTHER_API_KEY, &held, &["read"]).await;
    let started = Instant::now();
    while live_got.load(Ordering::SeqCst) < 10 {
        assert!(started.elapsed() < LIMIT, "no events delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The dead endpoint's first attempts have failed (retries are 5 ms apart here).
    while !std::fs::read_to_string(&dev.stderr)
        .unwrap()
        .contains("event delivery failed")
    {
        assert!(
            started.elapsed() < LIMIT,
            "the dead endpoint was never tried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Killed: every line was written to the files as it was logged.
    drop(dev);

    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    let stdout = std::fs::read_to_string(dir.join("stdout.log")).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    // The capture is real: trace lines, and the refusals and failures of the workload.
    println!(
        "{} log lines ({} bytes) captured from wa dev at trace",
        lines.len(),
        stderr.len()
    );
    assert!(lines.len() > 100, "{stderr}");
    for expected in [
        "TRACE",
        "DEBUG",
        "webhook signature rejected",
        "webhook handshake refused",
        "tenant put on hold",
        "graph send failed",
        "event delivered",
        "event delivery failed",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in the log");
    }
    assert!(stdout.contains("wa dev listening on"), "{stdout}");

    let mut leaks = Vec::new();
    for (what, secret) in secrets() {
        for (n, line) in lines.iter().enumerate() {
            if line.contains(&secret) {
                leaks.push(format!("{what} in stderr line {}: {line}", n + 1));
            }
        }
        if stdout.contains(&secret) {
            leaks.push(format!("{what} in stdout: {stdout}"));
        }
    }
    // The verify token is not for the log either (the banner prints it, on stdout).
    for (n, line) in lines.iter().enumerate() {
        if line.contains(VERIFY_TOKEN) {
            leaks.push(format!("verify token in stderr line {}: {line}", n + 1));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} secret(s) in the logs:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
