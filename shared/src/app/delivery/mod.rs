//! The `delivery` function (DESIGN §10, signed HTTP endpoints) on AWS: every event
//! the stage's bus carries reaches each endpoint of its tenant that wants its type,
//! signed as the Standard Webhooks specification says, retried on the
//! specification's schedule (27.6 h), then kept as a dead letter for replay.
//!
//! # Flow
//!
//! The `events` function puts each logged event on the bus; a rule (`source`
//! `wa.pipeline`) copies it into the `deliveries` SQS queue, which feeds this
//! function. A record is either
//! - an EventBridge envelope (`detail` is the event): a fresh event, attempted at
//!   once for every endpoint of its tenant that wants it; or
//! - a [`DeliveryJob`]: one event for one endpoint, after failed attempts, queued by
//!   this function itself with a delay (SQS hides it for at most 15 minutes; a job
//!   that comes back before its `due_at_ms` is queued again for the rest).
//!
//! # Outcomes
//!
//! A 2xx answer delivers. Anything else (a redirect included: never followed), a
//! timeout or a connection error fails the attempt: the job is queued again after
//! the schedule's next wait, or after the 8th failure becomes a dead letter in the
//! registry. An endpoint failing with no success for `disable_after` (3 days) is
//! disabled, with an error log and the `EndpointDisabled` metric (alarmed); its
//! events then go straight to its dead letters, and `wa events replay` enables it
//! and sends them again.
//!
//! # Isolation
//!
//! Records are attempted concurrently, so a slow endpoint's 10 s timeout never holds
//! another endpoint's attempt. After a failure the endpoint's circuit pauses it
//! ([`circuit_hold`]: 5 s doubling to 5 min), then lets one attempt at a time probe
//! it (claimed with a conditional write) until one succeeds: its other events wait
//! meanwhile, queued again for the end of the pause or of the probe without
//! spending an attempt. So a dead endpoint costs one timed-out request per pause
//! instead of one per event, and cannot fill the function's concurrency while other
//! tenants' events wait. Events held back this way are dead-lettered when the
//! endpoint is disabled.
//!
//! # Failures of our own
//!
//! A registry, secrets or queue call that fails returns the record to SQS
//! (`batchItemFailures`): it comes back after the visibility timeout, and after
//! `maxReceiveCount` receptions goes to the queue's DLQ (alarmed). Delivery is at
//! least once: receivers dedupe on `webhook-id`, the event's id.
//!
//! # Metrics (per tenant and endpoint)
//!
//! `EventsDelivered`, `EventsDeliveryFailed` (an attempt failed), `EventsDeliveryRetried`
//! (queued again after a failure), `EventsDeliveryDeferred` (waited for a paused
//! circuit or its due time), `EventsDeadLettered`, `EndpointDisabled`, and
//! `EventsDeliveryErrors` (our own failures, per tenant).

pub mod attempt;
pub mod urls;

use crate::domain::TenantId;
use crate::domain::endpoints::signing::WebhookSecret;
use crate::domain::endpoints::{
    DISABLE_AFTER, DeadLetter, DeadReason, DeliveryJob, Endpoint, circuit_hold, retry_delay, scaled,
};
use crate::domain::events::Event;
use crate::domain::time::Timestamp;
use crate::metrics::Metrics;
use crate::ports::{Clock, DeliveryQueue, EndpointRegistry, EndpointSecrets, EventLog};
use attempt::{Attempt, post_signed};
pub use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{error, info, warn};
use urls::{UrlRules, check_endpoint_url};

/// How much longer than one attempt's timeout a probe holds a failing endpoint.
const PROBE_MARGIN: Duration = Duration::from_secs(1);

/// The `delivery` function's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    /// Multiplies every wait (1: real time; tests run a day of retries in seconds).
    pub time_scale: f64,
    /// An endpoint failing with no success this long (before scaling) is disabled.
    pub disable_after: Duration,
    /// One attempt's whole HTTP exchange.
    pub timeout: Duration,
    /// Which URLs may be called.
    pub rules: UrlRules,
    /// Attempts in flight at once per invocation.
    pub concurrency: usize,
    /// How long a secret read from the secrets store is reused.
    pub secret_ttl: Duration,
    /// A success is written to the registry only when the endpoint was failing or
    /// its last recorded success is older than this (saves a write per event).
    pub success_refresh: Duration,
}

impl Default for DeliverySettings {
    /// Real time, 3 days, 10 s, public URLs only, 32 at once, secrets for 5 min,
    /// successes refreshed each minute.
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            disable_after: DISABLE_AFTER,
            timeout: Duration::from_secs(10),
            rules: UrlRules::default(),
            concurrency: 32,
            secret_ttl: Duration::from_secs(300),
            success_refresh: Duration::from_secs(60),
        }
    }
}

/// Secrets read recently, by reference.
#[derive(Default)]
struct SecretCache {
    entries: Mutex<HashMap<String, (WebhookSecret, Instant)>>,
}

impl SecretCache {
    fn get(&self, secret_ref: &str, ttl: Duration) -> Option<WebhookSecret> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(secret_ref)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(s, _)| s.clone())
    }

    fn put(&self, secret_ref: &str, secret: WebhookSecret) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert(secret_ref.to_owned(), (secret, Instant::now()));
    }
}

/// The `delivery` function's deps (and `wa events replay`'s on AWS).
#[derive(Clone)]
pub struct DeliveryDeps {
    /// Endpoints, their health and dead letters.
    pub registry: Arc<dyn EndpointRegistry>,
    /// Their signing secrets.
    pub secrets: Arc<dyn EndpointSecrets>,
    /// Where attempts to come wait.
    pub queue: Arc<dyn DeliveryQueue>,
    /// The tenants' event logs (replays read them).
    pub events: Arc<dyn EventLog>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// EMF metric lines.
    pub metrics: Metrics,
    /// The attempts' HTTP client (no redirects, the timeout, public addresses only).
    pub client: reqwest::Client,
    /// Schedule scale, timeouts, URL rules.
    pub settings: DeliverySettings,
    cache: Arc<SecretCache>,
}

impl DeliveryDeps {
    /// Deps over these ports; the HTTP client is built from `settings` (timeout, no
    /// redirects, names resolved to public addresses only).
    pub fn new(
        registry: Arc<dyn EndpointRegistry>,
        secrets: Arc<dyn EndpointSecrets>,
        queue: Arc<dyn DeliveryQueue>,
        events: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        settings: DeliverySettings,
    ) -> Result<Self, reqwest::Error> {
        let resolver = Arc::new(urls::PublicOnlyResolver {
            rules: settings.rules,
        });
        let client = attempt::http_client_with_resolver(settings.timeout, resolver)?;
        Ok(Self {
            registry,
            secrets,
            queue,
            events,
            clock,
            metrics,
            client,
            settings,
            cache: Arc::new(SecretCache::default()),
        })
    }

    async fn secret(&self, secret_ref: &str) -> Result<WebhookSecret, Fault> {
        if let Some(s) = self.cache.get(secret_ref, self.settings.secret_ttl) {
            return Ok(s);
        }
        let secret = self
            .secrets
            .read(secret_ref)
            .await
            .map_err(|e| Fault::new("read_secret", &e))?;
        self.cache.put(secret_ref, secret.clone());
        Ok(secret)
    }

    fn scaled(&self, d: Duration) -> Duration {
        scaled(d, self.settings.time_scale)
    }
}

/// One of our own failures (registry, secrets, queue): the record goes back to SQS.
#[derive(Debug)]
struct Fault {
    operation: &'static str,
    error: String,
}

impl Fault {
    fn new(operation: &'static str, e: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            operation,
            error: crate::app::errors::ErrorChain(e).to_string(),
        }
    }
}

/// What one SQS record holds.
#[derive(Debug)]
enum Incoming {
    /// An event from the bus, for every endpoint of its tenant.
    Fresh(Box<Event>),
    /// One event for one endpoint.
    Job(Box<DeliveryJob>),
}

/// Decode a record's body: an EventBridge envelope or a [`DeliveryJob`].
fn decode(body: &str) -> Result<Incoming, String> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(detail) = value
        .get("detail")
        .filter(|_| value.get("detail-type").is_some())
    {
        let event: Event = serde_json::from_value(detail.clone())
            .map_err(|e| format!("the envelope's detail is not an event: {e}"))?;
        return Ok(Incoming::Fresh(Box::new(event)));
    }
    let job: DeliveryJob =
        serde_json::from_value(value).map_err(|e| format!("neither an event nor a job: {e}"))?;
    Ok(Incoming::Job(Box::new(job)))
}

/// Process one batch of the `deliveries` queue. Never fails as a whole: a record
/// that must come back (one of our own calls failed) is listed in
/// `batchItemFailures`; a record that does not decode is logged, counted and dropped
/// (it would never decode).
pub async fn handle(deps: &DeliveryDeps, event: SqsEvent) -> SqsBatchResponse {
    let permits = Arc::new(Semaphore::new(deps.settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut item_ids = HashMap::new();
    let records = event.records.len();
    for message in event.records {
        let Some(item_id) = message.message_id.clone() else {
            error!("SQS record without messageId skipped");
            continue;
        };
        let body = message.body.unwrap_or_default();
        let deps = deps.clone();
        let permits = Arc::clone(&permits);
        let task = tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.ok();
            process_record(&deps, &body).await
        });
        item_ids.insert(task.id(), item_id);
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        let (task, ok) = match joined {
            Ok((task, ok)) => (task, ok),
            Err(e) => {
                error!(error = %e, "a delivery task failed");
                (e.id(), false)
            }
        };
        if !ok && let Some(item_id) = item_ids.remove(&task) {
            failures.push(item_id);
        }
    }
    info!(records, failed = failures.len(), "delivery batch processed");
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// One record; `false` when it must come back.
async fn process_record(deps: &DeliveryDeps, body: &str) -> bool {
    match decode(body) {
        Err(why) => {
            error!(error = %why, "undecodable delivery record dropped");
            deps.metrics.count("EventsDeliveryErrors", &[]);
            true
        }
        Ok(Incoming::Job(job)) => {
            let tenant = job.tenant.clone();
            match process_job(deps, *job, None).await {
                Ok(()) => true,
                Err(fault) => {
                    error!(tenant = %tenant, operation = fault.operation, error = %fault.error,
                        "delivery job failed; it will be received again");
                    deps.metrics
                        .count("EventsDeliveryErrors", &[("Tenant", tenant.as_str())]);
                    false
                }
            }
        }
        Ok(Incoming::Fresh(event)) => fan_out(deps, *event).await,
    }
}

/// A fresh event: attempt it at every endpoint of its tenant that wants it. An
/// endpoint whose processing fails on our side gets a job queued instead; only if
/// that fails too does the record come back (and the others may see it twice).
async fn fan_out(deps: &DeliveryDeps, event: Event) -> bool {
    let tenant = event.tenant.clone();
    let endpoints = match deps.registry.list(&tenant).await {
        Ok(e) => e,
        Err(e) => {
            error!(tenant = %tenant, event_id = %event.id, error = %crate::app::errors::ErrorChain(&e),
                "listing the tenant's endpoints failed; the event will be received again");
            deps.metrics
                .count("EventsDeliveryErrors", &[("Tenant", tenant.as_str())]);
            return false;
        }
    };
    let now = deps.clock.now().as_millis();
    let mut set = JoinSet::new();
    for endpoint in endpoints.into_iter().filter(|e| e.wants(event.event_type)) {
        let job = DeliveryJob {
            tenant: tenant.clone(),
            endpoint: endpoint.id.clone(),
            attempts: 0,
            due_at_ms: now,
            event: event.clone(),
        };
        let deps = deps.clone();
        set.spawn(async move {
            match process_job(&deps, job.clone(), Some(endpoint)).await {
                Ok(()) => true,
                Err(fault) => {
                    warn!(tenant = %job.tenant, endpoint = %job.endpoint, event_id = %job.event.id,
                        operation = fault.operation, error = %fault.error,
                        "delivery failed on our side; queued as a job");
                    deps.metrics
                        .count("EventsDeliveryErrors", &[("Tenant", job.tenant.as_str())]);
                    deps.queue
                        .schedule(&[(job, deps.scaled(Duration::from_secs(5)))])
                        .await
                        .is_ok()
                }
            }
        });
    }
    let mut ok = true;
    while let Some(done) = set.join_next().await {
        ok &= done.unwrap_or(false);
    }
    ok
}

/// Queue `job` again, hidden until `due_at_ms`.
async fn requeue(deps: &DeliveryDeps, job: DeliveryJob, now: i64) -> Result<(), Fault> {
    let wait = Duration::from_millis(u64::try_from(job.due_at_ms - now).unwrap_or(0));
    deps.queue
        .schedule(&[(job, wait)])
        .await
        .map_err(|e| Fault::new("schedule", &e))
}

/// Keep a dead letter and count it.
async fn bury(
    deps: &DeliveryDeps,
    job: DeliveryJob,
    reason: DeadReason,
    last_error: Option<String>,
    now: Timestamp,
) -> Result<(), Fault> {
    let letter = DeadLetter {
        tenant: job.tenant.clone(),
        endpoint: job.endpoint.clone(),
        reason,
        attempts: job.attempts,
        last_error,
        dead_at: now,
        event: job.event,
    };
    deps.registry
        .put_dead_letter(&letter)
        .await
        .map_err(|e| Fault::new("put_dead_letter", &e))?;
    warn!(tenant = %letter.tenant, endpoint = %letter.endpoint, event_id = %letter.event.id,
        attempts = letter.attempts, reason = ?reason, "event dead-lettered");
    deps.metrics.count(
        "EventsDeadLettered",
        &[
            ("Tenant", letter.tenant.as_str()),
            ("Endpoint", &letter.endpoint),
        ],
    );
    Ok(())
}

/// One event at one endpoint: wait if not due or the circuit is paused, else attempt
/// it and record the outcome.
async fn process_job(
    deps: &DeliveryDeps,
    mut job: DeliveryJob,
    endpoint: Option<Endpoint>,
) -> Result<(), Fault> {
    let now = deps.clock.now();
    let dims = [
        ("Tenant", job.tenant.as_str().to_owned()),
        ("Endpoint", job.endpoint.clone()),
    ];
    let dims: Vec<(&str, &str)> = dims.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if job.due_at_ms > now.as_millis() {
        deps.metrics.count("EventsDeliveryDeferred", &dims);
        return requeue(deps, job, now.as_millis()).await;
    }
    let endpoint = match endpoint {
        Some(e) => e,
        None => match deps
            .registry
            .get(&job.tenant, &job.endpoint)
            .await
            .map_err(|e| Fault::new("get_endpoint", &e))?
        {
            Some(e) => e,
            None => {
                info!(tenant = %job.tenant, endpoint = %job.endpoint, event_id = %job.event.id,
                    "endpoint removed; its delivery is dropped");
                return Ok(());
            }
        },
    };
    if endpoint.disabled {
        return bury(deps, job, DeadReason::EndpointDisabled, None, now).await;
    }
    if endpoint.health.held_at(now) {
        deps.metrics.count("EventsDeliveryDeferred", &dims);
        job.due_at_ms = endpoint
            .health
            .hold_until
            .map_or(now.as_millis(), Timestamp::as_millis);
        return requeue(deps, job, now.as_millis()).await;
    }
    if endpoint.health.failing_since.is_some() {
        // Half-open: one attempt at a time tests a failing endpoint; the others
        // wait for its outcome without spending attempts.
        let probe_until = now.plus_millis(
            i64::try_from((deps.settings.timeout + PROBE_MARGIN).as_millis()).unwrap_or(i64::MAX),
        );
        let claimed = deps
            .registry
            .claim_probe(
                &job.tenant,
                &job.endpoint,
                endpoint.health.hold_until,
                probe_until,
            )
            .await
            .map_err(|e| Fault::new("claim_probe", &e))?;
        if !claimed {
            deps.metrics.count("EventsDeliveryDeferred", &dims);
            job.due_at_ms = probe_until.as_millis();
            return requeue(deps, job, now.as_millis()).await;
        }
    }
    let outcome = match check_endpoint_url(&endpoint.url, deps.settings.rules) {
        Ok(url) => {
            let secret = deps.secret(&endpoint.secret_ref).await?;
            let body =
                serde_json::to_string(&job.event).map_err(|e| Fault::new("encode_event", &e))?;
            post_signed(&deps.client, &url, &secret, &job.event.id, &body).await
        }
        Err(e) => Attempt::NoAnswer(e.to_string()),
    };
    let at = deps.clock.now();
    match outcome.error_text() {
        None => {
            deps.metrics.count("EventsDelivered", &dims);
            let refresh = i64::try_from(deps.settings.success_refresh.as_millis()).unwrap_or(0);
            let stale = endpoint
                .health
                .last_success_at
                .is_none_or(|t| at.millis_since(t) >= refresh);
            if endpoint.health.failing_since.is_some() || stale {
                deps.registry
                    .record_success(&job.tenant, &job.endpoint, at)
                    .await
                    .map_err(|e| Fault::new("record_success", &e))?;
            }
            Ok(())
        }
        Some(error) => {
            job.attempts += 1;
            deps.metrics.count("EventsDeliveryFailed", &dims);
            warn!(tenant = %job.tenant, endpoint = %job.endpoint, event_id = %job.event.id,
                attempt = job.attempts, error = %error, "delivery attempt failed");
            let hold = circuit_hold(
                endpoint.health.failures_in_a_row.saturating_add(1),
                deps.settings.time_scale,
            );
            let Some(health) = deps
                .registry
                .record_failure(&job.tenant, &job.endpoint, at, &error, hold)
                .await
                .map_err(|e| Fault::new("record_failure", &e))?
            else {
                return Ok(());
            };
            if health.failing_for(at, deps.scaled(deps.settings.disable_after)) {
                deps.registry
                    .set_disabled(&job.tenant, &job.endpoint, true)
                    .await
                    .map_err(|e| Fault::new("set_disabled", &e))?;
                error!(tenant = %job.tenant, endpoint = %job.endpoint,
                    failing_since = ?health.failing_since, last_error = %error,
                    "endpoint disabled after failing for too long; `wa events replay` enables it");
                deps.metrics.count("EndpointDisabled", &dims);
                return bury(deps, job, DeadReason::EndpointDisabled, Some(error), at).await;
            }
            match retry_delay(job.attempts, deps.settings.time_scale) {
                Some(wait) => {
                    deps.metrics.count("EventsDeliveryRetried", &dims);
                    job.due_at_ms = at
                        .as_millis()
                        .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                    requeue(deps, job, at.as_millis()).await
                }
                None => bury(deps, job, DeadReason::AttemptsExhausted, Some(error), at).await,
            }
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplaySummary {
    /// Endpoints enabled again.
    pub enabled: usize,
    /// Dead letters queued again (and removed).
    pub dead_letters: usize,
    /// Logged events queued again (`since`).
    pub events: usize,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No such endpoint for the tenant.
    #[error("tenant {tenant} has no endpoint {endpoint}")]
    UnknownEndpoint {
        /// The tenant.
        tenant: String,
        /// The endpoint asked for.
        endpoint: String,
    },
    /// A registry, log or queue call failed (what was queued before stays queued).
    #[error("replay failed during {operation}: {error}")]
    Backend {
        /// The operation.
        operation: &'static str,
        /// The error chain.
        error: String,
    },
}

impl From<Fault> for ReplayError {
    fn from(f: Fault) -> Self {
        ReplayError::Backend {
            operation: f.operation,
            error: f.error,
        }
    }
}

/// `wa events replay` on AWS: enable `tenant`'s endpoints (one, or all), queue their
/// dead letters again, and, with `since`, every logged event from that time on for
/// each endpoint that wants it. Receivers dedupe on the event id.
pub async fn replay(
    deps: &DeliveryDeps,
    tenant: &TenantId,
    endpoint: Option<&str>,
    since: Option<Timestamp>,
) -> Result<ReplaySummary, ReplayError> {
    let mut endpoints = deps
        .registry
        .list(tenant)
        .await
        .map_err(|e| Fault::new("list_endpoints", &e))?;
    if let Some(id) = endpoint {
        endpoints.retain(|e| e.id == id);
        if endpoints.is_empty() {
            return Err(ReplayError::UnknownEndpoint {
                tenant: tenant.to_string(),
                endpoint: id.to_owned(),
            });
        }
    }
    let mut summary = ReplaySummary::default();
    let now = deps.clock.now().as_millis();
    for e in &endpoints {
        if e.disabled {
            deps.registry
                .set_disabled(tenant, &e.id, false)
                .await
                .map_err(|err| Fault::new("set_disabled", &err))?;
            summary.enabled += 1;
        }
        loop {
            let letters = deps
                .registry
                .dead_letters(tenant, Some(&e.id), 100)
                .await
                .map_err(|err| Fault::new("dead_letters", &err))?;
            if letters.is_empty() {
                break;
            }
            for letter in letters {
                let job = DeliveryJob {
                    tenant: tenant.clone(),
                    endpoint: e.id.clone(),
                    attempts: 0,
                    due_at_ms: now,
                    event: letter.event.clone(),
                };
                deps.queue
                    .schedule(&[(job, Duration::ZERO)])
                    .await
                    .map_err(|err| Fault::new("schedule", &err))?;
                deps.registry
                    .remove_dead_letter(tenant, &e.id, &letter.event.id)
                    .await
                    .map_err(|err| Fault::new("remove_dead_letter", &err))?;
                summary.dead_letters += 1;
            }
        }
    }
    if let Some(since) = since {
        let since = since.to_rfc3339();
        let mut after: Option<String> = None;
        loop {
            let page = deps
                .events
                .list(tenant, after.as_deref(), crate::ports::MAX_EVENT_PAGE)
                .await
                .map_err(|e| Fault::new("list_events", &e))?;
            let mut jobs = Vec::new();
            for logged in &page.events {
                // RFC 3339 UTC timestamps of one format compare as strings.
                if logged.event.timestamp < since {
                    continue;
                }
                for e in endpoints
                    .iter()
                    .filter(|e| e.wants(logged.event.event_type))
                {
                    jobs.push((
                        DeliveryJob {
                            tenant: tenant.clone(),
                            endpoint: e.id.clone(),
                            attempts: 0,
                            due_at_ms: now,
                            event: logged.event.clone(),
                        },
                        Duration::ZERO,
                    ));
                }
            }
            summary.events += jobs.len();
            deps.queue
                .schedule(&jobs)
                .await
                .map_err(|e| Fault::new("schedule", &e))?;
            after = page.events.last().map(|l| l.position.clone());
            if !page.more || after.is_none() {
                break;
            }
        }
    }
    info!(tenant = %tenant, enabled = summary.enabled, dead_letters = summary.dead_letters,
        events = summary.events, "replay queued");
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_envelopes_or_jobs() {
        let event = serde_json::json!({"id": "evt_1", "type": "message.sent",
            "timestamp": "2026-12-02T10:00:00.000Z", "tenant": "acme", "data": {}});
        let envelope = serde_json::json!({"version": "0", "id": "x", "detail-type": "message.sent",
            "source": "wa.pipeline", "detail": event});
        assert!(matches!(decode(&envelope.to_string()), Ok(Incoming::Fresh(e)) if e.id == "evt_1"));
        let job = serde_json::json!({"tenant": "acme", "endpoint": "ep_1", "attempts": 2,
            "due_at_ms": 5, "event": event});
        assert!(matches!(decode(&job.to_string()), Ok(Incoming::Job(j)) if j.attempts == 2));
        assert!(decode("nope").unwrap_err().contains("not JSON"));
        assert!(decode("{}").unwrap_err().contains("neither"));
        let bad = serde_json::json!({"detail-type": "x", "detail": {"id": 1}});
        assert!(decode(&bad.to_string()).unwrap_err().contains("detail"));
    }
}
