//! The built `webhook` binary as a real Lambda process (the test Runtime API), on moto:
//! handshake, a signed status from `events/webhook/`, and the inbox replay event.
//! Signatures are computed here; the event files store none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use wa_shared::adapters::dynamo::{TableNames, create_tables};
use wa_shared::adapters::{DynamoDirectory, DynamoMessageStore, SqsWorkQueue};
use wa_shared::domain::lifecycle::{EventKind, LifecycleEvent};
use wa_shared::domain::webhook::sign;
use wa_shared::domain::{
    LifecyclePolicy, Message, MessageId, MessageState, NewMessage, PhoneNumber, TenantId,
    Timestamp, Wamid,
};
use wa_shared::ports::{Clock, Directory, MessageStore, WorkQueue, record_event};
use wa_testkit::lambda_harness::{FunctionProcess, RuntimeApi};
use wa_testkit::{moto, unique_name};

const SECRET: &str = "binary-test-app-secret";
const VERIFY: &str = "local-verify-token";

fn event(path: &str) -> Value {
    let full = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap()).unwrap()
}

/// Sign an API Gateway event's body (or each parked body of an SQS event) now.
fn signed(mut event: Value) -> Value {
    if let Some(records) = event.get_mut("Records").and_then(Value::as_array_mut) {
        for r in records {
            let mut parked: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            let raw = base64_decode(parked["body"].as_str().unwrap());
            parked["signature"] = Value::String(sign(SECRET.as_bytes(), &raw));
            r["body"] = Value::String(parked.to_string());
        }
        return event;
    }
    let body = event["body"].as_str().unwrap();
    let body = if event["isBase64Encoded"] == true {
        base64_decode(body)
    } else {
        body.as_bytes().to_vec()
    };
    event["headers"]["x-hub-signature-256"] = Value::String(sign(SECRET.as_bytes(), &body));
    event
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// The message a status event is about, created `accepted` with its wamid.
async fn accept(store: &DynamoMessageStore, tenant: &TenantId, id: &str, wamid: &str) -> MessageId {
    let policy = LifecyclePolicy::default();
    let id = MessageId::parse(id).unwrap();
    let now = wa_shared::adapters::SystemClock.now();
    let new = NewMessage {
        tenant: tenant.clone(),
        id: id.clone(),
        to: PhoneNumber::parse("+16505551234").unwrap(),
        template_name: None,
        template_language: None,
        request: serde_json::json!({}),
        request_hash: "h".into(),
        metadata: None,
    };
    store
        .create_if_absent(&Message::new_queued(new, now, &policy))
        .await
        .unwrap();
    store
        .claim_for_send(tenant, &id, now, &policy)
        .await
        .unwrap()
        .unwrap();
    let accepted = LifecycleEvent::new(
        now,
        EventKind::Accepted {
            attempt: 1,
            wamid: Wamid::parse(wamid).unwrap(),
            message_status: None,
        },
    );
    record_event(store, tenant, &id, &accepted, &policy)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn the_webhook_binary_answers_api_gateway_and_inbox_events_from_the_events_folder() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let prefix = unique_name("wh");
    let tables = TableNames::with_prefix(&prefix);
    create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &tables)
        .await
        .unwrap();
    let inbox = SqsWorkQueue::new(&sdk)
        .ensure_queue(
            &format!("{prefix}-inbox"),
            &wa_shared::queues::WEBHOOK_INBOX.spec,
        )
        .await
        .unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let mut arns = Vec::new();
    for (name, value) in [("app-secret", SECRET), ("verify-token", VERIFY)] {
        let out = secrets
            .create_secret()
            .name(format!("{prefix}/{name}"))
            .secret_string(value)
            .send()
            .await
            .unwrap();
        arns.push(out.arn().unwrap().to_owned());
    }
    let tenant = TenantId::parse("demo").unwrap();
    let directory = DynamoDirectory::new(&sdk, tables.directory.clone());
    directory
        .put_tenant(
            &wa_testkit::fixtures::tenant("demo")
                .queue("unused")
                .updated_at(Timestamp::from_secs(1_750_000_000))
                .build(),
        )
        .await
        .unwrap();
    let store = Arc::new(DynamoMessageStore::new(&sdk, tables.messages.clone()));
    // events/meta/status-read.json and status-delivered.json are about this message.
    let id = accept(
        &store,
        &tenant,
        "msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3",
        "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
    )
    .await;

    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_webhook"), "test-wa-webhook");
    cmd.env("WA_STAGE", "test")
        .env("WA_MESSAGES_TABLE", &tables.messages)
        .env("WA_DIRECTORY_TABLE", &tables.directory)
        .env("WA_EVENTS_TABLE", &tables.events)
        .env("WA_APP_SECRET_ARN", &arns[0])
        .env("WA_VERIFY_TOKEN_ARN", &arns[1])
        .env("WA_WEBHOOK_INBOX_URL", inbox.as_str())
        .env("WA_QUOTAS_TABLE", &tables.quotas);
    let _function = FunctionProcess::spawn(cmd).unwrap();
    let timeout = Duration::from_secs(30);

    let answer = api
        .invoke(event("webhook/get-handshake.json"), timeout)
        .await
        .unwrap()
        .response();
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["body"], "1158201444");

    let unsigned = api
        .invoke(event("webhook/post-status-delivered.json"), timeout)
        .await
        .unwrap()
        .response();
    assert_eq!(unsigned["statusCode"], 401);

    let answer = api
        .invoke(
            signed(event("webhook/post-status-delivered-base64.json")),
            timeout,
        )
        .await
        .unwrap()
        .response();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(
        store.get(&tenant, &id).await.unwrap().unwrap().state,
        MessageState::Delivered
    );

    // The inbox event carries a parked `status-read` body.
    let answer = api
        .invoke(signed(event("webhook/inbox-sqs.json")), timeout)
        .await
        .unwrap()
        .response();
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([]),
        "{answer}"
    );
    let m = store.get(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(m.state, MessageState::Read);
    assert!(m.timestamps.delivered_at.is_some() && m.timestamps.read_at.is_some());
}
