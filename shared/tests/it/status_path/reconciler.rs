//! The reconciler through its real entry point: every action, its guards, and overlap.
//! The cases in `on_every_backend!` also run on DynamoDB + SQS (`dynamo::`): the sweep
//! is a sharded index query there, and every wake-up call a real SQS message. No case
//! waits on SQS time: enqueues carry no delay, and the handlers read the manual clock.

use crate::status_path::support::*;
use serde_json::Value;
use std::time::Duration;
use wa_shared::app::reconciler::{Action, handle, run};
use wa_shared::domain::MessageState;
use wa_shared::domain::failure::FailureClass;
use wa_shared::domain::tenant::OnAmbiguous;

on_every_backend!(
    an_orphaned_queued_message_is_enqueued_again_once,
    a_deep_backlog_is_not_enqueued_again_wholesale,
    a_sending_message_whose_lease_expired_is_queued_and_enqueued_again,
    an_expired_lease_on_the_last_attempt_ends_exhausted,
    an_ambiguous_send_fails_after_the_grace_by_default,
    an_ambiguous_send_of_a_retry_tenant_is_queued_again_after_the_grace,
    accepted_without_webhooks_past_the_horizon_is_unconfirmed_until_a_late_webhook,
    a_sent_message_past_the_horizon_is_unconfirmed_too,
    two_overlapping_runs_do_no_double_work,
    pages_are_bounded_and_the_oldest_overdue_age_is_reported,
);

fn scheduled() -> aws_lambda_events::eventbridge::EventBridgeEvent {
    serde_json::from_str(&event_file("reconciler/scheduled.json")).unwrap()
}

fn refs(bodies: &[String]) -> Vec<(String, String)> {
    bodies
        .iter()
        .map(|b| {
            let v: Value = serde_json::from_str(b).unwrap();
            (
                v["tenant"].as_str().unwrap().to_owned(),
                v["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn an_orphaned_queued_message_is_enqueued_again_once(w: World) {
    let id = w.queued("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R1").await;
    // Before the grace nothing is due.
    let report = handle(&w.functions.reconciler, scheduled(), None)
        .await
        .unwrap();
    assert_eq!(report.scanned, 0);
    w.advance(w.ports.lifecycle.queued_grace + Duration::from_secs(1));
    let report = handle(&w.functions.reconciler, scheduled(), None)
        .await
        .unwrap();
    assert_eq!(report.count(Action::Reenqueued), 1);
    assert_eq!(
        refs(&w.drain(&w.send_queue).await),
        vec![(TENANT.into(), id.to_string())]
    );
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Queued);
    assert!(m.sweep_at.unwrap() > w.now());
    // The next run, a minute later, leaves it alone.
    w.advance(Duration::from_secs(60));
    let again = run(&w.functions.reconciler).await.unwrap();
    assert_eq!(again.count(Action::Reenqueued), 0);
    assert!(w.drain(&w.send_queue).await.is_empty());
    assert_eq!(
        w.metric("ReconcilerAction", &[("Action", "reenqueued")]),
        1.0
    );
}

async fn a_deep_backlog_is_not_enqueued_again_wholesale(mut w: World) {
    w.functions.reconciler.settings.max_requeues_per_tenant = 2;
    for i in 0..5 {
        w.queued(&format!("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2B{i}")).await;
    }
    w.advance(w.ports.lifecycle.queued_grace + Duration::from_secs(1));
    let report = run(&w.functions.reconciler).await.unwrap();
    assert_eq!(report.count(Action::Reenqueued), 2);
    assert_eq!(report.deferred, 3);
    assert_eq!(w.drain(&w.send_queue).await.len(), 2);
    let next = run(&w.functions.reconciler).await.unwrap();
    assert_eq!(next.count(Action::Reenqueued), 2);
}

async fn a_sending_message_whose_lease_expired_is_queued_and_enqueued_again(w: World) {
    let id = w.sending("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R2").await;
    w.advance(w.ports.lifecycle.lease + Duration::from_secs(1));
    let report = run(&w.functions.reconciler).await.unwrap();
    assert_eq!(report.count(Action::Requeued), 1);
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Queued);
    assert!(m.lease_until.is_none());
    assert_eq!(
        refs(&w.drain(&w.send_queue).await),
        vec![(TENANT.into(), id.to_string())]
    );
    assert_eq!(w.metric("StuckSending", &[("Tenant", TENANT)]), 1.0);
}

async fn an_expired_lease_on_the_last_attempt_ends_exhausted(mut w: World) {
    w.functions.reconciler.ports.lifecycle.max_attempts = 1;
    let id = w.sending("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R3").await;
    w.advance(w.ports.lifecycle.lease + Duration::from_secs(1));
    let report = run(&w.functions.reconciler).await.unwrap();
    assert_eq!(report.count(Action::Exhausted), 1);
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Failed);
    assert_eq!(m.failure.unwrap().class, FailureClass::Exhausted);
    assert!(w.drain(&w.send_queue).await.is_empty());
}

async fn an_ambiguous_send_fails_after_the_grace_by_default(w: World) {
    let id = w.ambiguous("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R4").await;
    // A lease-length wait is not enough: ambiguous sends wait for the grace.
    w.advance(w.ports.lifecycle.lease + Duration::from_secs(1));
    assert!(
        run(&w.functions.reconciler)
            .await
            .unwrap()
            .actions
            .is_empty()
    );
    w.advance(w.ports.lifecycle.ambiguous_grace);
    let report = run(&w.functions.reconciler).await.unwrap();
    assert_eq!(report.count(Action::AmbiguousFailed), 1);
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Failed);
    assert_eq!(m.failure.unwrap().class, FailureClass::Ambiguous);
    assert!(
        w.drain(&w.send_queue).await.is_empty(),
        "at most once: never re-sent"
    );
    assert_eq!(w.metric("AmbiguousFailed", &[("Tenant", TENANT)]), 1.0);
    assert_eq!(
        w.metric("Failed", &[("Tenant", TENANT)]),
        0.0,
        "a guess, not a failure"
    );
}

async fn an_ambiguous_send_of_a_retry_tenant_is_queued_again_after_the_grace(w: World) {
    w.set_profile(|p| p.on_ambiguous = OnAmbiguous::Retry).await;
    let id = w.ambiguous("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R5").await;
    w.advance(w.ports.lifecycle.ambiguous_grace + Duration::from_secs(1));
    let report = run(&w.functions.reconciler).await.unwrap();
    assert_eq!(report.count(Action::AmbiguousRetried), 1);
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Queued);
    assert!(m.ambiguous_at.is_none());
    assert_eq!(
        refs(&w.drain(&w.send_queue).await),
        vec![(TENANT.into(), id.to_string())]
    );
}

async fn accepted_without_webhooks_past_the_horizon_is_unconfirmed_until_a_late_webhook(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R6", "wamid.R6")
        .await;
    w.advance(w.ports.lifecycle.webhook_horizon + Duration::from_secs(1));
    let report = run(&w.functions.reconciler).await.unwrap();
    assert_eq!(report.count(Action::Unconfirmed), 1);
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Failed);
    assert_eq!(m.failure.as_ref().unwrap().class, FailureClass::Unconfirmed);
    assert!(m.sweep_key.is_none());
    assert_eq!(w.metric("MissingWebhooks", &[("Tenant", TENANT)]), 1.0);
    // Meta's evidence, however late, corrects our guess.
    let resp = w
        .post(&status_body("wamid.R6", "delivered", 1_750_030_200, None))
        .await;
    assert_eq!(status_code(&resp), 200);
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Delivered);
    assert!(m.failure.is_none());
    // Counted as what happened: unconfirmed for a while, then sent and delivered;
    // never as failed.
    let tenant = [("Tenant", TENANT)];
    assert_eq!(w.metric("Failed", &tenant), 0.0);
    assert_eq!(w.metric("Delivered", &tenant), 1.0);
    assert_eq!(w.metric("Sent", &tenant), 1.0);
    assert_eq!(
        w.metric(
            "FailureCorrected",
            &[("Tenant", TENANT), ("Class", "unconfirmed")]
        ),
        1.0
    );
    // A late `sent` fills its timestamp and counts nothing more.
    let resp = w
        .post(&status_body("wamid.R6", "sent", 1_750_030_100, None))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(w.metric("Sent", &tenant), 1.0);
    assert_eq!(w.metric("FailureCorrected", &tenant), 1.0);
}

async fn a_sent_message_past_the_horizon_is_unconfirmed_too(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R7", "wamid.R7")
        .await;
    w.post(&status_body("wamid.R7", "sent", 1_750_030_100, None))
        .await;
    w.advance(w.ports.lifecycle.webhook_horizon + Duration::from_secs(1));
    assert_eq!(
        run(&w.functions.reconciler)
            .await
            .unwrap()
            .count(Action::Unconfirmed),
        1
    );
    assert_eq!(w.message(&id).await.state, MessageState::Failed);
}

async fn two_overlapping_runs_do_no_double_work(w: World) {
    w.set_profile(|p| p.on_ambiguous = OnAmbiguous::Retry).await;
    let mut queued = Vec::new();
    for i in 0..4 {
        queued.push(w.queued(&format!("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2Q{i}")).await);
    }
    w.sending("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2S0").await;
    w.ambiguous("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A0").await;
    w.accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2V0", "wamid.U0")
        .await;
    w.advance(w.ports.lifecycle.webhook_horizon + Duration::from_secs(1));
    let (a, b) = tokio::join!(run(&w.functions.reconciler), run(&w.functions.reconciler));
    let (a, b) = (a.unwrap(), b.unwrap());
    let total = |action| a.count(action) + b.count(action);
    assert_eq!(total(Action::Reenqueued), 4);
    assert_eq!(total(Action::Requeued), 1);
    assert_eq!(total(Action::AmbiguousRetried), 1);
    assert_eq!(total(Action::Unconfirmed), 1);
    let sent = refs(&w.drain(&w.send_queue).await);
    let mut distinct = sent.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(w.metric("ReconcilerAction", &[]), 7.0);
    assert_eq!(distinct.len(), 6, "every due message woken: {sent:?}");
    assert_eq!(sent.len(), 6, "one wake-up call per message: {sent:?}");
}

#[tokio::test]
async fn a_run_stops_starting_work_when_its_budget_is_spent() {
    let mut w = World::new().await;
    w.functions.reconciler.settings.budget = Duration::ZERO;
    w.queued("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R8").await;
    w.advance(w.ports.lifecycle.queued_grace + Duration::from_secs(1));
    let report = run(&w.functions.reconciler).await.unwrap();
    assert!(report.budget_exhausted);
    assert_eq!(report.scanned, 0);
}

/// The Lambda deadline bounds a run even when the configured budget is longer than
/// the function's timeout: near the deadline nothing is started; with time left, the
/// same overdue message is handled.
#[tokio::test]
async fn a_run_starts_no_work_within_the_margin_of_the_invocation_deadline() {
    let mut w = World::new().await;
    w.functions.reconciler.settings.budget = Duration::from_secs(600);
    w.functions.reconciler.settings.deadline_margin = Duration::from_secs(5);
    w.queued("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R9").await;
    w.advance(w.ports.lifecycle.queued_grace + Duration::from_secs(1));
    let soon = std::time::SystemTime::now() + Duration::from_secs(3);
    let report = handle(&w.functions.reconciler, scheduled(), Some(soon))
        .await
        .unwrap();
    assert!(report.budget_exhausted, "{report:?}");
    assert_eq!(report.scanned, 0);
    let past = std::time::SystemTime::now() - Duration::from_secs(1);
    let report = handle(&w.functions.reconciler, scheduled(), Some(past))
        .await
        .unwrap();
    assert!(report.budget_exhausted);
    assert_eq!(report.scanned, 0);
    assert!(w.drain(&w.send_queue).await.is_empty());

    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    let report = handle(&w.functions.reconciler, scheduled(), Some(later))
        .await
        .unwrap();
    assert!(!report.budget_exhausted);
    assert_eq!(report.count(Action::Reenqueued), 1);
}

#[test]
fn the_work_window_is_the_budget_or_the_deadline_less_the_margin() {
    use wa_shared::app::reconciler::work_window;
    let s = Duration::from_secs;
    assert_eq!(work_window(s(45), None, s(5)), s(45));
    assert_eq!(work_window(s(45), Some(s(60)), s(5)), s(45));
    // A budget past the Lambda timeout: the deadline wins.
    assert_eq!(work_window(s(120), Some(s(60)), s(5)), s(55));
    assert_eq!(work_window(s(45), Some(s(3)), s(5)), Duration::ZERO);
    assert_eq!(
        work_window(s(45), Some(Duration::ZERO), s(5)),
        Duration::ZERO
    );
}

async fn pages_are_bounded_and_the_oldest_overdue_age_is_reported(mut w: World) {
    w.set_lifecycle(|l| l.sweep_shards = 1);
    w.functions.reconciler.settings.page_size = 2;
    w.functions.reconciler.settings.max_pages_per_key = 2;
    for i in 0..6 {
        w.queued(&format!("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2G{i}")).await;
    }
    w.advance(w.ports.lifecycle.queued_grace + Duration::from_secs(30));
    let report = run(&w.functions.reconciler).await.unwrap();
    assert_eq!(report.scanned, 4);
    assert_eq!(report.oldest_overdue_ms.get("queued"), Some(&30_000));
    assert_eq!(
        w.metric("OldestOverdueMs", &[("State", "queued")]),
        30_000.0
    );
}
