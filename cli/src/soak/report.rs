//! What a soak found: figures and invariants, as text or JSON (`--json`).

use super::invariants::Regression;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// p50/p95/p99 of some milliseconds (nearest rank), and how many samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Of `samples` (all zero when empty).
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let p = |q| crate::load::percentile(&sorted, q);
        Self {
            n: sorted.len(),
            p50: p(50.0),
            p95: p(95.0),
            p99: p(99.0),
            max: sorted[sorted.len() - 1],
        }
    }

    fn text(&self) -> String {
        if self.n == 0 {
            return "none".into();
        }
        format!(
            "p50 {:.0}  p95 {:.0}  p99 {:.0}  max {:.0}  (n={})",
            self.p50, self.p95, self.p99, self.max, self.n
        )
    }
}

/// One tenant's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TenantReport {
    /// Its id.
    pub id: String,
    /// `fail` or `retry`.
    pub on_ambiguous: String,
    /// Messages intake accepted (distinct ids).
    pub accepted: usize,
    /// Request -> answer of accepted requests, ms.
    pub intake_ms: Percentiles,
    /// `queued_at` -> `accepted_at` (the Graph API took it), ms.
    pub queued_to_accepted_ms: Percentiles,
    /// `accepted_at` -> `delivered_at`, ms (Meta's timestamps have whole seconds).
    pub accepted_to_delivered_ms: Percentiles,
    /// Messages the sandbox accepted more than once.
    pub duplicated: usize,
    /// Final states.
    pub states: BTreeMap<String, usize>,
}

/// A message with a problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flagged {
    /// Its tenant.
    pub tenant: String,
    /// Its id.
    pub id: String,
    /// What is wrong.
    pub detail: String,
}

/// A message whose history moved back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegressedMessage {
    /// Its tenant.
    pub tenant: String,
    /// Its id.
    pub id: String,
    /// The moves down.
    pub regressions: Vec<Regression>,
}

/// A request that did not get the answer it must.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WrongAnswer {
    /// Request number.
    pub n: usize,
    /// What was sent (`templates`, `text`, `replay`, `invalid:not_json`, ...).
    pub kind: String,
    /// The statuses it may get.
    pub expected: Vec<u16>,
    /// What it got (0: no answer).
    pub got: u16,
    /// More, e.g. a replay that answered another id.
    pub detail: String,
}

/// One invariant and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invariant {
    /// Short name.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// The figure behind it.
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SoakReport {
    /// Whether every invariant held.
    pub passed: bool,
    /// Requests planned (`--messages`).
    pub messages: usize,
    /// Fault profile (`as deployed` with `--url`).
    pub faults: String,
    /// The mix.
    pub mix: String,
    /// Requests per second asked (`--rate`; 0: as fast as answered).
    pub rate: f64,
    /// Times `wa dev` was killed and restarted.
    pub kills: usize,
    /// Requests by kind.
    pub requests_by_kind: BTreeMap<String, usize>,
    /// Final answers by HTTP status (0: none).
    pub answers: BTreeMap<u16, usize>,
    /// Requests sent again after no answer, a 5xx or a 429.
    pub retried_requests: usize,
    /// Seconds spent sending.
    pub send_seconds: f64,
    /// Requests answered per second while sending.
    pub intake_per_second: f64,
    /// Seconds from the first request until every message was terminal (or the wait ended).
    pub total_seconds: f64,
    /// Terminal messages per second over `total_seconds`.
    pub terminal_per_second: f64,
    /// Distinct messages intake accepted (202, or 200 for a replay).
    pub accepted: usize,
    /// Of them, found in the store.
    pub found: usize,
    /// Accepted but not found.
    pub lost: Vec<Flagged>,
    /// `fail` tenants' messages the sandbox accepted more than once.
    pub duplicates_fail: Vec<Flagged>,
    /// `retry` tenants' messages accepted more than once (allowed: at-least-once).
    pub duplicates_retry: usize,
    /// Messages in accepted/sent/delivered/read that the sandbox never accepted.
    pub state_without_send: Vec<Flagged>,
    /// Messages whose history moved back.
    pub regressions: Vec<RegressedMessage>,
    /// Messages not terminal when the wait ended.
    pub not_terminal: Vec<Flagged>,
    /// Events in the tenants' logs (`GET /v1/events`).
    pub events_logged: usize,
    /// Messages with a transition whose event is not in the log.
    pub events_missing: Vec<Flagged>,
    /// Whether deliveries to endpoints were checked (the started pipeline's receiver).
    pub events_checked: bool,
    /// Logged events never delivered to the tenant's endpoint (`id`: the event id).
    pub events_undelivered: Vec<Flagged>,
    /// Deliveries whose Standard Webhooks signature did not verify.
    pub events_bad_signatures: usize,
    /// Tenants whose log could not be read, with the error.
    pub events_unreadable: Vec<String>,
    /// Whether the started pipeline's logs were read for secrets.
    pub logs_checked: bool,
    /// Lines of those logs.
    pub log_lines: usize,
    /// Log lines holding a secret (`file:line: which secret`).
    pub secrets_in_logs: Vec<String>,
    /// Invalid requests sent, and those that got the right 4xx.
    pub invalid_sent: usize,
    /// Invalid requests answered with the right status.
    pub invalid_right: usize,
    /// Replays sent.
    pub replays_sent: usize,
    /// Requests whose answer was not the one they must get (any kind).
    pub wrong_answers: Vec<WrongAnswer>,
    /// Final states of the accepted messages.
    pub states: BTreeMap<String, usize>,
    /// Failed messages by failure class (and code).
    pub failures: BTreeMap<String, usize>,
    /// Per tenant.
    pub tenants: Vec<TenantReport>,
    /// The sandbox's counters (`/_sandbox/stats` without the per-message maps).
    pub sandbox: serde_json::Value,
    /// The checks.
    pub invariants: Vec<Invariant>,
    /// Where the generated configuration, data file and logs are (spawned runs).
    pub work_dir: Option<String>,
}

/// Most offenders listed in the text report (the JSON has them all).
const LISTED: usize = 20;

impl SoakReport {
    /// Fill `invariants` and `passed` from the findings.
    pub fn judge(&mut self) {
        let mut inv = Vec::new();
        let mut add = |name: &str, ok: bool, detail: String| {
            inv.push(Invariant {
                name: name.into(),
                ok,
                detail,
            });
        };
        add(
            "lost",
            self.lost.is_empty() && self.found == self.accepted,
            format!(
                "accepted {} found {} lost {}",
                self.accepted,
                self.found,
                self.lost.len()
            ),
        );
        add(
            "duplicates (on_ambiguous = fail)",
            self.duplicates_fail.is_empty(),
            format!(
                "{} (retry tenants: {} counted, allowed)",
                self.duplicates_fail.len(),
                self.duplicates_retry
            ),
        );
        add(
            "state without a send",
            self.state_without_send.is_empty(),
            format!("{}", self.state_without_send.len()),
        );
        add(
            "regressions",
            self.regressions.is_empty(),
            format!("{}", self.regressions.len()),
        );
        add(
            "not terminal",
            self.not_terminal.is_empty(),
            format!("{}", self.not_terminal.len()),
        );
        add(
            "answers",
            self.wrong_answers.is_empty(),
            format!(
                "invalid {}/{} right 4xx, replays {}, wrong answers {}",
                self.invalid_right,
                self.invalid_sent,
                self.replays_sent,
                self.wrong_answers.len()
            ),
        );
        add(
            "events",
            self.events_missing.is_empty()
                && self.events_undelivered.is_empty()
                && self.events_bad_signatures == 0
                && self.events_unreadable.is_empty(),
            format!(
                "logged {}, transitions without an event {}, {}, unreadable logs {}",
                self.events_logged,
                self.events_missing.len(),
                if self.events_checked {
                    format!(
                        "undelivered {} bad signatures {}",
                        self.events_undelivered.len(),
                        self.events_bad_signatures
                    )
                } else {
                    "deliveries not checked (--url)".into()
                },
                self.events_unreadable.len()
            ),
        );
        if self.logs_checked {
            add(
                "secrets in logs",
                self.secrets_in_logs.is_empty() && self.log_lines > 0,
                format!(
                    "{} of {} log lines hold a token, key or secret",
                    self.secrets_in_logs.len(),
                    self.log_lines
                ),
            );
        }
        add(
            "something delivered",
            self.accepted > 0 && self.found > 0,
            format!("{} accepted", self.accepted),
        );
        self.passed = inv.iter().all(|i| i.ok);
        self.invariants = inv;
    }

    /// The text report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "soak: {} requests ({}), faults {}, {} kill(s), rate {}",
            self.messages,
            self.mix,
            self.faults,
            self.kills,
            if self.rate > 0.0 {
                format!("{}/s", self.rate)
            } else {
                "unpaced".into()
            }
        );
        let kinds: Vec<String> = self
            .requests_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(out, "requests       {}", kinds.join(", "));
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(s, n)| match s {
                0 => format!("no answer {n}"),
                s => format!("{s}: {n}"),
            })
            .collect();
        let _ = writeln!(
            out,
            "answers        {} (retried {})",
            answers.join(", "),
            self.retried_requests
        );
        let _ = writeln!(
            out,
            "throughput     intake {:.0} req/s over {:.1} s; {:.0} terminal msg/s over {:.1} s",
            self.intake_per_second, self.send_seconds, self.terminal_per_second, self.total_seconds
        );
        let states: Vec<String> = self
            .states
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let _ = writeln!(out, "final states   {}", states.join(", "));
        if !self.failures.is_empty() {
            let failures: Vec<String> = self
                .failures
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect();
            let _ = writeln!(out, "failures       {}", failures.join(", "));
        }
        for t in &self.tenants {
            let _ = writeln!(
                out,
                "tenant {} (on_ambiguous = {}): {} accepted, {} duplicated",
                t.id, t.on_ambiguous, t.accepted, t.duplicated
            );
            let _ = writeln!(out, "  intake ms             {}", t.intake_ms.text());
            let _ = writeln!(
                out,
                "  queued->accepted ms   {}",
                t.queued_to_accepted_ms.text()
            );
            let _ = writeln!(
                out,
                "  accepted->delivered ms {}",
                t.accepted_to_delivered_ms.text()
            );
        }
        let _ = writeln!(out, "invariants");
        for i in &self.invariants {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                if i.ok { "ok  " } else { "FAIL" },
                i.name,
                i.detail
            );
        }
        let mut list = |title: &str, items: Vec<String>| {
            if items.is_empty() {
                return;
            }
            let _ = writeln!(out, "{title} ({}):", items.len());
            for item in items.iter().take(LISTED) {
                let _ = writeln!(out, "  {item}");
            }
            if items.len() > LISTED {
                let _ = writeln!(out, "  ... ({} more in --json)", items.len() - LISTED);
            }
        };
        let flagged = |v: &[Flagged]| -> Vec<String> {
            v.iter()
                .map(|f| format!("{} {}: {}", f.tenant, f.id, f.detail))
                .collect()
        };
        list("lost", flagged(&self.lost));
        list("duplicated (fail tenants)", flagged(&self.duplicates_fail));
        list("state without a send", flagged(&self.state_without_send));
        list("not terminal", flagged(&self.not_terminal));
        list(
            "transitions without an event",
            flagged(&self.events_missing),
        );
        list("events never delivered", flagged(&self.events_undelivered));
        list("event logs unreadable", self.events_unreadable.clone());
        list("secrets in logs", self.secrets_in_logs.clone());
        list(
            "regressions",
            self.regressions
                .iter()
                .map(|r| {
                    let moves: Vec<String> = r
                        .regressions
                        .iter()
                        .map(|g| format!("{} -> {} by {}", g.from, g.to, g.event))
                        .collect();
                    format!("{} {}: {}", r.tenant, r.id, moves.join("; "))
                })
                .collect(),
        );
        list(
            "wrong answers",
            self.wrong_answers
                .iter()
                .map(|w| {
                    format!(
                        "#{} {}: expected {:?}, got {} {}",
                        w.n, w.kind, w.expected, w.got, w.detail
                    )
                })
                .collect(),
        );
        if let Some(dir) = &self.work_dir {
            let _ = writeln!(out, "work dir       {dir}");
        }
        let _ = writeln!(
            out,
            "{}",
            if self.passed {
                "PASSED"
            } else {
                "FAILED: an invariant does not hold"
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_with_a_lost_message_fails() {
        let mut r = SoakReport {
            accepted: 2,
            found: 2,
            ..SoakReport::default()
        };
        r.judge();
        assert!(r.passed, "{:?}", r.invariants);
        r.lost.push(Flagged {
            tenant: "t".into(),
            id: "msg_1".into(),
            detail: "404".into(),
        });
        r.judge();
        assert!(!r.passed);
        assert!(r.render().contains("FAIL lost"));
        let p = Percentiles::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((p.p50, p.p99, p.n), (2.0, 4.0, 4));
    }
}
