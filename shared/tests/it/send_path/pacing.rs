//! Pacing through the real sender handler, on SQLite and on DynamoDB + SQS (moto):
//! messages past a recipient's burst wait unclaimed while others go out, a 131056
//! holds only its recipient, a 130429 holds the number for every sender instance,
//! and a message may wait any number of times without reaching the DLQ.

use crate::send_path::support::*;
use std::sync::Arc;
use std::time::Duration;
use wa_shared::app::SenderDeps;
use wa_shared::domain::pacing::PaceKey;
use wa_shared::domain::{FailureClass, MessageId, MessageState, PhoneNumber, PhoneNumberId};
use wa_shared::ports::Reservation;
use wa_testkit::{moto, unique_name};

const ANA: &str = "+14155550123";
const BRUNO: &str = "+14155550124";

/// The pipeline on either backend, Graph scripted per recipient.
async fn on(backend: &str) -> Option<(Pipeline, Arc<ScriptedProvider>)> {
    let graph = Arc::new(ScriptedProvider::default());
    let p = match backend {
        "sqlite" => Pipeline::new(graph.clone()).await,
        _ => {
            let sdk = moto::sdk_config_or_skip().await?;
            Pipeline::on_aws(graph.clone(), &sdk, &unique_name("pace")).await
        }
    };
    Some((p, graph))
}

fn sends_to(graph: &ScriptedProvider, to: &str) -> usize {
    graph.calls().iter().filter(|c| c["to"] == to).count()
}

/// Run `deps` (one sender instance) on what the queue holds now; delete what it did
/// not report, as the event source mapping does.
async fn send_with(p: &Pipeline, deps: &SenderDeps) {
    let batch = p.receive().await;
    let receipts: Vec<_> = batch
        .records
        .iter()
        .map(|r| r.receipt_handle.clone().unwrap())
        .collect();
    let failures: Vec<String> = wa_shared::app::sender::handle(deps, batch)
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    for receipt in receipts {
        let _ = p
            .queues
            .delete(&p.queue, &wa_shared::ports::ReceiptHandle::new(receipt))
            .await;
    }
}

fn number_key() -> PaceKey {
    PaceKey::Number(PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap())
}

async fn past_a_recipients_burst(backend: &str) {
    let Some((mut p, graph)) = on(backend).await else {
        return;
    };
    p.functions.sender.settings.pacing.pair_burst = 3;
    let mut ana = Vec::new();
    for i in 0..5 {
        ana.push(p.queue_template(ANA, &format!("ana-{i}")).await);
    }
    let bruno = p.queue_template(BRUNO, "bruno-0").await;
    assert!(p.send(p.receive().await).await.is_empty());

    assert_eq!(sends_to(&graph, ANA), 3, "a burst of three");
    assert_eq!(p.stored(&bruno).await.state, MessageState::Accepted);
    let mut waiting = Vec::new();
    for id in &ana {
        let m = p.stored(id).await;
        match m.state {
            MessageState::Accepted => assert_eq!(m.attempt, 1),
            MessageState::Queued => {
                assert_eq!(m.attempt, 0, "waiting spent no attempt");
                assert!(m.failure.is_none());
                waiting.push(id.clone());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(waiting.len(), 2);
    let depth = p.queues.approximate_depth(&p.queue).await.unwrap();
    assert_eq!(
        (depth.visible, depth.delayed),
        (0, 2),
        "a delayed copy each"
    );

    if backend != "sqlite" {
        return;
    }
    // The burst of three is repaid 3 × 6 s (+ the guard) after it began; the copies
    // come back within the wait before that, and both go in one new burst.
    p.clock.advance(Duration::from_secs(19));
    let batch = p.receive().await;
    assert_eq!(batch.records.len(), 2);
    assert!(p.send(batch).await.is_empty());
    for id in &waiting {
        let m = p.stored(id).await;
        assert_eq!((m.state, m.attempt), (MessageState::Accepted, 1));
    }
    assert_eq!(sends_to(&graph, ANA), 5);
}

#[tokio::test]
async fn pacing_messages_past_a_recipients_burst_wait_unclaimed_while_others_go_out_sqlite() {
    past_a_recipients_burst("sqlite").await;
}

#[tokio::test]
async fn pacing_messages_past_a_recipients_burst_wait_unclaimed_while_others_go_out_dynamo() {
    past_a_recipients_burst("dynamo").await;
}

async fn pair_rate_hit(backend: &str) {
    let Some((p, graph)) = on(backend).await else {
        return;
    };
    graph.script(ANA, graph_error(400, 131056, "Pair rate limit hit"));
    let first = p.queue_template(ANA, "ana-0").await;
    p.queue_template(BRUNO, "bruno-0").await;
    assert_eq!(
        p.send(p.receive().await).await.len(),
        1,
        "the 131056 retries"
    );
    let m = p.stored(&first).await;
    assert_eq!(m.failure.unwrap().code, Some(131056));

    // Ana is held: her next message waits, unclaimed; Bruno's goes at once.
    let next = p.queue_template(ANA, "ana-1").await;
    let bruno = p.queue_template(BRUNO, "bruno-1").await;
    let before = graph.calls().len();
    assert!(p.send(p.receive().await).await.is_empty());
    assert_eq!(graph.calls().len(), before + 1);
    assert_eq!(p.stored(&bruno).await.state, MessageState::Accepted);
    let m = p.stored(&next).await;
    assert_eq!((m.state, m.attempt), (MessageState::Queued, 0));
    // The number was not slowed: its next slot is now.
    let deps = &p.functions.sender;
    let rule = deps.settings.pacing.number_rule(1000);
    let now = p.clock_now();
    assert!(matches!(
        deps.pacing
            .reserve(&number_key(), &rule, now, Duration::from_millis(100))
            .await
            .unwrap(),
        Reservation::Reserved { .. }
    ));
}

#[tokio::test]
async fn pacing_a_131056_delays_only_that_recipient_sqlite() {
    pair_rate_hit("sqlite").await;
}

#[tokio::test]
async fn pacing_a_131056_delays_only_that_recipient_dynamo() {
    pair_rate_hit("dynamo").await;
}

async fn throughput_hit(backend: &str) {
    let Some((p, graph)) = on(backend).await else {
        return;
    };
    // Two sender instances over the same store; the second does not wait in the
    // invocation, so a paused number shows as a deferred record.
    let first = p.functions.sender.clone();
    let mut second = p.functions.sender.clone();
    second.settings.pacing.max_number_wait = Duration::ZERO;

    graph.script(ANA, graph_error(400, 130429, "Rate limit hit"));
    let throttled = p.queue_template(ANA, "ana-0").await;
    let batch = p.receive().await;
    let failures = wa_shared::app::sender::handle(&first, batch)
        .await
        .batch_item_failures;
    assert_eq!(failures.len(), 1, "the 130429 retries");
    let m = p.stored(&throttled).await;
    assert_eq!(
        (m.failure.as_ref().map(|f| f.class), m.failure.unwrap().code),
        (Some(FailureClass::Throttled), Some(130429))
    );

    // The other instance holds off the whole number: Bruno's message waits, unclaimed.
    let bruno = p.queue_template(BRUNO, "bruno-0").await;
    send_with(&p, &second).await;
    let m = p.stored(&bruno).await;
    assert_eq!((m.state, m.attempt), (MessageState::Queued, 0));
    assert_eq!(sends_to(&graph, BRUNO), 0);

    // After the pause the number runs slower for every instance: 1000/s divided by 4.
    p.clock.advance(Duration::from_secs(2));
    let rule = first.settings.pacing.number_rule(1000);
    let now = p.clock_now();
    let mut slots = Vec::new();
    for _ in 0..2 {
        match second
            .pacing
            .reserve(&number_key(), &rule, now, Duration::from_secs(1))
            .await
            .unwrap()
        {
            Reservation::Reserved { slot } => slots.push(slot.as_millis()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(slots[1] - slots[0], 4);
}

#[tokio::test]
async fn pacing_a_130429_holds_the_number_for_every_sender_instance_sqlite() {
    throughput_hit("sqlite").await;
}

#[tokio::test]
async fn pacing_a_130429_holds_the_number_for_every_sender_instance_dynamo() {
    throughput_hit("dynamo").await;
}

/// A recipient held for 100 minutes: its message is deferred again and again (SQS hides a
/// message 15 minutes at most), each time as a fresh copy, so it spends no attempt
/// and no receive, and never reaches the dead-letter queue (5 receives).
#[tokio::test]
async fn pacing_a_message_deferred_many_times_never_reaches_the_dlq() {
    let Some((p, graph)) = on("sqlite").await else {
        return;
    };
    let deps = &p.functions.sender;
    let ana = PaceKey::Pair(
        PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap(),
        PhoneNumber::parse(ANA).unwrap(),
    );
    let held_until = p.clock_now().plus_millis(100 * 60_000);
    deps.pacing
        .hold(&ana, &deps.settings.pacing.pair_rule(), held_until, None)
        .await
        .unwrap();
    let id: MessageId = p.queue_template(ANA, "ana-0").await;
    for round in 0..7 {
        let batch = p.receive().await;
        assert_eq!(batch.records.len(), 1, "round {round}");
        assert!(p.send(batch).await.is_empty());
        let m = p.stored(&id).await;
        assert_eq!((m.state, m.attempt), (MessageState::Queued, 0));
        p.clock.advance(Duration::from_secs(15 * 60));
    }
    assert!(
        p.queues
            .dead_letters(&p.queue, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(graph.calls().is_empty());
    // Past the hold it goes, on its first attempt.
    let batch = p.receive().await;
    assert!(p.send(batch).await.is_empty());
    let m = p.stored(&id).await;
    assert_eq!((m.state, m.attempt), (MessageState::Accepted, 1));
}
