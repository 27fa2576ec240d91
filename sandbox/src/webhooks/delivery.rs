//! The webhook scheduler and poster.
//!
//! The scheduler owns a timer heap: when the earliest item is due it takes every
//! status due within `batch_window_ms` (up to `max_batch`) into one POST, and each
//! whole change into a POST of its own. The poster signs the exact bytes it sends with
//! [`sign`] and retries like Meta: once immediately, then after growing delays,
//! bounded by `retry.max_attempts` and `retry.max_elapsed_ms`.

use super::{Outgoing, Scheduled, StatusEvent, envelope};
use crate::recording::RecordedDelivery;
use crate::state::Shared;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until};
use wa_shared::domain::webhook::{SIGNATURE_HEADER, sign};

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
///
/// POSTs start in due order: the scheduler itself takes a permit (of
/// `concurrency`) before it takes the next POST's items off the heap, and hands the
/// permit to the task that posts them. (Letting each spawned task wait for its own
/// permit would not keep that order: tokio does not poll spawned tasks in the order
/// they were spawned, so with `concurrency = 1` a later POST could overtake an
/// earlier one, a reorder nobody injected.)
pub async fn run_scheduler(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Vec<Scheduled>>,
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
                Some(items) => push_all(&mut heap, &mut seq, items),
                None => return,
            },
            () = sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                // Wait for a free slot first, so the POST carries everything that came
                // due meanwhile, and POSTs start in the order they were due.
                let permit = tokio::select! {
                    _ = shutdown.changed() => return,
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                // Everything scheduled while this waited, so nothing due earlier is
                // left behind in the channel.
                while let Ok(items) = queue.try_recv() {
                    push_all(&mut heap, &mut seq, items);
                }
                let Some(post) = next_post(&mut heap, Instant::now() + window, config.max_batch) else {
                    continue;
                };
                let shared = Arc::clone(&shared);
                let mut shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    tokio::select! {
                        _ = shutdown.changed() => {}
                        () = post_with_retries(&shared, post.body, post.statuses, post.fields) => {}
                    }
                });
            }
        }
    }
}

fn push_all(heap: &mut BinaryHeap<Entry>, seq: &mut u64, items: Vec<Scheduled>) {
    for s in items {
        heap.push(Entry {
            due: s.due,
            seq: *seq,
            item: s.item,
        });
        *seq += 1;
    }
}

/// One POST's worth of due items.
struct Post {
    body: serde_json::Value,
    statuses: Vec<(String, String)>,
    fields: Vec<String>,
}

/// Take the next POST off the heap: a whole change alone, or the statuses due by
/// `horizon` in due order (at most `max_batch`, stopping before a change, so nothing
/// due earlier is posted later).
fn next_post(heap: &mut BinaryHeap<Entry>, horizon: Instant, max_batch: usize) -> Option<Post> {
    let mut statuses: Vec<StatusEvent> = Vec::new();
    while let Some(top) = heap.peek() {
        let is_change = matches!(top.item, Outgoing::Change { .. });
        if top.due > horizon || statuses.len() >= max_batch || (is_change && !statuses.is_empty()) {
            break;
        }
        let entry = heap.pop()?;
        match entry.item {
            Outgoing::Status(s) => statuses.push(s),
            Outgoing::Change { envelope, field } => {
                return Some(Post {
                    body: envelope,
                    statuses: Vec::new(),
                    fields: vec![field],
                });
            }
        }
    }
    if statuses.is_empty() {
        return None;
    }
    let refs: Vec<&StatusEvent> = statuses.iter().collect();
    Some(Post {
        body: envelope::statuses_envelope(&refs),
        statuses: statuses
            .iter()
            .map(|s| (s.wamid.clone(), s.status.to_owned()))
            .collect(),
        fields: vec!["messages".to_owned()],
    })
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
    use crate::webhooks::NumberMeta;

    fn status(wamid: &str, status: &'static str) -> Outgoing {
        Outgoing::Status(StatusEvent {
            number: NumberMeta {
                phone_number_id: "1".into(),
                display_phone_number: "15550001111".into(),
                waba_id: "w".into(),
            },
            wamid: wamid.into(),
            status,
            timestamp: 1_750_000_000,
            recipient_id: "14155550123".into(),
            callback_data: None,
            pricing: None,
            error: None,
        })
    }

    #[test]
    fn posts_are_taken_in_due_order_and_a_change_is_never_overtaken() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let change = Outgoing::Change {
            envelope: serde_json::json!({"change": true}),
            field: "message_template_status_update".into(),
        };
        let items = [
            (ms(3), status("wamid.B", "sent")),
            (ms(1), status("wamid.A", "sent")),
            (ms(4), change),
            (ms(5), status("wamid.A", "delivered")),
            (ms(9), status("wamid.A", "read")),
        ];
        let mut heap: BinaryHeap<Entry> = items
            .into_iter()
            .enumerate()
            .map(|(seq, (due, item))| Entry {
                due: t0 + due,
                seq: seq as u64,
                item,
            })
            .collect();
        let horizon = t0 + ms(6);
        let first = next_post(&mut heap, horizon, 10).unwrap();
        let s = |w: &str, st: &str| (w.to_owned(), st.to_owned());
        assert_eq!(
            first.statuses,
            [s("wamid.A", "sent"), s("wamid.B", "sent")],
            "due order, stopping before the change"
        );
        let second = next_post(&mut heap, horizon, 10).unwrap();
        assert_eq!(second.fields, ["message_template_status_update"]);
        let third = next_post(&mut heap, horizon, 1).unwrap();
        assert_eq!(third.statuses, [s("wamid.A", "delivered")]);
        assert!(
            next_post(&mut heap, horizon, 10).is_none(),
            "read is not due yet"
        );
        assert_eq!(heap.len(), 1);
    }

    #[test]
    fn retries_start_immediately_then_grow_to_a_ceiling() {
        let d = |a| backoff(a, 100, 2.0, 1_000).as_millis();
        assert_eq!(
            [d(1), d(2), d(3), d(4), d(5), d(9)],
            [0, 100, 200, 400, 800, 1_000]
        );
    }
}
