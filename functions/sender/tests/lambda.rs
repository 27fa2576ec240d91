//! The built `sender` binary as a Lambda process: a local Runtime API hands it the
//! SQS events of `events/sender/`; DynamoDB, SQS and Secrets Manager are moto, and
//! Graph is the sandbox.

#![allow(clippy::unwrap_used)]

#[path = "../../intake/tests/common/mod.rs"]
mod common;

use common::{AwsStack, PHONE_NUMBER_ID, TOKEN, event, http_request};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use wa_sandbox::{PhoneNumberConfig, RunningSandbox, SandboxConfig, Secret, TemplatesSource};
use wa_shared::domain::{IdempotencyKey, MessageId, MessageState, TenantId};
use wa_shared::ports::MessageStore;
use wa_testkit::lambda_harness::{FunctionProcess, RuntimeApi};

const ANSWER: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_sender_binary_sends_a_batch_from_the_events_folder_once() {
    let Some(stack) = AwsStack::start().await else {
        return;
    };
    let sandbox = RunningSandbox::start(SandboxConfig {
        phone_numbers: vec![PhoneNumberConfig {
            id: PHONE_NUMBER_ID.into(),
            display_phone_number: "15550783881".into(),
            waba_id: "102290129340398".into(),
            access_token: Secret(TOKEN.into()),
            throughput_mps: None,
        }],
        templates: TemplatesSource::File(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/tests/fixtures/templates/catalog.json"),
        ),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();

    // The message `events/sender/batch.json` refers to, stored and enqueued by intake.
    let deps = stack.intake_deps().await;
    let created =
        wa_shared::app::intake::handle(&deps, http_request("intake/send-template.json")).await;
    assert_eq!(created.status_code, 202);
    let tenant = TenantId::parse("demo").unwrap();
    let id = MessageId::for_idempotency_key(
        &tenant,
        &IdempotencyKey::parse("order-1234-shipped").unwrap(),
    );

    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_sender"), "test-wa-sender");
    cmd.envs(stack.env())
        .env("WA_GRAPH_BASE_URL", sandbox.base_url())
        .env("WA_GRAPH_TIMEOUT_MS", "5000");
    let function = FunctionProcess::spawn(cmd).unwrap();

    let answer = api
        .invoke(event("sender/batch.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let m = stack.store.get(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(m.state, MessageState::Accepted);
    assert!(m.wamid.is_some());

    // The same record delivered twice more, in one batch: nothing reaches Graph.
    let answer = api
        .invoke(event("sender/duplicate.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let stats = sandbox.sandbox.stats();
    assert_eq!((stats.requests, stats.sends_accepted), (1, 1));
    let sent = &sandbox.sandbox.requests()[0];
    assert_eq!(
        sent.callback_data.as_deref(),
        Some(format!("wa1:demo:{id}").as_str())
    );

    let lines = function.json_lines();
    assert!(
        lines
            .iter()
            .any(|l| l["Accepted"] == 1.0 && l["Tenant"] == "demo"),
        "no Accepted metric in {lines:?}"
    );
    assert!(lines.iter().any(|l| l.get("QueueToAcceptedMs").is_some()));
    // Recipients are masked in logs.
    assert!(!function.output().iter().any(|l| l.contains("+14155550123")));
    assert!(function.output().iter().any(|l| l.contains("+1******0123")));
}
