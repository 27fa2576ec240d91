//! The built `intake` binary as a Lambda process: a local Runtime API hands it the
//! API Gateway events of `events/intake/`, DynamoDB and SQS are moto.

#![allow(clippy::unwrap_used)]

mod common;

use common::{AwsStack, event};
use serde_json::Value;
use std::time::Duration;
use wa_shared::domain::{IdempotencyKey, MessageId, MessageState, TenantId};
use wa_shared::ports::{MessageStore, WorkQueue};
use wa_testkit::lambda_harness::{FunctionProcess, RuntimeApi};

const ANSWER: Duration = Duration::from_secs(20);

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_intake_binary_answers_api_gateway_events_from_the_events_folder() {
    let Some(stack) = AwsStack::start().await else {
        return;
    };
    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_intake"), "test-wa-intake");
    cmd.envs(stack.env());
    let function = FunctionProcess::spawn(cmd).unwrap();

    let created = api
        .invoke(event("intake/send-template.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(created["statusCode"], 202, "{created}");
    let id = MessageId::for_idempotency_key(
        &TenantId::parse("demo").unwrap(),
        &IdempotencyKey::parse("order-1234-shipped").unwrap(),
    );
    assert_eq!(body(&created)["id"], id.as_str());

    let replay = api
        .invoke(event("intake/replay.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(replay["statusCode"], 200, "{replay}");
    assert_eq!(replay["headers"]["idempotent-replayed"], "true");

    let got = api
        .invoke(event("intake/get.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(got["statusCode"], 200, "{got}");
    assert_eq!(body(&got)["status"], "queued");

    let bad = api
        .invoke(event("intake/bad-body.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(bad["statusCode"], 400);
    assert_eq!(body(&bad)["error"]["request_id"], "req-bad-body");

    let stored = stack
        .store
        .get(&TenantId::parse("demo").unwrap(), &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, MessageState::Queued);
    let queued = stack
        .queues
        .receive(&stack.queue, 10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert!(queued[0].body.contains(id.as_str()));

    // EMF on stdout with the stage dimension, JSON logs with the request id.
    let lines = function.json_lines();
    assert!(
        lines
            .iter()
            .any(|l| l["Queued"] == 1.0 && l["Stage"] == "test" && l["Tenant"] == "demo"),
        "no Queued metric in {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.to_string().contains("req-replay")),
        "{lines:?}"
    );
}
