//! One metered AWS stack on moto for the tests of this crate: tables, the tenant's
//! queue, token and webhook secrets, the webhook inbox, the Graph sandbox, an
//! [`AwsMeter`] in front of moto, and the environment the SAM template gives each
//! function with `AWS_ENDPOINT_URL` at the meter.

use crate::common::{AwsStack, PHONE_NUMBER_ID, TOKEN};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wa_perf::meter::AwsMeter;
use wa_sandbox::{PhoneNumberConfig, RunningSandbox, SandboxConfig, Secret, TemplatesSource};
use wa_shared::adapters::SqsWorkQueue;
use wa_shared::ports::WorkQueue;
use wa_testkit::lambda_harness::{FunctionProcess, RuntimeApi};
use wa_testkit::moto;

/// The webhook's app secret in the stack.
pub const APP_SECRET: &str = "perf-app-secret";
/// The longest a test waits for an answer or an init.
pub const ANSWER: Duration = Duration::from_secs(60);

/// The stack, the sandbox and the meter.
pub struct Rig {
    pub stack: AwsStack,
    /// The Graph sandbox, running as long as the rig.
    pub _sandbox: RunningSandbox,
    pub meter: AwsMeter,
    /// Every function's environment.
    pub env: Vec<(String, String)>,
    /// moto's endpoint (what the meter relays to).
    pub endpoint: String,
    /// The queue the stage's bus routes every pipeline event to (as the
    /// `deliveries` rule does on AWS).
    pub consumer: String,
}

/// The rig, or `None` (test skipped) without moto.
pub async fn rig() -> Option<Rig> {
    let endpoint = moto::endpoint_or_skip()?;
    let stack = AwsStack::start().await?;
    let sandbox = RunningSandbox::start(SandboxConfig {
        phone_numbers: vec![PhoneNumberConfig {
            id: PHONE_NUMBER_ID.into(),
            display_phone_number: "15550783881".into(),
            waba_id: "102290129340398".into(),
            access_token: Secret(TOKEN.into()),
            throughput_mps: None,
        }],
        templates: TemplatesSource::File(
            crate::common::root().join("shared/tests/fixtures/templates/catalog.json"),
        ),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    // The webhook's secrets and inbox.
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.sdk);
    let mut arns = Vec::new();
    for (name, value) in [("app-secret", APP_SECRET), ("verify-token", "perf-verify")] {
        let out = secrets
            .create_secret()
            .name(format!("{}{name}", stack.secret_prefix))
            .secret_string(value)
            .send()
            .await
            .unwrap();
        arns.push(out.arn().unwrap().to_owned());
    }
    let inbox = SqsWorkQueue::new(&stack.sdk)
        .ensure_queue(
            &format!("{}-inbox", stack.tables.messages),
            &wa_shared::queues::WEBHOOK_INBOX.spec,
        )
        .await
        .unwrap();

    // The stage's bus, with a rule to a queue as the stage's consumers have.
    let bus = format!("{}-bus", stack.tables.messages);
    let consumer = SqsWorkQueue::new(&stack.sdk)
        .ensure_queue(
            &format!("{bus}-consumer"),
            &wa_shared::queues::WEBHOOK_INBOX.spec,
        )
        .await
        .unwrap();
    moto::route_bus_to_queue(&stack.sdk, &bus, consumer.as_str()).await;
    let meter = AwsMeter::start(&endpoint).await.unwrap();
    let mut env: Vec<(String, String)> = stack
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.extend([
        ("AWS_ENDPOINT_URL".to_owned(), meter.url()),
        ("WA_GRAPH_BASE_URL".to_owned(), sandbox.base_url()),
        ("WA_GRAPH_TIMEOUT_MS".to_owned(), "5000".to_owned()),
        ("WA_APP_SECRET_ARN".to_owned(), arns[0].clone()),
        ("WA_VERIFY_TOKEN_ARN".to_owned(), arns[1].clone()),
        ("WA_WEBHOOK_INBOX_URL".to_owned(), inbox.as_str().to_owned()),
        ("WA_RECONCILER_BUDGET_MS".to_owned(), "20000".to_owned()),
        ("WA_EVENT_BUS_NAME".to_owned(), bus),
        ("WA_EVENTS_PUBLISH_BACKOFF_MS".to_owned(), "10".to_owned()),
    ]);
    Some(Rig {
        stack,
        _sandbox: sandbox,
        meter,
        env,
        endpoint,
        consumer: consumer.as_str().to_owned(),
    })
}

/// A built binary: in `WA_PERF_BIN_DIR` when set (`make perf` points it at the
/// release build), else beside this test's (`target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os("WA_PERF_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .and_then(|deps| deps.parent())
                .unwrap()
                .to_path_buf()
        }
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: build the workspace first (cargo build --workspace, as make test does)",
        path.display()
    );
    path
}

/// Clock ticks a second in `/proc/<pid>/stat` (`USER_HZ`: 100 on every Linux
/// architecture the pipeline runs on; `getconf CLK_TCK`).
const USER_HZ: f64 = 100.0;

/// A function binary running under the Runtime API harness.
pub struct Function {
    pub api: RuntimeApi,
    pub process: FunctionProcess,
    /// When it was spawned.
    pub spawned: Instant,
    /// Each invocation's wall time in ms, rounded up as Lambda bills.
    pub durations: Vec<u64>,
    /// The process's CPU time ([`Self::cpu_ms`]) when its init was over.
    pub init_cpu_ms: Option<f64>,
    /// Its CPU time after each invocation.
    pub cpu_ms: Vec<Option<f64>>,
}

impl Function {
    /// Spawn `name` with `env`.
    pub async fn start(name: &str, env: &[(String, String)]) -> Self {
        let api = RuntimeApi::start().await.unwrap();
        let mut cmd = api.command(binary(name), &format!("perf-wa-{name}"));
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let spawned = Instant::now();
        let process = FunctionProcess::spawn(cmd).unwrap();
        Self {
            api,
            process,
            spawned,
            durations: Vec::new(),
            init_cpu_ms: None,
            cpu_ms: Vec::new(),
        }
    }

    /// Its init time: from the spawn to its first poll for an event (its CPU time
    /// then goes to [`Self::init_cpu_ms`]).
    pub async fn init_time(&mut self) -> Duration {
        let polled = self.api.wait_until_polled(ANSWER).await.unwrap();
        self.init_cpu_ms = self.cpu_time_ms();
        polled.duration_since(self.spawned)
    }

    /// Invoke it with `event` and return its response.
    pub async fn invoke(&mut self, event: Value) -> Value {
        let start = Instant::now();
        let answer = self.api.invoke(event, ANSWER).await.unwrap().response();
        self.durations.push(start.elapsed().as_millis() as u64 + 1);
        let cpu = self.cpu_time_ms();
        self.cpu_ms.push(cpu);
        answer
    }

    /// The CPU time (user + system, every thread's, those ended included) the
    /// process has used so far, in ms: `utime + stime` of `/proc/<pid>/stat`, counted
    /// in clock ticks (10 ms). `None` where there is no `/proc` (not Linux).
    pub fn cpu_time_ms(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.id())).ok()?;
        // Fields 14 and 15; the command name (field 2) is in parentheses and may
        // hold spaces, so count from the last `)` (field 3 is the first after it).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) as f64 * 1000.0 / USER_HZ)
    }

    /// The process's peak resident set size so far, in KiB (`VmHWM` of
    /// `/proc/<pid>/status`); `None` where there is no `/proc`.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    }

    /// Bytes it logged so far.
    pub fn log_bytes(&self) -> u64 {
        self.process
            .output()
            .iter()
            .map(|l| l.len() as u64 + 1)
            .sum()
    }
}
