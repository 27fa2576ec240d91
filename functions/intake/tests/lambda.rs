//! The built `intake` binary as a Lambda process: a local Runtime API hands it the
//! API Gateway events of `events/intake/`, DynamoDB and SQS are moto.

#![allow(clippy::unwrap_used)]

mod common;

use common::{AwsStack, event};
use serde_json::Value;
use std::time::Duration;
use wa_shared::domain::quota::IntakeQuota;
use wa_shared::domain::template::TemplateCatalog;
use wa_shared::domain::tenant::ApiKeyHash;
use wa_shared::domain::{IdempotencyKey, MessageId, MessageState, TenantId, Timestamp};
use wa_shared::ports::{Clock, Directory, MessageStore, WorkQueue};
use wa_testkit::lambda_harness::{FunctionProcess, RuntimeApi};
use wa_testkit::unique_name;

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

/// `demo` over its quota (1/s, burst 1) through the built binary: 429 with
/// `Retry-After`, the limit and a `QuotaRefused` metric; `other`, sending at the same
/// time through the same process and table, never gets a 429.
#[tokio::test]
async fn the_intake_binary_refuses_a_flooding_tenant_and_never_another() {
    let Some(stack) = AwsStack::start().await else {
        return;
    };
    let demo = TenantId::parse("demo").unwrap();
    let mut profile = stack.directory.tenant(&demo).await.unwrap().unwrap();
    profile.intake_quota = IntakeQuota {
        requests_per_second: 1,
        burst: 1,
        messages_per_day: None,
    };
    stack.directory.put_tenant(&profile).await.unwrap();
    let other = TenantId::parse("other").unwrap();
    let other_queue = stack
        .queues
        .ensure_queue(&unique_name("sq-other"), &wa_shared::queues::SEND.spec)
        .await
        .unwrap();
    let other_profile = wa_testkit::fixtures::tenant("other")
        .phone_number_id("106540352240000")
        .waba_id("102290129340000")
        .queue(other_queue.as_str())
        .build();
    stack.directory.put_tenant(&other_profile).await.unwrap();
    stack
        .directory
        .put_api_key(&ApiKeyHash::of_key("wa_other_key"), &other)
        .await
        .unwrap();
    let catalog = std::fs::read_to_string(
        common::root().join("shared/tests/fixtures/templates/catalog.json"),
    )
    .unwrap();
    for t in TemplateCatalog::from_json(&catalog).unwrap().iter() {
        stack
            .directory
            .put_template(&other, t, Timestamp::from_millis(1_780_481_730_000))
            .await
            .unwrap();
    }

    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_intake"), "test-wa-intake");
    cmd.envs(stack.env());
    let function = FunctionProcess::spawn(cmd).unwrap();
    let send = |key: &str, idempotency_key: String| {
        let mut event = event("intake/send-template.json");
        event["headers"]["authorization"] = format!("Bearer {key}").into();
        event["headers"]["idempotency-key"] = idempotency_key.into();
        event
    };

    // Interleaved: demo floods, other sends between demo's requests.
    let (mut demo_refused, mut demo_accepted) = (Vec::new(), 0);
    for n in 0..6 {
        let answer = api
            .invoke(send("wa_demo_key", format!("flood-{n}")), ANSWER)
            .await
            .unwrap()
            .response();
        match answer["statusCode"].as_i64() {
            Some(202) => demo_accepted += 1,
            Some(429) => demo_refused.push(answer),
            _ => panic!("demo: {answer}"),
        }
        let answer = api
            .invoke(send("wa_other_key", format!("quiet-{n}")), ANSWER)
            .await
            .unwrap()
            .response();
        assert_eq!(answer["statusCode"], 202, "other: {answer}");
    }
    assert!(demo_accepted >= 1);
    let refused = demo_refused
        .first()
        .unwrap_or_else(|| panic!("demo was never refused: 6 requests in under 6 s at 1/s"));
    assert_eq!(refused["headers"]["retry-after"], "1", "{refused}");
    let error = &body(refused)["error"];
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["limit"]["requests_per_second"], 1);
    assert_eq!(error["limit"]["burst"], 1);

    let lines = function.json_lines();
    assert!(
        lines.iter().any(|l| l["QuotaRefused"] == 1.0
            && l["Tenant"] == "demo"
            && l["Reason"] == "rate_limited"),
        "no QuotaRefused metric in {lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l["QuotaRefused"] == 1.0 && l["Tenant"] == "other"),
        "{lines:?}"
    );
}

/// `POST /v1/messages/batch` through the built binary (`events/intake/send-batch.json`):
/// answered item by item, the invalid items (a bad `to`, a missing key) refused with
/// their index in the field path without blocking the valid ones, whose wake-ups go
/// to the tenant's SQS queue in one batched call; the same batch again replays.
#[tokio::test]
async fn the_intake_binary_answers_a_batch_item_by_item() {
    let Some(stack) = AwsStack::start().await else {
        return;
    };
    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_intake"), "test-wa-intake");
    cmd.envs(stack.env());
    let _function = FunctionProcess::spawn(cmd).unwrap();

    let answer = api
        .invoke(event("intake/send-batch.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let b = body(&answer);
    let statuses: Vec<i64> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 202, 422, 422], "{b}");
    assert_eq!(
        (b["accepted"].as_i64(), b["refused"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        b["results"][2]["error"]["details"][0]["field"],
        "messages[2].to"
    );
    assert_eq!(
        b["results"][3]["error"]["details"][0]["field"],
        "messages[3].idempotency_key"
    );
    let demo = TenantId::parse("demo").unwrap();
    let first =
        MessageId::for_idempotency_key(&demo, &IdempotencyKey::parse("batch-7-order-1").unwrap());
    assert_eq!(b["results"][0]["message"]["id"], first.as_str());
    let stored = stack.store.get(&demo, &first).await.unwrap().unwrap();
    assert_eq!(stored.state, MessageState::Queued);
    let queued = stack
        .queues
        .receive(&stack.queue, 10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(queued.len(), 2, "one wake-up per new message");

    let again = api
        .invoke(event("intake/send-batch.json"), ANSWER)
        .await
        .unwrap()
        .response();
    let statuses: Vec<i64> = body(&again)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 422, 422], "{again}");
}

/// `GET /v1/messages` through the built binary (`events/intake/list-messages.json`,
/// `to=+14155550123`): the demo tenant's messages to that recipient, newest first,
/// read through the `by_recipient` index on moto.
#[tokio::test]
async fn the_intake_binary_lists_a_tenants_messages_to_a_recipient() {
    let Some(stack) = AwsStack::start().await else {
        return;
    };
    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_intake"), "test-wa-intake");
    cmd.envs(stack.env());
    let _function = FunctionProcess::spawn(cmd).unwrap();
    // Two messages to +14155550123 and one to another recipient, by the batch route.
    let answer = api
        .invoke(event("intake/send-batch.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let sent = body(&answer);
    let created = api
        .invoke(event("intake/send-template.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(created["statusCode"], 202, "{created}");

    let listed = api
        .invoke(event("intake/list-messages.json"), ANSWER)
        .await
        .unwrap()
        .response();
    assert_eq!(listed["statusCode"], 200, "{listed}");
    let page = body(&listed);
    let ids: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let newest = body(&created)["id"].as_str().unwrap().to_owned();
    let older = sent["results"][0]["message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(ids, [newest.as_str(), older.as_str()], "{page}");
    assert!(page["next_cursor"].is_null());
    assert!(
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["to"] == "+14155550123")
    );
}

/// A scheduled send and its cancellation through the built binary on moto
/// (`events/intake/send-scheduled.json`, `events/intake/cancel.json`): the message is
/// stored `scheduled` and not enqueued; `DELETE` moves it to `cancelled`, a second
/// `DELETE` answers the same, and a claimed message answers 409.
#[tokio::test]
async fn the_intake_binary_schedules_and_cancels_a_message() {
    let Some(stack) = AwsStack::start().await else {
        return;
    };
    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_intake"), "test-wa-intake");
    cmd.envs(stack.env());
    let _function = FunctionProcess::spawn(cmd).unwrap();
    let demo = TenantId::parse("demo").unwrap();
    let id = MessageId::for_idempotency_key(&demo, &IdempotencyKey::parse("reminder-42").unwrap());

    // The file's send_at is an example; the test schedules one hour from now.
    let mut send = event("intake/send-scheduled.json");
    let mut request: Value = serde_json::from_str(send["body"].as_str().unwrap()).unwrap();
    let now = wa_shared::adapters::SystemClock.now();
    let send_at = now.plus_millis(3_600_000).to_rfc3339();
    request["send_at"] = Value::String(send_at.clone());
    send["body"] = Value::String(request.to_string());
    let created = api.invoke(send, ANSWER).await.unwrap().response();
    assert_eq!(created["statusCode"], 202, "{created}");
    assert_eq!(body(&created)["status"], "scheduled");
    assert_eq!(body(&created)["send_at"], send_at.as_str());
    assert_eq!(body(&created)["id"], id.as_str());
    let stored = stack.store.get(&demo, &id).await.unwrap().unwrap();
    assert_eq!(stored.state, MessageState::Scheduled);
    assert_eq!(
        stored.sweep_at.map(|t| t.to_rfc3339()),
        Some(send_at.clone())
    );
    let queued = stack
        .queues
        .receive(&stack.queue, 10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert!(
        queued.is_empty(),
        "a scheduled message is not enqueued: {queued:?}"
    );

    let mut cancel = event("intake/cancel.json");
    assert_eq!(
        cancel["pathParameters"]["id"],
        id.as_str(),
        "cancel.json names reminder-42's id"
    );
    cancel["pathParameters"]["id"] = Value::String(id.as_str().to_owned());
    let cancelled = api.invoke(cancel.clone(), ANSWER).await.unwrap().response();
    assert_eq!(cancelled["statusCode"], 200, "{cancelled}");
    assert_eq!(body(&cancelled)["status"], "cancelled");
    assert!(body(&cancelled)["timestamps"]["cancelled_at"].is_string());
    let again = api.invoke(cancel, ANSWER).await.unwrap().response();
    assert_eq!(again["statusCode"], 200, "{again}");
    let stored = stack.store.get(&demo, &id).await.unwrap().unwrap();
    assert_eq!(stored.state, MessageState::Cancelled);
    assert_eq!(stored.sweep_key, None);

    // A message a sender has claimed is past cancelling.
    let created = api
        .invoke(event("intake/send-template.json"), ANSWER)
        .await
        .unwrap()
        .response();
    let sent_id = MessageId::parse(body(&created)["id"].as_str().unwrap()).unwrap();
    stack
        .store
        .claim_for_send(&demo, &sent_id, now, &Default::default())
        .await
        .unwrap()
        .unwrap();
    let mut late = event("intake/cancel.json");
    late["pathParameters"]["id"] = Value::String(sent_id.as_str().to_owned());
    late["rawPath"] = Value::String(format!("/v1/messages/{sent_id}"));
    let refused = api.invoke(late, ANSWER).await.unwrap().response();
    assert_eq!(refused["statusCode"], 409, "{refused}");
    assert_eq!(body(&refused)["error"]["code"], "not_cancellable");
}
