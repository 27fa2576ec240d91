//! Lambda init and invocation times (issue 15 point 2): each built function binary
//! and the `hello-lambda` baseline (a `lambda_runtime` function building the same SDK
//! clients) run under the Runtime API harness on the metered moto stack. Init is the
//! time from the spawn to the function's first poll for an event (Lambda's Init
//! phase); then the first invocation (connections still cold) and the median of the
//! warm ones. Each message goes the whole way: intake, sender (Graph: the sandbox),
//! a `sent` webhook, the `events` function with what changed on both tables'
//! streams, `delivery` with the events the bus routed (to an endpoint of the
//! tenant's on 127.0.0.1), and a reconciler run.
//!
//! For choosing memory sizes (`infra/template.yaml`), each function's process is also
//! read in `/proc` (Linux): its peak resident memory (`VmHWM`, after the warm
//! invocations) and its CPU time (`utime + stime`, in 10 ms clock ticks) at the end of
//! init, after the first invocation, and across the warm ones (divided by their
//! count; the process's idle time between invocations included).
//!
//! The test checks every answer; the figures go to `WA_PERF_LAMBDA_REPORT` when set
//! (`make perf` runs it on optimized binaries: a debug build's times mean nothing).

use crate::common::event;
use crate::lifecycle_cost::{send_event, sqs_event, status_event, stream_to_events};
use crate::streams::StreamTap;
use crate::support::{Function, Rig};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wa_shared::adapters::{DynamoEndpointRegistry, SecretsManagerEndpointSecrets};
use wa_shared::domain::endpoints::signing::WebhookSecret;
use wa_shared::domain::endpoints::{Endpoint, EndpointHealth};
use wa_shared::domain::time::Timestamp;
use wa_shared::domain::{MessageId, TenantId};
use wa_shared::ports::{EndpointRegistry, EndpointSecrets, MessageStore};

const WARM: usize = 7;

fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// An endpoint of the tenant `demo` on 127.0.0.1 that answers every delivery `200`,
/// and the `delivery` function's environment (its retry queue, the endpoints'
/// secrets); the count of requests it received.
async fn delivery_setup(rig: &Rig) -> (Vec<(String, String)>, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let count = Arc::clone(&count);
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let stack = &rig.stack;
    let secret_prefix = format!("{}/endpoints/", stack.tables.messages);
    let secrets = SecretsManagerEndpointSecrets::new(&stack.sdk, secret_prefix.clone());
    let registry = DynamoEndpointRegistry::new(&stack.sdk, stack.tables.directory.clone());
    let tenant = TenantId::parse("demo").unwrap();
    let id = "ep_01kbdemoendpoint0000000000";
    let secret = WebhookSecret::from_key(b"perf-delivery-endpoint-key-32byt");
    let secret_ref = secrets.create(&tenant, id, &secret).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    registry
        .add(&Endpoint {
            tenant,
            id: id.to_owned(),
            url,
            types: None,
            secret_ref,
            created_at: Timestamp::from_millis(i64::try_from(now.as_millis()).unwrap()),
            disabled: false,
            health: EndpointHealth::default(),
        })
        .await
        .unwrap();
    let retries = aws_sdk_sqs::Client::new(&stack.sdk)
        .create_queue()
        .queue_name(format!("{}-deliveries", stack.tables.messages))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let mut env = rig.env.clone();
    env.extend([
        ("WA_DELIVERY_QUEUE_URL".to_owned(), retries),
        ("WA_ENDPOINT_SECRET_PREFIX".to_owned(), secret_prefix),
        ("WA_DELIVERY_ALLOW_LOOPBACK".to_owned(), "true".to_owned()),
        ("WA_DELIVERY_TIMEOUT_MS".to_owned(), "5000".to_owned()),
    ]);
    (env, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_function_inits_and_answers_like_the_hello_world_baseline() {
    let Some(rig) = crate::support::rig().await else {
        return;
    };
    let (delivery_env, delivered) = delivery_setup(&rig).await;
    let mut inits = BTreeMap::new();
    let mut functions = BTreeMap::new();
    // One at a time, so that no init competes with another for the CPU.
    for name in [
        "hello-lambda",
        "intake",
        "sender",
        "webhook",
        "reconciler",
        "events",
        "delivery",
    ] {
        let env = if name == "delivery" {
            &delivery_env
        } else {
            &rig.env
        };
        let mut f = Function::start(name, env).await;
        inits.insert(name, f.init_time().await);
        functions.insert(name, f);
    }
    let sqs = aws_sdk_sqs::Client::new(&rig.stack.sdk);
    let consumer_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        rig.consumer.rsplit('/').next().unwrap_or("")
    );
    let mut tap = StreamTap::new(
        &rig.endpoint,
        &[&rig.stack.tables.messages, &rig.stack.tables.events],
    )
    .await;
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

        // The events of this message's writes, logged and published to the bus...
        stream_to_events(&mut tap, &mut functions, &rig.stack).await;
        // ...which routes them to the queue `delivery` drains.
        let routed = sqs
            .receive_message()
            .queue_url(&rig.consumer)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        assert!(!routed.messages().is_empty(), "no event reached the bus");
        let answer = functions
            .get_mut("delivery")
            .unwrap()
            .invoke(sqs_event(routed.messages(), &consumer_arn))
            .await;
        assert_eq!(answer, json!({"batchItemFailures": []}));
        for r in routed.messages() {
            sqs.delete_message()
                .queue_url(&rig.consumer)
                .receipt_handle(r.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }

        let answer = functions
            .get_mut("reconciler")
            .unwrap()
            .invoke(event("reconciler/scheduled.json"))
            .await;
        assert!(answer.is_object(), "{answer}");
    }

    assert!(
        delivered.load(Ordering::SeqCst) > 0,
        "the endpoint received no event"
    );

    let hello_init = inits["hello-lambda"].as_secs_f64() * 1000.0;
    let mut rows = Vec::new();
    for (name, f) in &functions {
        let init_ms = inits[name].as_secs_f64() * 1000.0;
        assert!(init_ms > 0.0);
        // Read while the process still runs (it is killed when `functions` drops).
        let peak_rss_kib = f.peak_rss_kib();
        let warm = f.durations.len() - 1;
        let cpu = |i: usize| f.cpu_ms.get(i).copied().flatten();
        let (first_cpu, last_cpu) = (cpu(0), cpu(warm));
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib.is_some_and(|k| k > 0), "{name}: no VmHWM");
            assert!(
                f.init_cpu_ms.is_some() && first_cpu.is_some() && last_cpu.is_some(),
                "{name}: no CPU time"
            );
        }
        rows.push(json!({
            "function": name,
            "init_ms": init_ms,
            "init_vs_hello": init_ms / hello_init,
            "first_invocation_ms": f.durations[0],
            "warm_p50_ms": median(&f.durations[1..]),
            "warm_invocations": warm,
            "peak_rss_mib": peak_rss_kib.map(|k| k as f64 / 1024.0),
            "init_cpu_ms": f.init_cpu_ms,
            "first_invocation_cpu_ms": first_cpu.zip(f.init_cpu_ms).map(|(a, b)| a - b),
            "warm_cpu_ms": last_cpu.zip(first_cpu).map(|(a, b)| (a - b) / warm as f64),
        }));
    }
    eprintln!("{}", serde_json::to_string_pretty(&rows).unwrap());
    if let Ok(path) = std::env::var("WA_PERF_LAMBDA_REPORT") {
        std::fs::write(&path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    }
}
