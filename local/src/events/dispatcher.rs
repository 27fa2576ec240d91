//! The dispatcher: one task per endpoint, delivering from the outbox.

use super::endpoint::{EndpointConfig, EventsSettings};
use super::store::{DeliveryError, DeliveryStore, DueDelivery, FailureOutcome};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
pub use wa_shared::app::delivery::attempt::{
    Attempt, MAX_ANSWER_BYTES, http_client, now_ms, post_signed,
};
use wa_shared::ports::EventLog;

/// Pause after a failed store or log call, so a broken file is not hammered.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Send one delivery: sign it for now, POST it, read at most [`MAX_ANSWER_BYTES`].
pub async fn attempt(
    client: &reqwest::Client,
    endpoint: &EndpointConfig,
    delivery: &DueDelivery,
) -> Attempt {
    post_signed(
        client,
        &endpoint.url,
        &endpoint.secret,
        &delivery.event_id,
        &delivery.body,
    )
    .await
}

/// Runs one task per endpoint until `stop` turns true.
pub struct Dispatcher {
    store: DeliveryStore,
    log: Arc<dyn EventLog>,
    settings: EventsSettings,
    client: reqwest::Client,
}

impl Dispatcher {
    /// A dispatcher over the delivery store and the event log.
    pub fn new(
        store: DeliveryStore,
        log: Arc<dyn EventLog>,
        settings: EventsSettings,
    ) -> Result<Self, reqwest::Error> {
        let client = http_client(settings.timeout)?;
        Ok(Self {
            store,
            log,
            settings,
            client,
        })
    }

    /// Register every endpoint (before anything can log events), then start one task
    /// each; they end when `stop` turns true.
    pub async fn start(
        self,
        endpoints: Vec<EndpointConfig>,
        stop: watch::Receiver<bool>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, DeliveryError> {
        for endpoint in &endpoints {
            self.store
                .register(endpoint, self.log.as_ref(), now_ms())
                .await?;
        }
        let this = Arc::new(self);
        Ok(endpoints
            .into_iter()
            .map(|endpoint| {
                let worker = Worker {
                    shared: this.clone(),
                    key: endpoint.key(),
                    endpoint: Arc::new(endpoint),
                    stop: stop.clone(),
                };
                tokio::spawn(worker.run())
            })
            .collect())
    }
}

struct Worker {
    shared: Arc<Dispatcher>,
    endpoint: Arc<EndpointConfig>,
    key: String,
    stop: watch::Receiver<bool>,
}

impl Worker {
    /// Every `poll_interval` (at once while the log has more): fan out and read the
    /// endpoint's status. After each finished attempt: start the next due ones.
    async fn run(mut self) {
        info!(tenant = %self.endpoint.tenant, url = %self.endpoint.url, "event endpoint: delivering");
        let poll = self.shared.settings.poll_interval;
        let mut flight = Flight::default();
        let mut scan = Scan::default();
        let mut next_scan = Instant::now();
        loop {
            if *self.stop.borrow() {
                break;
            }
            let scanning = Instant::now() >= next_scan;
            let result = async {
                if scanning {
                    self.scan(&mut scan).await?;
                }
                if !scan.disabled {
                    self.start_due(&mut flight).await?;
                }
                Ok::<(), DeliveryError>(())
            }
            .await;
            if scanning {
                next_scan = Instant::now() + if scan.more { Duration::ZERO } else { poll };
            }
            if let Err(e) = result {
                error!(tenant = %self.endpoint.tenant, url = %self.endpoint.url, error = %e, "event endpoint: store failed");
                next_scan = Instant::now() + ERROR_PAUSE;
                tokio::select! {
                    () = tokio::time::sleep(ERROR_PAUSE) => {}
                    changed = self.stop.changed() => if changed.is_err() { break },
                }
                continue;
            }
            tokio::select! {
                Some(done) = flight.tasks.join_next_with_id(), if !flight.tasks.is_empty() => {
                    flight.finished(done);
                }
                () = tokio::time::sleep_until(next_scan) => {}
                // The sender gone (the server dropped) means stop too.
                changed = self.stop.changed() => if changed.is_err() { break },
            }
            flight.reap();
        }
        // In-flight attempts are dropped: their rows stay pending and are tried again
        // at the next start (at least once).
        flight.tasks.abort_all();
    }

    /// Fan out one page, then read (and apply) the endpoint's status.
    async fn scan(&self, scan: &mut Scan) -> Result<(), DeliveryError> {
        let shared = &self.shared;
        scan.more = shared
            .store
            .fan_out(&self.endpoint, shared.log.as_ref(), now_ms())
            .await?;
        let (mut disabled, failing_since) = shared.store.status(&self.key).await?;
        let disable_after = shared.settings.disable_after_scaled();
        let disable_after_ms = i64::try_from(disable_after.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        if !disabled
            && failing_since.is_some_and(|since| now.saturating_sub(since) >= disable_after_ms)
            && shared
                .store
                .disable_if_failing(&self.key, now, disable_after_ms)
                .await?
        {
            disabled = true;
            scan.disabled_logged = true;
            error!(
                tenant = %self.endpoint.tenant, url = %self.endpoint.url,
                "event endpoint disabled: every attempt has failed for {disable_after:?}; \
                 `wa events replay` enables it again"
            );
        }
        if disabled && !scan.disabled_logged {
            warn!(tenant = %self.endpoint.tenant, url = %self.endpoint.url, "event endpoint is disabled: nothing is sent to it");
        }
        scan.disabled_logged = disabled;
        scan.disabled = disabled;
        Ok(())
    }

    /// Start the due attempts there is room for.
    async fn start_due(&self, flight: &mut Flight) -> Result<(), DeliveryError> {
        let shared = &self.shared;
        let room = shared
            .settings
            .max_in_flight
            .saturating_sub(flight.tasks.len());
        if room == 0 {
            return Ok(());
        }
        let due = shared
            .store
            .due(&self.key, now_ms(), room + flight.busy.len())
            .await?;
        let due: Vec<DueDelivery> = due
            .into_iter()
            .filter(|d| !flight.busy.contains(&d.id))
            .take(room)
            .collect();
        for delivery in due {
            let id = delivery.id;
            let (shared, endpoint, key) = (shared.clone(), self.endpoint.clone(), self.key.clone());
            let handle = flight.tasks.spawn(async move {
                let outcome = attempt(&shared.client, &endpoint, &delivery).await;
                if let Err(e) = record(&shared, &endpoint, &key, &delivery, outcome).await {
                    error!(tenant = %endpoint.tenant, url = %endpoint.url, error = %e, "event endpoint: recording an attempt failed");
                }
            });
            flight.busy.insert(id);
            flight.ids.insert(handle.id(), id);
        }
        Ok(())
    }
}

/// What the last scan found.
#[derive(Default)]
struct Scan {
    /// The log had a full page: scan again at once.
    more: bool,
    /// The endpoint is disabled: start nothing.
    disabled: bool,
    /// The disabled state has been logged.
    disabled_logged: bool,
}

/// The attempts of one endpoint in flight: their tasks and delivery rows.
#[derive(Default)]
struct Flight {
    tasks: JoinSet<()>,
    busy: HashSet<i64>,
    ids: HashMap<tokio::task::Id, i64>,
}

impl Flight {
    fn finished(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let task = match done {
            Ok((task, ())) => task,
            Err(e) => e.id(),
        };
        if let Some(id) = self.ids.remove(&task) {
            self.busy.remove(&id);
        }
    }

    fn reap(&mut self) {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            self.finished(done);
        }
    }
}

async fn record(
    shared: &Dispatcher,
    endpoint: &EndpointConfig,
    key: &str,
    delivery: &DueDelivery,
    outcome: Attempt,
) -> Result<(), DeliveryError> {
    let (status, error) = match outcome {
        Attempt::Delivered(status) => {
            debug!(tenant = %endpoint.tenant, url = %endpoint.url, event = %delivery.event_id, status, "event delivered");
            return shared
                .store
                .record_success(key, delivery.id, status, now_ms())
                .await;
        }
        Attempt::Refused { status, excerpt } => (
            Some(status),
            format!("HTTP {status}: {excerpt}").trim_end().to_owned(),
        ),
        Attempt::NoAnswer(why) => (None, why),
    };
    let next = shared
        .store
        .record_failure(key, delivery.id, status, &error, now_ms(), &shared.settings)
        .await?;
    match next {
        FailureOutcome::Retry(wait) => debug!(
            tenant = %endpoint.tenant, url = %endpoint.url, event = %delivery.event_id,
            attempt = delivery.attempts + 1, error = %error, ?wait, "event delivery failed; will retry"
        ),
        FailureOutcome::Dead => warn!(
            tenant = %endpoint.tenant, url = %endpoint.url, event = %delivery.event_id,
            error = %error, "event delivery failed for good: a dead letter (wa events replay sends it again)"
        ),
        FailureOutcome::Gone => {}
    }
    Ok(())
}
