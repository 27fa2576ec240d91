//! `wa doctor`: checks a `wa dev` configuration or a deployed stage end to end and
//! prints one line per check (`PASS`, `FAIL` with its fix, or `SKIP` with why); exits
//! non-zero when a check fails.
//!
//! The checks, in order (each a small function returning a [`Check`]):
//!
//! | check | wa dev | AWS stage |
//! | --- | --- | --- |
//! | `configuration` | the wa.toml parsed and checked as `wa dev` does | the stack outputs (flags, env, `--config`) the commands need |
//! | `store` | the SQLite file opens, `PRAGMA quick_check`, schema current | both tables answer a read |
//! | `webhook handshake` | `GET /webhook?hub.mode=subscribe&hub.verify_token=..&hub.challenge=N` echoes N | the same on `WebhookUrl`, token from `VerifyTokenSecretArn` |
//! | `app subscribed (WABA W)` | `GET /{waba}/subscribed_apps` lists an app | the same |
//! | `token (tenant T)` | `GET /{phone_number_id}?fields=..` with its token answers | the same, token from its secret |
//! | `templates (tenant T)` | the stored catalog matches Graph's listing, none paused | the same |
//! | `queues (tenant T)`, `event source mapping (tenant T)` | — | queue, DLQ, mapping to the sender |
//! | `alarms` | — | none of the stage's alarms in `ALARM`; each tenant's DLQ alarm exists |
//!
//! - [`probe`]: the HTTP probes (handshake, Graph reads) and the template comparison;
//! - [`dev`]: the checks of a `wa dev` configuration;
//! - [`aws`]: the checks of a deployed stage.

pub mod aws;
pub mod dev;
pub mod probe;

use super::config::BackendArgs;
use clap::Args;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// `wa doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The stage (stack outputs, `--config`), or with `--data` wa dev's SQLite file.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Check this wa dev configuration (its wa.toml) instead of an AWS stage.
    #[arg(long, env = "WA_DEV_CONFIG", value_name = "FILE")]
    pub dev_config: Option<PathBuf>,
    /// Check wa dev's demo configuration (no wa.toml) instead of an AWS stage.
    #[arg(long, conflicts_with = "dev_config")]
    pub dev: bool,
    /// The webhook URL to check [default: wa dev's http://LISTEN/webhook; AWS: the WebhookUrl output].
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// The verify token of the handshake [default: wa dev's from its wa.toml; AWS: the secret VerifyTokenSecretArn].
    #[arg(long, hide_env_values = true, value_parser = secret)]
    pub verify_token: Option<secrecy::SecretString>,
    /// The Graph API to check against: Meta's, or wa dev's embedded sandbox (the URL it
    /// prints) [default: wa dev's graph.base_url or fixed sandbox listen address; AWS:
    /// WA_GRAPH_BASE_URL, then GraphBaseUrl in --config, then Meta's].
    #[arg(long, value_name = "URL")]
    pub graph_base_url: Option<String>,
    /// Graph API version [default: wa dev's graph.api_version; AWS: WA_GRAPH_API_VERSION, GraphApiVersion, else the pinned one].
    #[arg(long)]
    pub graph_api_version: Option<String>,
    /// Limit of each HTTP request, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
    /// One JSON document instead of lines.
    #[arg(long)]
    pub json: bool,
}

fn secret(value: &str) -> Result<secrecy::SecretString, std::convert::Infallible> {
    Ok(secrecy::SecretString::from(value.to_owned()))
}

impl DoctorArgs {
    /// Whether the wa dev configuration is checked (rather than an AWS stage).
    pub fn is_dev(&self) -> bool {
        self.dev || self.dev_config.is_some() || self.backend.data.is_some()
    }

    /// The HTTP timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs.max(1))
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// All good; `detail` says what was seen.
    Pass {
        /// What was seen (a count, a name).
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Something is wrong, and how to fix it.
    Fail {
        /// What is wrong.
        problem: String,
        /// What to do about it.
        fix: String,
    },
    /// Not checked, and why.
    Skip {
        /// Why not.
        why: String,
    },
}

/// One check: its name and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `configuration`, `store`, `token (tenant demo)`, ...
    pub name: String,
    /// Pass, fail or skip.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Check {
    /// A passed check.
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self {
            name: name.into(),
            outcome: Outcome::Pass {
                detail: (!detail.is_empty()).then_some(detail),
            },
        }
    }

    /// A failed check with its fix. A problem of several lines (a TOML error with its
    /// excerpt) keeps its first and last lines, so each check stays one line.
    pub fn fail(
        name: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            outcome: Outcome::Fail {
                problem: one_line(&problem.into()),
                fix: fix.into(),
            },
        }
    }

    /// A skipped check.
    pub fn skip(name: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            outcome: Outcome::Skip { why: why.into() },
        }
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }

    /// The line printed for it.
    pub fn line(&self) -> String {
        match &self.outcome {
            Outcome::Pass { detail: None } => format!("PASS  {}", self.name),
            Outcome::Pass {
                detail: Some(detail),
            } => format!("PASS  {} ({detail})", self.name),
            Outcome::Fail { problem, fix } => {
                format!("FAIL  {}: {problem} — fix: {fix}", self.name)
            }
            Outcome::Skip { why } => format!("SKIP  {} ({why})", self.name),
        }
    }
}

/// `text` on one line: its first and last non-empty lines.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [first, .., last] => format!("{first}: {last}"),
    }
}

/// The counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Checks passed.
    pub passed: usize,
    /// Checks failed.
    pub failed: usize,
    /// Checks skipped.
    pub skipped: usize,
}

impl Summary {
    /// Count `checks`.
    pub fn of(checks: &[Check]) -> Self {
        let mut s = Self::default();
        for c in checks {
            match c.outcome {
                Outcome::Pass { .. } => s.passed += 1,
                Outcome::Fail { .. } => s.failed += 1,
                Outcome::Skip { .. } => s.skipped += 1,
            }
        }
        s
    }
}

/// Every check of the configuration or stage `args` names, in order.
pub async fn checks(args: &DoctorArgs) -> Vec<Check> {
    if args.is_dev() {
        dev::checks(args).await
    } else {
        aws::checks(args).await
    }
}

/// Print `checks` (lines, or one JSON document) and the summary.
pub fn report(checks: &[Check], json: bool, out: &mut impl Write) -> std::io::Result<()> {
    let summary = Summary::of(checks);
    if json {
        let doc = serde_json::json!({"checks": checks, "summary": summary});
        writeln!(out, "{doc}")?;
        return Ok(());
    }
    for check in checks {
        writeln!(out, "{}", check.line())?;
    }
    writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        summary.passed, summary.failed, summary.skipped
    )
}

/// `wa doctor`: run the checks, print them; an error (exit status 1) when one failed.
pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let checks = checks(&args).await;
    report(&checks, args.json, &mut std::io::stdout().lock())?;
    let failed = Summary::of(&checks).failed;
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_json_name_the_outcome_and_the_fix() {
        let checks = vec![
            Check::pass("store", "quick_check ok"),
            Check::fail("token (tenant a)", "Graph refused it", "store a new token"),
            Check::skip("alarms", "wa dev has none"),
        ];
        let mut out = Vec::new();
        report(&checks, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "PASS  store (quick_check ok)\nFAIL  token (tenant a): Graph refused it — fix: store a new token\nSKIP  alarms (wa dev has none)\n1 passed, 1 failed, 1 skipped\n"
        );
        let mut out = Vec::new();
        report(&checks, true, &mut out).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["checks"][1]["outcome"], "fail");
        assert_eq!(doc["checks"][1]["fix"], "store a new token");
        assert_eq!(doc["summary"]["failed"], 1);
    }
}
