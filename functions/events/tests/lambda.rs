//! The built `events` binary as a real Lambda process (the test Runtime API), on
//! DynamoDB and EventBridge in moto, invoked with the two stream samples of
//! `events/events/` as the event source mappings deliver them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::Duration;
use wa_shared::adapters::DynamoEventLog;
use wa_shared::adapters::dynamo::{TableNames, create_tables};
use wa_shared::domain::TenantId;
use wa_shared::ports::EventLog;
use wa_testkit::lambda_harness::{FunctionProcess, RuntimeApi};
use wa_testkit::{moto, unique_name};

fn sample(name: &str) -> Value {
    let path = format!("{}/../../events/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A bus whose one rule (`source: wa.pipeline`) feeds an SQS queue; the queue's URL.
async fn bus_with_consumer(sdk: &wa_shared::adapters::aws::SdkConfig, bus: &str) -> String {
    let url = aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(format!("{bus}-consumer"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    moto::route_bus_to_queue(sdk, bus, &url).await;
    url
}

#[tokio::test]
async fn the_events_binary_logs_a_message_write_and_publishes_the_logged_event() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let prefix = unique_name("evfn");
    let tables = TableNames::with_prefix(&prefix);
    create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &tables)
        .await
        .unwrap();
    let bus = format!("{prefix}-bus");
    let consumer = bus_with_consumer(&sdk, &bus).await;

    let api = RuntimeApi::start().await.unwrap();
    let mut cmd = api.command(env!("CARGO_BIN_EXE_events"), "test-wa-events");
    cmd.env("WA_STAGE", "test")
        .env("WA_MESSAGES_TABLE", &tables.messages)
        .env("WA_DIRECTORY_TABLE", &tables.directory)
        .env("WA_EVENTS_TABLE", &tables.events)
        .env("WA_EVENT_BUS_NAME", &bus)
        .env("WA_EVENTS_PUBLISH_BACKOFF_MS", "10");
    let function = FunctionProcess::spawn(cmd).unwrap();

    // The messages table's stream: a creation (nothing to tell) and the acceptance.
    // The samples name the dev stage's tables, so the function tells the streams
    // apart by their keys here.
    let answer = api
        .invoke(sample("messages-stream.json"), Duration::from_secs(30))
        .await
        .unwrap()
        .response();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let log = DynamoEventLog::new(&sdk, tables.events.clone());
    let demo = TenantId::parse("demo").unwrap();
    let logged = log.list(&demo, None, 10).await.unwrap().events;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].event.id, "evt_msg_01M8TGC9JR5ZFKMP9AXJ8P3M63_4");
    // Delivered again: logged once.
    api.invoke(sample("messages-stream.json"), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(log.list(&demo, None, 10).await.unwrap().events.len(), 1);

    // The events table's stream: the entry's guard, then the entry.
    let answer = api
        .invoke(sample("events-stream.json"), Duration::from_secs(30))
        .await
        .unwrap()
        .response();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let got = aws_sdk_sqs::Client::new(&sdk)
        .receive_message()
        .queue_url(&consumer)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let envelopes: Vec<Value> = got
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(envelopes.len(), 1, "{envelopes:#?}");
    assert_eq!(envelopes[0]["source"], "wa.pipeline");
    assert_eq!(envelopes[0]["detail-type"], "message.accepted");
    assert_eq!(
        envelopes[0]["detail"],
        serde_json::to_value(&logged[0].event).unwrap()
    );

    // EMF lines on stdout, per tenant.
    let lines = function.json_lines();
    let sum = |name: &str| -> f64 {
        lines
            .iter()
            .filter(|l| l["Tenant"] == "demo")
            .filter_map(|l| l[name].as_f64())
            .sum()
    };
    assert_eq!(sum("EventsEmitted"), 1.0);
    assert_eq!(sum("EventsPublished"), 1.0);
}
