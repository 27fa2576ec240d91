//! The sender through its real handler with SQS events, Graph scripted per recipient.

use crate::send_path::support::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use wa_shared::domain::graph::{Classification, SendOutcome};
use wa_shared::domain::template::TemplateStatus;
use wa_shared::domain::tenant::TenantStatus;
use wa_shared::domain::{FailureClass, FailureSource, MessageState, TenantId};

const ANA: &str = "+14155550123";
const BRUNO: &str = "+14155550124";
const CARLA: &str = "+14155550125";
const DIEGO: &str = "+14155550126";

async fn pipeline() -> (Pipeline, Arc<ScriptedProvider>) {
    let graph = Arc::new(ScriptedProvider::default());
    (Pipeline::new(graph.clone()).await, graph)
}

fn demo() -> TenantId {
    TenantId::parse("demo").unwrap()
}

fn ambiguous() -> Reply {
    Reply::Outcome(SendOutcome::Failed(Classification {
        class: FailureClass::Ambiguous,
        code: None,
        title: "timed out after the request was written".into(),
        detail: None,
        suggested_delay: None,
        fbtrace_id: None,
    }))
}

#[tokio::test]
async fn a_queued_message_is_sent_once_with_our_ids_in_the_callback_data() {
    let (p, graph) = pipeline().await;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    p.clock.advance(Duration::from_millis(1_500));
    let failures = p.send(p.receive().await).await;
    assert!(failures.is_empty(), "{failures:?}");

    let calls = graph.calls();
    assert_eq!(calls.len(), 1);
    let sent = &calls[0];
    assert_eq!(sent["to"], ANA);
    assert_eq!(sent["type"], "template");
    assert_eq!(
        sent["biz_opaque_callback_data"],
        format!("wa1:demo:{}", fixture_id())
    );
    assert_eq!(sent["template"]["name"], "order_shipped");

    let m = p.stored(&fixture_id()).await;
    assert_eq!(m.state, MessageState::Accepted);
    assert_eq!(m.attempt, 1);
    assert_eq!(m.wamid.as_ref().unwrap().as_str(), "wamid.TEST0001");
    assert_eq!(m.message_status.as_deref(), Some("accepted"));
    assert!(m.timestamps.accepted_at.is_some());
    assert_eq!(p.metric("Accepted", &[("Tenant", "demo")]), 1.0);
    assert_eq!(
        p.metric("QueueToAcceptedMs", &[("Tenant", "demo")]),
        1_500.0
    );
}

#[tokio::test]
async fn an_sqs_message_delivered_twice_leads_to_one_graph_call() {
    let (p, graph) = pipeline().await;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    let batch = p.receive().await;
    // Twice in one batch (concurrently), then once more in a later batch.
    let record = batch.records[0].clone();
    let twice = sqs_event([
        (
            "a".into(),
            record.receipt_handle.clone().unwrap(),
            record.body.clone().unwrap(),
        ),
        (
            "b".into(),
            record.receipt_handle.clone().unwrap(),
            record.body.clone().unwrap(),
        ),
    ]);
    assert!(p.send(twice).await.is_empty());
    let fixture = serde_json::from_value(event("sender/duplicate.json")).unwrap();
    assert!(p.send(fixture).await.is_empty());
    assert_eq!(graph.calls().len(), 1);
    assert_eq!(p.stored(&fixture_id()).await.state, MessageState::Accepted);
}

/// One permanent, one retryable, one ambiguous and one duplicate record in one batch.
#[tokio::test]
async fn a_mixed_batch_fails_retries_parks_and_drops_each_record_by_its_outcome() {
    let (p, graph) = pipeline().await;
    let permanent = p.queue_template(ANA, "k-permanent").await;
    let retryable = p.queue_template(BRUNO, "k-retryable").await;
    let lost = p.queue_template(CARLA, "k-ambiguous").await;
    let done = p.queue_template(DIEGO, "k-done").await;
    // The fourth was already sent by an earlier batch: its record is a duplicate.
    let first = p.receive().await;
    let done_record = first
        .records
        .iter()
        .find(|r| r.body.as_deref().unwrap().contains(done.as_str()))
        .unwrap()
        .clone();
    assert!(
        p.send(sqs_event([(
            "done-1".to_owned(),
            done_record.receipt_handle.clone().unwrap(),
            done_record.body.clone().unwrap(),
        )]))
        .await
        .is_empty()
    );
    assert_eq!(graph.calls().len(), 1);

    graph.script(
        ANA,
        graph_error(400, 132000, "Number of parameters does not match"),
    );
    graph.script(BRUNO, graph_error(500, 131000, "Something went wrong"));
    graph.script(CARLA, ambiguous());
    let failures = p.send(first).await;

    let retry_record = failures.clone();
    assert_eq!(retry_record.len(), 1, "{failures:?}");
    assert_eq!(graph.calls().len(), 4);

    let m = p.stored(&permanent).await;
    assert_eq!(m.state, MessageState::Failed);
    let f = m.failure.unwrap();
    assert_eq!(
        (f.class, f.code, f.source),
        (FailureClass::Rejected, Some(132000), FailureSource::Graph)
    );
    // What the product sees: GET /v1/messages/{id} answers the failure object with
    // exactly {class, code, title, detail, source}, Meta's details included.
    let mut get = request("intake/get.json");
    get.raw_path = Some(format!("/v1/messages/{permanent}"));
    get.path_parameters
        .insert("id".into(), permanent.as_str().to_owned());
    let resp = p.intake(get).await;
    assert_eq!(resp.status_code, 200, "{}", body_text(&resp));
    let view = body(&resp);
    assert_eq!(view["status"], "failed");
    assert!(!f.title.is_empty());
    assert_eq!(
        view["failure"],
        json!({
            "class": "rejected",
            "code": 132000,
            "title": f.title,
            "detail": "Number of parameters does not match",
            "source": "graph",
        })
    );

    let m = p.stored(&retryable).await;
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.attempt, 1);
    assert_eq!(m.failure.unwrap().class, FailureClass::Transient);

    let m = p.stored(&lost).await;
    assert_eq!(m.state, MessageState::Sending);
    assert!(m.ambiguous_at.is_some());

    assert_eq!(p.stored(&done).await.state, MessageState::Accepted);
    assert_eq!(p.metric("Failed", &[("Class", "rejected")]), 1.0);
    assert_eq!(
        p.metric("Retried", &[("Tenant", "demo"), ("Class", "transient")]),
        1.0
    );
    // The metric contract (infra/template.yaml): Retried per tenant and class, plus
    // the stage-wide set that alarms read.
    let retried: Vec<_> = p
        .metrics
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.get("Retried").is_some())
        .cloned()
        .collect();
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert_eq!(
        retried[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Stage", "Tenant", "Class"], ["Stage"]])
    );
    assert_eq!(p.metric("Ambiguous", &[("Tenant", "demo")]), 1.0);
    assert_eq!(p.metric("Accepted", &[]), 1.0);
    // Every failed Graph call by class: what the graph-errors-* alarms read.
    for class in ["rejected", "transient", "ambiguous"] {
        assert_eq!(p.metric("GraphError", &[("Class", class)]), 1.0, "{class}");
    }

    // The retried record is hidden for its backoff (transient, attempt 1: 1–2 s) and
    // comes back after it; sending it again succeeds.
    assert!(p.receive().await.records.is_empty());
    p.clock.advance(Duration::from_secs(2));
    let again = p.receive().await;
    assert_eq!(again.records.len(), 1);
    assert_eq!(
        again.records[0].message_id.as_deref(),
        Some(retry_record[0].as_str())
    );
    assert!(p.send(again).await.is_empty());
    let m = p.stored(&retryable).await;
    assert_eq!((m.state, m.attempt), (MessageState::Accepted, 2));
}

#[tokio::test]
async fn a_template_paused_between_intake_and_send_ends_suppressed_without_a_graph_call() {
    let (p, graph) = pipeline().await;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    p.directory
        .update_template_status(
            &demo(),
            "order_shipped",
            "en_US",
            &TemplateStatus::Paused,
            START,
        )
        .await
        .unwrap();
    assert!(p.send(p.receive().await).await.is_empty());
    assert!(graph.calls().is_empty());
    let m = p.stored(&fixture_id()).await;
    assert_eq!(m.state, MessageState::Suppressed);
    assert_eq!(m.suppression.unwrap().reason.as_str(), "template_paused");
    assert_eq!(
        p.metric(
            "Suppressed",
            &[("Tenant", "demo"), ("Reason", "template_paused")]
        ),
        1.0
    );
}

#[tokio::test]
async fn a_suspended_tenant_or_an_opted_out_recipient_is_suppressed_at_send_time() {
    let (p, graph) = pipeline().await;
    let a = p.queue_template(ANA, "k-a").await;
    let who = wa_shared::domain::PhoneNumber::parse(ANA).unwrap();
    p.directory
        .set_opt_out(&demo(), &who, true, START)
        .await
        .unwrap();
    assert!(p.send(p.receive().await).await.is_empty());
    assert_eq!(
        p.stored(&a).await.suppression.unwrap().reason.as_str(),
        "opted_out"
    );

    let b = p.queue_template(BRUNO, "k-b").await;
    let mut profile = p.directory.tenant(&demo()).await.unwrap().unwrap();
    profile.status = TenantStatus::Suspended;
    p.directory.put_tenant(&profile).await.unwrap();
    // Past the sender's cache TTL.
    p.clock.advance(Duration::from_secs(3));
    assert!(p.send(p.receive().await).await.is_empty());
    assert_eq!(
        p.stored(&b).await.suppression.unwrap().reason.as_str(),
        "tenant_suspended"
    );
    assert!(graph.calls().is_empty());
}

#[tokio::test]
async fn a_retryable_failure_of_the_last_attempt_is_exhausted() {
    let (mut p, graph) = pipeline().await;
    p.functions.sender.ports.lifecycle.max_attempts = 1;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    graph.script(ANA, graph_error(429, 130429, "Rate limit hit"));
    assert!(p.send(p.receive().await).await.is_empty());
    let m = p.stored(&fixture_id()).await;
    assert_eq!(m.state, MessageState::Failed);
    let f = m.failure.unwrap();
    assert_eq!(f.class, FailureClass::Exhausted);
    assert_eq!(f.code, Some(130429));
    assert_eq!(p.metric("Failed", &[("Class", "exhausted")]), 1.0);
}

#[tokio::test]
async fn a_message_past_its_max_age_is_exhausted_without_a_graph_call() {
    let (p, graph) = pipeline().await;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    p.clock.advance(Duration::from_secs(25 * 3600));
    // The queue keeps it; the sender refuses to send a day-old message.
    let batch = p.receive().await;
    assert!(p.send(batch).await.is_empty());
    assert!(graph.calls().is_empty());
    let m = p.stored(&fixture_id()).await;
    assert_eq!(m.failure.unwrap().class, FailureClass::Exhausted);
}

#[tokio::test]
async fn a_throttled_answer_is_retried_after_a_longer_delay() {
    let (p, graph) = pipeline().await;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    graph.script(ANA, graph_error(400, 131056, "Pair rate limit hit"));
    assert_eq!(p.send(p.receive().await).await.len(), 1);
    let m = p.stored(&fixture_id()).await;
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.failure.unwrap().class, FailureClass::Throttled);
    // Throttled backoff starts at 30 s with equal jitter: not before 15 s.
    p.clock.advance(Duration::from_secs(14));
    assert!(p.receive().await.records.is_empty());
    p.clock.advance(Duration::from_secs(16));
    assert_eq!(p.receive().await.records.len(), 1);
}

#[tokio::test]
async fn an_unresolvable_token_holds_the_tenant_and_its_message_carries_the_next_probe() {
    let (p, graph) = pipeline().await;
    let mut profile = p.directory.tenant(&demo()).await.unwrap().unwrap();
    profile.token_ref = "env:WA_SEND_PATH_TEST_NO_SUCH_TOKEN".into();
    p.directory.put_tenant(&profile).await.unwrap();
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    // The record is done with: a fresh, delayed queue message carries the hold's
    // next probe (a record received again and again would end in the DLQ).
    assert!(p.send(p.receive().await).await.is_empty());
    assert!(graph.calls().is_empty());
    let m = p.stored(&fixture_id()).await;
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.failure.unwrap().class, FailureClass::Tenant);
    let hold = p.directory.tenant(&demo()).await.unwrap().unwrap().hold;
    assert_eq!(hold.map(|h| h.code), Some(None), "held, with no Graph code");
    assert!(p.receive().await.records.is_empty());
    p.clock.advance(Duration::from_secs(121));
    assert_eq!(p.receive().await.records.len(), 1);
}

#[tokio::test]
async fn a_record_that_is_not_a_reference_is_dropped() {
    let (p, graph) = pipeline().await;
    let event = serde_json::from_value(event("sender/bad-record.json")).unwrap();
    assert!(p.send(event).await.is_empty());
    assert!(graph.calls().is_empty());
    assert_eq!(
        p.queues.approximate_depth(&p.queue).await.unwrap().visible,
        0
    );
    let _ = json!(null);
}

/// A record whose processing panics comes back (a batch item failure); the others of
/// the batch are sent and deleted. This is why the release profile unwinds.
#[tokio::test]
async fn a_panicking_record_comes_back_and_the_rest_of_the_batch_is_sent() {
    let (p, graph) = pipeline().await;
    let bad = p.queue_template(ANA, "k-panics").await;
    let good = p.queue_template(BRUNO, "k-fine").await;
    graph.script(ANA, Reply::Panic);
    let batch = p.receive().await;
    let bad_record = batch
        .records
        .iter()
        .find(|r| r.body.as_deref().unwrap().contains(bad.as_str()))
        .and_then(|r| r.message_id.clone())
        .unwrap();
    let failures = p.send(batch).await;
    assert_eq!(failures, [bad_record]);
    assert_eq!(p.stored(&good).await.state, MessageState::Accepted);
    // The panicked attempt holds its claim until the lease expires, like a crash.
    assert_eq!(p.stored(&bad).await.state, MessageState::Sending);
}

/// The ambiguous mark fails twice: the sender's bounded retries get it written in the
/// same invocation, and the record is deleted.
#[tokio::test]
async fn a_failing_ambiguous_mark_is_retried_within_the_invocation() {
    let (mut p, graph) = pipeline().await;
    let store = Arc::new(FailingWrites::new(
        p.store.clone(),
        "sender.marked_ambiguous",
        2,
    ));
    p.use_store(store.clone());
    let lost = p.queue_template(CARLA, "k-lost").await;
    graph.script(CARLA, ambiguous());
    assert!(p.send(p.receive().await).await.is_empty());
    assert_eq!(store.refused.load(std::sync::atomic::Ordering::SeqCst), 2);
    let m = p.stored(&lost).await;
    assert_eq!(m.state, MessageState::Sending);
    assert!(m.ambiguous_at.is_some());
    assert_eq!(m.lease_until, None);
    assert_eq!(p.metric("Ambiguous", &[("Tenant", "demo")]), 1.0);
}

/// The ambiguous mark cannot be written at all. The message is neither lost nor
/// resent: the dispatch mark written before the Graph call keeps a redelivered record
/// from claiming it, and the reconciler marks the expired lease ambiguous instead of
/// requeueing it; the tenant's policy (`fail`) ends it after the grace. One Graph
/// call in all.
#[tokio::test]
async fn a_lost_answer_whose_mark_cannot_be_written_is_never_sent_again() {
    let (mut p, graph) = pipeline().await;
    let store = Arc::new(FailingWrites::new(
        p.store.clone(),
        "sender.marked_ambiguous",
        u32::MAX,
    ));
    p.use_store(store.clone());
    let lost = p.queue_template(CARLA, "k-lost").await;
    graph.script(CARLA, ambiguous());
    let batch = p.receive().await;
    let record = batch.records[0].clone();
    assert!(p.send(batch).await.is_empty());
    assert_eq!(store.refused.load(std::sync::atomic::Ordering::SeqCst), 4);
    let m = p.stored(&lost).await;
    assert_eq!(m.state, MessageState::Sending);
    assert!(m.dispatched_at.is_some());
    assert!(m.lease_until.is_some(), "the mark was not written");
    assert_eq!(graph.calls().len(), 1);

    // After the lease: the same record again (SQS redelivery, or the reconciler's
    // wake-up call of an older run) cannot claim it.
    p.clock
        .advance(p.functions.reconciler.ports.lifecycle.lease + Duration::from_secs(1));
    let again = sqs_event([(
        "again".into(),
        record.receipt_handle.clone().unwrap(),
        record.body.clone().unwrap(),
    )]);
    assert!(p.send(again).await.is_empty());
    assert_eq!(graph.calls().len(), 1, "a dispatched attempt was resent");

    // The reconciler marks it ambiguous rather than requeueing it.
    let report = wa_shared::app::reconciler::run(&p.functions.reconciler)
        .await
        .unwrap();
    assert_eq!(
        report.count(wa_shared::app::reconciler::Action::DispatchLapsed),
        1
    );
    assert_eq!(
        report.count(wa_shared::app::reconciler::Action::Requeued),
        0
    );
    assert!(p.receive().await.records.is_empty(), "nothing enqueued");
    let m = p.stored(&lost).await;
    assert_eq!(m.state, MessageState::Sending);
    assert!(m.ambiguous_at.is_some());
    assert_eq!(m.lease_until, None);
    assert_eq!(p.metric("Ambiguous", &[("Tenant", "demo")]), 1.0);

    // After the grace, the tenant's policy (`fail`: at most once) decides.
    p.clock
        .advance(p.functions.reconciler.ports.lifecycle.ambiguous_grace + Duration::from_secs(1));
    let report = wa_shared::app::reconciler::run(&p.functions.reconciler)
        .await
        .unwrap();
    assert_eq!(
        report.count(wa_shared::app::reconciler::Action::AmbiguousFailed),
        1
    );
    let m = p.stored(&lost).await;
    assert_eq!(m.state, MessageState::Failed);
    assert_eq!(m.failure.unwrap().class, FailureClass::Ambiguous);
    assert_eq!(graph.calls().len(), 1);
}

/// A 131050 (the user stopped marketing from us) fails the send for good and records
/// the contact's marketing opt-out, so the next MARKETING template is suppressed at
/// intake while other templates still go out.
#[tokio::test]
async fn a_131050_records_the_marketing_stop_for_the_next_send() {
    let (p, graph) = pipeline().await;
    let spring_sale = |key: &str| {
        with_header(
            with_body(
                request("intake/send-template.json"),
                &json!({"to": ANA, "template": {"name": "spring_sale", "language": "en_US",
                    "header": {"type": "text", "text": "Ana"}, "body": ["25%", "March 31"],
                    "buttons": [{"index": 0, "type": "copy_code", "coupon_code": "SPRING25"}]}}),
            ),
            "idempotency-key",
            Some(key),
        )
    };
    assert_eq!(p.intake(spring_sale("m-1")).await.status_code, 202);
    graph.script(
        ANA,
        graph_error(400, 131050, "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business"),
    );
    assert!(p.send(p.receive().await).await.is_empty());
    let contact = p
        .directory
        .contact(
            &demo(),
            &wa_shared::domain::PhoneNumber::parse(ANA).unwrap(),
        )
        .await
        .unwrap();
    assert!(contact.marketing_opted_out && !contact.opted_out);
    let next = p.intake(spring_sale("m-2")).await;
    assert_eq!(next.status_code, 202, "{}", body_text(&next));
    assert_eq!(body(&next)["suppression"]["reason"], "marketing_opted_out");
    assert_eq!(
        graph.calls().len(),
        1,
        "nothing sent for the suppressed one"
    );
    let utility = p.queue_template(ANA, "u-1").await;
    assert_eq!(p.stored(&utility).await.state, MessageState::Queued);
}
