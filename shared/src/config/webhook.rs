//! The webhook function's configuration: the Meta app secret and verify token by
//! secret ARN (their values are read from Secrets Manager at cold start, never from the
//! environment), the inbox queue, the body limit and the quotas table (the cost
//! ledger's counters).

use super::{CommonConfig, ConfigError, Vars};
use crate::app::webhook::{DEFAULT_APPLY_BUDGET, DEFAULT_MAX_BODY_BYTES, WebhookSettings};

/// [`DEFAULT_APPLY_BUDGET`] in milliseconds.
const DEFAULT_APPLY_BUDGET_MS: u64 = DEFAULT_APPLY_BUDGET.as_millis() as u64;
use crate::ports::QueueRef;
use secrecy::SecretString;

/// The webhook function's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Shared part.
    pub common: CommonConfig,
    /// `WA_APP_SECRET_ARN`: the secret holding the Meta app secret. During a rotation it
    /// may hold the new and the old secret separated by a comma (new first).
    pub app_secret_arn: String,
    /// `WA_VERIFY_TOKEN_ARN`: the secret holding the handshake's verify token.
    pub verify_token_arn: String,
    /// `WA_WEBHOOK_INBOX_URL`: where bodies that could not be stored are parked.
    pub inbox_url: String,
    /// `WA_QUOTAS_TABLE`: the cost ledger's counters live there (docs/data-model.md).
    pub quotas_table: String,
    /// `WA_WEBHOOK_MAX_BODY_BYTES` (default 3 MiB: Meta's payloads go up to 3 MB).
    pub max_body_bytes: usize,
    /// `WA_WEBHOOK_APPLY_BUDGET_MS` (default 6 s of the function's 10 s): a body not
    /// applied by then is parked on the inbox.
    pub apply_budget_ms: u64,
}

impl WebhookConfig {
    /// Read and validate from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read and validate through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(var);
        let max_body = vars.number(
            "WA_WEBHOOK_MAX_BODY_BYTES",
            DEFAULT_MAX_BODY_BYTES as u64,
            1_024,
            6 * 1024 * 1024,
        )?;
        Ok(Self {
            common: CommonConfig::read(&vars)?,
            app_secret_arn: vars.required("WA_APP_SECRET_ARN")?,
            verify_token_arn: vars.required("WA_VERIFY_TOKEN_ARN")?,
            inbox_url: vars.required("WA_WEBHOOK_INBOX_URL")?,
            quotas_table: vars.required("WA_QUOTAS_TABLE")?,
            max_body_bytes: usize::try_from(max_body).unwrap_or(DEFAULT_MAX_BODY_BYTES),
            apply_budget_ms: vars.number(
                "WA_WEBHOOK_APPLY_BUDGET_MS",
                DEFAULT_APPLY_BUDGET_MS,
                100,
                900_000,
            )?,
        })
    }

    /// The handler's settings, given the two secrets' values (read by the wiring).
    pub fn settings(&self, app_secret: &str, verify_token: String) -> WebhookSettings {
        WebhookSettings {
            app_secrets: app_secrets(app_secret),
            verify_token: SecretString::from(verify_token),
            inbox: Some(QueueRef::new(self.inbox_url.clone())),
            max_body_bytes: self.max_body_bytes,
            apply_budget: Some(std::time::Duration::from_millis(self.apply_budget_ms)),
        }
    }
}

/// The secrets of a rotation (`new,old`), trimmed, empty parts dropped.
fn app_secrets(value: &str) -> Vec<SecretString> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    const BASE: [(&str, &str); 8] = [
        ("WA_STAGE", "dev"),
        ("WA_MESSAGES_TABLE", "dev-wa-messages"),
        ("WA_DIRECTORY_TABLE", "dev-wa-directory"),
        ("WA_EVENTS_TABLE", "dev-wa-events"),
        ("WA_APP_SECRET_ARN", "arn:app"),
        ("WA_VERIFY_TOKEN_ARN", "arn:verify"),
        ("WA_WEBHOOK_INBOX_URL", "http://sqs/inbox"),
        ("WA_QUOTAS_TABLE", "dev-wa-quotas"),
    ];

    #[test]
    fn the_webhook_reads_the_template_variables_and_defaults_the_limit() {
        let c = WebhookConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(c.app_secret_arn, "arn:app");
        assert_eq!(c.inbox_url, "http://sqs/inbox");
        assert_eq!(c.quotas_table, "dev-wa-quotas");
        assert_eq!(c.max_body_bytes, 3 * 1_048_576);
    }

    #[test]
    fn every_required_variable_is_named_when_missing() {
        for missing in [
            "WA_APP_SECRET_ARN",
            "WA_VERIFY_TOKEN_ARN",
            "WA_WEBHOOK_INBOX_URL",
            "WA_QUOTAS_TABLE",
        ] {
            let vars: Vec<_> = BASE
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            assert_eq!(
                WebhookConfig::from_lookup(lookup(&vars)),
                Err(ConfigError::Missing(missing))
            );
        }
    }

    #[test]
    fn a_rotation_secret_holds_the_new_and_the_old_value() {
        let s = app_secrets(" new , old ,");
        let exposed: Vec<&str> = s.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(exposed, ["new", "old"]);
    }
}
