//! `wa-local`: the local runtime — the whole pipeline in one process, on one SQLite
//! file (`wa dev` starts it). The Lambda functions' handlers under a second runtime.
//!
//! The very handlers the Lambdas run, wired to the embedded adapters:
//! - an HTTP server turning requests into API Gateway v2 events for intake and the
//!   webhook ([`gateway`]);
//! - per-tenant queue pollers handing SQS-shaped batches to the sender, with the
//!   tenant's max concurrency, and one for the webhook inbox ([`pollers`]);
//! - the reconciler on a timer;
//! - the store, directory and queues in one SQLite file (`.wa/dev.sqlite`);
//! - the Graph sandbox on its own port, posting signed webhooks to our `/webhook`
//!   (or an external Graph API when `graph.base_url` is set);
//! - the event dispatcher, delivering each tenant's events to its signed HTTP
//!   endpoints (Standard Webhooks; retries, dead letters, replay) ([`events`]).
//!
//! [`start`] returns a [`DevServer`] (tests start it on port 0); [`run`] is the
//! command: start, print how to use it, serve until the shutdown future completes.

pub mod config;
pub mod events;
pub mod gateway;
pub mod pollers;
pub mod server;
pub mod status_page;

pub use config::{ConfigError, DevConfig, DevTenant, GraphTarget};

use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use wa_sandbox::{PhoneNumberConfig, Sandbox, SandboxError, Secret, TemplatesSource};
use wa_shared::adapters::graph::GraphConfigError;
use wa_shared::adapters::sqlite::{SqliteDb, SqliteError, SqliteOptions, Synchronous};
use wa_shared::adapters::tokens::StaticTokenSource;
use wa_shared::adapters::{GraphProvider, SqliteEventLog, SqliteMessageStore, SystemClock};
use wa_shared::app::reconciler::ReconcilerSettings;
use wa_shared::app::sender::{PacingPolicy, SenderSettings};
use wa_shared::app::webhook::WebhookSettings;
use wa_shared::domain::PhoneNumberId;
use wa_shared::domain::tenant::{ApiKeyEntry, ApiKeyHash, TenantProfile, TenantStatus};
use wa_shared::metrics::{Metrics, MetricsSink};
use wa_shared::ports::{
    Clock, Directory, DirectoryError, QueueError, QueueRef, QueueSpec, StoreError, WorkQueue,
};
use wa_shared::wiring::local::{self, LocalError, LocalSettings};

/// The access token every sandbox number accepts (`dev:sandbox` resolves to it).
/// Obviously not a real Graph token.
pub const SANDBOX_ACCESS_TOKEN: &str = "wa-dev-sandbox-token";

/// Why `wa dev` could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory could not be created.
    #[error("cannot create {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The SQLite file could not be opened.
    #[error("cannot open the store: {0}")]
    Sqlite(#[from] SqliteError),
    /// The message store failed.
    #[error("message store: {0}")]
    Store(#[from] StoreError),
    /// The directory failed.
    #[error("directory: {0}")]
    Directory(#[from] DirectoryError),
    /// An API key of a tenant in the file is a key of another tenant in the store
    /// (one not in the file, e.g. added by `wa tenants add --data`).
    #[error(
        "an API key of tenant {tenant} in the configuration is already a key of tenant {owner}          in the store: give {tenant} another key, or revoke it from {owner}          (wa tenants keys revoke {owner} <key> --data <store>)"
    )]
    ApiKeyTaken {
        /// The tenant of the file.
        tenant: wa_shared::domain::TenantId,
        /// The tenant the store maps the key to.
        owner: wa_shared::domain::TenantId,
    },
    /// A queue could not be created.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    /// The sandbox could not start.
    #[error("sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    /// The Graph client could not be built.
    #[error("graph client: {0}")]
    Graph(#[from] GraphConfigError),
    /// The embedded backend could not be opened.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// A listener failed.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// The event delivery state could not be opened or the endpoints registered.
    #[error("event deliveries: {0}")]
    Events(#[from] events::DeliveryError),
    /// The HTTP client of the event endpoints could not be built.
    #[error("event endpoints' HTTP client: {0}")]
    EventsClient(#[source] reqwest::Error),
}

/// A running `wa dev`. Stop it with [`DevServer::stop`]; dropping it stops the
/// background tasks without waiting for them.
pub struct DevServer {
    addr: SocketAddr,
    sandbox: Option<(Sandbox, SocketAddr)>,
    store: Arc<SqliteMessageStore>,
    event_log: Arc<SqliteEventLog>,
    deliveries: events::DeliveryStore,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    config: DevConfig,
    connections: Arc<server::ConnectionStats>,
}

impl DevServer {
    /// `http://ADDR`: the API, the webhook and the status page.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` of the embedded sandbox, if there is one.
    pub fn sandbox_url(&self) -> Option<String> {
        self.sandbox
            .as_ref()
            .map(|(_, addr)| format!("http://{addr}"))
    }

    /// The embedded sandbox's handle (counts, recorded requests, inbound messages).
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref().map(|(s, _)| s)
    }

    /// The message store (the status page and tests read it).
    pub fn store(&self) -> &Arc<SqliteMessageStore> {
        &self.store
    }

    /// The event log (the outbox the store and the webhook write events into).
    pub fn event_log(&self) -> &Arc<SqliteEventLog> {
        &self.event_log
    }

    /// The event deliveries' state (endpoints' health, dead letters, replay).
    pub fn deliveries(&self) -> &events::DeliveryStore {
        &self.deliveries
    }

    /// The HTTP server's connection counts: open, closed for a late request head,
    /// closed or waiting at the cap (`[gateway]`).
    pub fn connections(&self) -> server::ConnectionCounts {
        self.connections.counts()
    }

    /// Stop accepting requests, let in-flight batches finish, stop the sandbox.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// What `wa dev` prints at start: addresses, tenants and a curl to try.
    pub fn banner(&self) -> String {
        let url = self.url();
        let c = &self.config;
        let mut out = format!("wa dev listening on {url}\n");
        match self.sandbox_url() {
            Some(sandbox) => out.push_str(&format!(
                "sandbox listening on {sandbox} (Graph API stand-in; webhooks to {url}/webhook)\n"
            )),
            None => out.push_str(&format!(
                "graph API at {} (webhooks arrive at {url}/webhook)\n",
                c.graph.base_url
            )),
        }
        out.push_str(&format!("store        {}\n", c.data.display()));
        out.push_str(&format!("status page  {url}/\n"));
        let tenants: Vec<&str> = c.tenants.iter().map(|t| t.id.as_str()).collect();
        out.push_str(&format!("tenants      {}\n", tenants.join(", ")));
        for t in &c.tenants {
            for e in &t.endpoints {
                out.push_str(&format!("events       {} -> {}\n", t.id, e.url));
            }
        }
        if c.demo {
            out.push_str(&format!(
                "api key      {} (tenant demo)\n",
                config::DEMO_API_KEY
            ));
        }
        out.push_str(&format!(
            "verify token {}\n",
            c.verify_token.expose_secret()
        ));
        if c.app_secret_generated {
            out.push_str(&format!(
                "app secret   {} (generated for this run; set [webhook] app_secret to keep one)\n",
                c.app_secret.expose_secret()
            ));
        }
        if c.demo {
            out.push_str(&format!(
                "\nSend a message:\n  curl -sS {url}/v1/messages \\\n    -H 'Authorization: Bearer {key}' \\\n    -H 'Content-Type: application/json' \\\n    -H 'Idempotency-Key: demo-1' \\\n    -d '{{\"to\": \"+14155550123\", \"template\": {{\"name\": \"order_shipped\", \"language\": \"en_US\", \"body\": [\"Ana\", \"#1234\"], \"buttons\": [{{\"index\": 0, \"type\": \"url\", \"text\": \"ABC123\"}}]}}}}'\nThen: curl -sS {url}/v1/messages/<id> -H 'Authorization: Bearer {key}'   (or: wa status <id>)\n",
                key = config::DEMO_API_KEY
            ));
        }
        out
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Open the store, seed the directory from the configuration, start the sandbox, the
/// HTTP server on `listener`, the pollers and the reconciler.
pub async fn start(config: DevConfig, listener: TcpListener) -> Result<DevServer, DevError> {
    let addr = listener.local_addr()?;
    if let Some(dir) = config.data.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DevError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let options = SqliteOptions {
        synchronous: if config.synchronous_full {
            Synchronous::Full
        } else {
            Synchronous::Normal
        },
        ..SqliteOptions::default()
    };
    let db = SqliteDb::open(&config.data, options).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backend = local::Backend::open(db.clone(), clock.clone()).await?;
    let deliveries = events::DeliveryStore::open(db).await?;
    let store = backend.store.clone();
    let directory: Arc<dyn Directory> = backend.directory.clone();
    let queue: Arc<dyn WorkQueue> = backend.queue.clone();
    // The queues AWS has, with the poll's visibility timeout of this process.
    let spec = QueueSpec {
        visibility_timeout: config.visibility_timeout,
        ..wa_shared::queues::SEND.spec
    };
    seed_directory(&config, &*directory, &*queue, &spec, clock.now()).await?;
    let inbox_spec = QueueSpec {
        visibility_timeout: config.visibility_timeout,
        ..wa_shared::queues::WEBHOOK_INBOX.spec
    };
    let inbox = queue.ensure_queue(config::INBOX_QUEUE, &inbox_spec).await?;

    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    // Endpoints are registered before anything can log an event, so a new endpoint's
    // cursor is the end of the log as it was before this run.
    let endpoints: Vec<events::EndpointConfig> = config
        .tenants
        .iter()
        .flat_map(|t| t.endpoints.iter().cloned())
        .collect();
    let dispatcher = events::Dispatcher::new(
        deliveries.clone(),
        backend.events.clone(),
        config.events.clone(),
    )
    .map_err(DevError::EventsClient)?;
    tasks.extend(dispatcher.start(endpoints, stopped.clone()).await?);
    let mut graph = config.graph.clone();
    let mut tokens: Vec<(String, SecretString)> = config
        .tenants
        .iter()
        .filter_map(|t| t.token.clone().map(|token| (t.token_ref.clone(), token)))
        .collect();
    let sandbox = match &config.target {
        GraphTarget::Sandbox { listen, settings } => {
            let sandbox = build_sandbox(&config, settings, &*directory, addr).await?;
            let sandbox_listener = TcpListener::bind(listen).await?;
            let sandbox_addr = sandbox_listener.local_addr()?;
            graph.base_url = format!("http://{sandbox_addr}");
            tokens.push((
                config::SANDBOX_TOKEN_REF.to_owned(),
                SecretString::from(SANDBOX_ACCESS_TOKEN.to_owned()),
            ));
            let serving = sandbox.clone();
            let mut sandbox_stop = stopped.clone();
            tasks.push(tokio::spawn(async move {
                let shutdown = async move {
                    let _ = sandbox_stop.wait_for(|s| *s).await;
                };
                if let Err(e) = serving.serve(sandbox_listener, shutdown).await {
                    tracing::error!(error = %e, "the sandbox stopped");
                }
            }));
            Some((sandbox, sandbox_addr))
        }
        GraphTarget::External => None,
    };
    // Metric lines are CloudWatch's business; locally the status page shows counts.
    let ports = backend.ports(
        Metrics::new(MetricsSink::Discard, "dev"),
        config.lifecycle.clone(),
    );
    let settings = LocalSettings {
        sender: SenderSettings {
            concurrency: config.send_concurrency,
            // Meta's limits; the schedules are in the SQLite file (`backend.pacing`).
            pacing: PacingPolicy::default(),
            hold_probe_interval: config.hold_probe_interval,
        },
        webhook: WebhookSettings {
            app_secrets: vec![config.app_secret.clone()],
            verify_token: config.verify_token.clone(),
            inbox: Some(inbox.clone()),
            ..WebhookSettings::default()
        },
        reconciler: ReconcilerSettings {
            budget: config.reconcile_budget,
            ..ReconcilerSettings::default()
        },
        ..LocalSettings::default()
    };
    let functions = local::functions(
        &ports,
        backend.quotas.clone(),
        backend.pacing.clone(),
        backend.costs.clone(),
        Arc::new(GraphProvider::new(&graph)?),
        Arc::new(StaticTokenSource::new(tokens)),
        &settings,
    );

    let app = gateway::Gateway::router(functions.clone(), addr)
        .merge(status_page::router_with_costs(
            store.clone(),
            deliveries.clone(),
            directory.clone(),
            Some(backend.series.clone()),
            backend.costs.clone(),
        ))
        .fallback(gateway::not_found);
    // Header read timeout and connection cap (`[gateway]`): see `server`.
    let connections = Arc::new(server::ConnectionStats::default());
    tasks.push(tokio::spawn(server::serve(
        listener,
        app,
        config.gateway,
        connections.clone(),
        stopped.clone(),
    )));
    let mut pollers = pollers::Pollers::new(
        functions.clone(),
        config.visibility_timeout,
        stopped.clone(),
    );
    if let Some((sandbox, _)) = &sandbox {
        // A tenant added while running (`wa tenants add --data`) gets its sandbox number.
        let (sandbox, config) = (sandbox.clone(), config.clone());
        pollers = pollers.on_tenant(Arc::new(move |profile: &TenantProfile| {
            for number in profile.phone_number_ids() {
                match sandbox.add_phone_number(sandbox_number(&config, profile, number)) {
                    Ok(true) => {
                        info!(tenant = %profile.id, phone_number_id = %number, "the sandbox now serves this phone number")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        warn!(tenant = %profile.id, phone_number_id = %number, error = %e, "the sandbox cannot serve this number")
                    }
                }
            }
        }));
    }
    tasks.push(tokio::spawn(pollers.run(inbox)));
    tasks.push(tokio::spawn(pollers::reconcile_every(
        functions.reconciler,
        config.reconcile_every,
        stopped,
    )));
    info!(%addr, "wa dev started");
    Ok(DevServer {
        addr,
        sandbox,
        store,
        event_log: backend.events.clone(),
        deliveries,
        stop,
        tasks,
        config,
        connections,
    })
}

/// `wa dev`: start, print the banner, serve until `shutdown` completes, stop cleanly.
pub async fn run(
    config: DevConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DevError> {
    let server = start(config, listener).await?;
    // Whoever started us may stop reading stdout: that must not stop the server.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(server.banner().as_bytes());
    let _ = out.flush();
    drop(out);
    shutdown.await;
    info!("stopping: finishing in-flight batches");
    server.stop().await;
    Ok(())
}

/// Label of the API keys `wa dev` stores from its configuration (`wa tenants keys
/// list` shows it; the next start reconciles the keys of such tenants).
pub const CONFIG_KEY_LABEL: &str = "wa.toml";

/// Make the stored API keys match the file, before its keys are added: the file is
/// the source of truth for the tenants it defines.
///
/// - A tenant of the file keeps exactly the keys of its `api_keys`: any other key of
///   it is revoked, whoever added it (also `wa tenants keys add` while wa dev ran).
/// - A tenant no longer in the file (it has a key `wa dev` stored from a file) loses
///   every key: its profile, messages and templates stay, but nothing authenticates
///   as it. Tenants the file never defined (`wa tenants add --data`) are left alone.
///
/// Keys stored before keys had labels count as the file's once the file lists them
/// again; a tenant removed from the file before that keeps them (revoke them with
/// `wa tenants keys revoke`).
async fn reconcile_api_keys(config: &DevConfig, directory: &dyn Directory) -> Result<(), DevError> {
    let in_file: std::collections::HashMap<&str, std::collections::HashSet<ApiKeyHash>> = config
        .tenants
        .iter()
        .map(|t| {
            let keys = t
                .api_keys
                .iter()
                .map(|k| ApiKeyHash::of_key(k.expose_secret()))
                .collect();
            (t.id.as_str(), keys)
        })
        .collect();
    for profile in directory.list_tenants().await? {
        let keys = directory.api_keys(&profile.id).await?;
        let stale: Vec<&ApiKeyHash> = match in_file.get(profile.id.as_str()) {
            Some(wanted) => keys
                .iter()
                .map(|k| &k.hash)
                .filter(|h| !wanted.contains(*h))
                .collect(),
            None if keys
                .iter()
                .any(|k| k.label.as_deref() == Some(CONFIG_KEY_LABEL)) =>
            {
                keys.iter().map(|k| &k.hash).collect()
            }
            None => Vec::new(),
        };
        for hash in stale {
            if directory.revoke_api_key(&profile.id, hash).await? {
                info!(
                    tenant = %profile.id,
                    key_hash_prefix = &hash.as_str()[..16],
                    "API key revoked: not in the configuration"
                );
            }
        }
    }
    Ok(())
}

/// Make the directory and queues hold the configured tenants. The file seeds the
/// directory; what changed since at runtime (a suspension, a template paused by a
/// webhook, quality) is kept across restarts. API keys follow the file exactly
/// ([`reconcile_api_keys`]).
async fn seed_directory(
    config: &DevConfig,
    directory: &dyn Directory,
    queue: &dyn WorkQueue,
    spec: &QueueSpec,
    now: wa_shared::domain::Timestamp,
) -> Result<(), DevError> {
    reconcile_api_keys(config, directory).await?;
    for t in &config.tenants {
        let send_queue = queue
            .ensure_queue(&config::send_queue_name(&t.id), spec)
            .await?;
        let existing = directory.tenant(&t.id).await?;
        let profile = profile_for(t, &send_queue, existing.as_ref(), now);
        if existing.as_ref() != Some(&profile) {
            directory.put_tenant(&profile).await?;
        }
        for key in &t.api_keys {
            let entry = ApiKeyEntry::new(
                ApiKeyHash::of_key(key.expose_secret()),
                now,
                Some(CONFIG_KEY_LABEL),
            );
            match directory.add_api_key(&t.id, &entry).await {
                Ok(()) => {}
                Err(DirectoryError::ApiKeyTaken { owner }) => {
                    return Err(DevError::ApiKeyTaken {
                        tenant: t.id.clone(),
                        owner,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        for template in t.templates.iter() {
            let stored = directory
                .template(&t.id, &template.name, &template.language)
                .await?;
            if stored.is_none() {
                directory.put_template(&t.id, template, now).await?;
            }
        }
    }
    Ok(())
}

/// The profile the file describes, keeping the runtime facts of `existing`.
fn profile_for(
    t: &DevTenant,
    queue: &QueueRef,
    existing: Option<&TenantProfile>,
    now: wa_shared::domain::Timestamp,
) -> TenantProfile {
    let mut profile = TenantProfile {
        id: t.id.clone(),
        status: TenantStatus::Active,
        phone_number_id: t.phone_number_id.clone(),
        other_phone_number_ids: t.other_phone_number_ids.clone(),
        waba_id: t.waba_id.clone(),
        queue: queue.as_str().to_owned(),
        token_ref: t.token_ref.clone(),
        max_concurrency: t.max_concurrency,
        throughput_mps: t.throughput_mps,
        intake_quota: t.intake_quota,
        formatting: t.formatting,
        on_ambiguous: t.on_ambiguous,
        opt_out_keywords: t.opt_out_keywords.clone(),
        opt_in_keywords: t.opt_in_keywords.clone(),
        phone_quality: None,
        account_event: None,
        hold: None,
        phone_quality_at: None,
        account_event_at: None,
        marketing_messages_api: t.marketing_messages_api,
        updated_at: now,
    };
    if let Some(old) = existing {
        profile.status = old.status;
        profile.phone_quality = old.phone_quality.clone();
        profile.account_event = old.account_event.clone();
        profile.phone_quality_at = old.phone_quality_at;
        profile.account_event_at = old.account_event_at;
        // A hold survives a restart, unless the token changed (a token update ends it).
        if old.token_ref == profile.token_ref {
            profile.hold = old.hold.clone();
        }
        // Unchanged settings keep their timestamp, so an unchanged file writes nothing.
        let mut same = profile.clone();
        same.updated_at = old.updated_at;
        if &same == old {
            profile.updated_at = old.updated_at;
        }
    }
    profile
}

/// The token the sandbox expects from a tenant's number: the one its sends will carry
/// (a token given in the file, an `env:` variable), else the shared sandbox token.
fn sandbox_token_for(config: &DevConfig, profile: &TenantProfile) -> String {
    let configured = config
        .tenants
        .iter()
        .find(|t| t.id == profile.id)
        .and_then(|t| t.token.as_ref());
    if let Some(token) = configured {
        return token.expose_secret().to_owned();
    }
    match wa_shared::adapters::tokens::EnvTokenSource::resolve(&profile.token_ref) {
        Ok(token) => token.expose_secret().to_owned(),
        Err(_) => SANDBOX_ACCESS_TOKEN.to_owned(),
    }
}

/// The sandbox's phone number `number` of a tenant (its default number shows the
/// configured display number; the others show their id).
fn sandbox_number(
    config: &DevConfig,
    profile: &TenantProfile,
    number: &PhoneNumberId,
) -> PhoneNumberConfig {
    let display = config
        .tenants
        .iter()
        .find(|t| t.id == profile.id)
        .filter(|_| *number == profile.phone_number_id)
        .map_or_else(
            || number.as_str().to_owned(),
            |t| t.display_phone_number.clone(),
        );
    PhoneNumberConfig {
        id: number.as_str().to_owned(),
        display_phone_number: display,
        waba_id: profile.waba_id.clone(),
        access_token: Secret(sandbox_token_for(config, profile)),
        // The number serves what the tenant says Meta granted it (80 mps unless it
        // declares more), so the pipeline's pacing and the sandbox's 130429 agree.
        throughput_mps: Some(f64::from(profile.throughput_mps.max(1))),
    }
}

/// The sandbox: a phone number per stored tenant, the configured tenants' templates,
/// webhooks signed with our app secret and posted to our own `/webhook`.
async fn build_sandbox(
    config: &DevConfig,
    settings: &wa_sandbox::SandboxConfig,
    directory: &dyn Directory,
    api_addr: SocketAddr,
) -> Result<Sandbox, DevError> {
    let mut settings = settings.clone();
    settings.webhook.url = Some(format!("http://{api_addr}/webhook"));
    settings.webhook.app_secret = Secret(config.app_secret.expose_secret().to_owned());
    for profile in directory.list_tenants().await? {
        for number in profile.phone_number_ids() {
            if settings
                .phone_numbers
                .iter()
                .any(|p| p.id == number.as_str())
            {
                warn!(tenant = %profile.id, phone_number_id = %number,
                    "two tenants share a phone number id; the sandbox serves it once");
                continue;
            }
            let served = sandbox_number(config, &profile, number);
            settings.phone_numbers.push(served);
        }
    }
    let mut catalog = wa_shared::domain::template::TemplateCatalog::default();
    for t in &config.tenants {
        for template in t.templates.iter() {
            catalog.insert(template.clone());
        }
    }
    let templates: Vec<_> = catalog.iter().cloned().collect();
    let value = serde_json::to_value(&templates).map_err(|e| {
        SandboxError::Templates(format!("cannot encode the tenants' templates: {e}"))
    })?;
    settings.templates = TemplatesSource::Inline(value);
    Ok(Sandbox::new(settings)?)
}
