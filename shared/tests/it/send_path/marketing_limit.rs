//! Meta's per-user marketing limit (131049) through the real sender and reconciler:
//! at least 24 h without a Graph call, then one retry within the message's max age,
//! else `exhausted` with the 131049 as the reason.

use crate::send_path::support::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use wa_shared::app::reconciler::Action;
use wa_shared::domain::{FailureClass, MessageId, MessageState};
use wa_shared::queues::SendQueueMessage;

const ANA: &str = "+14155550123";
const HOUR: Duration = Duration::from_secs(3600);

fn marketing_cap() -> Reply {
    graph_error(
        400,
        131049,
        "This message was not delivered to maintain healthy ecosystem engagement.",
    )
}

/// A MARKETING template (`spring_sale`) to Ana, queued through intake.
async fn queue_spring_sale(p: &Pipeline, key: &str) -> MessageId {
    let req = with_header(
        with_body(
            request("intake/send-template.json"),
            &json!({"to": ANA, "template": {"name": "spring_sale", "language": "en_US",
                "header": {"type": "text", "text": "Ana"}, "body": ["25%", "March 31"],
                "buttons": [{"index": 0, "type": "copy_code", "coupon_code": "SPRING25"}]}}),
        ),
        "idempotency-key",
        Some(key),
    );
    let resp = p.intake(req).await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    MessageId::parse(body(&resp)["id"].as_str().unwrap()).unwrap()
}

async fn reconcile(p: &Pipeline) -> u32 {
    let report = wa_shared::app::reconciler::run(&p.functions.reconciler)
        .await
        .unwrap();
    report.count(Action::Reenqueued)
}

#[tokio::test]
async fn a_131049_waits_24_hours_without_a_graph_call_then_the_sweep_sends_it_again() {
    let graph = Arc::new(ScriptedProvider::default());
    let mut p = Pipeline::new(graph.clone()).await;
    for lifecycle in [
        &mut p.functions.sender.ports.lifecycle,
        &mut p.functions.reconciler.ports.lifecycle,
    ] {
        lifecycle.max_age = 72 * HOUR;
        // The refused send and the early claim below must not spend the budget.
        lifecycle.max_attempts = 1;
    }
    let grace = p.functions.reconciler.ports.lifecycle.queued_grace;
    let id = queue_spring_sale(&p, "cap-1").await;
    graph.script(ANA, marketing_cap());
    assert!(p.send(p.receive().await).await.is_empty());
    let m = p.stored(&id).await;
    assert_eq!(m.state, MessageState::Queued);
    let f = m.failure.clone().unwrap();
    assert_eq!((f.class, f.code), (FailureClass::Throttled, Some(131049)));
    assert!(
        p.receive().await.records.is_empty(),
        "the record is deleted, not hidden"
    );

    // An early wake-up call (a hold's release, an SQS duplicate) sends nothing.
    p.clock.advance(HOUR);
    let early = SendQueueMessage::of(&m).to_body();
    let record = sqs_event([("early".into(), "early-receipt".into(), early)]);
    assert!(p.send(record).await.is_empty());
    assert_eq!(graph.calls().len(), 1, "sent again within 24 h");
    let m = p.stored(&id).await;
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.failure.unwrap().code, Some(131049));

    // Not swept before the 24 h are over (and the grace after them).
    p.clock.advance(22 * HOUR);
    assert_eq!(reconcile(&p).await, 0);
    assert_eq!(p.stored(&id).await.state, MessageState::Queued);
    p.clock.advance(HOUR + grace + Duration::from_secs(1));
    assert_eq!(reconcile(&p).await, 1);
    assert!(p.send(p.receive().await).await.is_empty());
    let m = p.stored(&id).await;
    assert_eq!(m.state, MessageState::Accepted, "{:?}", m.failure);
    assert_eq!(graph.calls().len(), 2);
    assert_eq!(m.attempt, 3, "refused, early claim, sent");
}

#[tokio::test]
async fn a_131049_whose_wait_would_pass_the_max_age_exhausts_the_marketing_message_with_its_reason()
{
    let graph = Arc::new(ScriptedProvider::default());
    let p = Pipeline::new(graph.clone()).await;
    // The default max age is 24 h: the 24 h wait cannot fit.
    assert_eq!(
        p.functions.sender.ports.lifecycle.max_age,
        24 * HOUR,
        "the default changed"
    );
    let id = queue_spring_sale(&p, "cap-2").await;
    graph.script(ANA, marketing_cap());
    assert!(p.send(p.receive().await).await.is_empty());
    let m = p.stored(&id).await;
    assert_eq!(m.state, MessageState::Failed);
    let f = m.failure.unwrap();
    assert_eq!((f.class, f.code), (FailureClass::Exhausted, Some(131049)));
    assert!(f.title.contains("per-user marketing limit"), "{}", f.title);
    assert!(f.detail.unwrap().contains("last failure"));
    assert_eq!(graph.calls().len(), 1);
}

#[tokio::test]
async fn a_131049_retry_is_exhausted_when_only_a_part_of_the_wait_fits_the_max_age() {
    let graph = Arc::new(ScriptedProvider::default());
    let mut p = Pipeline::new(graph.clone()).await;
    p.functions.sender.ports.lifecycle.max_age = 30 * HOUR;
    let id = queue_spring_sale(&p, "cap-3").await;
    // Six hours old when Meta refuses it: 6 h + 24 h + the sweep's grace > 30 h.
    p.clock.advance(6 * HOUR);
    graph.script(ANA, marketing_cap());
    assert!(p.send(p.receive().await).await.is_empty());
    let f = p.stored(&id).await.failure.unwrap();
    assert_eq!((f.class, f.code), (FailureClass::Exhausted, Some(131049)));
}

#[tokio::test]
async fn a_131049_holds_the_recipients_other_marketing_templates_but_not_their_utility_ones() {
    let graph = Arc::new(ScriptedProvider::default());
    let mut p = Pipeline::new(graph.clone()).await;
    for lifecycle in [
        &mut p.functions.sender.ports.lifecycle,
        &mut p.functions.reconciler.ports.lifecycle,
    ] {
        lifecycle.max_age = 72 * HOUR;
    }
    let grace = p.functions.reconciler.ports.lifecycle.queued_grace;
    let first = queue_spring_sale(&p, "cap-a").await;
    graph.script(ANA, marketing_cap());
    assert!(p.send(p.receive().await).await.is_empty());
    let refused_at = p.clock_now();
    let contact = p
        .directory
        .contact(
            &wa_shared::domain::TenantId::parse("demo").unwrap(),
            &wa_shared::domain::PhoneNumber::parse(ANA).unwrap(),
        )
        .await
        .unwrap();
    let until = contact
        .marketing_limited_until
        .expect("the recipient is held");
    assert!(until.millis_since(refused_at) >= 24 * 3_600_000);

    p.clock.advance(HOUR);
    let second = queue_spring_sale(&p, "cap-b").await;
    let utility = p.queue_template(ANA, "utility-1").await;
    assert!(p.send(p.receive().await).await.is_empty());
    assert_eq!(p.stored(&utility).await.state, MessageState::Accepted);
    let m = p.stored(&second).await;
    assert_eq!(m.state, MessageState::Queued);
    let f = m.failure.unwrap();
    assert_eq!((f.class, f.code), (FailureClass::Throttled, Some(131049)));
    assert_eq!(
        graph.calls().len(),
        2,
        "the second marketing template was sent"
    );

    // Both marketing templates go once the wait (and the sweep's grace) is over.
    p.clock
        .set(until.plus_millis(grace.as_millis() as i64 + 1_000));
    assert_eq!(reconcile(&p).await, 2);
    assert!(p.send(p.receive().await).await.is_empty());
    assert_eq!(p.stored(&first).await.state, MessageState::Accepted);
    assert_eq!(p.stored(&second).await.state, MessageState::Accepted);
    assert_eq!(graph.calls().len(), 4);
}
