//! Lambda init and invocation times (issue 15 point 2): each built function binary
//! and the `hello-lambda` baseline (a `lambda_runtime` function building the same SDK
//! clients) run under the Runtime API harness on the metered moto stack. Init is the
//! time from the spawn to the function's first poll for an event (Lambda's Init
//! phase); then the first invocation (connections still cold) and the median of the
//! warm ones. Each message goes the whole way: intake, sender (Graph: the sandbox),
//! a `sent` webhook, and a reconciler run.
//!
//! The test checks every answer; the figures go to `WA_PERF_LAMBDA_REPORT` when set
//! (`make perf` runs it on optimized binaries: a debug build's times mean nothing).

use crate::common::event;
use crate::lifecycle_cost::{send_event, sqs_event, status_event};
use crate::support::Function;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use wa_shared::domain::{MessageId, TenantId};
use wa_shared::ports::MessageStore;

const WARM: usize = 7;

fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_function_inits_and_answers_like_the_hello_world_baseline() {
    let Some(rig) = crate::support::rig().await else {
        return;
    };
    let mut inits = BTreeMap::new();
    let mut functions = BTreeMap::new();
    // One at a time, so that no init competes with another for the CPU.
    for name in ["hello-lambda", "intake", "sender", "webhook", "reconciler"] {
        let f = Function::start(name, &rig.env).await;
        inits.insert(name, f.init_time().await);
        functions.insert(name, f);
    }
    let sqs = aws_sdk_sqs::Client::new(&rig.stack.sdk);
    let tenant = TenantId::parse("demo").unwrap();
    for i in 0..=WARM {
        let hello = functions.get_mut("hello-lambda").unwrap();
        assert_eq!(hello.invoke(json!({"n": i})).await, json!({"n": i}));

        let answer = functions
            .get_mut("intake")
            .unwrap()
            .invoke(send_event(1000 + i))
            .await;
        assert_eq!(answer["statusCode"], 202, "{answer}");
        let view: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        let id = MessageId::parse(view["id"].as_str().unwrap()).unwrap();

        let received = sqs
            .receive_message()
            .queue_url(rig.stack.queue.as_str())
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let answer = functions
            .get_mut("sender")
            .unwrap()
            .invoke(sqs_event(
                received.messages(),
                "arn:aws:sqs:us-east-1:123456789012:perf",
            ))
            .await;
        assert_eq!(answer, json!({"batchItemFailures": []}));
        for r in received.messages() {
            sqs.delete_message()
                .queue_url(rig.stack.queue.as_str())
                .receipt_handle(r.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }
        let m = rig.stack.store.get(&tenant, &id).await.unwrap().unwrap();
        let wamid = m.wamid.clone().unwrap();
        let answer = functions
            .get_mut("webhook")
            .unwrap()
            .invoke(status_event(&id, wamid.as_str(), m.to.digits(), "sent"))
            .await;
        assert_eq!(answer["statusCode"], 200, "{answer}");

        let answer = functions
            .get_mut("reconciler")
            .unwrap()
            .invoke(event("reconciler/scheduled.json"))
            .await;
        assert!(answer.is_object(), "{answer}");
    }

    let hello_init = inits["hello-lambda"].as_secs_f64() * 1000.0;
    let mut rows = Vec::new();
    for (name, f) in &functions {
        let init_ms = inits[name].as_secs_f64() * 1000.0;
        assert!(init_ms > 0.0);
        rows.push(json!({
            "function": name,
            "init_ms": init_ms,
            "init_vs_hello": init_ms / hello_init,
            "first_invocation_ms": f.durations[0],
            "warm_p50_ms": median(&f.durations[1..]),
        }));
    }
    eprintln!("{}", serde_json::to_string_pretty(&rows).unwrap());
    if let Ok(path) = std::env::var("WA_PERF_LAMBDA_REPORT") {
        std::fs::write(&path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    }
}
