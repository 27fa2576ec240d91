//! The built `delivery` binary as a real Lambda process (the test Runtime API), on
//! DynamoDB, SQS and Secrets Manager in moto, invoked with the SQS events of
//! `events/delivery/`; the endpoint is `scripts/events-receiver.py`, which verifies
//! every request with the `standardwebhooks` package (an implementation independent
//! of ours).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wa_shared::adapters::dynamo::{TableNames, create_tables};
use wa_shared::adapters::{DynamoEndpointRegistry, SecretsManagerEndpointSecrets};
use wa_shared::domain::TenantId;
use wa_shared::domain::endpoints::signing::WebhookSecret;
use wa_shared::domain::endpoints::{DeliveryJob, Endpoint, EndpointHealth};
use wa_shared::domain::time::Timestamp;
use wa_shared::ports::{EndpointRegistry, EndpointSecrets};
use wa_testkit::lambda_harness::{FunctionProcess, RuntimeApi};
use wa_testkit::{moto, unique_name};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample(name: &str) -> Value {
    let path = repo().join("events/delivery").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap())
}

/// `scripts/events-receiver.py` on a free port, killed on drop.
struct PythonReceiver {
    child: Child,
    url: String,
    out: PathBuf,
}

impl PythonReceiver {
    fn start(secret: &WebhookSecret, out: PathBuf) -> Self {
        let venv = Command::new(repo().join("scripts/events-venv.sh"))
            .output()
            .expect("running scripts/events-venv.sh");
        assert!(
            venv.status.success(),
            "{}",
            String::from_utf8_lossy(&venv.stderr)
        );
        let python = PathBuf::from(String::from_utf8_lossy(&venv.stdout).trim());
        let mut child = Command::new(python)
            .arg(repo().join("scripts/events-receiver.py"))
            .arg("--secret")
            .arg(secret.to_whsec())
            .arg("--out")
            .arg(&out)
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
        }
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Wait until `n` lines are written.
    async fn wait_lines(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let lines = self.lines();
            if lines.len() >= n || start.elapsed() > Duration::from_secs(10) {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PythonReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_binary_signs_each_event_to_its_endpoints_and_queues_retries() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let prefix = unique_name("dlvfn");
    let tables = TableNames::with_prefix(&prefix);
    create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &tables)
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name(format!("{prefix}-deliveries"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let secret_prefix = format!("{prefix}/wa/endpoints/");
    let registry = DynamoEndpointRegistry::new(&sdk, tables.directory.clone());
    let secrets = SecretsManagerEndpointSecrets::new(&sdk, secret_prefix.clone());
    let demo = TenantId::parse("demo").unwrap();

    // Two endpoints of `demo`: the verifying receiver (the id the retry job names),
    // and one where nothing listens.
    let dir = tempfile::tempdir().unwrap();
    let secret = WebhookSecret::from_key(b"delivery-binary-test-key-32bytes");
    let receiver = PythonReceiver::start(&secret, dir.path().join("received.jsonl"));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hooks", l.local_addr().unwrap())
    };
    for (id, url) in [
        ("ep_01kbdemoendpoint0000000000", receiver.url.clone()),
        ("ep_01kbdemoclosedport00000000", closed),
    ] {
        let secret_ref = secrets.create(&demo, id, &secret).await.unwrap();
        registry
            .add(&Endpoint {
                tenant: demo.clone(),
                id: id.to_owned(),
                url,
                types: None,
                secret_ref,
                created_at: Timestamp::from_millis(now_ms()),
                disabled: false,
                health: EndpointHealth::default(),
            })
            .await
            .unwrap();
    }

    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_delivery"), "test-wa-delivery");
    cmd.env("WA_STAGE", "test")
        .env("WA_MESSAGES_TABLE", &tables.messages)
        .env("WA_DIRECTORY_TABLE", &tables.directory)
        .env("WA_EVENTS_TABLE", &tables.events)
        .env("WA_DELIVERY_QUEUE_URL", &queue)
        .env("WA_ENDPOINT_SECRET_PREFIX", &secret_prefix)
        .env("WA_DELIVERY_TIMEOUT_MS", "2000")
        .env("WA_DELIVERY_ALLOW_LOOPBACK", "true");
    let function = FunctionProcess::spawn(cmd).unwrap();

    // An event from the bus: both endpoints are attempted.
    let answer = api
        .invoke(sample("bus-event.json"), Duration::from_secs(30))
        .await
        .unwrap()
        .response();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let lines = receiver.wait_lines(1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["verified"], true, "{lines:?}");
    assert_eq!(lines[0]["answer"], 200);
    assert_eq!(lines[0]["id"], "evt_msg_01M8TGC9JR5ZFKMP9AXJ8P3M63_4");
    assert_eq!(
        lines[0]["event"],
        sample("bus-event.json")["Records"][0]["body"]
            .as_str()
            .map(|b| serde_json::from_str::<Value>(b).unwrap()["detail"].clone())
            .unwrap()
    );
    // The closed port's attempt failed: its retry is queued, due after the first
    // wait of the schedule (5 s), with one attempt spent.
    let got = sqs
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(10)
        .send()
        .await
        .unwrap();
    let job: DeliveryJob = serde_json::from_str(got.messages()[0].body().unwrap()).unwrap();
    assert_eq!(job.endpoint, "ep_01kbdemoclosedport00000000");
    assert_eq!(job.attempts, 1);
    assert!(job.due_at_ms > now_ms() - 5_000, "{}", job.due_at_ms);
    let health = registry
        .get(&demo, "ep_01kbdemoclosedport00000000")
        .await
        .unwrap()
        .unwrap()
        .health;
    assert_eq!(health.failures_in_a_row, 1);
    assert!(health.last_error.unwrap().contains("connection"));

    // A retry job that is due: sent to its one endpoint.
    let answer = api
        .invoke(sample("retry-job.json"), Duration::from_secs(30))
        .await
        .unwrap()
        .response();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let lines = receiver.wait_lines(2).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["verified"], true);
    assert_eq!(lines[1]["id"], "evt_msg_01M8TGC9JR5ZFKMP9AXJ8P3M63_5");

    // EMF lines on stdout, per tenant and endpoint; no line holds the secret. The
    // harness reads stdout on its own thread: wait for the last line to be read.
    let sum_of = |lines: &[Value], name: &str| -> f64 {
        lines
            .iter()
            .filter(|l| l["Tenant"] == "demo")
            .filter_map(|l| l[name].as_f64())
            .sum()
    };
    let started = Instant::now();
    let mut lines = function.json_lines();
    while sum_of(&lines, "EventsDelivered") < 2.0 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        lines = function.json_lines();
    }
    let sum = |name: &str| sum_of(&lines, name);
    assert_eq!(sum("EventsDelivered"), 2.0);
    assert_eq!(sum("EventsDeliveryFailed"), 1.0);
    assert_eq!(sum("EventsDeliveryRetried"), 1.0);
    let whsec = secret.to_whsec();
    let key = whsec.trim_start_matches("whsec_");
    for line in &lines {
        assert!(
            !line.to_string().contains(key),
            "a log line holds the secret: {line}"
        );
    }
}
