//! `wa dev`'s configuration: one TOML file (`--config`, see `wa.example.toml`), then
//! environment overrides, then flags. Without a file, the demo configuration.
//!
//! Everything is checked here, once, so a bad file stops `wa dev` before it opens
//! the store: the file's path and the offending key are named in the error.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wa_sandbox::SandboxConfig;
use wa_shared::adapters::graph::{DEFAULT_CONNECT_TIMEOUT, GRAPH_API_VERSION, GraphConfig};
use wa_shared::domain::LifecyclePolicy;
use wa_shared::domain::PhoneNumberId;
use wa_shared::domain::TenantId;
use wa_shared::domain::quota::IntakeQuota;
use wa_shared::domain::template::TemplateCatalog;
use wa_shared::domain::tenant::ApiKeyHash;
use wa_shared::domain::tenant::{OnAmbiguous, default_opt_in_keywords, default_opt_out_keywords};
use wa_shared::domain::validation::FormattingPolicy;

use crate::events::{EndpointConfig, EventsSettings};
use crate::server::GatewayLimits;

/// Default address of the HTTP server.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default SQLite file (relative to the working directory).
pub const DEFAULT_DATA: &str = ".wa/dev.sqlite";
/// The demo tenant's API key (printed by `wa dev`; obviously not a secret).
pub const DEMO_API_KEY: &str = "wa_demo_key";
/// The demo verify token of the webhook handshake.
pub const DEMO_VERIFY_TOKEN: &str = "wa_demo_verify";
/// The token reference every tenant uses by default: `wa dev` answers it with its
/// embedded sandbox's access token.
pub const SANDBOX_TOKEN_REF: &str = "dev:sandbox";
/// Prefix of the per-tenant references `wa dev` answers from `[[tenants]] token`.
pub const TENANT_TOKEN_REF_PREFIX: &str = "dev:tenant:";
/// Name of a tenant's send queue in the SQLite file (`wa tenants add --data` uses it too).
pub fn send_queue_name(tenant: &TenantId) -> String {
    format!("send-{tenant}")
}
/// Name of the webhook inbox queue in the SQLite file.
pub const INBOX_QUEUE: &str = "webhook-inbox";

const DEMO_TEMPLATES: &str = include_str!("demo/templates.json");
const DEMO_PHONE_NUMBER_ID: &str = "106540352242922";
const DEMO_DISPLAY_NUMBER: &str = "15550783881";
const DEMO_WABA_ID: &str = "102290129340398";

/// A configuration problem, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of this shape (the message names the key).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, with line and key.
        message: String,
    },
    /// A value is unusable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// The file as written; every section optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DevFile {
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    graph: GraphSection,
    webhook: WebhookSection,
    sandbox: SandboxSection,
    sender: SenderSection,
    reconciler: ReconcilerSection,
    lifecycle: LifecycleSection,
    store: StoreSection,
    events: EventsSection,
    gateway: GatewaySection,
    tenants: Vec<TenantSection>,
}

/// `[gateway]`: limits of the HTTP server (`crate::server`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct GatewaySection {
    header_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct GraphSection {
    base_url: Option<String>,
    api_version: Option<String>,
    timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WebhookSection {
    app_secret: Option<String>,
    verify_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SandboxSection {
    listen: Option<SocketAddr>,
    /// Everything else is a `SandboxConfig` (faults, limits, webhook timings, seed).
    #[serde(flatten)]
    settings: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SenderSection {
    max_attempts: Option<u32>,
    max_age_ms: Option<u64>,
    concurrency: Option<usize>,
    visibility_timeout_ms: Option<u64>,
    hold_probe_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ReconcilerSection {
    interval_ms: Option<u64>,
    budget_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LifecycleSection {
    lease_ms: Option<u64>,
    queued_grace_ms: Option<u64>,
    ambiguous_grace_ms: Option<u64>,
    webhook_horizon_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StoreSection {
    synchronous: Option<String>,
}

/// `[events]`: the local dispatcher of events to the tenants' endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EventsSection {
    time_scale: Option<f64>,
    disable_after_ms: Option<u64>,
    timeout_ms: Option<u64>,
    max_in_flight: Option<usize>,
    poll_interval_ms: Option<u64>,
}

/// `[tenants.intake_quota]` (or `intake_quota = {...}`): what intake accepts from a
/// tenant; a key left out takes the default (50/s, burst 100, no daily cap).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct QuotaSection {
    requests_per_second: Option<u32>,
    burst: Option<u32>,
    messages_per_day: Option<u32>,
}

/// `[[tenants.endpoints]]`: one signed HTTP endpoint of a tenant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointSection {
    url: String,
    secret: String,
    #[serde(default)]
    types: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantSection {
    id: String,
    #[serde(default)]
    api_keys: Vec<String>,
    phone_number_id: String,
    /// Further numbers of the tenant (a send chooses one with `from`).
    #[serde(default)]
    other_phone_number_ids: Vec<String>,
    #[serde(default)]
    display_phone_number: Option<String>,
    waba_id: String,
    /// The Graph token itself (real Graph API only; keep such a file out of git).
    #[serde(default)]
    token: Option<String>,
    /// Where the token lives instead (`env:VAR`).
    #[serde(default)]
    token_ref: Option<String>,
    #[serde(default)]
    max_concurrency: Option<u32>,
    #[serde(default)]
    throughput_mps: Option<u32>,
    #[serde(default)]
    intake_quota: Option<QuotaSection>,
    #[serde(default)]
    formatting: FormattingPolicy,
    #[serde(default)]
    on_ambiguous: OnAmbiguous,
    #[serde(default)]
    marketing_messages_api: bool,
    #[serde(default)]
    templates: Option<PathBuf>,
    #[serde(default)]
    opt_out_keywords: Option<Vec<String>>,
    #[serde(default)]
    opt_in_keywords: Option<Vec<String>>,
    #[serde(default)]
    endpoints: Vec<EndpointSection>,
}

/// Where sends go.
#[derive(Debug, Clone)]
pub enum GraphTarget {
    /// The embedded sandbox, configured from the tenants, posting webhooks to our `/webhook`.
    Sandbox {
        /// Where the sandbox listens (port 0: any free port).
        listen: SocketAddr,
        /// Faults, limits, webhook timings; phone numbers and templates are filled in at start.
        settings: Box<SandboxConfig>,
    },
    /// A Graph API at this base URL: Meta's, or a `wa sandbox` started separately.
    External,
}

/// One tenant, checked.
#[derive(Debug, Clone)]
pub struct DevTenant {
    /// Its id.
    pub id: TenantId,
    /// API keys that authenticate as it (stored hashed).
    pub api_keys: Vec<SecretString>,
    /// The business phone number sends go from by default.
    pub phone_number_id: PhoneNumberId,
    /// Its further numbers: a send may choose one with `from`.
    pub other_phone_number_ids: Vec<PhoneNumberId>,
    /// The number as Meta shows it (the sandbox puts it in webhooks).
    pub display_phone_number: String,
    /// The WhatsApp Business Account.
    pub waba_id: String,
    /// Where its Graph token comes from.
    pub token_ref: String,
    /// The token itself, when the file gave one (answered for `token_ref`).
    pub token: Option<SecretString>,
    /// Batches of its queue handled at once (the event source mapping's MaximumConcurrency).
    pub max_concurrency: u32,
    /// Messages per second its number may send.
    pub throughput_mps: u32,
    /// What intake accepts from it: requests per second with a burst, messages per day.
    pub intake_quota: IntakeQuota,
    /// Strict or sanitize.
    pub formatting: FormattingPolicy,
    /// What happens to a send whose answer was lost.
    pub on_ambiguous: OnAmbiguous,
    /// Send MARKETING templates through `/marketing_messages` (Marketing Messages API).
    pub marketing_messages_api: bool,
    /// Its templates, in Meta's JSON.
    pub templates: TemplateCatalog,
    /// Opt-out keywords of inbound messages.
    pub opt_out_keywords: Vec<String>,
    /// Opt-in keywords.
    pub opt_in_keywords: Vec<String>,
    /// Its signed HTTP endpoints for events (`[[tenants.endpoints]]`).
    pub endpoints: Vec<EndpointConfig>,
}

/// Everything `wa dev` runs with, checked.
#[derive(Debug, Clone)]
pub struct DevConfig {
    /// Where the HTTP server listens (port 0: any free port).
    pub listen: SocketAddr,
    /// The SQLite file.
    pub data: PathBuf,
    /// Base URL, version and timeouts of the Graph client (the sandbox's URL is filled in
    /// at start when the sandbox is embedded).
    pub graph: GraphConfig,
    /// Embedded sandbox or an external Graph API.
    pub target: GraphTarget,
    /// The app secret webhooks are signed with.
    pub app_secret: SecretString,
    /// Whether the app secret was generated for this run (printed then).
    pub app_secret_generated: bool,
    /// The verify token of the handshake.
    pub verify_token: SecretString,
    /// Records of one batch in flight at once.
    pub send_concurrency: usize,
    /// Wait between two probes of a held tenant (`[sender] hold_probe_ms`).
    pub hold_probe_interval: Duration,
    /// How long a received queue message stays hidden (the queue's visibility timeout).
    pub visibility_timeout: Duration,
    /// Time between reconciler runs.
    pub reconcile_every: Duration,
    /// The reconciler's work budget per run.
    pub reconcile_budget: Duration,
    /// Leases, graces and horizons.
    pub lifecycle: LifecyclePolicy,
    /// fsync every commit (`full`) or only at checkpoints (`normal`, survives a process kill).
    pub synchronous_full: bool,
    /// The tenants of the file (or the demo tenant).
    pub tenants: Vec<DevTenant>,
    /// The event dispatcher's retry time scale, timeouts and limits (`[events]`).
    pub events: EventsSettings,
    /// The HTTP server's header read timeout and connection cap (`[gateway]`).
    pub gateway: GatewayLimits,
    /// Whether this is the demo configuration (no file).
    pub demo: bool,
}

impl DevConfig {
    /// The demo: tenant `demo`, key `wa_demo_key`, three templates, embedded sandbox.
    pub fn demo() -> Result<Self, ConfigError> {
        let file = DevFile {
            tenants: vec![TenantSection {
                id: "demo".into(),
                api_keys: vec![DEMO_API_KEY.into()],
                phone_number_id: DEMO_PHONE_NUMBER_ID.into(),
                other_phone_number_ids: Vec::new(),
                display_phone_number: Some(DEMO_DISPLAY_NUMBER.into()),
                waba_id: DEMO_WABA_ID.into(),
                token: None,
                token_ref: None,
                max_concurrency: None,
                throughput_mps: None,
                intake_quota: None,
                formatting: FormattingPolicy::Strict,
                on_ambiguous: OnAmbiguous::Fail,
                marketing_messages_api: false,
                templates: None,
                opt_out_keywords: None,
                opt_in_keywords: None,
                endpoints: Vec::new(),
            }],
            webhook: WebhookSection {
                app_secret: None,
                verify_token: Some(DEMO_VERIFY_TOKEN.into()),
            },
            ..DevFile::default()
        };
        let mut config = Self::resolve(file, Path::new("."), &|_| None)?;
        config.demo = true;
        Ok(config)
    }

    /// Read `path`, then apply overrides from the environment.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_file_with_env(path, &|k| std::env::var(k).ok())
    }

    /// [`Self::from_file`] with the environment read through `env` (tests).
    pub fn from_file_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: DevFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::resolve(file, base, env)
    }

    /// The demo, with the environment overrides applied (no file at all).
    pub fn demo_with_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::demo()?;
        config.apply_env(env)?;
        Ok(config)
    }

    fn resolve(
        file: DevFile,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let relative = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut lifecycle = lifecycle(&file.lifecycle)?;
        // The retry budget is written under [sender] and shared with the reconciler.
        lifecycle.max_attempts = file.sender.max_attempts.unwrap_or(5).max(1);
        lifecycle.max_age = Duration::from_millis(file.sender.max_age_ms.unwrap_or(24 * 3_600_000));
        let timeout = Duration::from_millis(file.graph.timeout_ms.unwrap_or(10_000));
        let graph = GraphConfig {
            base_url: file.graph.base_url.clone().unwrap_or_default(),
            api_version: file
                .graph
                .api_version
                .clone()
                .unwrap_or_else(|| GRAPH_API_VERSION.to_owned()),
            // The connect limit must stay below the total one (GraphConfig's rule).
            connect_timeout: file.graph.connect_timeout_ms.map_or(
                DEFAULT_CONNECT_TIMEOUT.min(timeout / 2),
                Duration::from_millis,
            ),
            timeout,
        };
        let sandbox_settings = sandbox_settings(file.sandbox.settings)?;
        let target = GraphTarget::Sandbox {
            listen: file
                .sandbox
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            settings: Box::new(sandbox_settings),
        };
        let mut tenants = Vec::with_capacity(file.tenants.len());
        for (i, t) in file.tenants.into_iter().enumerate() {
            tenants.push(tenant(t, i, &relative)?);
        }
        if tenants.is_empty() {
            return Err(invalid("at least one [[tenants]] entry is needed"));
        }
        let (app_secret, generated) = match file.webhook.app_secret {
            Some(s) if !s.trim().is_empty() => (SecretString::from(s), false),
            _ => (SecretString::from(generate_secret()?), true),
        };
        let synchronous_full = match file.store.synchronous.as_deref() {
            None | Some("normal") => false,
            Some("full") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "store.synchronous must be \"full\" or \"normal\", not {other:?}"
                )));
            }
        };
        let events = events_settings(&file.events)?;
        let mut config = Self {
            listen: file.listen.unwrap_or_else(default_listen),
            data: file
                .data
                .map_or_else(|| PathBuf::from(DEFAULT_DATA), relative),
            graph,
            target,
            app_secret,
            app_secret_generated: generated,
            verify_token: SecretString::from(
                file.webhook
                    .verify_token
                    .unwrap_or_else(|| DEMO_VERIFY_TOKEN.to_owned()),
            ),
            send_concurrency: file.sender.concurrency.unwrap_or(10).max(1),
            hold_probe_interval: file
                .sender
                .hold_probe_ms
                .map_or(wa_shared::app::sender::DEFAULT_HOLD_PROBE_INTERVAL, |ms| {
                    Duration::from_millis(ms.max(1))
                }),
            visibility_timeout: Duration::from_millis(
                file.sender.visibility_timeout_ms.unwrap_or(30_000),
            ),
            reconcile_every: Duration::from_millis(file.reconciler.interval_ms.unwrap_or(60_000)),
            reconcile_budget: Duration::from_millis(file.reconciler.budget_ms.unwrap_or(45_000)),
            lifecycle,
            synchronous_full,
            tenants,
            events,
            gateway: GatewayLimits::from_file(
                file.gateway.header_timeout_ms,
                file.gateway.max_connections,
            )?,
            demo: false,
        };
        config.apply_env(env)?;
        Ok(config)
    }

    /// `WA_GRAPH_BASE_URL`, `WA_GRAPH_API_VERSION`, `WA_APP_SECRET`, `WA_VERIFY_TOKEN`
    /// override the file; then everything is checked.
    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let var = |k: &str| {
            env(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if let Some(url) = var("WA_GRAPH_BASE_URL") {
            self.graph.base_url = url;
        }
        if let Some(version) = var("WA_GRAPH_API_VERSION") {
            self.graph.api_version = version;
        }
        if let Some(secret) = var("WA_APP_SECRET") {
            self.app_secret = SecretString::from(secret);
            self.app_secret_generated = false;
        }
        if let Some(token) = var("WA_VERIFY_TOKEN") {
            self.verify_token = SecretString::from(token);
        }
        if !self.graph.base_url.is_empty() {
            self.target = GraphTarget::External;
        }
        self.check()
    }

    fn check(&self) -> Result<(), ConfigError> {
        if matches!(self.target, GraphTarget::External) {
            if self.app_secret_generated {
                return Err(invalid(
                    "with graph.base_url set, webhook.app_secret (or WA_APP_SECRET) must be the \
                     Meta app's secret: webhooks come from outside",
                ));
            }
            if let Some(t) = self
                .tenants
                .iter()
                .find(|t| t.token_ref == SANDBOX_TOKEN_REF)
            {
                return Err(invalid(format!(
                    "tenant {}: with graph.base_url set, give its Graph token (token or token_ref)",
                    t.id
                )));
            }
            // Checks the URL and the version; the sandbox's own URL is checked at start.
            self.graph
                .messages_url_prefix()
                .map_err(|e| invalid(format!("graph: {e}")))?;
        }
        if self.verify_token.expose_secret().trim().is_empty() {
            return Err(invalid("webhook.verify_token must not be empty"));
        }
        if self.graph.timeout.is_zero() || self.graph.connect_timeout >= self.graph.timeout {
            return Err(invalid(
                "graph.connect_timeout_ms must be less than graph.timeout_ms",
            ));
        }
        if self.lifecycle.lease <= self.graph.timeout {
            return Err(invalid(
                "lifecycle.lease_ms must exceed graph.timeout_ms: a live send must never lose its claim",
            ));
        }
        let max_visibility = wa_shared::ports::queue::MAX_VISIBILITY_TIMEOUT;
        if self.visibility_timeout.is_zero() || self.visibility_timeout > max_visibility {
            return Err(invalid(
                "sender.visibility_timeout_ms must be 1 ms ..= 12 hours",
            ));
        }
        if self.reconcile_every.is_zero() {
            return Err(invalid("reconciler.interval_ms must be > 0"));
        }
        let mut seen = std::collections::HashSet::new();
        // A phone number or an API key routes to one tenant only: on two, webhooks and
        // requests would silently land on whichever was written last.
        let mut numbers = std::collections::HashMap::new();
        let mut keys = std::collections::HashMap::new();
        for t in &self.tenants {
            if !seen.insert(t.id.as_str()) {
                return Err(invalid(format!("tenant {} is listed twice", t.id)));
            }
            for number in std::iter::once(&t.phone_number_id).chain(&t.other_phone_number_ids) {
                if let Some(other) = numbers.insert(number.as_str(), t.id.as_str()) {
                    return Err(invalid(if other == t.id.as_str() {
                        format!("phone_number_id {number} is listed twice on tenant {other}")
                    } else {
                        format!(
                            "phone_number_id {number} is on tenants {other} and {}",
                            t.id
                        )
                    }));
                }
            }
            for key in &t.api_keys {
                let hash = ApiKeyHash::of_key(key.expose_secret());
                if let Some(other) = keys.insert(hash, t.id.as_str()) {
                    return Err(invalid(format!(
                        "an API key of tenant {} is also a key of tenant {other}",
                        t.id
                    )));
                }
            }
        }
        Ok(())
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn lifecycle(section: &LifecycleSection) -> Result<LifecyclePolicy, ConfigError> {
    let mut policy = LifecyclePolicy::default();
    let set = |field: &mut Duration, value: Option<u64>, name: &str| {
        if let Some(ms) = value {
            if ms == 0 {
                return Err(invalid(format!("lifecycle.{name} must be > 0")));
            }
            *field = Duration::from_millis(ms);
        }
        Ok(())
    };
    set(&mut policy.lease, section.lease_ms, "lease_ms")?;
    set(
        &mut policy.queued_grace,
        section.queued_grace_ms,
        "queued_grace_ms",
    )?;
    set(
        &mut policy.ambiguous_grace,
        section.ambiguous_grace_ms,
        "ambiguous_grace_ms",
    )?;
    set(
        &mut policy.webhook_horizon,
        section.webhook_horizon_ms,
        "webhook_horizon_ms",
    )?;
    Ok(policy)
}

fn events_settings(section: &EventsSection) -> Result<EventsSettings, ConfigError> {
    let mut settings = EventsSettings::default();
    if let Some(scale) = section.time_scale {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(invalid("events.time_scale must be a number > 0"));
        }
        settings.time_scale = scale;
    }
    if let Some(ms) = section.disable_after_ms {
        if ms == 0 {
            return Err(invalid("events.disable_after_ms must be > 0"));
        }
        settings.disable_after = Duration::from_millis(ms);
    }
    if let Some(ms) = section.timeout_ms {
        if !(1..=10_000).contains(&ms) {
            return Err(invalid(
                "events.timeout_ms must be 1 ..= 10000 (10 s at most)",
            ));
        }
        settings.timeout = Duration::from_millis(ms);
    }
    if let Some(n) = section.max_in_flight {
        if !(1..=64).contains(&n) {
            return Err(invalid("events.max_in_flight must be 1 ..= 64"));
        }
        settings.max_in_flight = n;
    }
    if let Some(ms) = section.poll_interval_ms {
        if ms == 0 {
            return Err(invalid("events.poll_interval_ms must be > 0"));
        }
        settings.poll_interval = Duration::from_millis(ms);
    }
    Ok(settings)
}

/// A tenant's endpoints, checked; an error names the tenant and the endpoint (by
/// position and URL), never the secret.
fn endpoints(
    tenant: &TenantId,
    index: usize,
    sections: Vec<EndpointSection>,
) -> Result<Vec<EndpointConfig>, ConfigError> {
    let mut out: Vec<EndpointConfig> = Vec::with_capacity(sections.len());
    for (i, e) in sections.into_iter().enumerate() {
        let at = format!(
            "tenants[{index}] ({tenant}) endpoints[{i}] ({})",
            e.url.trim()
        );
        let endpoint = EndpointConfig::parse(tenant, &e.url, &e.secret, e.types.as_deref())
            .map_err(|err| invalid(format!("{at}: {err}")))?;
        if out.iter().any(|o| o.url == endpoint.url) {
            return Err(invalid(format!("{at}: the URL is listed twice")));
        }
        out.push(endpoint);
    }
    Ok(out)
}

fn sandbox_settings(table: toml::Table) -> Result<SandboxConfig, ConfigError> {
    let settings: SandboxConfig = table
        .try_into()
        .map_err(|e: toml::de::Error| invalid(format!("[sandbox]: {e}")))?;
    // These come from [[tenants]] and [webhook]: two sources would disagree.
    if !settings.phone_numbers.is_empty() {
        return Err(invalid(
            "[sandbox] phone_numbers come from [[tenants]]; remove them",
        ));
    }
    if !matches!(settings.templates, wa_sandbox::TemplatesSource::None) {
        return Err(invalid(
            "[sandbox] templates come from each tenant's `templates` file; remove them",
        ));
    }
    if settings.webhook.url.is_some() || !settings.webhook.app_secret.expose().is_empty() {
        return Err(invalid(
            "[sandbox.webhook] url and app_secret are set by wa dev (its own /webhook, [webhook] app_secret)",
        ));
    }
    settings
        .faults
        .validate()
        .map_err(|e| invalid(format!("[sandbox.faults]: {e}")))?;
    Ok(settings)
}

fn tenant(
    t: TenantSection,
    index: usize,
    relative: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<DevTenant, ConfigError> {
    let at = |what: &str| format!("tenants[{index}].{what}");
    let id = TenantId::parse(&t.id).map_err(|e| invalid(format!("{}: {e}", at("id"))))?;
    let phone_number_id = PhoneNumberId::parse(&t.phone_number_id)
        .map_err(|e| invalid(format!("{}: {e}", at("phone_number_id"))))?;
    let other_phone_number_ids = t
        .other_phone_number_ids
        .iter()
        .enumerate()
        .map(|(i, n)| {
            PhoneNumberId::parse(n)
                .map_err(|e| invalid(format!("{}[{i}]: {e}", at("other_phone_number_ids"))))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if t.waba_id.is_empty() || !t.waba_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("{}: digits expected", at("waba_id"))));
    }
    if t.api_keys.iter().any(|k| k.trim().is_empty()) {
        return Err(invalid(format!("{}: empty key", at("api_keys"))));
    }
    let templates = match &t.templates {
        Some(path) => {
            let path = relative(path.clone());
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            TemplateCatalog::from_json(&text)
                .map_err(|e| invalid(format!("{} ({}): {e}", at("templates"), path.display())))?
        }
        None => TemplateCatalog::from_json(DEMO_TEMPLATES)
            .map_err(|e| invalid(format!("built-in demo templates: {e}")))?,
    };
    let (token_ref, token) = match (t.token, t.token_ref) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "{}: give token or token_ref, not both",
                at("token")
            )));
        }
        (Some(token), None) => (
            format!("{TENANT_TOKEN_REF_PREFIX}{id}"),
            Some(SecretString::from(token)),
        ),
        (None, Some(reference)) => (reference, None),
        (None, None) => (SANDBOX_TOKEN_REF.to_owned(), None),
    };
    let max_concurrency = t.max_concurrency.unwrap_or(2);
    if !(1..=1000).contains(&max_concurrency) {
        return Err(invalid(format!("{}: 1..=1000", at("max_concurrency"))));
    }
    let throughput_mps = t.throughput_mps.unwrap_or(80);
    if throughput_mps == 0 {
        return Err(invalid(format!("{}: must be > 0", at("throughput_mps"))));
    }
    let intake_quota = intake_quota(t.intake_quota.unwrap_or_default())
        .map_err(|e| invalid(format!("{}: {e}", at("intake_quota"))))?;
    let endpoints = endpoints(&id, index, t.endpoints)?;
    Ok(DevTenant {
        endpoints,
        display_phone_number: t
            .display_phone_number
            .unwrap_or_else(|| phone_number_id.as_str().to_owned()),
        id,
        api_keys: t.api_keys.into_iter().map(SecretString::from).collect(),
        phone_number_id,
        other_phone_number_ids,
        waba_id: t.waba_id,
        token_ref,
        token,
        max_concurrency,
        throughput_mps,
        intake_quota,
        formatting: t.formatting,
        on_ambiguous: t.on_ambiguous,
        marketing_messages_api: t.marketing_messages_api,
        templates,
        opt_out_keywords: t.opt_out_keywords.unwrap_or_else(default_opt_out_keywords),
        opt_in_keywords: t.opt_in_keywords.unwrap_or_else(default_opt_in_keywords),
    })
}

/// The quota a section asks for: its keys over the defaults, checked.
fn intake_quota(
    section: QuotaSection,
) -> Result<IntakeQuota, wa_shared::domain::quota::InvalidQuota> {
    let defaults = IntakeQuota::default();
    let quota = IntakeQuota {
        requests_per_second: section
            .requests_per_second
            .unwrap_or(defaults.requests_per_second),
        burst: section.burst.unwrap_or(defaults.burst),
        messages_per_day: section.messages_per_day,
    };
    quota.check()?;
    Ok(quota)
}

/// A random app secret for a run without one: 128 bits from the OS, in hex.
fn generate_secret() -> Result<String, ConfigError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| invalid(format!("no randomness for the app secret: {e}")))?;
    Ok(format!("wa_dev_{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DevConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wa.toml");
        std::fs::write(&path, text).unwrap();
        DevConfig::from_file_with_env(&path, &|_| None)
    }

    const ONE_TENANT: &str = r#"
        [[tenants]]
        id = "acme"
        api_keys = ["k1"]
        phone_number_id = "1000001"
        waba_id = "2000001"
    "#;

    #[test]
    fn the_demo_has_one_tenant_with_the_three_demo_templates() {
        let demo = DevConfig::demo().unwrap();
        assert!(demo.demo);
        assert_eq!(demo.tenants.len(), 1);
        let t = &demo.tenants[0];
        assert_eq!(t.id.as_str(), "demo");
        assert_eq!(t.api_keys[0].expose_secret(), DEMO_API_KEY);
        let mut names: Vec<_> = t.templates.iter().map(|t| t.name.clone()).collect();
        names.sort();
        assert_eq!(names, ["login_code", "order_shipped", "welcome_offer"]);
        assert_eq!(demo.verify_token.expose_secret(), DEMO_VERIFY_TOKEN);
        assert!(demo.app_secret_generated);
        assert!(matches!(demo.target, GraphTarget::Sandbox { .. }));
        assert_eq!(demo.listen, default_listen());
    }

    #[test]
    fn generated_app_secrets_differ_between_runs() {
        assert_ne!(generate_secret().unwrap(), generate_secret().unwrap());
    }

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let c = parse(ONE_TENANT).unwrap();
        let t = &c.tenants[0];
        assert_eq!(t.token_ref, SANDBOX_TOKEN_REF);
        assert_eq!(t.max_concurrency, 2);
        assert_eq!(t.throughput_mps, 80);
        assert_eq!(t.intake_quota, IntakeQuota::default());
        assert!(!t.marketing_messages_api);
        assert_eq!(c.reconcile_every, Duration::from_secs(60));
        assert!(!c.synchronous_full);
    }

    #[test]
    fn a_tenant_can_send_marketing_through_the_marketing_messages_api() {
        let c = parse(&format!("{ONE_TENANT}marketing_messages_api = true\n")).unwrap();
        assert!(c.tenants[0].marketing_messages_api);
    }

    #[test]
    fn a_tenants_intake_quota_is_read_over_the_defaults_and_checked() {
        let c = parse(&format!(
            "{ONE_TENANT}intake_quota = {{ requests_per_second = 5, messages_per_day = 1000 }}\n"
        ))
        .unwrap();
        let q = c.tenants[0].intake_quota;
        assert_eq!(
            (q.requests_per_second, q.burst, q.messages_per_day),
            (5, 100, Some(1000))
        );
        let c = parse(&format!("{ONE_TENANT}[tenants.intake_quota]\nburst = 7\n")).unwrap();
        assert_eq!(c.tenants[0].intake_quota.burst, 7);
        for (quota, needle) in [
            ("requests_per_second = 0", "requests_per_second must be"),
            ("burst = 0", "burst must be"),
            ("messages_per_day = 0", "messages_per_day must be"),
            ("per_minute = 3", "per_minute"),
        ] {
            let e = parse(&format!("{ONE_TENANT}intake_quota = {{ {quota} }}\n")).unwrap_err();
            let e = e.to_string();
            assert!(e.contains(needle), "{needle}: {e}");
            assert!(
                e.contains("tenants[0].intake_quota") || needle == "per_minute",
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = parse(&format!("{ONE_TENANT}\nlisten_port = 3")).unwrap_err();
        assert!(e.to_string().contains("listen_port"), "{e}");
        let e = parse(&format!("{ONE_TENANT}\n[sandbox.faults]\nbogus = 1")).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn sandbox_settings_pass_through_and_phone_numbers_are_refused() {
        let c = parse(&format!(
            "{ONE_TENANT}\n[sandbox]\nseed = 7\n[sandbox.faults]\naccept_then_timeout_rate = 0.5"
        ))
        .unwrap();
        let GraphTarget::Sandbox { settings, .. } = &c.target else {
            panic!("sandbox expected")
        };
        assert_eq!(settings.seed, 7);
        assert!((settings.faults.accept_then_timeout_rate - 0.5).abs() < f64::EPSILON);
        let e = parse(&format!(
            "{ONE_TENANT}\n[[sandbox.phone_numbers]]\nid=\"1\"\ndisplay_phone_number=\"1\"\nwaba_id=\"1\"\naccess_token=\"x\""
        ))
        .unwrap_err();
        assert!(e.to_string().contains("phone_numbers"), "{e}");
    }

    #[test]
    fn environment_overrides_the_file_and_an_external_graph_needs_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wa.toml");
        std::fs::write(&path, ONE_TENANT).unwrap();
        let env = |k: &str| (k == "WA_GRAPH_BASE_URL").then(|| "http://127.0.0.1:9".to_owned());
        let e = DevConfig::from_file_with_env(&path, &env).unwrap_err();
        assert!(e.to_string().contains("app_secret"), "{e}");
        let env = |k: &str| match k {
            "WA_GRAPH_BASE_URL" => Some("http://127.0.0.1:9".to_owned()),
            "WA_APP_SECRET" => Some("s3cret".to_owned()),
            "WA_VERIFY_TOKEN" => Some("vt".to_owned()),
            _ => None,
        };
        let e = DevConfig::from_file_with_env(&path, &env).unwrap_err();
        assert!(e.to_string().contains("Graph token"), "{e}");
        std::fs::write(
            &path,
            ONE_TENANT.replace("waba_id", "token_ref = \"env:ACME_TOKEN\"\nwaba_id"),
        )
        .unwrap();
        let c = DevConfig::from_file_with_env(&path, &env).unwrap();
        assert!(matches!(c.target, GraphTarget::External));
        assert_eq!(c.verify_token.expose_secret(), "vt");
        assert_eq!(c.app_secret.expose_secret(), "s3cret");
        assert_eq!(c.graph.base_url, "http://127.0.0.1:9");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, needle) in [
            (ONE_TENANT.replace("acme", "Not A Tenant!"), "tenants[0].id"),
            (ONE_TENANT.replace("2000001", "x"), "tenants[0].waba_id"),
            (
                format!("{ONE_TENANT}\n[lifecycle]\nlease_ms = 100"),
                "lease_ms",
            ),
            (
                format!("{ONE_TENANT}\n[store]\nsynchronous = \"off\""),
                "store.synchronous",
            ),
            (format!("{ONE_TENANT}{ONE_TENANT}"), "listed twice"),
            (
                format!(
                    "{ONE_TENANT}{}",
                    ONE_TENANT.replace("acme", "beta").replace("k1", "k2")
                ),
                "phone_number_id 1000001 is on tenants acme and beta",
            ),
            (
                format!(
                    "{ONE_TENANT}{}",
                    ONE_TENANT
                        .replace("acme", "beta")
                        .replace("1000001", "1000002")
                ),
                "an API key of tenant beta is also a key of tenant acme",
            ),
            (String::new(), "[[tenants]]"),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn endpoints_and_the_events_section_are_read() {
        let secret = crate::events::WebhookSecret::from_key(&[9u8; 32]).to_whsec();
        let c = parse(&format!(
            "{ONE_TENANT}\n[[tenants.endpoints]]\nurl = \"http://127.0.0.1:9000/hooks\"\n\
             secret = \"{secret}\"\ntypes = [\"message.delivered\", \"message.failed\"]\n\
             [[tenants.endpoints]]\nurl = \"https://hooks.example.com/wa\"\nsecret = \"{secret}\"\n\
             [events]\ntime_scale = 0.001\ntimeout_ms = 500\nmax_in_flight = 2\n\
             disable_after_ms = 60000\npoll_interval_ms = 20\n"
        ))
        .unwrap();
        let eps = &c.tenants[0].endpoints;
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].url, "http://127.0.0.1:9000/hooks");
        assert_eq!(eps[0].types.as_ref().map(|t| t.len()), Some(2));
        assert!(eps[1].types.is_none());
        assert!((c.events.time_scale - 0.001).abs() < f64::EPSILON);
        assert_eq!(c.events.timeout, Duration::from_millis(500));
        assert_eq!(c.events.max_in_flight, 2);
        assert_eq!(c.events.disable_after, Duration::from_secs(60));
        assert_eq!(c.events.poll_interval, Duration::from_millis(20));
        let defaults = parse(ONE_TENANT).unwrap();
        assert_eq!(defaults.events, EventsSettings::default());
        assert!(defaults.tenants[0].endpoints.is_empty());
    }

    #[test]
    fn a_bad_endpoint_names_its_tenant_and_endpoint_but_never_the_secret() {
        let good = crate::events::WebhookSecret::from_key(&[9u8; 32]).to_whsec();
        let endpoint = |url: &str, secret: &str, extra: &str| {
            format!(
                "{ONE_TENANT}\n[[tenants.endpoints]]\nurl = \"{url}\"\nsecret = \"{secret}\"\n{extra}"
            )
        };
        for (text, needles) in [
            (
                endpoint("http://127.0.0.1:1/", "whsec_c2VjcmV0LXNob3J0", ""),
                vec![
                    "tenants[0] (acme) endpoints[0] (http://127.0.0.1:1/)",
                    "secret",
                    "24 to 64",
                ],
            ),
            (
                endpoint("http://127.0.0.1:1/", "not-a-whsec-secret-at-all", ""),
                vec!["(acme) endpoints[0]", "whsec_"],
            ),
            (
                endpoint("http://127.0.0.1:1/", "whsec_!!!!not-base64!!!!", ""),
                vec!["(acme) endpoints[0]", "base64"],
            ),
            (
                endpoint("http://hooks.example.com/", &good, ""),
                vec!["(acme) endpoints[0] (http://hooks.example.com/)", "https"],
            ),
            (
                endpoint("http://127.0.0.1:1/", &good, "types = [\"message.nope\"]"),
                vec!["message.nope"],
            ),
            (
                endpoint("http://127.0.0.1:1/", &good, "colour = \"red\""),
                vec!["colour"],
            ),
            (
                format!("{ONE_TENANT}\n[events]\ntime_scale = 0.0"),
                vec!["events.time_scale"],
            ),
            (
                format!("{ONE_TENANT}\n[events]\ntimeout_ms = 60000"),
                vec!["events.timeout_ms"],
            ),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            for needle in needles {
                assert!(e.contains(needle), "{needle}: {e}");
            }
            assert!(
                !e.contains("c2VjcmV0LXNob3J0") && !e.contains(&good[6..]),
                "{e}"
            );
        }
        let twice = format!(
            "{}\n[[tenants.endpoints]]\nurl = \"http://127.0.0.1:1\"\nsecret = \"{good}\"\n",
            endpoint("http://127.0.0.1:1/", &good, "")
        );
        assert!(
            parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("listed twice")
        );
    }

    #[test]
    fn the_example_file_in_the_repo_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wa.example.toml");
        let c = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
        assert!(!c.tenants.is_empty());
        // Every example works as written: the sandbox's failing recipient is a number
        // intake accepts, so sending to it shows a failure by webhook (131026).
        let GraphTarget::Sandbox { settings, .. } = &c.target else {
            panic!("the example runs the embedded sandbox");
        };
        assert!(!settings.failing_recipients.is_empty());
        for to in &settings.failing_recipients {
            assert!(
                wa_shared::domain::PhoneNumber::parse(to).is_ok(),
                "{to} is refused by intake"
            );
        }
    }
}
