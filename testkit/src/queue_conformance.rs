//! The `WorkQueue` conformance suite: one set of cases run against every adapter
//! (DESIGN §2 invariant). Use [`queue_conformance_tests!`](crate::queue_conformance_tests)
//! to turn it into one `#[tokio::test]` per case for an adapter.
//!
//! Time is passed through the harness: the embedded adapter advances a manual
//! clock, SQS (moto) really sleeps, so waits stay short (visibility 1 s, sleeps 2 s).

use super::unique_name;
use async_trait::async_trait;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;
use wa_shared::ports::{QueueError, QueueRef, QueueSpec, ReceivedMessage, WorkQueue};

const SHORT: Duration = Duration::from_secs(1);
/// Longer than [`SHORT`] with a margin for SQS's whole-second clocks.
const PAST_SHORT: Duration = Duration::from_secs(2);
const LONG: Duration = Duration::from_secs(60);

/// What the suite needs from an adapter under test.
#[async_trait]
pub trait QueueHarness: Send + Sync {
    /// The adapter under test.
    fn queue(&self) -> Arc<dyn WorkQueue>;
    /// Let `by` pass as the adapter sees time (advance a manual clock, or sleep).
    async fn pass_time(&self, by: Duration);
    /// Long-poll wait for receives that expect a message (covers eventual consistency).
    fn settle(&self) -> Duration;
}

async fn fresh_queue(h: &dyn QueueHarness, spec: QueueSpec) -> QueueRef {
    h.queue()
        .ensure_queue(&unique_name("conf"), &spec)
        .await
        .expect("ensure_queue")
}

fn spec(max_receive_count: u32) -> QueueSpec {
    QueueSpec {
        max_receive_count,
        visibility_timeout: SHORT,
        ..wa_shared::queues::SEND.spec
    }
}

async fn receive_one(h: &dyn QueueHarness, q: &QueueRef, visibility: Duration) -> ReceivedMessage {
    let mut got = h
        .queue()
        .receive(q, 1, visibility, h.settle())
        .await
        .expect("receive");
    assert_eq!(got.len(), 1, "expected one message, got {got:?}");
    got.remove(0)
}

async fn assert_empty(h: &dyn QueueHarness, q: &QueueRef) {
    let got = h
        .queue()
        .receive(q, 10, LONG, Duration::ZERO)
        .await
        .expect("receive");
    assert!(got.is_empty(), "expected no visible message, got {got:?}");
}

/// A sent message is received once with its body, and deleting it removes it.
pub async fn sent_message_is_received_then_deleted(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(5)).await;
    let id = h.queue().send(&q, "hello", Duration::ZERO).await.unwrap();
    let m = receive_one(h, &q, SHORT).await;
    assert_eq!(
        (m.id.clone(), m.body.as_str(), m.receive_count),
        (id, "hello", 1)
    );
    h.queue().delete(&q, &m.receipt).await.unwrap();
    h.pass_time(PAST_SHORT).await;
    assert_empty(h, &q).await;
    assert_eq!(
        h.queue().approximate_depth(&q).await.unwrap(),
        Default::default()
    );
}

/// A deleted message's receipt can no longer change its visibility.
pub async fn deleted_message_receipt_is_no_longer_in_flight(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(5)).await;
    h.queue().send(&q, "x", Duration::ZERO).await.unwrap();
    let m = receive_one(h, &q, LONG).await;
    h.queue().delete(&q, &m.receipt).await.unwrap();
    let changed = h
        .queue()
        .change_visibility(&q, &m.receipt, Duration::ZERO)
        .await;
    assert!(
        matches!(changed, Err(QueueError::ReceiptNotInFlight)),
        "{changed:?}"
    );
}

/// A received message stays hidden for its visibility timeout, then comes back.
pub async fn received_message_is_hidden_until_its_visibility_timeout_ends(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(5)).await;
    h.queue().send(&q, "again", Duration::ZERO).await.unwrap();
    let first = receive_one(h, &q, SHORT).await;
    assert_empty(h, &q).await;
    h.pass_time(PAST_SHORT).await;
    let second = receive_one(h, &q, LONG).await;
    assert_eq!(second.id, first.id);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt);
}

/// `change_visibility` postpones a message (the retry delay); 0 releases it at once.
pub async fn change_visibility_postpones_and_zero_releases_at_once(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(5)).await;
    h.queue()
        .send(&q, "retry me", Duration::ZERO)
        .await
        .unwrap();
    let m = receive_one(h, &q, LONG).await;
    h.queue()
        .change_visibility(&q, &m.receipt, SHORT)
        .await
        .unwrap();
    assert_empty(h, &q).await;
    h.pass_time(PAST_SHORT).await;
    let again = receive_one(h, &q, LONG).await;
    assert_eq!((again.body.as_str(), again.receive_count), ("retry me", 2));
    h.queue()
        .change_visibility(&q, &again.receipt, Duration::ZERO)
        .await
        .unwrap();
    let third = receive_one(h, &q, LONG).await;
    assert_eq!(third.receive_count, 3);
}

/// A message sent with a delay is invisible (and counted as delayed) until it passes.
pub async fn delayed_send_is_invisible_until_the_delay_passes(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(5)).await;
    h.queue().send(&q, "later", SHORT).await.unwrap();
    assert_empty(h, &q).await;
    h.pass_time(PAST_SHORT).await;
    assert_eq!(receive_one(h, &q, LONG).await.body, "later");
}

/// A message received more than `max_receive_count` times moves to the dead-letter queue.
pub async fn message_received_too_often_moves_to_the_dead_letter_queue(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(2)).await;
    h.queue().send(&q, "poison", Duration::ZERO).await.unwrap();
    for expected_count in 1..=2 {
        let m = receive_one(h, &q, SHORT).await;
        assert_eq!(m.receive_count, expected_count);
        h.pass_time(PAST_SHORT).await;
    }
    assert_empty(h, &q).await;
    let letters = h.queue().dead_letters(&q, 10).await.unwrap();
    let bodies: Vec<_> = letters.iter().map(|l| l.body.as_str()).collect();
    assert_eq!(bodies, ["poison"]);
    // Listing leaves them in place.
    assert_eq!(h.queue().dead_letters(&q, 10).await.unwrap().len(), 1);
}

/// Redrive moves dead letters back to the source queue, where they are received afresh.
pub async fn redrive_moves_dead_letters_back_to_the_queue(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(1)).await;
    h.queue().send(&q, "first", Duration::ZERO).await.unwrap();
    h.queue().send(&q, "second", Duration::ZERO).await.unwrap();
    let mut got = h.queue().receive(&q, 10, SHORT, h.settle()).await.unwrap();
    if got.len() < 2 {
        got.extend(h.queue().receive(&q, 10, SHORT, h.settle()).await.unwrap());
    }
    assert_eq!(got.len(), 2);
    h.pass_time(PAST_SHORT).await;
    assert_empty(h, &q).await;
    assert_eq!(h.queue().dead_letters(&q, 10).await.unwrap().len(), 2);
    assert_eq!(h.queue().redrive_dead_letters(&q, 10).await.unwrap(), 2);
    assert!(h.queue().dead_letters(&q, 10).await.unwrap().is_empty());
    let bodies = drain(h, &q, 2).await;
    assert_eq!(
        bodies,
        BTreeSet::from(["first".to_owned(), "second".to_owned()])
    );
}

/// `send_many` of 25 bodies (three SQS batches) delivers every one of them.
pub async fn batch_send_of_25_arrives_complete(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(5)).await;
    let bodies: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    let outcome = h.queue().send_many(&q, &bodies).await.unwrap();
    assert!(outcome.is_complete(), "{:?}", outcome.failed);
    let indexes: Vec<usize> = outcome.sent.iter().map(|s| s.index).collect();
    assert_eq!(indexes, (0..25).collect::<Vec<_>>());
    let ids: HashSet<_> = outcome.sent.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids.len(), 25);
    assert_eq!(drain(h, &q, 25).await, bodies.into_iter().collect());
}

/// Depth counts visible, in-flight and delayed messages separately.
pub async fn depth_counts_visible_in_flight_and_delayed(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(5)).await;
    h.queue().send(&q, "a", Duration::ZERO).await.unwrap();
    h.queue().send(&q, "b", Duration::ZERO).await.unwrap();
    h.queue().send(&q, "c", LONG).await.unwrap();
    receive_one(h, &q, LONG).await;
    let depth = h.queue().approximate_depth(&q).await.unwrap();
    assert_eq!((depth.visible, depth.in_flight, depth.delayed), (1, 1, 1));
}

/// Receivers racing on one queue never get the same message while it is invisible.
pub async fn concurrent_receivers_never_share_an_invisible_message(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(5)).await;
    let bodies: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    assert!(
        h.queue()
            .send_many(&q, &bodies)
            .await
            .unwrap()
            .is_complete()
    );
    let receivers: Vec<_> = (0..6)
        .map(|_| {
            let (queue, q) = (h.queue(), q.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let got = queue.receive(&q, 3, LONG, Duration::ZERO).await.unwrap();
                    if got.is_empty() {
                        return ids;
                    }
                    ids.extend(got.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for receiver in receivers {
        all.extend(receiver.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(distinct.len(), all.len(), "a message was handed out twice");
    assert_eq!(all.len(), 20);
}

/// `ensure_queue` is idempotent and converges on a changed spec.
pub async fn ensure_queue_is_idempotent(h: &dyn QueueHarness) {
    let name = unique_name("conf");
    let first = h.queue().ensure_queue(&name, &spec(5)).await.unwrap();
    let again = h.queue().ensure_queue(&name, &spec(5)).await.unwrap();
    let changed = h.queue().ensure_queue(&name, &spec(3)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(first, changed);
    let bad = h.queue().ensure_queue("no spaces allowed", &spec(5)).await;
    assert!(
        matches!(bad, Err(QueueError::InvalidArgument(_))),
        "{bad:?}"
    );
}

/// Operations on a queue that does not exist say so.
pub async fn unknown_queue_is_reported_as_not_found(h: &dyn QueueHarness) {
    let q = fresh_queue(h, spec(5)).await;
    let missing = QueueRef::new(format!("{q}-missing"));
    let sent = h.queue().send(&missing, "x", Duration::ZERO).await;
    assert!(
        matches!(sent, Err(QueueError::QueueNotFound(_))),
        "{sent:?}"
    );
    let received = h.queue().receive(&missing, 1, SHORT, Duration::ZERO).await;
    assert!(
        matches!(received, Err(QueueError::QueueNotFound(_))),
        "{received:?}"
    );
}

/// Receive (and delete) until `expected` messages came or attempts run out; their bodies.
async fn drain(h: &dyn QueueHarness, q: &QueueRef, expected: usize) -> BTreeSet<String> {
    let mut bodies = BTreeSet::new();
    for _ in 0..expected + 5 {
        if bodies.len() >= expected {
            break;
        }
        for m in h.queue().receive(q, 10, LONG, h.settle()).await.unwrap() {
            h.queue().delete(q, &m.receipt).await.unwrap();
            assert!(bodies.insert(m.body), "duplicate delivery");
        }
    }
    bodies
}

/// One `#[tokio::test]` per conformance case. `$harness` is an expression giving
/// a future of `Option<impl QueueHarness>` (`None`: skip, e.g. moto not running).
#[macro_export]
macro_rules! queue_conformance_tests {
    ($harness:expr) => {
        $crate::queue_conformance_tests!(@cases $harness;
            sent_message_is_received_then_deleted,
            deleted_message_receipt_is_no_longer_in_flight,
            received_message_is_hidden_until_its_visibility_timeout_ends,
            change_visibility_postpones_and_zero_releases_at_once,
            delayed_send_is_invisible_until_the_delay_passes,
            message_received_too_often_moves_to_the_dead_letter_queue,
            redrive_moves_dead_letters_back_to_the_queue,
            batch_send_of_25_arrives_complete,
            depth_counts_visible_in_flight_and_delayed,
            concurrent_receivers_never_share_an_invisible_message,
            ensure_queue_is_idempotent,
            unknown_queue_is_reported_as_not_found,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness.await else { return };
                $crate::queue_conformance::$case(&harness).await;
            }
        )*
    };
}
