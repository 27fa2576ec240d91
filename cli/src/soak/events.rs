//! The events side of a soak: the tenants' event logs (`GET /v1/events`) must hold an
//! event for every transition the histories show, and a started pipeline's endpoints
//! (one per tenant, served here) must receive every logged event, correctly signed.

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wa_shared::domain::endpoints::signing::WebhookSecret;

/// The events receiver's signing secret (a soak's own, obviously fake key).
pub const ENDPOINT_SECRET: &str = "whsec_c29hay1lbmRwb2ludC1zZWNyZXQtMzItYnl0ZXMtb2s=";

/// What the receiver has seen.
#[derive(Default)]
struct Seen {
    /// Deliveries per event id (at least once: a retry after a kill may repeat one).
    ids: Mutex<HashMap<String, usize>>,
    /// Deliveries whose signature did not verify.
    bad_signatures: AtomicUsize,
}

/// A signed-events endpoint on 127.0.0.1 that records every event delivered to it.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/events`.
    pub url: String,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Bind a free port and serve until dropped.
    pub async fn start() -> anyhow::Result<Self> {
        let secret = WebhookSecret::parse(ENDPOINT_SECRET)
            .map_err(|e| anyhow::anyhow!("the soak's endpoint secret: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the events receiver")?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Seen::default());
        let state = (Arc::new(secret), Arc::clone(&seen));
        let app = Router::new()
            .route("/events", post(receive))
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}/events"),
            seen,
            task,
        })
    }

    /// Ids received so far.
    fn received(&self) -> HashSet<String> {
        self.seen
            .ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Deliveries that were refused for a bad signature.
    pub fn bad_signatures(&self) -> usize {
        self.seen.bad_signatures.load(Ordering::Relaxed)
    }

    /// Wait up to `patience` until every id of `logged` was received; the ids never
    /// received.
    pub async fn wait_for(&self, logged: &[String], patience: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let received = self.received();
            let missing: Vec<String> = logged
                .iter()
                .filter(|id| !received.contains(*id))
                .cloned()
                .collect();
            if missing.is_empty() || started.elapsed() >= patience {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn receive(
    State((secret, seen)): State<(Arc<WebhookSecret>, Arc<Seen>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if secret
        .verify(
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            &body,
            now,
        )
        .is_err()
    {
        seen.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let Some(id) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
    else {
        return StatusCode::BAD_REQUEST;
    };
    *seen
        .ids
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(id)
        .or_default() += 1;
    StatusCode::NO_CONTENT
}

/// One tenant's event log, as `GET /v1/events` pages it.
#[derive(Debug, Default)]
pub struct EventLog {
    /// Every event id, in log order.
    pub ids: Vec<String>,
    /// `data.status` of the outbound message events, per message id.
    pub statuses: HashMap<String, BTreeSet<String>>,
}

/// Read the whole log of the tenant with API key `key`.
pub async fn read_log(http: &reqwest::Client, url: &str, key: &str) -> anyhow::Result<EventLog> {
    let mut log = EventLog::default();
    let mut after: Option<String> = None;
    loop {
        let mut params = vec![("limit", "500")];
        if let Some(a) = &after {
            params.push(("after", a.as_str()));
        }
        let page_url = reqwest::Url::parse_with_params(&format!("{url}/v1/events"), &params)
            .context("the events URL")?;
        let resp = http
            .get(page_url)
            .bearer_auth(key)
            .send()
            .await
            .context("GET /v1/events")?;
        let status = resp.status();
        let page: Value = resp.json().await.context("GET /v1/events: not JSON")?;
        if !status.is_success() {
            bail!("GET /v1/events answered {status}: {page}");
        }
        for event in page["events"].as_array().into_iter().flatten() {
            if let Some(id) = event["id"].as_str() {
                log.ids.push(id.to_owned());
            }
            let kind = event["type"].as_str().unwrap_or_default();
            if kind.starts_with("message.") && kind != "message.received" {
                let data = &event["data"];
                if let (Some(message), Some(status)) =
                    (data["message_id"].as_str(), data["status"].as_str())
                {
                    log.statuses
                        .entry(message.to_owned())
                        .or_default()
                        .insert(status.to_owned());
                }
            }
        }
        let next = page["next"].as_str().map(str::to_owned);
        if page["more"].as_bool() != Some(true) || next.is_none() || next == after {
            return Ok(log);
        }
        after = next;
    }
}
