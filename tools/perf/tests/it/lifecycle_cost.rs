//! The AWS calls of a message lifecycle, counted (issue 15 point 3): the built
//! `intake`, `sender`, `webhook` and `reconciler` binaries run as Lambda runs them
//! (the Runtime API harness), on moto behind an [`AwsMeter`], Graph being the
//! sandbox. Each message goes the way it goes on AWS, with one message per batch (the
//! worst case): a POST through intake, the event source mapping's receive and delete
//! around one sender invocation, and Meta's three status webhooks (`sent`,
//! `delivered`, `read`, each with `pricing`). The reconciler's run is counted apart: it
//! costs per minute, not per message.
//!
//! The test checks what the meter saw (every message read, the calls each function
//! must make, units consistent from one message to the next) and writes the counts,
//! durations and the bill to `WA_PERF_REPORT` when set (`make perf` reads it).

use crate::common::{PHONE_NUMBER_ID, event};
use crate::streams::StreamTap;
use crate::support::{APP_SECRET, Function};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use wa_perf::cost::{CostTable, FunctionUse, memory_sizes};
use wa_perf::item_size::{item_size, value_size, write_units};
use wa_perf::meter::Call;
use wa_shared::adapters::keys::pk;
use wa_shared::domain::lifecycle::LifecyclePolicy;
use wa_shared::domain::webhook::sign;
use wa_shared::domain::{MessageId, MessageState, TenantId};
use wa_shared::ports::MessageStore;

const MESSAGES: usize = 4;
const FUNCTIONS: [&str; 5] = ["intake", "sender", "webhook", "events", "reconciler"];

/// Hand the `events` function what the messages table's stream holds now, then what
/// its own writes put on the events table's stream (it publishes those to the bus).
pub(crate) async fn stream_to_events(
    tap: &mut StreamTap,
    functions: &mut BTreeMap<&str, Function>,
    stack: &crate::common::AwsStack,
) {
    for table in [&stack.tables.messages, &stack.tables.events] {
        let records = tap.records(table).await;
        if records.is_empty() {
            continue;
        }
        let answer = functions
            .get_mut("events")
            .unwrap()
            .invoke(json!({"Records": records}))
            .await;
        assert_eq!(answer, json!({"batchItemFailures": []}), "{table}");
    }
}

pub(crate) fn send_event(i: usize) -> Value {
    let mut e = event("intake/send-template.json");
    e["headers"]["idempotency-key"] = json!(format!("perf-{i}"));
    e["body"] = json!(
        json!({"to": format!("+1415555{:04}", 100 + i),
               "template": {"name": "order_shipped", "language": "en_US", "body": ["Ana", "#1234"],
                            "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}})
        .to_string()
    );
    e
}

pub(crate) fn status_event(id: &MessageId, wamid: &str, to: &str, status: &str) -> Value {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
        "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [{"id": wamid, "status": status,
                "timestamp": (chrono_secs()).to_string(), "recipient_id": to,
                "biz_opaque_callback_data": format!("wa1:demo:{id}"),
                "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular",
                            "category": "utility"}}]}}]}]})
    .to_string();
    let mut e = event("webhook/post-status-delivered.json");
    e["headers"]["x-hub-signature-256"] = json!(sign(APP_SECRET.as_bytes(), body.as_bytes()));
    e["body"] = json!(body);
    e
}

fn chrono_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An SQS event of Lambda's event source mapping, for the records received.
pub(crate) fn sqs_event(messages: &[aws_sdk_sqs::types::Message], arn: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                   "body": m.body(), "attributes": {"ApproximateReceiveCount": "1",
                   "SentTimestamp": "1780481730000", "SenderId": "AROAEXAMPLE:perf",
                   "ApproximateFirstReceiveTimestamp": "1780481730100"},
                   "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                   "eventSourceARN": arn, "awsRegion": "us-east-1"})
        })
        .collect();
    json!({"Records": records})
}

fn count_by_operation(calls: &[Call], phase: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls.iter().filter(|c| c.phase == phase) {
        *out.entry(format!("{}:{}", c.service, c.operation))
            .or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_lifecycle_on_aws_is_counted_call_by_call() {
    let Some(rig) = crate::support::rig().await else {
        return;
    };
    let (stack, meter, env) = (&rig.stack, &rig.meter, &rig.env);
    let mut functions = BTreeMap::new();
    for name in FUNCTIONS {
        meter.phase(&format!("{name}-init"));
        let mut f = Function::start(name, env).await;
        // The first invocation after init: a cold start's own calls land in `*-init`.
        if name == "reconciler" {
            f.invoke(event("reconciler/scheduled.json")).await;
        }
        functions.insert(name, f);
    }
    // The event source mapping's own SQS calls go through the meter too.
    // (A client-level endpoint: the SDK config's would lose to AWS_ENDPOINT_URL.)
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&stack.sdk)
            .endpoint_url(meter.url())
            .build(),
    );
    let queue_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        stack.queue.as_str().rsplit('/').next().unwrap_or("")
    );

    // The `events` function reads both tables' streams; moto keeps none, so a tap
    // hands it what changed after each step, as the event source mapping would.
    let mut tap = StreamTap::new(
        &rig.endpoint,
        &[&stack.tables.messages, &stack.tables.events],
    )
    .await;
    let mut counted_from = BTreeMap::new();
    // The message item's size after each step, per counted message (from the tap's
    // images: what the table holds, not what a request carried).
    let mut item_sizes: Vec<(&str, Vec<u64>)> = ["intake", "sender", "sent", "delivered", "read"]
        .iter()
        .map(|step| (*step, Vec::new()))
        .collect();

    // Warm every function once with a message of its own, then count MESSAGES lifecycles.
    let tenant = TenantId::parse("demo").unwrap();
    let mut ids = Vec::new();
    for i in 0..=MESSAGES {
        if i == 1 {
            for (name, f) in &functions {
                counted_from.insert(*name, f.durations.len());
            }
        }
        let label = |p: &str| {
            if i == 0 {
                format!("{p}-warm")
            } else {
                p.to_owned()
            }
        };
        meter.phase(&label("intake"));
        let answer = functions
            .get_mut("intake")
            .unwrap()
            .invoke(send_event(i))
            .await;
        assert_eq!(answer["statusCode"], 202, "{answer}");
        let view: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        let id = MessageId::parse(view["id"].as_str().unwrap()).unwrap();
        meter.phase(&label("events"));
        stream_to_events(&mut tap, &mut functions, stack).await;
        let key = pk(&tenant, &id);
        let mut size_after = |step: usize, tap: &StreamTap| {
            if i > 0 {
                let item = tap.item(&stack.tables.messages, &key);
                let item = item.unwrap_or_else(|| panic!("no item {key} on the tap"));
                item_sizes[step].1.push(item_size(item));
            }
        };
        size_after(0, &tap);

        meter.phase(&label("sqs-poll"));
        let received = sqs
            .receive_message()
            .queue_url(stack.queue.as_str())
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let records = received.messages().to_vec();
        assert_eq!(records.len(), 1, "one wake-up per message");
        meter.phase(&label("sender"));
        let answer = functions
            .get_mut("sender")
            .unwrap()
            .invoke(sqs_event(&records, &queue_arn))
            .await;
        assert_eq!(answer, json!({"batchItemFailures": []}));
        meter.phase(&label("sqs-poll"));
        for r in &records {
            sqs.delete_message()
                .queue_url(stack.queue.as_str())
                .receipt_handle(r.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }

        meter.phase(&label("events"));
        stream_to_events(&mut tap, &mut functions, stack).await;
        size_after(1, &tap);
        let m = stack.store.get(&tenant, &id).await.unwrap().unwrap();
        assert_eq!(m.state, MessageState::Accepted, "{m:?}");
        let wamid = m.wamid.clone().unwrap();
        let to = m.to.digits().to_owned();
        meter.phase(&label("webhook"));
        for (step, status) in ["sent", "delivered", "read"].into_iter().enumerate() {
            let answer = functions
                .get_mut("webhook")
                .unwrap()
                .invoke(status_event(&id, wamid.as_str(), &to, status))
                .await;
            assert_eq!(answer["statusCode"], 200, "{answer}");
            meter.phase(&label("events"));
            stream_to_events(&mut tap, &mut functions, stack).await;
            size_after(2 + step, &tap);
            meter.phase(&label("webhook"));
        }
        let m = stack.store.get(&tenant, &id).await.unwrap().unwrap();
        assert_eq!(m.state, MessageState::Read, "{m:?}");
        if i > 0 {
            ids.push(id);
        }
    }
    meter.phase("reconciler");
    let answer = functions
        .get_mut("reconciler")
        .unwrap()
        .invoke(event("reconciler/scheduled.json"))
        .await;
    assert!(answer.is_object(), "{answer}");

    let calls = meter.calls();
    assert!(
        calls.iter().all(|c| c.status < 500),
        "a 5xx through the meter"
    );
    // What each step must do, per message (the first, warm-up message left out).
    let per = |phase: &str| -> BTreeMap<String, f64> {
        count_by_operation(&calls, phase)
            .into_iter()
            .map(|(k, v)| (k, v as f64 / MESSAGES as f64))
            .collect()
    };
    let intake = per("intake");
    assert!(
        intake
            .keys()
            .any(|k| k == "dynamodb:PutItem" || k == "dynamodb:TransactWriteItems"),
        "{intake:?}"
    );
    assert_eq!(intake.get("sqs:SendMessage"), Some(&1.0), "{intake:?}");
    let poll = per("sqs-poll");
    assert_eq!(poll.get("sqs:ReceiveMessage"), Some(&1.0), "{poll:?}");
    assert_eq!(poll.get("sqs:DeleteMessage"), Some(&1.0), "{poll:?}");
    let sender = per("sender");
    assert!(
        sender.keys().any(|k| k == "dynamodb:UpdateItem"),
        "{sender:?}"
    );
    let events = per("events");
    assert!(
        events.get("events:PutEvents").is_some_and(|n| *n >= 1.0),
        "{events:?}"
    );
    let webhook = per("webhook");
    assert!(
        webhook.keys().any(|k| k.starts_with("dynamodb:")),
        "{webhook:?}"
    );
    // The same work for each message: the write units of each lifecycle agree.
    let units_of = |c: &Call| c.write_units + c.index_write_units;
    let total_units: f64 = calls
        .iter()
        .filter(|c| ["intake", "sender", "webhook"].contains(&c.phase.as_str()))
        .map(units_of)
        .sum();
    assert!(total_units > 0.0);

    let memory = memory_sizes(
        &std::fs::read_to_string(crate::common::root().join("infra/template.yaml")).unwrap(),
    );
    let uses: Vec<FunctionUse> = ["intake", "sender", "webhook", "events"]
        .iter()
        .map(|name| {
            let f = &functions[name];
            // The invocations of the counted messages (the warm-up one left out).
            let counted = &f.durations[counted_from[name]..];
            let all = f.durations.len().max(1) as u64;
            FunctionUse {
                name: (*name).to_owned(),
                memory_mb: memory
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, mb)| *mb)
                    .unwrap_or_else(|| panic!("no MemorySize of {name} in the template")),
                invocations: counted.len() as u64,
                billed_ms: counted.iter().sum(),
                // Its log lines, init's included, spread over all its invocations.
                log_bytes: f.log_bytes() * counted.len() as u64 / all,
            }
        })
        .collect();
    let counted: Vec<Call> = calls
        .iter()
        .filter(|c| {
            ["intake", "sqs-poll", "sender", "webhook", "events"].contains(&c.phase.as_str())
        })
        .cloned()
        .collect();
    // The item after each step: the same for every message (same request, same
    // statuses), and what its writes are billed on.
    for (step, sizes) in &item_sizes {
        assert_eq!(sizes.len(), MESSAGES, "{step}: {sizes:?}");
        assert!(sizes.iter().all(|b| *b > 0), "{step}: {sizes:?}");
    }
    let read_item = tap
        .item(&stack.tables.messages, &pk(&tenant, &ids[0]))
        .unwrap()
        .clone();
    let history = read_item["history"]["M"].as_object().unwrap();
    let entry_sizes: Vec<u64> = history
        .iter()
        .map(|(k, v)| k.len() as u64 + 1 + value_size(v))
        .collect();
    let largest_entry = entry_sizes.iter().copied().max().unwrap();
    let cap = u64::from(LifecyclePolicy::default().history_cap);
    let item_report: Vec<Value> = item_sizes
        .iter()
        .map(|(step, sizes)| {
            let bytes = sizes.iter().copied().max().unwrap_or(0);
            json!({"step": step, "bytes": bytes, "write_units": write_units(bytes, false)})
        })
        .collect();
    let final_bytes = item_sizes
        .last()
        .and_then(|(_, s)| s.iter().copied().max())
        .unwrap_or(0);
    let history_report = json!({
        "entries": history.len(),
        "entry_bytes": entry_sizes,
        "largest_entry_bytes": largest_entry,
        "cap": cap,
        "bytes_at_cap": final_bytes + (cap - history.len() as u64) * largest_entry,
    });
    eprintln!("item sizes: {item_report:?}; history: {history_report}");
    let table = CostTable::of_run(MESSAGES as u64, &counted, &uses, 4 * MESSAGES as u64);
    eprintln!("{}", table.markdown());
    for phase in [
        "intake",
        "sqs-poll",
        "sender",
        "webhook",
        "events",
        "reconciler",
    ] {
        eprintln!("{phase}: {:?}", per(phase));
    }
    if let Ok(path) = std::env::var("WA_PERF_REPORT") {
        let report = json!({
            "messages": MESSAGES,
            "calls_per_message": FUNCTIONS.iter().chain(["sqs-poll"].iter())
                .map(|p| (p.to_string(), json!(per(p)))).collect::<serde_json::Map<_, _>>(),
            "calls": calls,
            "functions": uses,
            "cost": table,
            "cost_markdown": table.markdown(),
            "item_sizes": item_report,
            "history": history_report,
            "item_after_read": read_item,
            "read_ids": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }
}
