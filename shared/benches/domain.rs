//! Hot paths of the pure domain (issue goals in parentheses):
//! - validate + build the Graph payload of one template message (< 20 µs);
//! - verify + parse a webhook body carrying 100 statuses (>= 50 MB/s);
//! - one status on a stored message: decode, decide, apply, encode (the domain and
//!   JSON share of each store write);
//! - a baseline in the same run, so the others read as ratios on a noisy machine: a
//!   JSON round trip of the request (parse to a value, print it back).
//!
//! Fixtures are known-good, so a failed `expect` here is a broken fixture, not input.
#![allow(clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;
use wa_shared::domain::graph::CallbackData;
use wa_shared::domain::lifecycle::{
    EventKind, LifecycleEvent, LifecyclePolicy, ProviderStatus, ProviderStatusKind, decide,
};
use wa_shared::domain::payload::build_payload;
use wa_shared::domain::template::TemplateCatalog;
use wa_shared::domain::validation::{FormattingPolicy, validate};
use wa_shared::domain::webhook::{parse_envelope, sign, verify_signature};
use wa_shared::domain::{Message, MessageId, NewMessage, PhoneNumber, TenantId, Timestamp, Wamid};

const CATALOG: &str = include_str!("../tests/fixtures/templates/catalog.json");
const REQUEST: &str = include_str!("../tests/golden/order_shipped_url_button.request.json");

fn template_message(c: &mut Criterion) {
    let catalog = TemplateCatalog::from_json(CATALOG).expect("fixture catalog parses");
    let request: Value = serde_json::from_str(REQUEST).expect("fixture request parses");
    let callback = CallbackData::new(
        TenantId::parse("demo").expect("valid tenant"),
        MessageId::generate(),
    )
    .encode();
    let mut group = c.benchmark_group("template_message");
    group.throughput(Throughput::Elements(1));
    group.bench_function("validate_and_build_payload", |b| {
        b.iter(|| {
            let validated = validate(black_box(&request), &catalog, FormattingPolicy::Strict)
                .expect("fixture request is valid");
            let payload = build_payload(&validated, &callback).expect("payload builds");
            black_box(payload.to_json())
        })
    });
    // The recipient check alone (libphonenumber metadata), to see its share.
    group.bench_function("phone_number_parse", |b| {
        b.iter(|| black_box(PhoneNumber::parse(black_box("+14155550123"))))
    });
    group.finish();
}

/// A realistic webhook POST: 100 statuses spread over 10 entries, with pricing on
/// `sent` and errors on some `failed`, the way Meta batches them.
fn webhook_body(statuses: usize) -> Vec<u8> {
    let kinds = ["sent", "delivered", "read", "failed"];
    let per_entry = 10;
    let entries: Vec<Value> = (0..statuses.div_ceil(per_entry))
        .map(|e| {
            let items: Vec<Value> = (0..per_entry)
                .map(|i| e * per_entry + i)
                .take_while(|&n| n < statuses)
                .map(|n| {
                    let status = kinds[n % kinds.len()];
                    let mut s = json!({
                        "id": format!("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3{n:06}"),
                        "status": status,
                        "timestamp": (1_750_030_073 + n).to_string(),
                        "recipient_id": format!("1555{:07}", n),
                        "biz_opaque_callback_data": "wa1:demo:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3",
                    });
                    if status == "sent" {
                        s["pricing"] = json!({"billable": true, "pricing_model": "PMP",
                            "type": "regular", "category": "utility"});
                    }
                    if status == "failed" {
                        s["errors"] = json!([{"code": 131026, "title": "Message undeliverable",
                            "message": "Message undeliverable",
                            "error_data": {"details": "Message Undeliverable."}}]);
                    }
                    s
                })
                .collect();
            json!({"id": "102290129340398", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
                "statuses": items}}]})
        })
        .collect();
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": entries}))
        .expect("serializes")
}

fn webhook_batch(c: &mut Criterion) {
    let secret = b"bench-app-secret-not-real";
    let body = webhook_body(100);
    let header = sign(secret, &body);
    let mut group = c.benchmark_group("webhook_100_statuses");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("verify_and_parse", |b| {
        b.iter(|| {
            verify_signature(secret, black_box(&body), Some(&header)).expect("signature verifies");
            let batch = parse_envelope(black_box(&body)).expect("body parses");
            assert_eq!(batch.events.len(), 100);
            black_box(batch)
        })
    });
    group.finish();
}

fn baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline");
    group.bench_function("json_round_trip_of_the_request", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_str(black_box(REQUEST)).expect("fixture parses");
            black_box(value.to_string())
        })
    });
    group.finish();
}

/// A status webhook `kind` for `wamid`, received at `ms`.
fn status(kind: ProviderStatusKind, wamid: &Wamid, ms: i64) -> LifecycleEvent {
    LifecycleEvent::new(
        Timestamp::from_millis(ms),
        EventKind::Provider(ProviderStatus {
            wamid: wamid.clone(),
            status: kind,
            occurred_at: Timestamp::from_millis(ms - 1),
            failure: None,
            detail: Some(json!({"pricing": {"billable": true, "pricing_model": "PMP",
                                            "type": "regular", "category": "utility"}})),
        }),
    )
}

fn stored_message(c: &mut Criterion) {
    let policy = LifecyclePolicy::default();
    let request: Value = serde_json::from_str(REQUEST).expect("fixture request parses");
    let new = NewMessage {
        tenant: TenantId::parse("demo").expect("valid tenant"),
        id: MessageId::generate(),
        to: PhoneNumber::parse("+14155550123").expect("valid number"),
        template_name: Some("order_shipped".into()),
        template_language: Some("en_US".into()),
        request,
        request_hash: "0".repeat(64),
        metadata: None,
    };
    let mut message = Message::new_queued(new, Timestamp::from_millis(1_750_000_000_000), &policy);
    let wamid = Wamid::parse("wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA")
        .expect("valid wamid");
    for (i, kind) in [ProviderStatusKind::Sent, ProviderStatusKind::Delivered]
        .into_iter()
        .enumerate()
    {
        let event = status(kind, &wamid, 1_750_000_001_000 + i as i64);
        if let Some(t) = decide(&message, &event, &policy).transition() {
            t.apply_to(&mut message);
        }
    }
    let stored = serde_json::to_string(&message).expect("message encodes");
    let read = status(ProviderStatusKind::Read, &wamid, 1_750_000_002_000);
    let mut group = c.benchmark_group("stored_message");
    group.bench_function("decode_decide_apply_encode_a_status", |b| {
        b.iter(|| {
            let mut m: Message = serde_json::from_str(black_box(&stored)).expect("decodes");
            let decision = decide(&m, &read, &policy);
            let t = decision.transition().expect("read advances");
            t.apply_to(&mut m);
            black_box(serde_json::to_string(&m).expect("encodes"))
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    baseline,
    template_message,
    webhook_batch,
    stored_message
);
criterion_main!(benches);
