//! The sandbox's configuration: a serde struct read from TOML or JSON (`--config FILE`).
//!
//! Every field has a default, so `{}` is a valid (if useless: no phone numbers)
//! configuration; [`SandboxConfig::validate`] refuses what would make the sandbox lie
//! (rates outside `0..=1`, duplicate phone number ids, ...).

use super::SandboxError;
use super::faults::FaultConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use wa_shared::domain::template::TemplateCatalog;

/// Everything the sandbox needs; see `cli/sandbox.example.toml` for a commented example.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// The business phone numbers the sandbox serves (`POST /{version}/{id}/messages`).
    pub phone_numbers: Vec<PhoneNumberConfig>,
    /// Meta's template JSON the sends are validated against; every WABA gets its own copy.
    pub templates: TemplatesSource,
    /// Recipients (E.164 with or without `+`) whose sends are accepted and then fail
    /// with a `failed` status webhook, code 131026 (undeliverable), like Meta does.
    pub failing_recipients: Vec<String>,
    /// Where and when status webhooks are posted.
    pub webhook: WebhookConfig,
    /// Throughput, pair rate and the customer service window.
    pub limits: LimitsConfig,
    /// Injected failures; all off by default.
    pub faults: FaultConfig,
    /// Seed of every random decision (faults, latency, webhook faults): the same seed and
    /// the same order of requests give the same outcomes.
    pub seed: u64,
    /// What is kept for assertions.
    pub recording: RecordingConfig,
}

/// One business phone number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneNumberConfig {
    /// The phone number id used in the URL path (digits), e.g. `106540352242922`.
    pub id: String,
    /// The number itself as Meta shows it in `metadata.display_phone_number` (digits).
    pub display_phone_number: String,
    /// The WhatsApp Business Account it belongs to: `entry.id` of its webhooks and the id
    /// in `GET /{version}/{waba_id}/message_templates`.
    pub waba_id: String,
    /// The bearer token that must accompany sends from this number.
    pub access_token: Secret,
    /// Messages per second for this number; `limits.default_throughput_mps` when absent.
    #[serde(default)]
    pub throughput_mps: Option<f64>,
}

/// Where the template catalog comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TemplatesSource {
    /// No templates: every template send fails with 132001.
    #[default]
    None,
    /// A file of Meta's template JSON (`{"data": [...]}`, an array, or one template);
    /// relative to the config file when read by [`SandboxConfig::from_file`].
    File(PathBuf),
    /// The same JSON given inline (in TOML: an array of tables).
    Inline(Value),
}

impl TemplatesSource {
    /// Read the catalog.
    pub fn load(&self) -> Result<TemplateCatalog, SandboxError> {
        match self {
            TemplatesSource::None => Ok(TemplateCatalog::default()),
            TemplatesSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SandboxError::Read {
                    path: path.clone(),
                    source,
                })?;
                TemplateCatalog::from_json(&text)
                    .map_err(|e| SandboxError::Templates(e.to_string()))
            }
            TemplatesSource::Inline(value) => TemplateCatalog::from_value(value.clone())
                .map_err(|e| SandboxError::Templates(e.to_string())),
        }
    }
}

/// Status webhooks: receiver, signature, timing, retries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// The receiver (`POST`); without it webhooks are built and recorded as undeliverable.
    pub url: Option<String>,
    /// The app secret that signs `X-Hub-Signature-256`.
    pub app_secret: Secret,
    /// Delay from acceptance to the `sent` status (or to `failed`), in milliseconds.
    pub sent_after_ms: u64,
    /// Delay from acceptance to `delivered`; `None` (`"never"` in a file) never delivers.
    #[serde(with = "never_or_ms")]
    pub delivered_after_ms: Option<u64>,
    /// Delay from acceptance to `read`; `None` (`"never"` in a file) never reads.
    #[serde(with = "never_or_ms")]
    pub read_after_ms: Option<u64>,
    /// Statuses due within this window of each other go out in one POST.
    pub batch_window_ms: u64,
    /// Most statuses in one POST (Meta: up to 1000).
    pub max_batch: usize,
    /// How long the receiver has to answer one POST before it counts as failed.
    pub timeout_ms: u64,
    /// POSTs in flight at once.
    pub concurrency: usize,
    /// Retries of a POST the receiver did not take (non-2xx or timeout).
    pub retry: RetryConfig,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            app_secret: Secret::default(),
            sent_after_ms: 100,
            delivered_after_ms: Some(300),
            read_after_ms: Some(1_000),
            batch_window_ms: 20,
            max_batch: 100,
            timeout_ms: 5_000,
            concurrency: 32,
            retry: RetryConfig::default(),
        }
    }
}

/// An optional delay written as milliseconds or `"never"` (TOML has no null).
mod never_or_ms {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Ms(u64),
        Word(String),
        Null(()),
    }

    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(ms) => s.serialize_u64(*ms),
            None => s.serialize_str("never"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Ms(ms) => Ok(Some(ms)),
            Repr::Word(w) if w == "never" => Ok(None),
            Repr::Word(w) => Err(serde::de::Error::custom(format!(
                "expected milliseconds or \"never\", got {w:?}"
            ))),
            Repr::Null(()) => Ok(None),
        }
    }
}

/// Meta retries immediately, then less and less often (for up to 7 days); the sandbox
/// does the same, bounded by attempts and total time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the third attempt (the second is immediate); it then grows.
    pub initial_backoff_ms: u64,
    /// Growth factor of the delay between attempts.
    pub multiplier: f64,
    /// Ceiling of one delay.
    pub max_backoff_ms: u64,
    /// No attempt starts later than this after the first one.
    pub max_elapsed_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff_ms: 200,
            multiplier: 2.0,
            max_backoff_ms: 10_000,
            max_elapsed_ms: 60_000,
        }
    }
}

/// Meta's limits, each of which can be raised or switched off for load tests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Enforce the per-number throughput (130429).
    pub throughput_enabled: bool,
    /// Messages per second of a number without its own `throughput_mps` (Meta: 80).
    pub default_throughput_mps: f64,
    /// Bucket size in seconds of throughput: how long a burst may run at full rate.
    pub throughput_burst_seconds: f64,
    /// Enforce the per-recipient pair rate (131056).
    pub pair_rate_enabled: bool,
    /// One message per this many milliseconds to the same recipient (Meta: 6 s).
    pub pair_rate_interval_ms: u64,
    /// Messages that may go to one recipient in a burst within one interval of its
    /// first, borrowed from later: the pair then waits `burst × interval` (Meta: 45).
    pub pair_rate_burst: u32,
    /// Length of the customer service window opened by an inbound message (Meta: 24 h).
    pub window_seconds: u64,
    /// How a free-form message outside the window fails.
    pub window_failure: WindowFailure,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            throughput_enabled: true,
            default_throughput_mps: 80.0,
            throughput_burst_seconds: 1.0,
            pair_rate_enabled: true,
            pair_rate_interval_ms: 6_000,
            pair_rate_burst: 45,
            window_seconds: 24 * 3600,
            window_failure: WindowFailure::Webhook,
        }
    }
}

/// Where 131047 (outside the customer service window) shows up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowFailure {
    /// Accepted with a wamid, then a `failed` status webhook (what Meta documents).
    #[default]
    Webhook,
    /// Refused synchronously with the error envelope (what some integrations report).
    Sync,
}

/// What the recorder keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// Most requests kept (oldest dropped first); `None` keeps all.
    pub max_requests: Option<usize>,
    /// Most webhook delivery attempts kept; `None` keeps all.
    pub max_deliveries: Option<usize>,
    /// Keep request bodies (the exact JSON the client sent).
    pub bodies: bool,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            max_requests: Some(100_000),
            max_deliveries: Some(100_000),
            bodies: true,
        }
    }
}

/// A token or secret: serialized as is, never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl SandboxConfig {
    /// Read a TOML (`.toml`) or JSON (any other extension) file.
    pub fn from_file(path: &Path) -> Result<Self, SandboxError> {
        let text = std::fs::read_to_string(path).map_err(|source| SandboxError::Read {
            path: path.to_owned(),
            source,
        })?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        let mut config = if is_toml {
            Self::from_toml(&text)?
        } else {
            Self::from_json(&text)?
        };
        // A templates file named in a config file is found next to it.
        if let TemplatesSource::File(file) = &mut config.templates
            && file.is_relative()
            && let Some(dir) = path.parent()
        {
            *file = dir.join(&*file);
        }
        Ok(config)
    }

    /// Parse TOML.
    pub fn from_toml(text: &str) -> Result<Self, SandboxError> {
        toml::from_str(text).map_err(|e| SandboxError::Config(e.to_string()))
    }

    /// Parse JSON.
    pub fn from_json(text: &str) -> Result<Self, SandboxError> {
        serde_json::from_str(text).map_err(|e| SandboxError::Config(e.to_string()))
    }

    /// Refuse settings the sandbox cannot honour.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |m: String| Err(SandboxError::Config(m));
        let mut ids = HashSet::new();
        for p in &self.phone_numbers {
            if p.id.is_empty() || !p.id.bytes().all(|b| b.is_ascii_digit()) {
                return bad(format!("phone number id {:?} must be digits", p.id));
            }
            if !ids.insert(&p.id) {
                return bad(format!("phone number id {} appears twice", p.id));
            }
            if p.waba_id.is_empty() || p.access_token.0.is_empty() {
                return bad(format!(
                    "phone number {} needs a waba_id and an access_token",
                    p.id
                ));
            }
            if p.throughput_mps
                .is_some_and(|r| !(r > 0.0 && r.is_finite()))
            {
                return bad(format!("phone number {}: throughput_mps must be > 0", p.id));
            }
        }
        let l = &self.limits;
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !positive(l.default_throughput_mps) || !positive(l.throughput_burst_seconds) {
            return bad("throughput rate and burst must be > 0".to_owned());
        }
        if l.pair_rate_interval_ms == 0 || l.pair_rate_burst == 0 {
            return bad("pair rate interval and burst must be > 0".to_owned());
        }
        let w = &self.webhook;
        if w.max_batch == 0 || w.concurrency == 0 || w.retry.max_attempts == 0 {
            return bad("webhook max_batch, concurrency and retry.max_attempts must be > 0".into());
        }
        if !(w.retry.multiplier >= 1.0 && w.retry.multiplier.is_finite()) {
            return bad("webhook retry.multiplier must be >= 1".to_owned());
        }
        self.faults.validate().map_err(SandboxError::Config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_loads_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/sandbox.example.toml");
        let config = SandboxConfig::from_file(&path).unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.templates.load().unwrap().len(),
            9,
            "the path is relative to the file"
        );
        assert_eq!(config.phone_numbers.len(), 1);
        assert_eq!(config.webhook.delivered_after_ms, Some(300));
        assert_eq!(config.faults.errors.len(), 2);
    }

    #[test]
    fn never_turns_a_status_off_in_toml_and_json() {
        let toml = SandboxConfig::from_toml("[webhook]\nread_after_ms = \"never\"").unwrap();
        assert_eq!(toml.webhook.read_after_ms, None);
        assert_eq!(
            toml.webhook.delivered_after_ms,
            Some(300),
            "others keep their default"
        );
        let json =
            SandboxConfig::from_json(r#"{"webhook": {"delivered_after_ms": null}}"#).unwrap();
        assert_eq!(json.webhook.delivered_after_ms, None);
        assert!(SandboxConfig::from_toml("[webhook]\nread_after_ms = \"soon\"").is_err());
    }

    #[test]
    fn unknown_fields_and_impossible_values_are_refused() {
        assert!(SandboxConfig::from_toml("sed = 1").is_err());
        let mut c = SandboxConfig::from_toml("[limits]\npair_rate_burst = 0").unwrap();
        assert!(c.validate().is_err());
        c.limits.pair_rate_burst = 1;
        c.phone_numbers.push(PhoneNumberConfig {
            id: "12a".into(),
            display_phone_number: "1".into(),
            waba_id: "1".into(),
            access_token: "t".into(),
            throughput_mps: None,
        });
        assert!(c.validate().is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = SandboxConfig::from_toml("[webhook]\napp_secret = \"hunter2\"").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
