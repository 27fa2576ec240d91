//! The built `reconciler` binary as a real Lambda process (the test Runtime API), on
//! moto, invoked with `events/reconciler/scheduled.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::time::Duration;
use wa_shared::adapters::dynamo::{TableNames, create_tables};
use wa_shared::adapters::{DynamoDirectory, DynamoMessageStore, SqsWorkQueue, SystemClock};
use wa_shared::domain::{
    LifecyclePolicy, Message, MessageId, MessageState, NewMessage, PhoneNumber, TenantId,
};
use wa_shared::ports::{Clock, Directory, MessageStore, WorkQueue};
use wa_testkit::lambda_harness::{FunctionProcess, RuntimeApi};
use wa_testkit::{moto, unique_name};

#[tokio::test]
async fn the_reconciler_binary_enqueues_an_orphaned_message_again_on_the_scheduled_event() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let prefix = unique_name("rc");
    let tables = TableNames::with_prefix(&prefix);
    create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &tables)
        .await
        .unwrap();
    let sqs = SqsWorkQueue::new(&sdk);
    let queue = sqs
        .ensure_queue(&format!("{prefix}-send"), &wa_shared::queues::SEND.spec)
        .await
        .unwrap();
    let tenant = TenantId::parse("demo").unwrap();
    DynamoDirectory::new(&sdk, tables.directory.clone())
        .put_tenant(
            &wa_testkit::fixtures::tenant("demo")
                .queue(queue.as_str())
                .updated_at(SystemClock.now())
                .build(),
        )
        .await
        .unwrap();
    // Stored by intake an hour ago; its enqueue was lost.
    let policy = LifecyclePolicy::default();
    let id = MessageId::generate();
    let an_hour_ago = SystemClock.now().plus_millis(-3_600_000);
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
    let store = DynamoMessageStore::new(&sdk, tables.messages.clone());
    store
        .create_if_absent(&Message::new_queued(new, an_hour_ago, &policy))
        .await
        .unwrap();

    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_reconciler"), "test-wa-reconciler");
    cmd.env("WA_STAGE", "test")
        .env("WA_MESSAGES_TABLE", &tables.messages)
        .env("WA_DIRECTORY_TABLE", &tables.directory)
        .env("WA_EVENTS_TABLE", &tables.events)
        .env("WA_RECONCILER_BUDGET_MS", "20000");
    let function = FunctionProcess::spawn(cmd).unwrap();
    let path = format!(
        "{}/../../events/reconciler/scheduled.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let scheduled: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // First an invocation whose deadline (4 s away) is inside the 5 s margin: the
    // binary passes the Runtime API's deadline on, so the run starts nothing although
    // its budget (20 s) is not spent.
    let report = api
        .invoke(scheduled.clone(), Duration::from_secs(4))
        .await
        .unwrap()
        .response();
    assert_eq!(report["budget_exhausted"], true, "{report}");
    assert_eq!(report["scanned"], 0, "{report}");
    let report = api
        .invoke(scheduled, Duration::from_secs(60))
        .await
        .unwrap()
        .response();
    assert_eq!(report["actions"]["reenqueued"], 1, "{report}");
    assert_eq!(report["budget_exhausted"], false, "{report}");

    let got = sqs
        .receive(&queue, 10, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["id"], id.as_str());
    let m = store.get(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(m.state, MessageState::Queued);
    assert!(m.sweep_at.unwrap() > SystemClock.now());
    // EMF lines on stdout carry the action.
    let actions: f64 = function
        .json_lines()
        .iter()
        .filter(|l| l["Action"] == "reenqueued")
        .filter_map(|l| l["ReconcilerAction"].as_f64())
        .sum();
    assert_eq!(actions, 1.0);
}
