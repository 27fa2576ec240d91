//! `wa-sandbox`: a faithful Graph API sandbox with fault injection.
//!
//! It answers `POST /{version}/{phone_number_id}/messages` and
//! `GET /{version}/{waba_id}/message_templates` the way Meta does (reference §1, §3,
//! §5, §7), posts signed status webhooks in Meta's envelope (§4), and injects seeded,
//! reproducible faults. Everything it sees is recorded for assertions.
//!
//! - [`config`]: [`SandboxConfig`], from TOML or JSON.
//! - [`send`], [`template_check`], [`limits`]: the checks of a send.
//! - [`faults`]: seeded fault decisions.
//! - [`webhooks`]: envelopes, batching, signing, retries.
//! - [`recording`]: requests, deliveries, [`SandboxStats`].
//! - [`control`]: inbound messages and management updates on request.
//! - [`graph_reads`]: the reads `wa doctor` makes (a phone number, a WABA's subscribed apps).
//! - [`http`]: the routes.
//!
//! Start it with [`run`] (a listener and a shutdown future, like `wa dev`) or, in
//! tests, [`RunningSandbox::start`] on `127.0.0.1:0`. Both go through [`Sandbox`], the
//! in-process handle.

pub mod config;
pub mod control;
pub mod faults;
pub mod graph_reads;
pub mod http;
pub mod limits;
pub mod meta_error;
pub mod process;
pub mod recording;
pub mod send;
pub mod state;
pub mod template_check;
pub mod templates_api;
pub mod webhooks;

pub use config::{
    LimitsConfig, PhoneNumberConfig, RecordingConfig, RetryConfig, SandboxConfig, Secret,
    TemplatesSource, WebhookConfig, WindowFailure,
};
pub use control::{
    InboundText, MarketingCap, PhoneQualityChange, TemplateCategoryChange, TemplateQualityChange,
    TemplateStatusChange, TokenExpiry, UserPreference,
};
pub use faults::{ErrorFault, FaultConfig, Jitter, LatencyConfig, WebhookFaults};
pub use recording::{
    RecordedDelivery, RecordedRequest, RequestOutcome, SandboxStats, WebhookStats,
};

use state::Shared;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Why the sandbox could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration is not valid.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// The templates are not Meta's template JSON.
    #[error("invalid templates: {0}")]
    Templates(String),
    /// A control request named something the sandbox does not have.
    #[error("not found: {0}")]
    NotFound(String),
    /// A control request is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The server failed (bind, accept).
    #[error("sandbox server: {0}")]
    Io(#[from] std::io::Error),
    /// [`Sandbox::serve`] was called twice.
    #[error("this sandbox is already serving")]
    AlreadyServing,
}

/// The in-process handle: cheap to clone, usable while the server runs.
#[derive(Debug, Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
    queue: Arc<Mutex<Option<mpsc::UnboundedReceiver<Vec<webhooks::Scheduled>>>>>,
}

impl Sandbox {
    /// Validate `config`, load its templates and build the state (no I/O beyond that).
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let (shared, queue) = Shared::new(config)?;
        Ok(Self {
            shared: Arc::new(shared),
            queue: Arc::new(Mutex::new(Some(queue))),
        })
    }

    /// Serve on `listener` and post webhooks until `shutdown` completes. Held answers
    /// (accept-then-timeout) are released at shutdown; pending webhooks are abandoned.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SandboxError> {
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(SandboxError::AlreadyServing)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let scheduler = tokio::spawn(webhooks::delivery::run_scheduler(
            Arc::clone(&self.shared),
            queue,
            stop_rx.clone(),
        ));
        let app = http::router(http::AppState {
            shared: Arc::clone(&self.shared),
            shutdown: stop_rx,
        });
        let stop = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await;
        scheduler.abort();
        served.map_err(SandboxError::Io)
    }

    /// Counters so far.
    pub fn stats(&self) -> SandboxStats {
        self.shared.with_recorder(|r| r.stats.clone())
    }

    /// Recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.with_recorder(|r| r.requests())
    }

    /// Recorded webhook delivery attempts, oldest first.
    pub fn deliveries(&self) -> Vec<RecordedDelivery> {
        self.shared.with_recorder(|r| r.deliveries())
    }

    /// Post an inbound text (opens the service window); returns its wamid.
    pub fn inbound_text(&self, message: &InboundText) -> Result<String, SandboxError> {
        self.shared.inbound_text(message)
    }

    /// Change a template's status (the catalog too) and post the update.
    pub fn template_status(&self, change: &TemplateStatusChange) -> Result<(), SandboxError> {
        self.shared.template_status(change)
    }

    /// Change a template's quality score and post the update.
    pub fn template_quality(&self, change: &TemplateQualityChange) -> Result<(), SandboxError> {
        self.shared.template_quality(change)
    }

    /// Post a phone number quality update.
    pub fn phone_quality(&self, change: &PhoneQualityChange) -> Result<(), SandboxError> {
        self.shared.phone_quality(change)
    }

    /// A user stops or resumes marketing from a number (`user_preferences`, 131050).
    pub fn user_preference(&self, u: &UserPreference) -> Result<(), SandboxError> {
        self.shared.user_preference(u)
    }

    /// Cap or uncap a user's marketing messages (131049).
    pub fn marketing_cap(&self, c: &MarketingCap) {
        self.shared.marketing_cap(c);
    }

    /// Change a template's category (completed `template_category_update`).
    pub fn template_category(&self, c: &TemplateCategoryChange) -> Result<(), SandboxError> {
        self.shared.template_category(c)
    }

    /// Expire a number's access token for a while (sends answer 190 until then).
    pub fn expire_token(&self, expiry: &TokenExpiry) -> Result<(), SandboxError> {
        self.shared.expire_token(expiry)
    }

    /// Serve another phone number from now on; `false` if it is already served.
    pub fn add_phone_number(&self, phone: PhoneNumberConfig) -> Result<bool, SandboxError> {
        self.shared.add_phone_number(phone)
    }

    /// Point webhooks at another receiver (or none).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.shared.set_webhook_url(url);
    }

    /// The configuration in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }
}

/// Build a sandbox from `config` and serve it on `listener` until `shutdown`.
pub async fn run(
    config: SandboxConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    Sandbox::new(config)?.serve(listener, shutdown).await
}

/// A sandbox serving on a local port in the background, for tests and `wa dev`.
/// Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSandbox {
    /// The handle.
    pub sandbox: Sandbox,
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), SandboxError>>>,
}

impl RunningSandbox {
    /// Serve `config` on `127.0.0.1:0`.
    pub async fn start(config: SandboxConfig) -> Result<Self, SandboxError> {
        let sandbox = Sandbox::new(config)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = sandbox.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            sandbox,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`: the Graph base URL to give a client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving and wait for the server to finish.
    pub async fn stop(mut self) -> Result<(), SandboxError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
