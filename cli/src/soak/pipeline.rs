//! The pipeline a soak drives. By default the soak starts it: a `wa sandbox` process
//! (the Graph API, with the fault profile) and a `wa dev` process talking to it, both
//! the same `wa` binary, in a work directory with a generated `wa.toml`. The sandbox
//! runs on its own so its records survive when `--kill-every` kills `wa dev` (SIGKILL)
//! and restarts it on the same data file and port. With `--url`, a running deployment
//! (and `--sandbox-url`, the sandbox behind it) is driven instead.

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What happens when the sandbox is asked to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FaultProfile {
    /// No injected faults.
    None,
    /// A few of each: Graph 5xx, throttles, accept-then-timeout, webhook duplicates,
    /// reordering, delays and drops.
    Default,
    /// Many of each.
    Harsh,
}

impl FaultProfile {
    /// The sandbox's `[faults]` table of this profile (`hold_ms`: how long an
    /// accept-then-timeout answer is held, past the pipeline's Graph timeout).
    pub fn faults(self, hold_ms: u64) -> Value {
        let (e500, e503, throttle, timeout, dup, reorder, delay, drop, jitter) = match self {
            FaultProfile::None => (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            FaultProfile::Default => (0.02, 0.005, 0.01, 0.005, 0.02, 0.02, 0.02, 0.01, 5.0),
            FaultProfile::Harsh => (0.05, 0.02, 0.04, 0.02, 0.05, 0.05, 0.05, 0.03, 20.0),
        };
        json!({
            "errors": [
                {"code": 131000, "http_status": 500, "rate": e500},
                {"code": 2, "http_status": 503, "rate": e503},
                {"code": 130429, "rate": throttle},
            ],
            "accept_then_timeout_rate": timeout,
            "accept_then_timeout_hold_ms": hold_ms,
            "latency": {"fixed_ms": 0, "jitter": if jitter > 0.0 {
                json!({"kind": "exponential", "mean_ms": jitter})
            } else {
                json!({"kind": "none"})
            }},
            "webhook": {"duplicate_rate": dup, "reorder_rate": reorder, "delay_rate": delay,
                        "delay_ms": 400, "drop_rate": drop},
        })
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultProfile::None => "none",
            FaultProfile::Default => "default",
            FaultProfile::Harsh => "harsh",
        }
    }
}

/// One tenant of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    /// Its id.
    pub id: String,
    /// Its API key.
    #[serde(skip)]
    pub key: String,
    /// Its business number (for the sandbox's inbound messages).
    pub phone_number_id: String,
    /// `fail` or `retry`.
    pub on_ambiguous: String,
}

/// Parse `ID=KEY[:fail|retry][@PHONE_NUMBER_ID]` (`--tenant` with `--url`).
pub fn parse_tenant(text: &str) -> Result<Tenant, String> {
    let (id, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected ID=KEY[:fail|retry][@PHONE_NUMBER_ID]"))?;
    let (rest, phone) = rest.split_once('@').unwrap_or((rest, ""));
    let (key, policy) = rest.split_once(':').unwrap_or((rest, "fail"));
    if !matches!(policy, "fail" | "retry") {
        return Err(format!(
            "{text:?}: on_ambiguous is fail or retry, not {policy:?}"
        ));
    }
    if id.is_empty() || key.is_empty() {
        return Err(format!("{text:?}: the tenant id and key must not be empty"));
    }
    Ok(Tenant {
        id: id.to_owned(),
        key: key.to_owned(),
        phone_number_id: phone.to_owned(),
        on_ambiguous: policy.to_owned(),
    })
}

/// The tenants the soak generates (at least two): the first `retry`, the others `fail`.
pub fn generated_tenants(count: usize) -> Vec<Tenant> {
    (0..count.max(2))
        .map(|i| Tenant {
            id: match u8::try_from(i) {
                Ok(i) if i < 26 => format!("soak-{}", char::from(b'a' + i)),
                _ => format!("soak-{i}"),
            },
            key: format!("wa_soak_key_{i}"),
            phone_number_id: format!("1065400000{:05}", i + 1),
            on_ambiguous: if i == 0 { "retry" } else { "fail" }.to_owned(),
        })
        .collect()
}

/// Timings of the generated `wa.toml`: short horizons so a run converges in seconds.
const GRAPH_TIMEOUT_MS: u64 = 1_500;
/// How long an accept-then-timeout answer is held (past the Graph timeout).
const HOLD_MS: u64 = 4_000;
const APP_SECRET: &str = "soak-app-secret";
/// The webhook verify token of the started `wa dev`.
const VERIFY_TOKEN: &str = "soak-verify";
/// The log level of the started processes: `info`, so the secrets check reads what an
/// operator's logs would hold.
const LOG_LEVEL: &str = "info";

/// Every secret the started pipeline holds, with a name that does not reveal it: the
/// app secret, the verify token, the events endpoints' signing secret, and each
/// tenant's API key and Graph token.
pub fn secrets(tenants: &[Tenant]) -> Vec<(String, String)> {
    let mut out = vec![
        ("the app secret".to_owned(), APP_SECRET.to_owned()),
        (
            "the webhook verify token".to_owned(),
            VERIFY_TOKEN.to_owned(),
        ),
        (
            "the events endpoint secret".to_owned(),
            super::events::ENDPOINT_SECRET.to_owned(),
        ),
        (
            "the events endpoint key (base64)".to_owned(),
            super::events::ENDPOINT_SECRET
                .trim_start_matches("whsec_")
                .to_owned(),
        ),
    ];
    for (i, t) in tenants.iter().enumerate() {
        out.push((format!("the API key of {}", t.id), t.key.clone()));
        out.push((
            format!("the Graph token of {}", t.id),
            format!("soak-token-{i}"),
        ));
    }
    out
}

/// Read every `*.log` of `dir`: the lines read, and each line holding a secret (as
/// `file:line: name`, never the secret itself).
pub fn scan_logs(dir: &Path, secrets: &[(String, String)]) -> (usize, Vec<String>) {
    let mut lines = 0;
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, vec![format!("{}: unreadable", dir.display())]);
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else {
            found.push(format!("{}: unreadable", file.display()));
            continue;
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (n, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            lines += 1;
            for (what, secret) in secrets {
                if line.contains(secret.as_str()) {
                    found.push(format!("{name}:{}: {what}", n + 1));
                }
            }
        }
    }
    (lines, found)
}

/// The pipeline started by the soak: `wa sandbox` and `wa dev` child processes.
pub struct Spawned {
    dir: PathBuf,
    exe: PathBuf,
    dev_listen: SocketAddr,
    dev: Option<Child>,
    sandbox: Option<Child>,
    /// `http://127.0.0.1:PORT` of `wa dev`.
    pub url: String,
    /// `http://127.0.0.1:PORT` of the sandbox.
    pub sandbox_url: String,
    /// Times `wa dev` was killed.
    pub kills: usize,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        for child in [self.dev.as_mut(), self.sandbox.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

impl Spawned {
    /// Write the configuration into `dir` and start the sandbox, then `wa dev`.
    pub fn start(
        dir: &Path,
        tenants: &[Tenant],
        profile: FaultProfile,
        seed: u64,
        events_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let exe = std::env::current_exe().context("finding the wa binary")?;
        let dev_listen = free_port()?;
        let sandbox_listen = free_port()?;
        let demo = wa_local::DevConfig::demo().context("the demo configuration")?;
        let templates = demo
            .tenants
            .first()
            .map(|t| t.templates.to_page())
            .context("the demo has no tenant")?;
        let templates_path = dir.join("templates.json");
        std::fs::write(&templates_path, serde_json::to_vec_pretty(&templates)?)
            .context("writing templates.json")?;
        let phones: Vec<Value> = tenants
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({"id": t.phone_number_id, "display_phone_number": format!("1555000{:04}", i + 1),
                       "waba_id": format!("1022900000{:05}", i + 1),
                       "access_token": format!("soak-token-{i}"), "throughput_mps": 1000.0})
            })
            .collect();
        let sandbox = json!({
            "phone_numbers": phones,
            "templates": {"file": templates_path},
            "failing_recipients": ["+14155550199"],
            "seed": seed,
            "webhook": {"url": format!("http://{dev_listen}/webhook"), "app_secret": APP_SECRET,
                        "sent_after_ms": 30, "delivered_after_ms": 80, "read_after_ms": 200,
                        "batch_window_ms": 10, "max_batch": 20, "timeout_ms": 10000, "concurrency": 8,
                        "retry": {"max_attempts": 400, "initial_backoff_ms": 100, "multiplier": 1.5,
                                  "max_backoff_ms": 2000, "max_elapsed_ms": 600000}},
            "limits": {"pair_rate_enabled": false, "default_throughput_mps": 1000.0,
                       "throughput_burst_seconds": 1.0},
            "faults": profile.faults(HOLD_MS),
            "recording": {"max_requests": 1000, "max_deliveries": 1000, "bodies": false},
        });
        let sandbox_path = dir.join("sandbox.json");
        std::fs::write(&sandbox_path, serde_json::to_vec_pretty(&sandbox)?)
            .context("writing sandbox.json")?;
        let mut config = format!(
            r#"# Generated by `wa soak`.
listen = "{dev_listen}"
data = "dev.sqlite"

[webhook]
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"

[graph]
base_url = "http://{sandbox_listen}"
timeout_ms = {GRAPH_TIMEOUT_MS}
connect_timeout_ms = 500

[sender]
concurrency = 32
visibility_timeout_ms = 10000
max_attempts = 8

[reconciler]
interval_ms = 1000

[lifecycle]
lease_ms = 3000
queued_grace_ms = 2000
ambiguous_grace_ms = 3000
webhook_horizon_ms = 5000

[events]
poll_interval_ms = 50
"#
        );
        for (i, t) in tenants.iter().enumerate() {
            config.push_str(&format!(
                r#"
[[tenants]]
id = "{id}"
api_keys = ["{key}"]
phone_number_id = "{phone}"
display_phone_number = "1555000{n:04}"
waba_id = "1022900000{n:05}"
token = "soak-token-{i}"
max_concurrency = 4
throughput_mps = 1000
on_ambiguous = "{policy}"
templates = "templates.json"
intake_quota = {{ requests_per_second = 100000, burst = 1000000 }}
"#,
                id = t.id,
                key = t.key,
                phone = t.phone_number_id,
                n = i + 1,
                policy = t.on_ambiguous,
            ));
            if let Some(url) = events_url {
                config.push_str(&format!(
                    "\n[[tenants.endpoints]]\nurl = \"{url}\"\nsecret = \"{}\"\n",
                    super::events::ENDPOINT_SECRET
                ));
            }
        }
        std::fs::write(dir.join("wa.toml"), config).context("writing wa.toml")?;

        let log = |name: &str| -> anyhow::Result<Stdio> {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))
                .with_context(|| format!("opening {name}"))?;
            Ok(Stdio::from(file))
        };
        let mut sandbox_child = Command::new(&exe)
            .arg("sandbox")
            .arg("--listen")
            .arg(sandbox_listen.to_string())
            .arg("--config")
            .arg(&sandbox_path)
            .env("RUST_LOG", LOG_LEVEL)
            .stdout(Stdio::piped())
            .stderr(log("sandbox.log")?)
            .spawn()
            .context("starting wa sandbox")?;
        wait_for_line(
            &mut sandbox_child,
            "wa sandbox listening on ",
            dir,
            "sandbox.log",
        )?;
        let mut spawned = Self {
            dir: dir.to_owned(),
            exe,
            dev_listen,
            dev: None,
            sandbox: Some(sandbox_child),
            url: format!("http://{dev_listen}"),
            sandbox_url: format!("http://{sandbox_listen}"),
            kills: 0,
        };
        spawned.start_dev()?;
        Ok(spawned)
    }

    fn start_dev(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("wa-dev.log"))
            .context("opening wa-dev.log")?;
        let mut child = Command::new(&self.exe)
            .arg("dev")
            .arg("--config")
            .arg(self.dir.join("wa.toml"))
            .env("RUST_LOG", LOG_LEVEL)
            .env_remove("WA_GRAPH_BASE_URL")
            .env_remove("WA_APP_SECRET")
            .env_remove("WA_VERIFY_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting wa dev")?;
        // A port in TIME_WAIT or a slow start: the banner says when it listens.
        wait_for_line(&mut child, "wa dev listening on ", &self.dir, "wa-dev.log")?;
        self.dev = Some(child);
        Ok(())
    }

    /// Kill `wa dev` at once (SIGKILL, as a crash would) and start it again on the
    /// same data file and port.
    pub fn kill_and_restart(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        if let Some(mut child) = self.dev.take() {
            child.kill().context("killing wa dev")?;
            let _ = child.wait();
        }
        self.kills += 1;
        let mut last = None;
        // The port may take a moment to be free again.
        for _ in 0..20 {
            match self.start_dev() {
                Ok(()) => return Ok(started.elapsed()),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("wa dev did not restart")))
            .with_context(|| format!("restarting wa dev on {}", self.dev_listen))
    }

    /// The work directory (configuration, data file, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Read the child's stdout until a line starts with `prefix`, then keep draining it.
fn wait_for_line(child: &mut Child, prefix: &str, dir: &Path, log: &str) -> anyhow::Result<()> {
    let Some(stdout) = child.stdout.take() else {
        bail!("no stdout to read");
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix_owned = prefix.to_owned();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut told = false;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if !told && line.starts_with(&prefix_owned) {
                let _ = tx.send(());
                told = true;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => Ok(()),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
            let tail: String = text
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            bail!("the process did not print {prefix:?}; the end of {log}:\n{tail}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_parse_with_policy_and_number() {
        let t = parse_tenant("acme=k1:retry@123").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.id.as_str(), t.key.as_str()), ("acme", "k1"));
        assert_eq!(t.on_ambiguous, "retry");
        assert_eq!(t.phone_number_id, "123");
        assert_eq!(
            parse_tenant("demo=wa_demo_key").map(|t| t.on_ambiguous),
            Ok("fail".into())
        );
        assert!(parse_tenant("demo").is_err());
        assert!(parse_tenant("demo=k:maybe").is_err());
        let generated = generated_tenants(3);
        assert_eq!(generated.len(), 3);
        assert_eq!(generated[0].on_ambiguous, "retry");
        assert_eq!(generated[1].on_ambiguous, "fail");
        let many = generated_tenants(30);
        let ids: std::collections::HashSet<&str> = many.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids.len(), 30, "distinct ids");
    }
}
