//! `wa soak`: drive a pipeline with a mix of requests across several tenants, under a
//! sandbox fault profile and, optionally, SIGKILLs of `wa dev` (`--kill-every`); then
//! check its invariants on data and print a report (text, or `--json`):
//!
//! - every message intake accepted is in the store (lost = 0);
//! - the sandbox accepted each `on_ambiguous = "fail"` message at most once
//!   (duplicates of `retry` tenants are counted, not failed);
//! - no message is past `accepted` without the sandbox having accepted it;
//! - no history moves back in rank except by the moves the lifecycle allows;
//! - every message is terminal when the wait ends (or is listed);
//! - invalid requests get their 4xx, replays their 200 with the same id.
//!
//! The exit status is non-zero when an invariant fails.

pub mod events;
pub mod invariants;
pub mod mix;
pub mod pipeline;
pub mod report;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mix::{InvalidKind, Kind, Mix, Rng};
use pipeline::{FaultProfile, Spawned, Tenant};
use report::{Flagged, Percentiles, RegressedMessage, SoakReport, TenantReport, WrongAnswer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// `wa soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Requests to send, across the tenants.
    #[arg(long, default_value_t = 100_000)]
    pub messages: usize,
    /// Shares of each kind of request: templates, text (in-window), replay (same
    /// idempotency key and body again), invalid (must get its 4xx).
    #[arg(long, default_value = "templates=70,text=15,replay=10,invalid=5", value_parser = Mix::parse)]
    pub mix: Mix,
    /// The sandbox's fault profile (started pipeline only).
    #[arg(long, value_enum, default_value = "default")]
    pub faults: FaultProfile,
    /// Kill `wa dev` with SIGKILL this often while sending (`30s`, `2m`, or seconds),
    /// then restart it on the same data file (started pipeline only).
    #[arg(long, value_parser = crate::cli::parse_duration)]
    pub kill_every: Option<Duration>,
    /// Most kills in one run.
    #[arg(long)]
    pub max_kills: Option<usize>,
    /// Tenants the started pipeline has, at least 2 (the first `on_ambiguous = "retry"`,
    /// the others `"fail"`).
    #[arg(long, default_value_t = 3)]
    pub tenants: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Requests per second (0: as fast as `--concurrency` allows). A rate the pipeline
    /// sustains measures correctness; a faster one measures how it falls behind.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// How long to wait, after the last request, for every message to be terminal.
    #[arg(long, default_value = "120s", value_parser = crate::cli::parse_duration)]
    pub settle: Duration,
    /// Seed of the mix and of the sandbox's faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Drive this running pipeline instead of starting one (no kills, faults as deployed).
    #[arg(long)]
    pub url: Option<String>,
    /// The sandbox behind `--url` (`/_sandbox/stats`, inbound messages); without it the
    /// send counts are not checked and texts are sent outside any window.
    #[arg(long, requires = "url")]
    pub sandbox_url: Option<String>,
    /// A tenant of `--url`: `ID=KEY[:fail|retry][@PHONE_NUMBER_ID]` (repeat; default
    /// the demo tenant).
    #[arg(long = "tenant", requires = "url", value_parser = pipeline::parse_tenant)]
    pub tenant_list: Vec<Tenant>,
    /// Work directory of the started pipeline (default: a new one under the temp dir).
    #[arg(long, conflicts_with = "url")]
    pub dir: Option<PathBuf>,
    /// Keep the work directory even when every invariant holds.
    #[arg(long)]
    pub keep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run the soak, print the report; an error (non-zero exit) when an invariant fails.
pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let report = soak(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    if !report.passed {
        let failed: Vec<&str> = report
            .invariants
            .iter()
            .filter(|i| !i.ok)
            .map(|i| i.name.as_str())
            .collect();
        bail!("soak invariants failed: {}", failed.join(", "));
    }
    Ok(())
}

/// One request's outcome.
#[derive(Debug, Clone)]
struct Outcome {
    n: usize,
    tenant: usize,
    kind: Kind,
    invalid: Option<InvalidKind>,
    status: u16,
    id: Option<String>,
    /// The id the answer must carry (replays).
    want_id: Option<String>,
    ms: f64,
    tries: u32,
    /// The start of an error answer's body.
    error: String,
}

/// A request answered with a message, kept for replays and key conflicts.
#[derive(Debug, Clone)]
struct Answered {
    tenant: usize,
    key: String,
    body: Value,
    id: String,
}

/// The final answer of a POST, retried through crashes, 5xx and 429s.
struct Posted {
    status: u16,
    body: Value,
    ms: f64,
    tries: u32,
}

#[derive(Clone)]
struct Driver {
    http: reqwest::Client,
    url: String,
    /// Give up on a request that has no answer for this long.
    patience: Duration,
}

enum Payload {
    Json(Value),
    Raw(String),
}

impl Driver {
    async fn post(&self, key: &str, idempotency: Option<&str>, payload: &Payload) -> Posted {
        let started = Instant::now();
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = self
                .http
                .post(format!("{}/v1/messages", self.url))
                .bearer_auth(key)
                .header("content-type", "application/json");
            if let Some(k) = idempotency {
                req = req.header("idempotency-key", k);
            }
            req = match payload {
                Payload::Json(v) => req.body(v.to_string()),
                Payload::Raw(s) => req.body(s.clone()),
            };
            let t0 = Instant::now();
            let answer = req.send().await;
            let (status, wait) = match answer {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
                    let ms = t0.elapsed().as_secs_f64() * 1000.0;
                    match status {
                        429 => (
                            status,
                            Duration::from_millis(retry_after.map_or(100, |s| s * 1000).min(2000)),
                        ),
                        500..=599 => (status, Duration::from_millis(200)),
                        _ => {
                            return Posted {
                                status,
                                body,
                                ms,
                                tries,
                            };
                        }
                    }
                }
                // No answer: the process died with it, or is restarting. Same key again.
                Err(_) => (0, Duration::from_millis(200)),
            };
            if started.elapsed() > self.patience {
                return Posted {
                    status,
                    body: Value::Null,
                    ms: t0.elapsed().as_secs_f64() * 1000.0,
                    tries,
                };
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn get(&self, key: &str, id: &str) -> Option<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}/v1/messages/{id}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.json().await.unwrap_or(Value::Null)))
    }
}

fn bar(len: u64, message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template("{msg:10} [{bar:40}] {pos}/{len} {per_sec} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}", now.as_millis())
}

/// Start (or reach) the pipeline, drive it, wait, check; the report.
pub async fn soak(args: &SoakArgs) -> anyhow::Result<SoakReport> {
    let run_id = format!("soak-{}", stamp());
    // The started pipeline's event endpoint (every tenant's), alive for the whole run.
    let mut receiver: Option<events::Receiver> = None;
    let (tenants, spawned, url, sandbox_url) = match &args.url {
        Some(url) => {
            let tenants = if args.tenant_list.is_empty() {
                vec![Tenant {
                    id: "demo".into(),
                    key: "wa_demo_key".into(),
                    phone_number_id: "106540352242922".into(),
                    on_ambiguous: "fail".into(),
                }]
            } else {
                args.tenant_list.clone()
            };
            if args.kill_every.is_some() {
                bail!("--kill-every needs the pipeline started by wa soak (no --url)");
            }
            let url = url.trim_end_matches('/').to_owned();
            let sandbox = args
                .sandbox_url
                .as_ref()
                .map(|s| s.trim_end_matches('/').to_owned());
            (tenants, None, url, sandbox)
        }
        None => {
            let tenants = pipeline::generated_tenants(args.tenants);
            let dir = args
                .dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join(&run_id));
            let (for_start, faults, seed) = (tenants.clone(), args.faults, args.seed);
            let events_receiver = events::Receiver::start().await?;
            let events_url = events_receiver.url.clone();
            receiver = Some(events_receiver);
            let spawned = tokio::task::spawn_blocking(move || {
                Spawned::start(&dir, &for_start, faults, seed, Some(&events_url))
            })
            .await
            .context("starting the pipeline")??;
            let (url, sandbox) = (spawned.url.clone(), spawned.sandbox_url.clone());
            (
                tenants,
                Some(Arc::new(Mutex::new(spawned))),
                url,
                Some(sandbox),
            )
        }
    };
    let mut result = drive_and_check(
        args,
        &run_id,
        &tenants,
        spawned.clone(),
        &url,
        sandbox_url,
        receiver.as_ref(),
    )
    .await;
    if let Some(spawned) = spawned {
        let dir = spawned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .dir()
            .to_owned();
        // The last handle: dropping it stops both processes before the files go.
        drop(spawned);
        if let Ok(report) = &mut result {
            let (lines, found) = pipeline::scan_logs(&dir, &pipeline::secrets(&tenants));
            report.logs_checked = true;
            report.log_lines = lines;
            report.secrets_in_logs = found;
            report.judge();
        }
        let passed = result.as_ref().is_ok_and(|r| r.passed);
        if passed && !args.keep && args.dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
            if let Ok(report) = &mut result {
                report.work_dir = None;
            }
        }
    }
    result
}

async fn drive_and_check(
    args: &SoakArgs,
    run_id: &str,
    tenants: &[Tenant],
    spawned: Option<Arc<Mutex<Spawned>>>,
    url: &str,
    sandbox_url: Option<String>,
    receiver: Option<&events::Receiver>,
) -> anyhow::Result<SoakReport> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(1))
        .timeout(Duration::from_secs(10))
        .build()?;
    let driver = Driver {
        http: http.clone(),
        url: url.to_owned(),
        patience: Duration::from_secs(60),
    };
    let texts = args.mix.weights.iter().any(|(k, _)| *k == Kind::Text);
    let per_tenant_texts = args.messages / tenants.len().max(1) / 5;
    // About one text per recipient: the sender paces messages to one recipient
    // (Meta's pair rate), which would otherwise be what the soak measures.
    let windows = per_tenant_texts.clamp(20, 2_000);
    let mut outcomes: Vec<Outcome> = Vec::new();
    let started = Instant::now();
    if texts && let Some(sandbox) = &sandbox_url {
        open_windows(
            &http,
            sandbox,
            &driver,
            tenants,
            windows,
            run_id,
            &mut outcomes,
        )
        .await?;
    }

    // Kills while sending.
    let sending = Arc::new(AtomicBool::new(true));
    let killer = match (&spawned, args.kill_every) {
        (Some(spawned), Some(every)) => {
            let (spawned, sending) = (Arc::clone(spawned), Arc::clone(&sending));
            let max = args.max_kills.unwrap_or(usize::MAX);
            Some(tokio::spawn(async move {
                let mut done = 0;
                while done < max {
                    tokio::time::sleep(every).await;
                    if !sending.load(Ordering::Relaxed) {
                        break;
                    }
                    let spawned = Arc::clone(&spawned);
                    let restarted = tokio::task::spawn_blocking(move || {
                        spawned
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .kill_and_restart()
                    })
                    .await;
                    match restarted {
                        Ok(Ok(_)) => done += 1,
                        Ok(Err(e)) => return Err(e),
                        Err(e) => return Err(anyhow::anyhow!("the killer panicked: {e}")),
                    }
                }
                Ok(())
            }))
        }
        _ => None,
    };

    let send_started = Instant::now();
    let progress = bar(args.messages as u64, "sending");
    let answered: Arc<Mutex<Vec<Answered>>> = Arc::new(Mutex::new(Vec::new()));
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut rng = Rng::new(args.seed);
    let invalid_turn = AtomicUsize::new(0);
    let tenants_arc: Arc<Vec<Tenant>> = Arc::new(tenants.to_vec());
    for n in 0..args.messages {
        if args.rate > 0.0 {
            let due = send_started + Duration::from_secs_f64(n as f64 / args.rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let tenant = n % tenants.len().max(1);
        let mut kind = args.mix.pick(rng.unit());
        let roll = rng.next_u64() as usize;
        let earlier = {
            let list = answered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (!list.is_empty()).then(|| list[roll % list.len()].clone())
        };
        if kind == Kind::Replay && earlier.is_none() {
            kind = Kind::Template;
        }
        let invalid = (kind == Kind::Invalid).then(|| {
            let i = invalid_turn.fetch_add(1, Ordering::Relaxed);
            let mut k = InvalidKind::ALL[i % InvalidKind::ALL.len()];
            if k == InvalidKind::KeyConflict && earlier.is_none() {
                k = InvalidKind::UnknownTemplate;
            }
            k
        });
        let text_to = mix::text_recipient(roll % windows);
        let (driver, answered, tenants, progress) = (
            driver.clone(),
            Arc::clone(&answered),
            Arc::clone(&tenants_arc),
            progress.clone(),
        );
        let run_id = run_id.to_owned();
        let texts_ok = sandbox_url.is_some();
        tasks.spawn(async move {
            let t = &tenants[tenant];
            let own_key = format!("{run_id}-{n}");
            let mut want_id = None;
            let mut tenant_of = tenant;
            let posted = match (kind, invalid) {
                (Kind::Template, _) | (Kind::Text, _) => {
                    let body = if kind == Kind::Text && texts_ok {
                        mix::text_body(&text_to, n)
                    } else {
                        mix::template_body(&mix::template_recipient(n), n)
                    };
                    let posted = driver
                        .post(&t.key, Some(&own_key), &Payload::Json(body.clone()))
                        .await;
                    if let Some(id) = posted.body["id"].as_str()
                        && matches!(posted.status, 200 | 202)
                    {
                        answered
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(Answered {
                                tenant,
                                key: own_key.clone(),
                                body,
                                id: id.to_owned(),
                            });
                    }
                    posted
                }
                (Kind::Replay, _) => match earlier {
                    Some(e) => {
                        tenant_of = e.tenant;
                        want_id = Some(e.id.clone());
                        driver
                            .post(
                                &tenants[e.tenant].key,
                                Some(&e.key),
                                &Payload::Json(e.body.clone()),
                            )
                            .await
                    }
                    None => unreachable_outcome(),
                },
                (Kind::Invalid, Some(k)) => match k {
                    InvalidKind::NotJson => {
                        driver
                            .post(&t.key, None, &Payload::Raw("{\"to\": ".into()))
                            .await
                    }
                    InvalidKind::UnknownTemplate => {
                        let mut body = mix::template_body(&mix::template_recipient(n), n);
                        body["template"]["name"] = json!("no_such_template_soak");
                        driver.post(&t.key, None, &Payload::Json(body)).await
                    }
                    InvalidKind::BadRecipient => {
                        let body = mix::template_body("not-a-number", n);
                        driver.post(&t.key, None, &Payload::Json(body)).await
                    }
                    InvalidKind::UnknownKey => {
                        let body = mix::template_body(&mix::template_recipient(n), n);
                        driver
                            .post("wa_no_such_key_soak", None, &Payload::Json(body))
                            .await
                    }
                    InvalidKind::KeyConflict => match earlier {
                        Some(e) => {
                            tenant_of = e.tenant;
                            let mut body = e.body.clone();
                            body["metadata"] = json!({"conflict": n.to_string()});
                            driver
                                .post(&tenants[e.tenant].key, Some(&e.key), &Payload::Json(body))
                                .await
                        }
                        None => unreachable_outcome(),
                    },
                },
                (Kind::Invalid, None) => unreachable_outcome(),
            };
            drop(permit);
            progress.inc(1);
            Outcome {
                n,
                tenant: tenant_of,
                kind,
                invalid,
                status: posted.status,
                id: posted.body["id"].as_str().map(str::to_owned),
                want_id,
                ms: posted.ms,
                tries: posted.tries,
                error: error_text(&posted),
            }
        });
        // Keep the join set small: collect what finished.
        while let Some(done) = tasks.try_join_next() {
            outcomes.push(done?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        outcomes.push(done?);
    }
    progress.finish_and_clear();
    sending.store(false, Ordering::Relaxed);
    let send_seconds = send_started.elapsed().as_secs_f64();
    if let Some(killer) = killer {
        killer.abort();
        // Aborted between kills (Err) or done: only a failed restart matters.
        if let Ok(Err(e)) = killer.await {
            return Err(e.context("killing and restarting wa dev"));
        }
    }
    let kills = spawned.as_ref().map_or(0, |s| {
        s.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .kills
    });

    // Which messages exist, by tenant.
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        if matches!(o.status, 200 | 202)
            && let Some(id) = &o.id
        {
            accepted.insert(id.clone(), o.tenant);
        }
    }
    let (views, lost) = settle(&driver, tenants, &accepted, args.settle).await;
    let total_seconds = started.elapsed().as_secs_f64();
    let stats = match &sandbox_url {
        Some(s) => Some(
            http.get(format!("{s}/_sandbox/stats"))
                .send()
                .await
                .context("reading the sandbox's stats")?
                .json::<Value>()
                .await
                .context("the sandbox's stats are not JSON")?,
        ),
        None => None,
    };

    let mut report = SoakReport {
        messages: args.messages,
        faults: if args.url.is_some() {
            "as deployed".into()
        } else {
            args.faults.as_str().into()
        },
        mix: args.mix.describe(),
        rate: args.rate,
        kills,
        send_seconds,
        total_seconds,
        work_dir: spawned.as_ref().map(|s| {
            s.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .dir()
                .display()
                .to_string()
        }),
        accepted: accepted.len(),
        ..SoakReport::default()
    };
    judge_answers(&outcomes, &mut report);
    report.intake_per_second = outcomes.len() as f64 / send_seconds.max(1e-9);
    judge_messages(
        tenants,
        &accepted,
        &views,
        &lost,
        stats.as_ref(),
        &outcomes,
        &mut report,
    );
    judge_events(
        &http,
        url,
        tenants,
        &accepted,
        &views,
        receiver,
        &mut report,
    )
    .await;
    let terminal = views
        .values()
        .filter(|v| invariants::is_terminal(v["status"].as_str().unwrap_or_default()))
        .count();
    report.terminal_per_second = terminal as f64 / total_seconds.max(1e-9);
    report.judge();
    Ok(report)
}

/// Every transition of the accepted messages has its event in its tenant's log, and
/// (started pipeline) every logged event reached the tenant's endpoint, signed.
async fn judge_events(
    http: &reqwest::Client,
    url: &str,
    tenants: &[Tenant],
    accepted: &BTreeMap<String, usize>,
    views: &HashMap<String, Value>,
    receiver: Option<&events::Receiver>,
    report: &mut SoakReport,
) {
    let mut logs = Vec::with_capacity(tenants.len());
    for t in tenants {
        match events::read_log(http, url, &t.key).await {
            Ok(log) => logs.push(log),
            Err(e) => {
                report.events_unreadable.push(format!("{}: {e:#}", t.id));
                logs.push(events::EventLog::default());
            }
        }
    }
    report.events_checked = receiver.is_some();
    report.events_missing = transitions_without_event(tenants, accepted, views, &logs);
    report.events_logged = logs.iter().map(|l| l.ids.len()).sum();
    if let Some(receiver) = receiver {
        // Dispatch is asynchronous (and retried after a kill): give it time.
        for (t, log) in tenants.iter().zip(&logs) {
            for id in receiver.wait_for(&log.ids, Duration::from_secs(60)).await {
                report.events_undelivered.push(Flagged {
                    tenant: t.id.clone(),
                    id,
                    detail: "in the event log, never delivered to the endpoint".into(),
                });
            }
        }
        report.events_bad_signatures = receiver.bad_signatures();
    }
}

/// The accepted messages with a transition whose event is not in their tenant's log.
fn transitions_without_event(
    tenants: &[Tenant],
    accepted: &BTreeMap<String, usize>,
    views: &HashMap<String, Value>,
    logs: &[events::EventLog],
) -> Vec<Flagged> {
    let mut out = Vec::new();
    for (id, tenant) in accepted {
        let (Some(view), Some(log), Some(t)) =
            (views.get(id), logs.get(*tenant), tenants.get(*tenant))
        else {
            continue;
        };
        let Some(entries) = invariants::entries(view) else {
            continue;
        };
        let logged = log.statuses.get(id);
        let missing: Vec<&str> = invariants::expected_event_statuses(&entries)
            .into_iter()
            .filter(|s| !logged.is_some_and(|l| l.contains(*s)))
            .collect();
        if !missing.is_empty() {
            out.push(Flagged {
                tenant: t.id.clone(),
                id: id.clone(),
                detail: format!("no message.* event of status {}", missing.join(", ")),
            });
        }
    }
    out
}

/// The first 200 characters of an answer that is not a 2xx.
fn error_text(posted: &Posted) -> String {
    if (200..300).contains(&posted.status) {
        return String::new();
    }
    posted.body.to_string().chars().take(200).collect()
}

/// Never reached: a replay or conflict is only drawn when an earlier answer exists.
fn unreachable_outcome() -> Posted {
    Posted {
        status: 0,
        body: Value::Null,
        ms: 0.0,
        tries: 0,
    }
}

/// Open `count` service windows per tenant (inbound texts through the sandbox), then
/// wait until a text to the last one is accepted rather than suppressed.
async fn open_windows(
    http: &reqwest::Client,
    sandbox: &str,
    driver: &Driver,
    tenants: &[Tenant],
    count: usize,
    run_id: &str,
    outcomes: &mut Vec<Outcome>,
) -> anyhow::Result<()> {
    for t in tenants.iter().filter(|t| !t.phone_number_id.is_empty()) {
        for i in 0..count {
            let resp = http
                .post(format!("{sandbox}/_sandbox/inbound"))
                .json(&json!({"phone_number_id": t.phone_number_id,
                              "from": mix::text_recipient(i), "text": "hi"}))
                .send()
                .await
                .context("asking the sandbox for an inbound message")?;
            if !resp.status().is_success() {
                bail!(
                    "the sandbox refused an inbound message for {}: {}",
                    t.id,
                    resp.text().await.unwrap_or_default()
                );
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for (ti, t) in tenants.iter().enumerate() {
        if t.phone_number_id.is_empty() {
            continue;
        }
        for probe in 0.. {
            let body = mix::text_body(&mix::text_recipient(count - 1), probe);
            let posted = driver
                .post(
                    &t.key,
                    Some(&format!("{run_id}-window-{}-{probe}", t.id)),
                    &Payload::Json(body),
                )
                .await;
            outcomes.push(Outcome {
                n: usize::MAX,
                tenant: ti,
                kind: Kind::Text,
                invalid: None,
                status: posted.status,
                id: posted.body["id"].as_str().map(str::to_owned),
                want_id: None,
                ms: posted.ms,
                tries: posted.tries,
                error: error_text(&posted),
            });
            if posted.status == 202 && posted.body["status"] != "suppressed" {
                break;
            }
            if Instant::now() > deadline {
                bail!("tenant {}: the opened windows never reached intake", t.id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Poll every accepted message until it is terminal or `limit` passes; the last view
/// of each, and those the store does not have (404).
async fn settle(
    driver: &Driver,
    tenants: &[Tenant],
    accepted: &BTreeMap<String, usize>,
    limit: Duration,
) -> (HashMap<String, Value>, Vec<String>) {
    let progress = bar(accepted.len() as u64, "settling");
    let deadline = Instant::now() + limit;
    let mut views: HashMap<String, Value> = HashMap::new();
    let mut lost = Vec::new();
    let mut pending: Vec<(String, usize)> = accepted.iter().map(|(i, t)| (i.clone(), *t)).collect();
    let keys: Vec<String> = tenants.iter().map(|t| t.key.clone()).collect();
    let keys = Arc::new(keys);
    loop {
        let mut still = Vec::new();
        for chunk in pending.chunks(64) {
            let mut checks = JoinSet::new();
            for (id, tenant) in chunk {
                let (driver, keys, id, tenant) =
                    (driver.clone(), Arc::clone(&keys), id.clone(), *tenant);
                checks.spawn(async move {
                    let key = keys.get(tenant).cloned().unwrap_or_default();
                    let got = driver.get(&key, &id).await;
                    (id, tenant, got)
                });
            }
            while let Some(Ok((id, tenant, got))) = checks.join_next().await {
                match got {
                    Some((200, view)) => {
                        let terminal =
                            invariants::is_terminal(view["status"].as_str().unwrap_or_default());
                        views.insert(id.clone(), view);
                        if terminal {
                            progress.inc(1);
                        } else {
                            still.push((id, tenant));
                        }
                    }
                    Some((404, _)) => {
                        // Give a store a last look before calling it lost.
                        if Instant::now() >= deadline {
                            lost.push(id);
                        } else {
                            still.push((id, tenant));
                        }
                    }
                    _ => still.push((id, tenant)),
                }
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    progress.finish_and_clear();
    // What is still pending: 404s seen before the deadline count as lost too.
    for (id, _) in pending {
        if !views.contains_key(&id) && !lost.contains(&id) {
            lost.push(id);
        }
    }
    (views, lost)
}

fn kind_name(o: &Outcome) -> String {
    match o.invalid {
        Some(k) => format!("invalid:{}", k.as_str()),
        None => o.kind.as_str().to_owned(),
    }
}

/// Answers: counts by status and kind, and every answer that is not the right one.
fn judge_answers(outcomes: &[Outcome], report: &mut SoakReport) {
    for o in outcomes {
        *report.answers.entry(o.status).or_default() += 1;
        *report.requests_by_kind.entry(kind_name(o)).or_default() += 1;
        report.retried_requests += usize::from(o.tries > 1);
        let expected: Vec<u16> = match (o.kind, o.invalid) {
            (_, Some(k)) => vec![k.expected_status()],
            (Kind::Replay, _) => vec![200],
            // A fresh key answers 202; 200 when a retry found the first try stored.
            _ => vec![202, 200],
        };
        let mut detail = o.error.clone();
        if let (Some(want), Some(got)) = (&o.want_id, &o.id)
            && want != got
        {
            detail = format!("replay answered {got}, not {want}");
        }
        if o.invalid.is_some() {
            report.invalid_sent += 1;
            report.invalid_right += usize::from(expected.contains(&o.status));
        }
        if o.kind == Kind::Replay {
            report.replays_sent += 1;
        }
        let wrong_id = o.want_id.is_some() && o.want_id != o.id;
        if !expected.contains(&o.status) || wrong_id {
            report.wrong_answers.push(WrongAnswer {
                n: o.n,
                kind: kind_name(o),
                expected,
                got: o.status,
                detail,
            });
        }
    }
}

fn millis(view: &Value, field: &str) -> Option<i64> {
    let text = view["timestamps"][field].as_str()?;
    Some(
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()?
            .timestamp_millis(),
    )
}

/// Lost, duplicated, regressed, not terminal; per-tenant figures.
fn judge_messages(
    tenants: &[Tenant],
    accepted: &BTreeMap<String, usize>,
    views: &HashMap<String, Value>,
    lost: &[String],
    stats: Option<&Value>,
    outcomes: &[Outcome],
    report: &mut SoakReport,
) {
    let tenant_id = |i: usize| tenants.get(i).map(|t| t.id.clone()).unwrap_or_default();
    let mut per: Vec<TenantReport> = tenants
        .iter()
        .map(|t| TenantReport {
            id: t.id.clone(),
            on_ambiguous: t.on_ambiguous.clone(),
            ..TenantReport::default()
        })
        .collect();
    let mut intake: Vec<Vec<f64>> = vec![Vec::new(); tenants.len()];
    for o in outcomes {
        if matches!(o.kind, Kind::Template | Kind::Text)
            && o.invalid.is_none()
            && o.status == 202
            && let Some(v) = intake.get_mut(o.tenant)
        {
            v.push(o.ms);
        }
    }
    let mut q2a: Vec<Vec<f64>> = vec![Vec::new(); tenants.len()];
    let mut a2d: Vec<Vec<f64>> = vec![Vec::new(); tenants.len()];
    for id in lost {
        report.lost.push(Flagged {
            tenant: tenant_id(accepted.get(id).copied().unwrap_or(0)),
            id: id.clone(),
            detail: "accepted by intake, not in the store".into(),
        });
    }
    let sends = stats.map(|s| &s["accepted_per_message"]);
    for (id, tenant) in accepted {
        let Some(view) = views.get(id) else { continue };
        report.found += 1;
        let t = tenant_id(*tenant);
        let state = view["status"].as_str().unwrap_or_default().to_owned();
        *report.states.entry(state.clone()).or_default() += 1;
        if state == "failed" {
            let f = &view["failure"];
            let class = f["class"].as_str().unwrap_or("unknown");
            let name = match f["code"].as_i64() {
                Some(code) => format!("{class} {code}"),
                None => class.to_owned(),
            };
            *report.failures.entry(name).or_default() += 1;
        }
        if let Some(p) = per.get_mut(*tenant) {
            p.accepted += 1;
            *p.states.entry(state.clone()).or_default() += 1;
        }
        if !invariants::is_terminal(&state) {
            report.not_terminal.push(Flagged {
                tenant: t.clone(),
                id: id.clone(),
                detail: format!("still {state}"),
            });
        }
        match invariants::entries(view) {
            Some(entries) => {
                let found = invariants::regressions(&entries, Some(&state));
                if !found.is_empty() {
                    report.regressions.push(RegressedMessage {
                        tenant: t.clone(),
                        id: id.clone(),
                        regressions: found,
                    });
                }
            }
            None => report.regressions.push(RegressedMessage {
                tenant: t.clone(),
                id: id.clone(),
                regressions: vec![invariants::Regression {
                    from: String::new(),
                    to: state.clone(),
                    event: "history unreadable".into(),
                    at_ms: 0,
                }],
            }),
        }
        if let Some(sends) = sends {
            let n = sends[format!("wa1:{t}:{id}")].as_u64().unwrap_or(0);
            let retry = tenants
                .get(*tenant)
                .is_some_and(|x| x.on_ambiguous == "retry");
            if n > 1 {
                if let Some(p) = per.get_mut(*tenant) {
                    p.duplicated += 1;
                }
                if retry {
                    report.duplicates_retry += 1;
                } else {
                    report.duplicates_fail.push(Flagged {
                        tenant: t.clone(),
                        id: id.clone(),
                        detail: format!("the sandbox accepted it {n} times"),
                    });
                }
            }
            if n == 0 && invariants::needs_a_send(&state) {
                report.state_without_send.push(Flagged {
                    tenant: t.clone(),
                    id: id.clone(),
                    detail: format!("{state}, but the sandbox never accepted it"),
                });
            }
        }
        let (queued, acc, delivered) = (
            millis(view, "queued_at"),
            millis(view, "accepted_at"),
            millis(view, "delivered_at"),
        );
        if let (Some(q), Some(a)) = (queued, acc)
            && let Some(v) = q2a.get_mut(*tenant)
        {
            v.push((a - q).max(0) as f64);
        }
        if let (Some(a), Some(d)) = (acc, delivered)
            && let Some(v) = a2d.get_mut(*tenant)
        {
            v.push((d - a).max(0) as f64);
        }
    }
    for (i, p) in per.iter_mut().enumerate() {
        p.intake_ms = Percentiles::of(intake.get(i).map_or(&[][..], |v| &v[..]));
        p.queued_to_accepted_ms = Percentiles::of(q2a.get(i).map_or(&[][..], |v| &v[..]));
        p.accepted_to_delivered_ms = Percentiles::of(a2d.get(i).map_or(&[][..], |v| &v[..]));
    }
    report.tenants = per;
    if let Some(s) = stats {
        let mut brief = s.clone();
        if let Some(obj) = brief.as_object_mut() {
            obj.remove("accepted_per_message");
            obj.remove("attempts_per_message");
        }
        report.sandbox = brief;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: &str, history: Value) -> Value {
        json!({"status": state, "history": history,
               "timestamps": {"queued_at": "2026-01-01T00:00:00.000Z",
                              "accepted_at": "2026-01-01T00:00:00.250Z"}})
    }

    /// The send-count checks must be able to fail: a `fail` tenant's message accepted
    /// twice, a delivered message never accepted, and a regressed history all fail the
    /// report, while the `retry` tenant's duplicate is only counted.
    #[test]
    fn crafted_duplicates_phantoms_and_regressions_fail_the_report() {
        let tenants = pipeline::generated_tenants(2);
        let ok = json!([
            {"at": "2026-01-01T00:00:00.000Z", "event": "intake.queued", "state": "queued", "outcome": "advanced"},
            {"at": "2026-01-01T00:00:00.100Z", "event": "sender.claimed", "state": "sending", "outcome": "advanced"},
            {"at": "2026-01-01T00:00:00.250Z", "event": "sender.accepted", "state": "accepted", "outcome": "advanced"},
            {"at": "2026-01-01T00:00:01.000Z", "event": "webhook.delivered", "state": "delivered", "outcome": "advanced"}
        ]);
        let back = json!([
            {"at": "2026-01-01T00:00:00.000Z", "event": "intake.queued", "state": "queued", "outcome": "advanced"},
            {"at": "2026-01-01T00:00:01.000Z", "event": "webhook.delivered", "state": "delivered", "outcome": "advanced"},
            {"at": "2026-01-01T00:00:05.000Z", "event": "webhook.sent", "state": "sent", "outcome": "advanced"}
        ]);
        let accepted: BTreeMap<String, usize> = [
            ("msg_retry_dup".to_owned(), 0),
            ("msg_fail_dup".to_owned(), 1),
            ("msg_phantom".to_owned(), 1),
            ("msg_back".to_owned(), 1),
        ]
        .into();
        let views: HashMap<String, Value> = [
            ("msg_retry_dup".to_owned(), view("delivered", ok.clone())),
            ("msg_fail_dup".to_owned(), view("delivered", ok.clone())),
            ("msg_phantom".to_owned(), view("delivered", ok)),
            ("msg_back".to_owned(), view("sent", back)),
        ]
        .into();
        let stats = json!({"sends_accepted": 6, "accepted_per_message": {
            "wa1:soak-a:msg_retry_dup": 2, "wa1:soak-b:msg_fail_dup": 2, "wa1:soak-b:msg_back": 1}});
        let mut report = SoakReport {
            accepted: accepted.len(),
            ..SoakReport::default()
        };
        judge_messages(
            &tenants,
            &accepted,
            &views,
            &[],
            Some(&stats),
            &[],
            &mut report,
        );
        report.judge();
        assert_eq!(report.found, 4);
        assert_eq!(report.duplicates_retry, 1);
        let ids = |v: &[Flagged]| v.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&report.duplicates_fail), vec!["msg_fail_dup"]);
        assert_eq!(ids(&report.state_without_send), vec!["msg_phantom"]);
        assert_eq!(report.regressions.len(), 1);
        assert_eq!(report.regressions[0].id, "msg_back");
        assert!(!report.passed);
        let failed: Vec<&str> = report
            .invariants
            .iter()
            .filter(|i| !i.ok)
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(
            failed,
            vec![
                "duplicates (on_ambiguous = fail)",
                "state without a send",
                "regressions",
                "not terminal"
            ]
        );
        assert_eq!(report.tenants[1].queued_to_accepted_ms.p50, 250.0);

        // Events: msg_fail_dup's log lacks its `delivered`; the others are complete.
        let mut logs = vec![events::EventLog::default(), events::EventLog::default()];
        let both = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        logs[0]
            .statuses
            .insert("msg_retry_dup".into(), both(&["accepted", "delivered"]));
        for id in ["msg_phantom", "msg_back"] {
            logs[1]
                .statuses
                .insert(id.into(), both(&["accepted", "sent", "delivered"]));
        }
        logs[1]
            .statuses
            .insert("msg_fail_dup".into(), both(&["accepted"]));
        let missing = transitions_without_event(&tenants, &accepted, &views, &logs);
        assert_eq!(ids(&missing), vec!["msg_fail_dup"]);
        assert!(missing[0].detail.contains("delivered"), "{missing:?}");
        report.events_missing = missing;
        report.judge();
        assert!(
            report
                .invariants
                .iter()
                .any(|i| i.name == "events" && !i.ok)
        );
    }

    #[test]
    fn wrong_answers_are_listed() {
        let outcome = |kind, invalid, status, id: Option<&str>, want: Option<&str>| Outcome {
            n: 1,
            tenant: 0,
            kind,
            invalid,
            status,
            id: id.map(str::to_owned),
            want_id: want.map(str::to_owned),
            ms: 1.0,
            tries: 1,
            error: String::new(),
        };
        let mut report = SoakReport::default();
        judge_answers(
            &[
                outcome(Kind::Template, None, 202, Some("a"), None),
                outcome(Kind::Invalid, Some(InvalidKind::NotJson), 400, None, None),
                outcome(
                    Kind::Invalid,
                    Some(InvalidKind::KeyConflict),
                    200,
                    None,
                    None,
                ),
                outcome(Kind::Replay, None, 200, Some("b"), Some("a")),
            ],
            &mut report,
        );
        assert_eq!((report.invalid_sent, report.invalid_right), (2, 1));
        assert_eq!(report.wrong_answers.len(), 2, "{:?}", report.wrong_answers);
        assert!(report.wrong_answers[1].detail.contains("replay answered b"));
    }
}
