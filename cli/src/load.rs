//! `wa load`: load (N messages as fast as allowed) or soak (a fixed rate for a
//! duration) against a running pipeline, through its public API, then the figures:
//! intake throughput and answers, each message's latency from `queued` to the state
//! asked for and the latency of each stage on the way (both read from the message's
//! history: when we recorded each state), and the lifecycle rate.

use crate::cli::LoadArgs;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What one run measured.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Requests sent.
    pub sent: usize,
    /// Answers by HTTP status (0: no answer).
    pub answers: BTreeMap<u16, usize>,
    /// Wall time of the sending phase.
    pub send_time: Duration,
    /// Intake latency (request to answer) of each request, in ms.
    pub intake_ms: Vec<f64>,
    /// `queued` -> target state of each message that reached it, in ms.
    pub latency_ms: Vec<f64>,
    /// `(queued_at, target_at)` in epoch ms of each message that reached the target.
    pub spans_ms: Vec<(i64, i64)>,
    /// Each stage from `queued` up to the target, with its latencies (empty: not measured).
    pub stages: Vec<StageLatencies>,
    /// Final states of the accepted messages.
    pub states: BTreeMap<String, usize>,
    /// Messages that had not reached the target when the wait ended.
    pub unsettled: usize,
    /// CPU time of the `--measure-pid` process, in ms: from the first request until
    /// the last message settled, then during the final read of every message.
    pub process_cpu_ms: Option<(f64, f64)>,
}

/// The latencies of one stage, from a message first reaching `from` to it first
/// reaching `to`, of the messages whose history shows both.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StageLatencies {
    /// The earlier state.
    pub from: &'static str,
    /// The next state.
    pub to: &'static str,
    /// Milliseconds between the two, one per message.
    pub ms: Vec<f64>,
}

impl StageLatencies {
    /// The consecutive stages from `queued` up to `until` (none if `until` is unknown).
    pub fn up_to(until: &str) -> Vec<Self> {
        let last = rank(until).unwrap_or(0);
        RANKS
            .windows(2)
            .take(last)
            .map(|pair| Self {
                from: pair[0],
                to: pair[1],
                ms: Vec::new(),
            })
            .collect()
    }
}

impl LoadReport {
    /// The figures, one per line.
    pub fn render(&self, until: &str) -> String {
        let secs = self.send_time.as_secs_f64().max(1e-9);
        let mut out = format!(
            "sent {} requests in {:.2} s: {:.0} req/s\n",
            self.sent,
            secs,
            self.sent as f64 / secs
        );
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(status, n)| match status {
                0 => format!("no answer: {n}"),
                s => format!("{s}: {n}"),
            })
            .collect();
        out.push_str(&format!("answers        {}\n", answers.join(", ")));
        out.push_str(&format!("intake ms      {}\n", summary(&self.intake_ms)));
        out.push_str(&format!(
            "queued->{until} ms {}\n",
            summary(&self.latency_ms)
        ));
        for stage in &self.stages {
            let label = format!("{}->{} ms", stage.from, stage.to);
            out.push_str(&format!("  {label:<20} {}\n", summary(&stage.ms)));
        }
        if let Some(rate) = self.lifecycle_rate() {
            out.push_str(&format!(
                "lifecycle      {} messages from the first queued to the last {until} at {rate:.0} msg/s\n",
                self.spans_ms.len()
            ));
        }
        let states: Vec<String> = self
            .states
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        out.push_str(&format!("final states   {}\n", states.join(", ")));
        if self.unsettled > 0 {
            out.push_str(&format!("not {until} in time: {}\n", self.unsettled));
        }
        if let Some((lifecycle, reads)) = self.process_cpu_ms {
            let n = self.spans_ms.len().max(1) as f64;
            out.push_str(&format!(
                "process CPU    {:.3} ms per lifecycle until the last {until}, then {:.3} ms per message for the final reads (n={})\n",
                lifecycle / n,
                reads / n,
                self.spans_ms.len()
            ));
        }
        out
    }
}

impl LoadReport {
    /// Messages per second through the whole lifecycle: the messages that reached the
    /// target over the time from the first `queued_at` to the last target timestamp.
    pub fn lifecycle_rate(&self) -> Option<f64> {
        let first = self.spans_ms.iter().map(|s| s.0).min()?;
        let last = self.spans_ms.iter().map(|s| s.1).max()?;
        let secs = (last - first).max(1) as f64 / 1000.0;
        Some(self.spans_ms.len() as f64 / secs)
    }
}

/// `p50 … p90 … p95 … p99 … max … (n=…)` of `samples` (nearest rank), or `none`.
pub fn summary(samples: &[f64]) -> String {
    if samples.is_empty() {
        return "none".into();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "p50 {:.0}  p90 {:.0}  p95 {:.0}  p99 {:.0}  max {:.0}  (n={})",
        percentile(&sorted, 50.0),
        percentile(&sorted, 90.0),
        percentile(&sorted, 95.0),
        percentile(&sorted, 99.0),
        sorted[sorted.len() - 1],
        sorted.len()
    )
}

/// Nearest-rank percentile of sorted, non-empty samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

const RANKS: [&str; 6] = ["queued", "sending", "accepted", "sent", "delivered", "read"];

fn rank(state: &str) -> Option<usize> {
    RANKS.iter().position(|s| *s == state)
}

/// Run the load or soak and print the figures.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let report = measure(&args).await?;
    print!("{}", report.render(&args.until));
    if report.answers.keys().any(|s| *s != 202 && *s != 200) {
        bail!("some requests were not accepted (see answers)");
    }
    Ok(())
}

/// Send, then wait for every accepted message to reach `--until`.
pub async fn measure(args: &LoadArgs) -> anyhow::Result<LoadReport> {
    if rank(&args.until).is_none_or(|r| r < 2) {
        bail!("--until must be accepted, sent, delivered or read");
    }
    if args.duration.is_some() && args.rate <= 0.0 {
        bail!("a soak (--duration) needs --rate");
    }
    let template = match &args.request_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<Value>(&text).context("the request file is not JSON")?
        }
        None => json!({"template": {"name": "order_shipped", "language": "en_US",
                  "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}}),
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(1))
        .timeout(Duration::from_secs(30))
        .build()?;
    let echo = match args.echo {
        true => Some(crate::echo::EchoApi::start().await?),
        false => None,
    };
    let base = echo
        .as_ref()
        .map_or(args.api.url.as_str(), |e| e.url.as_str())
        .trim_end_matches('/')
        .to_owned();
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| format!("load-{}", run_stamp()));
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let cpu_at_start = args.measure_pid.map(process_cpu_ms).transpose()?;
    let started = Instant::now();
    let mut n = 0usize;
    loop {
        let due = match (args.duration, args.rate > 0.0) {
            (Some(d), _) if started.elapsed() >= d => break,
            (None, _) if n >= args.messages => break,
            (_, true) => started + Duration::from_secs_f64(n as f64 / args.rate),
            (_, false) => Instant::now(),
        };
        // Only when ahead: a sleep until now still waits for the timer's next
        // millisecond tick, which held a burst to under 1,000 requests a second.
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let mut body = template.clone();
        body["to"] = json!(format!(
            "+1415555{:04}",
            n % args.recipients.clamp(1, 10_000)
        ));
        let request = client
            .post(format!("{base}/v1/messages"))
            .bearer_auth(&args.api.key)
            .header("idempotency-key", format!("{run_id}-{n}"))
            .json(&body);
        tasks.spawn(async move {
            let t0 = Instant::now();
            let answer = request.send().await;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            drop(permit);
            match answer {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    (status, ms, body["id"].as_str().map(str::to_owned))
                }
                Err(_) => (0, ms, None),
            }
        });
        n += 1;
    }
    let mut report = LoadReport {
        stages: StageLatencies::up_to(&args.until),
        ..LoadReport::default()
    };
    let mut ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (status, ms, id) = joined?;
        *report.answers.entry(status).or_default() += 1;
        report.intake_ms.push(ms);
        if let Some(id) = id {
            ids.push(id);
        }
    }
    report.sent = n;
    report.send_time = started.elapsed();
    if echo.is_some() {
        // Nothing behind the echo: its answers are the whole measure.
        return Ok(report);
    }
    let deadline = Instant::now() + args.settle;
    wait_for_last(&client, &base, &args.api.key, &args.until, deadline, &ids).await;
    let cpu_at_settled = args.measure_pid.map(process_cpu_ms).transpose()?;
    wait_for_all(
        &client,
        &base,
        &args.api.key,
        &args.until,
        deadline,
        ids,
        &mut report,
    )
    .await;
    if let (Some(pid), Some(start), Some(settled)) =
        (args.measure_pid, cpu_at_start, cpu_at_settled)
    {
        let end = process_cpu_ms(pid)?;
        report.process_cpu_ms = Some((settled - start, end - settled));
    }
    Ok(report)
}

/// Clock ticks a second in `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux
/// architecture; what `getconf CLK_TCK` prints).
const USER_HZ: f64 = 100.0;

/// The CPU time (user + system) process `pid` has used so far, in ms (Linux only).
fn process_cpu_ms(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    cpu_ms_of_stat(&stat).with_context(|| format!("{path} has no utime and stime"))
}

/// utime + stime of a `/proc/<pid>/stat` line, in ms. Fields are counted after the
/// command name's closing parenthesis, since the name may hold spaces.
fn cpu_ms_of_stat(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line; the state (field 3) is the first after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1000.0 / USER_HZ)
}

/// Watch the last message sent until it settles (reaches `until`, fails or is
/// suppressed) or `deadline` passes: polling every message meanwhile would load the
/// pipeline being measured.
async fn wait_for_last(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    until: &str,
    deadline: Instant,
    ids: &[String],
) {
    let target = rank(until).unwrap_or(2);
    let Some(last) = ids.last() else {
        return;
    };
    let url = format!("{base}/v1/messages/{last}");
    while Instant::now() < deadline {
        let state = async {
            let resp = client.get(&url).bearer_auth(key).send().await.ok()?;
            let message = resp.json::<Value>().await.ok()?;
            message["status"].as_str().map(str::to_owned)
        }
        .await
        .unwrap_or_default();
        if rank(&state).is_some_and(|r| r >= target) || state == "failed" || state == "suppressed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Read each message until it reaches `until` (or settles elsewhere), recording its
/// latency from `queued` and its stages from its history.
async fn wait_for_all(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    until: &str,
    deadline: Instant,
    mut pending: Vec<String>,
    report: &mut LoadReport,
) {
    let target = rank(until).unwrap_or(2);
    while !pending.is_empty() {
        let mut still = Vec::new();
        let mut checks = JoinSet::new();
        for chunk in pending.chunks(64) {
            for id in chunk {
                let (client, url, key, id) = (
                    client.clone(),
                    format!("{base}/v1/messages/{id}"),
                    key.to_owned(),
                    id.clone(),
                );
                checks.spawn(async move {
                    let message = async {
                        let resp = client.get(url).bearer_auth(key).send().await.ok()?;
                        resp.json::<Value>().await.ok()
                    }
                    .await;
                    (id, message)
                });
            }
            while let Some(Ok((id, message))) = checks.join_next().await {
                let Some(message) = message else {
                    still.push(id);
                    continue;
                };
                let state = message["status"].as_str().unwrap_or_default().to_owned();
                let reached = rank(&state).is_some_and(|r| r >= target);
                if reached || state == "failed" || state == "suppressed" {
                    if reached && let Some((from, to)) = span(&message, until) {
                        report.latency_ms.push((to - from).max(0) as f64);
                        report.spans_ms.push((from, to));
                    }
                    if reached {
                        record_stages(&message, &mut report.stages);
                    }
                    *report.states.entry(state).or_default() += 1;
                } else {
                    still.push(id);
                }
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report.unsettled = pending.len();
}

/// Epoch milliseconds of `queued_at` and of when the message first reached `until`
/// (or a later state, when Meta skipped it), from its history: when *we* recorded
/// each step. The `*_at` timestamps of Meta's statuses carry Meta's whole seconds,
/// which would shorten a span by half a second on average; they are the fallback for
/// a message whose history does not show the state.
fn span(message: &Value, until: &str) -> Option<(i64, i64)> {
    let reached = first_reached_ms(message);
    let from = reached[0]?;
    let target = rank(until)?;
    let to = reached[target..]
        .iter()
        .flatten()
        .min()
        .copied()
        .or_else(|| parse_rfc3339_ms(message["timestamps"][format!("{until}_at")].as_str()?))?;
    Some((from, to))
}

/// Add to each stage the message's latency over it, when its history shows both ends.
fn record_stages(message: &Value, stages: &mut [StageLatencies]) {
    let reached_ms = first_reached_ms(message);
    for stage in stages {
        let (Some(from), Some(to)) = (rank(stage.from), rank(stage.to)) else {
            continue;
        };
        if let (Some(Some(from_ms)), Some(Some(to_ms))) = (reached_ms.get(from), reached_ms.get(to))
        {
            stage.ms.push((to_ms - from_ms).max(0) as f64);
        }
    }
}

/// Epoch milliseconds at which the message first reached each state of [`RANKS`]: the
/// earliest `at` of the history entries that moved it there (`outcome` `advanced`; a
/// late or repeated event only fills a timestamp and keeps the state it found), and
/// for `queued` its `timestamps.queued_at` when present. `None`: never seen there
/// (skipped, or not yet).
fn first_reached_ms(message: &Value) -> [Option<i64>; RANKS.len()] {
    let mut reached_ms = [None; RANKS.len()];
    let entries = message["history"].as_array().map_or(&[][..], Vec::as_slice);
    for entry in entries {
        if entry["outcome"].as_str() != Some("advanced") {
            continue;
        }
        let Some(state) = entry["state"].as_str().and_then(rank) else {
            continue;
        };
        let Some(at) = entry["at"].as_str().and_then(parse_rfc3339_ms) else {
            continue;
        };
        if let Some(first) = reached_ms.get_mut(state)
            && first.is_none_or(|earlier| at < earlier)
        {
            *first = Some(at);
        }
    }
    if let Some(queued_at) = message["timestamps"]["queued_at"]
        .as_str()
        .and_then(parse_rfc3339_ms)
    {
        reached_ms[0] = Some(queued_at);
    }
    reached_ms
}

/// Epoch milliseconds of `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(parsed.timestamp_millis())
}

/// A short unique run id (time-based) for idempotency keys.
fn run_stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}", now.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), 10.0);
        assert_eq!(percentile(&samples, 90.0), 18.0);
        assert_eq!(percentile(&samples, 95.0), 19.0);
        assert_eq!(percentile(&samples, 99.0), 20.0);
        assert_eq!(percentile(&samples, 0.0), 1.0);
        assert_eq!(summary(&[]), "none");
        assert!(summary(&[3.0, 1.0, 2.0]).starts_with("p50 2"));
        assert_eq!(
            summary(&samples),
            "p50 10  p90 18  p95 19  p99 20  max 20  (n=20)"
        );
    }

    /// A history entry as `GET /v1/messages/{id}` shows it.
    fn entry(at: &str, event: &str, state: &str, outcome: &str) -> Value {
        json!({"at": format!("2026-11-25T21:18:{at}Z"), "event": event,
               "state": state, "outcome": outcome})
    }

    #[test]
    fn stage_latencies_come_from_the_first_history_entry_reaching_each_state() {
        // One retry (throttled) before Meta accepted, then Meta's statuses; a late
        // `webhook.sent` applied once the message was delivered, by a receiver whose
        // clock runs behind: it only filled a timestamp and is not when it was delivered.
        let message = json!({
            "status": "read",
            "timestamps": {"queued_at": "2026-11-25T21:18:20.780Z",
                           "accepted_at": "2026-11-25T21:18:21.390Z",
                           "sent_at": "2026-11-25T21:18:21Z",
                           "delivered_at": "2026-11-25T21:18:22Z",
                           "read_at": "2026-11-25T21:18:24Z"},
            "history": [
                entry("20.780", "intake.queued", "queued", "advanced"),
                entry("20.802", "sender.claimed", "sending", "advanced"),
                entry("20.861", "sender.retry_scheduled", "queued", "advanced"),
                entry("21.310", "sender.claimed", "sending", "advanced"),
                entry("21.390", "sender.accepted", "accepted", "advanced"),
                entry("21.702", "webhook.delivered", "delivered", "timestamp_filled"),
                entry("21.815", "webhook.sent", "sent", "advanced"),
                entry("22.044", "webhook.delivered", "delivered", "advanced"),
                entry("24.500", "webhook.read", "read", "advanced"),
                entry("25.100", "webhook.read", "read", "timestamp_filled"),
            ],
        });
        let mut stages = StageLatencies::up_to("read");
        record_stages(&message, &mut stages);
        let measured: Vec<(&str, &str, Vec<f64>)> = stages
            .iter()
            .map(|s| (s.from, s.to, s.ms.clone()))
            .collect();
        assert_eq!(
            measured,
            [
                ("queued", "sending", vec![22.0]),
                ("sending", "accepted", vec![588.0]),
                ("accepted", "sent", vec![425.0]),
                ("sent", "delivered", vec![229.0]),
                ("delivered", "read", vec![2456.0]),
            ]
        );
        let mut up_to_accepted = StageLatencies::up_to("accepted");
        record_stages(&message, &mut up_to_accepted);
        assert_eq!(up_to_accepted.len(), 2);
        assert_eq!(up_to_accepted[1].ms, [588.0]);
    }

    #[test]
    fn a_stage_the_history_skipped_is_left_out() {
        // Meta's `read` came before its `delivered`: the message went from `sent` to
        // `read`, and the late `delivered` only filled its timestamp.
        let message = json!({
            "status": "read",
            "timestamps": {"queued_at": "2026-11-25T21:18:20.780Z"},
            "history": [
                entry("20.780", "intake.queued", "queued", "advanced"),
                entry("20.802", "sender.claimed", "sending", "advanced"),
                entry("21.081", "sender.accepted", "accepted", "advanced"),
                entry("21.400", "webhook.sent", "sent", "advanced"),
                entry("22.000", "webhook.read", "read", "advanced"),
                entry("22.150", "webhook.delivered", "read", "timestamp_filled"),
            ],
        });
        let mut stages = StageLatencies::up_to("read");
        record_stages(&message, &mut stages);
        let counted: Vec<usize> = stages.iter().map(|s| s.ms.len()).collect();
        assert_eq!(counted, [1, 1, 1, 0, 0]);
        let report = LoadReport {
            stages,
            spans_ms: vec![(0, 1_000)],
            ..LoadReport::default()
        };
        let text = report.render("read");
        assert!(text.contains("\n  queued->sending ms   p50 22  "), "{text}");
        assert!(text.contains("\n  sent->delivered ms   none\n"), "{text}");
        assert!(text.contains("\nlifecycle      1 messages"), "{text}");
    }

    #[test]
    fn latency_comes_from_when_we_recorded_each_state() {
        // Meta's `read_at` has whole seconds (21:18:21.000); we recorded it at .940.
        let m = json!({
            "timestamps": {"queued_at": "2026-11-25T21:18:20.780Z",
                           "accepted_at": "2026-11-25T21:18:21.081Z",
                           "read_at": "2026-11-25T21:18:21Z"},
            "history": [
                entry("20.780", "intake.queued", "queued", "advanced"),
                entry("21.081", "sender.accepted", "accepted", "advanced"),
                entry("21.940", "webhook.read", "read", "advanced"),
            ],
        });
        let (from, to) = span(&m, "accepted").unwrap();
        assert_eq!(to - from, 301);
        assert_eq!(span(&m, "read"), Some((from, from + 1160)));
        // Delivered was skipped: reaching read is reaching delivered.
        assert_eq!(span(&m, "delivered"), Some((from, from + 1160)));
        assert_eq!(span(&m, "sent"), Some((from, from + 1160)));
        // Without a history, the timestamps.
        let bare = json!({"timestamps": {"queued_at": "2026-11-25T21:18:20.780Z",
                                         "accepted_at": "2026-11-25T21:18:21.081Z"}});
        assert_eq!(span(&bare, "accepted").map(|(f, t)| t - f), Some(301));
        assert_eq!(span(&bare, "read"), None);
        let report = LoadReport {
            spans_ms: vec![(0, 1_000), (500, 2_000), (1_000, 1_500)],
            ..LoadReport::default()
        };
        assert_eq!(report.lifecycle_rate(), Some(1.5));
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        // A command name with spaces and a parenthesis; utime 250, stime 50 ticks.
        let stat = "4242 (wa (dev) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(cpu_ms_of_stat(stat), Some(3000.0));
        assert_eq!(cpu_ms_of_stat("4242 (wa) S 1"), None);
        let own = process_cpu_ms(std::process::id()).unwrap();
        assert!(own >= 0.0);
    }

    #[test]
    fn durations_read_like_humans_write_them() {
        use crate::cli::parse_duration;
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("3 weeks").is_err());
    }
}
