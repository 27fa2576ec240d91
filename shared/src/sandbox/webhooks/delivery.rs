//! The webhook scheduler and poster.
//!
//! The scheduler owns a timer heap: when the earliest item is due it takes every
//! status due within `batch_window_ms` (up to `max_batch`) into one POST, and each
//! whole change into a POST of its own. The poster signs the exact bytes it sends with
//! [`sign`] and retries like Meta: once immediately, then after growing delays,
//! bounded by `retry.max_attempts` and `retry.max_elapsed_ms`.

use super::{Outgoing, Scheduled, StatusEvent, envelope};
use crate::domain::webhook::{SIGNATURE_HEADER, sign};
use crate::sandbox::recording::RecordedDelivery;
use crate::sandbox::state::Shared;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until};

/// Heap entry: earliest due first, then arrival order.
struct Entry {
    due: Instant,
    seq: u64,
    item: Outgoing,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// Run until shutdown: take scheduled items, post them when due.
pub async fn run_scheduler(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Scheduled>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = shared.config.webhook.clone();
    let window = Duration::from_millis(config.batch_window_ms);
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let mut heap = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let next_due = heap.peek().map(|e: &Entry| e.due);
        tokio::select! {
            _ = shutdown.changed() => return,
            received = queue.recv() => match received {
                Some(s) => {
                    heap.push(Entry { due: s.due, seq, item: s.item });
                    seq += 1;
                }
                None => return,
            },
            () = sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                let horizon = Instant::now() + window;
                let mut statuses: Vec<StatusEvent> = Vec::new();
                while let Some(top) = heap.peek() {
                    if top.due > horizon || statuses.len() >= config.max_batch {
                        break;
                    }
                    let Some(entry) = heap.pop() else { break };
                    match entry.item {
                        Outgoing::Status(s) => statuses.push(s),
                        Outgoing::Change { envelope, field } => {
                            spawn_post(&shared, &permits, &shutdown, envelope, Vec::new(), vec![field]);
                        }
                    }
                }
                if !statuses.is_empty() {
                    let refs: Vec<&StatusEvent> = statuses.iter().collect();
                    let body = envelope::statuses_envelope(&refs);
                    let ids = statuses.iter().map(|s| (s.wamid.clone(), s.status.to_owned())).collect();
                    spawn_post(&shared, &permits, &shutdown, body, ids, vec!["messages".to_owned()]);
                }
            }
        }
    }
}

fn spawn_post(
    shared: &Arc<Shared>,
    permits: &Arc<Semaphore>,
    shutdown: &watch::Receiver<bool>,
    body: serde_json::Value,
    statuses: Vec<(String, String)>,
    fields: Vec<String>,
) {
    let shared = Arc::clone(shared);
    let permits = Arc::clone(permits);
    let mut shutdown = shutdown.clone();
    tokio::spawn(async move {
        let Ok(_permit) = permits.acquire_owned().await else {
            return;
        };
        tokio::select! {
            _ = shutdown.changed() => {}
            () = post_with_retries(&shared, body, statuses, fields) => {}
        }
    });
}

async fn post_with_retries(
    shared: &Shared,
    body: serde_json::Value,
    statuses: Vec<(String, String)>,
    fields: Vec<String>,
) {
    let retry = &shared.config.webhook.retry;
    // Serialized once: the signature covers exactly these bytes on every attempt.
    let bytes = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(_) => return,
    };
    let signature = sign(shared.config.webhook.app_secret.expose().as_bytes(), &bytes);
    let text = shared
        .recorder_keeps_bodies()
        .then(|| String::from_utf8_lossy(&bytes).into_owned());
    let started = Instant::now();
    let mut attempt = 1u32;
    loop {
        let Some(url) = shared.webhook_url() else {
            shared.with_recorder(|r| r.stats.webhooks.posts_without_receiver += 1);
            return;
        };
        let result = shared
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, &signature)
            .body(bytes.clone())
            .send()
            .await;
        let (http_status, error) = match result {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => (
                None,
                Some(if e.is_timeout() {
                    "timeout".to_owned()
                } else {
                    "connection error".to_owned()
                }),
            ),
        };
        let ok = http_status.is_some_and(|s| (200..300).contains(&s));
        let at_ms = shared.elapsed_ms();
        shared.with_recorder(|r| {
            let w = &mut r.stats.webhooks;
            if attempt > 1 {
                w.retries += 1;
            }
            if ok {
                w.posts_ok += 1;
                w.statuses_delivered += statuses.len() as u64;
                if statuses.is_empty() {
                    w.events_delivered += fields.len() as u64;
                }
            } else {
                w.posts_failed += 1;
            }
            r.delivery(RecordedDelivery {
                seq: 0,
                at_ms,
                attempt,
                statuses: statuses.clone(),
                fields: fields.clone(),
                http_status,
                ok,
                error: error.clone(),
                body: text.clone(),
            });
        });
        if ok {
            return;
        }
        let elapsed = started.elapsed();
        let delay = backoff(
            attempt,
            retry.initial_backoff_ms,
            retry.multiplier,
            retry.max_backoff_ms,
        );
        let out_of_time = elapsed + delay > Duration::from_millis(retry.max_elapsed_ms);
        if attempt >= retry.max_attempts || out_of_time {
            shared.with_recorder(|r| r.stats.webhooks.posts_abandoned += 1);
            return;
        }
        sleep(delay).await;
        attempt += 1;
    }
}

/// Delay after failed attempt `attempt` (1-based): none after the first (Meta retries
/// immediately), then `initial`, `initial * multiplier`, ... capped at `max`.
pub fn backoff(attempt: u32, initial_ms: u64, multiplier: f64, max_ms: u64) -> Duration {
    if attempt <= 1 {
        return Duration::ZERO;
    }
    let exponent = i32::try_from(attempt - 2).unwrap_or(i32::MAX);
    let ms = (initial_ms as f64 * multiplier.powi(exponent)).min(max_ms as f64);
    Duration::from_millis(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_immediately_then_grow_to_a_ceiling() {
        let d = |a| backoff(a, 100, 2.0, 1_000).as_millis();
        assert_eq!(
            [d(1), d(2), d(3), d(4), d(5), d(9)],
            [0, 100, 200, 400, 800, 1_000]
        );
    }
}
