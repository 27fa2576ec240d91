//! The same handlers on DynamoDB and SQS (moto): the answer matrix, suppression,
//! a lost enqueue, and a mixed sender batch. Skipped without moto (run through
//! `scripts/with-moto.sh`, as `make test` does).

use crate::send_path::support::*;
use serde_json::json;
use std::sync::Arc;
use wa_shared::domain::graph::{Classification, SendOutcome};
use wa_shared::domain::template::TemplateStatus;
use wa_shared::domain::{FailureClass, MessageState, PhoneNumber, TenantId};
use wa_testkit::{moto, unique_name};

async fn on_moto(provider: Arc<ScriptedProvider>) -> Option<Pipeline> {
    let sdk = moto::sdk_config_or_skip().await?;
    Some(Pipeline::on_aws(provider, &sdk, &unique_name("sp")).await)
}

fn demo() -> TenantId {
    TenantId::parse("demo").unwrap()
}

#[tokio::test]
async fn the_intake_answer_matrix_holds_on_dynamodb_and_sqs() {
    let Some(p) = on_moto(Arc::default()).await else {
        return;
    };
    let cases = [
        ("intake/send-template.json", 202),
        ("intake/replay.json", 200),
        ("intake/conflict.json", 409),
        ("intake/get.json", 200),
        ("intake/bad-body.json", 400),
        ("intake/invalid.json", 422),
        ("intake/unauthorized.json", 401),
    ];
    for (file, status) in cases {
        let resp = p.intake(request(file)).await;
        assert_eq!(resp.status_code, status, "{file}: {}", body_text(&resp));
    }
    let other = with_header(
        request("intake/get.json"),
        "authorization",
        Some(&format!("Bearer {OTHER_KEY}")),
    );
    assert_eq!(p.intake(other).await.status_code, 404);

    let who = PhoneNumber::parse("+14155550199").unwrap();
    p.directory
        .set_opt_out(&demo(), &who, true, START)
        .await
        .unwrap();
    let opted_out = json!({"to": "+14155550199", "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
    let resp = p
        .intake(with_body(request("intake/send-text.json"), &opted_out))
        .await;
    assert_eq!(resp.status_code, 202);
    assert_eq!(body(&resp)["suppression"]["reason"], "opted_out");

    // Exactly one message was enqueued: the first one.
    let batch = p.receive().await;
    assert_eq!(batch.records.len(), 1);
    assert!(
        batch.records[0]
            .body
            .as_deref()
            .unwrap()
            .contains(fixture_id().as_str())
    );
}

#[tokio::test]
async fn a_lost_enqueue_on_sqs_still_answers_202() {
    let Some(p) = on_moto(Arc::default()).await else {
        return;
    };
    let mut profile = p.directory.tenant(&demo()).await.unwrap().unwrap();
    profile.queue = format!("{}-gone", p.queue.as_str());
    p.directory.put_tenant(&profile).await.unwrap();
    let resp = p.intake(request("intake/send-template.json")).await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    assert_eq!(p.stored(&fixture_id()).await.state, MessageState::Queued);
    assert_eq!(p.metric("EnqueueFailed", &[("Tenant", "demo")]), 1.0);
}

#[tokio::test]
async fn a_mixed_sender_batch_on_dynamodb_and_sqs() {
    let graph = Arc::new(ScriptedProvider::default());
    let Some(p) = on_moto(graph.clone()).await else {
        return;
    };
    let permanent = p.queue_template("+14155550123", "m-permanent").await;
    let retryable = p.queue_template("+14155550124", "m-retryable").await;
    let lost = p.queue_template("+14155550125", "m-lost").await;
    graph.script(
        "+14155550123",
        graph_error(
            400,
            132001,
            "Template name does not exist in the translation",
        ),
    );
    graph.script(
        "+14155550124",
        graph_error(503, 131000, "Something went wrong"),
    );
    graph.script(
        "+14155550125",
        Reply::Outcome(SendOutcome::Failed(Classification {
            class: FailureClass::Ambiguous,
            code: None,
            title: "timed out after the request was written".into(),
            detail: None,
            suggested_delay: None,
            fbtrace_id: None,
        })),
    );
    let mut batch = p.receive().await;
    assert_eq!(batch.records.len(), 3);
    // The first record again: a duplicate delivery in the same batch.
    let duplicate = batch.records[0].clone();
    batch.records.push({
        let mut d = duplicate;
        d.message_id = Some("duplicate".into());
        d
    });
    let failures = p.send(batch).await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(graph.calls().len(), 3);
    assert_eq!(p.stored(&permanent).await.state, MessageState::Failed);
    assert_eq!(p.stored(&retryable).await.state, MessageState::Queued);
    let m = p.stored(&lost).await;
    assert!(m.state == MessageState::Sending && m.ambiguous_at.is_some());
    // The retried record's visibility was pushed out by its backoff (at least 1 s).
    assert!(p.receive().await.records.is_empty());
}

#[tokio::test]
async fn a_template_paused_after_intake_is_suppressed_by_the_sender_on_moto() {
    let graph = Arc::new(ScriptedProvider::default());
    let Some(p) = on_moto(graph.clone()).await else {
        return;
    };
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
}
