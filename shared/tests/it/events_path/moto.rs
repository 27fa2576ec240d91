//! The events function on DynamoDB and EventBridge (moto): real message items
//! written through the DynamoDB store by the lifecycle, their stream records built
//! from the stored items before and after each write as DynamoDB Streams shapes
//! them, fed to the handler as Lambda's event source mapping would (twice); then the
//! events table's own stream records, published to a bus whose rule feeds an SQS
//! queue. Skipped without moto (run through `scripts/with-moto.sh`).

use super::support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wa_shared::adapters::EventBridgePublisher;
use wa_shared::adapters::ManualClock;
use wa_shared::adapters::dynamo::TableNames;
use wa_shared::app::Ports;
use wa_shared::app::events::{EventsDeps, EventsSettings, handle};
use wa_shared::domain::events::{EventType, contact_opt_change};
use wa_shared::domain::failure::{Failure, FailureClass, FailureSource};
use wa_shared::domain::lifecycle::{EventKind, ProviderStatus, ProviderStatusKind};
use wa_shared::domain::{
    LifecycleEvent, Message, MessageId, NewMessage, PhoneNumber, Suppression, SuppressionReason,
    TenantId, Timestamp, Wamid,
};
use wa_shared::metrics::{Metrics, total};
use wa_shared::ports::{Clock, Recorded, record_event};
use wa_testkit::{moto, unique_name};

const START_MS: i64 = 1_750_032_000_000;

/// Fresh tables on moto, the store writes of one test, and the stream records
/// those writes produced.
struct World {
    ports: Ports,
    tables: TableNames,
    dynamo: aws_sdk_dynamodb::Client,
    clock: Arc<ManualClock>,
    metric_lines: Arc<Mutex<Vec<Value>>>,
    messages: Stream,
    /// The messages stream's records so far, in write order.
    records: Vec<Value>,
}

impl World {
    async fn new(sdk: &wa_shared::adapters::aws::SdkConfig, prefix: &str) -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(START_MS)));
        let (metrics, metric_lines) = Metrics::in_memory();
        let backend = wa_testkit::backends::moto(sdk, prefix, clock.clone(), metrics).await;
        let tables = TableNames::with_prefix(prefix);
        Self {
            ports: backend.ports,
            messages: Stream::messages(&tables.messages),
            tables,
            dynamo: aws_sdk_dynamodb::Client::new(sdk),
            clock,
            metric_lines,
            records: Vec::new(),
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn metric(&self, name: &str, tenant: &str) -> f64 {
        total(
            &self.metric_lines.lock().unwrap(),
            name,
            &[("Tenant", tenant)],
        )
    }

    /// The stored item of a message, as DynamoDB holds it.
    async fn item(&self, tenant: &TenantId, id: &MessageId) -> Option<Item> {
        self.dynamo
            .get_item()
            .table_name(&self.tables.messages)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!(
                    "{}#{}",
                    tenant.as_str(),
                    id.as_str()
                )),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item()
            .cloned()
    }

    /// The stream record of whatever changed the item since `before`.
    async fn track(&mut self, tenant: &TenantId, id: &MessageId, before: Option<Item>) {
        let after = self.item(tenant, id).await;
        if before != after {
            let record = self.messages.record(before.as_ref(), after.as_ref());
            self.records.push(record);
        }
    }

    async fn create(&mut self, message: &Message) {
        let before = self.item(&message.tenant, &message.id).await;
        self.ports.store.create_if_absent(message).await.unwrap();
        self.track(&message.tenant, &message.id, before).await;
        self.clock.advance(Duration::from_millis(250));
    }

    async fn record(&mut self, tenant: &TenantId, id: &MessageId, kind: EventKind) {
        let before = self.item(tenant, id).await;
        let event = LifecycleEvent::new(self.now(), kind);
        let r = record_event(
            &*self.ports.store,
            tenant,
            id,
            &event,
            &self.ports.lifecycle,
        )
        .await
        .unwrap();
        assert!(matches!(r, Recorded::Written { .. }), "{r:?}");
        self.track(tenant, id, before).await;
        self.clock.advance(Duration::from_millis(250));
    }

    /// The item expired (TTL): DynamoDB deletes it and streams a REMOVE.
    async fn expire(&mut self, tenant: &TenantId, id: &MessageId) {
        let before = self.item(tenant, id).await;
        self.dynamo
            .delete_item()
            .table_name(&self.tables.messages)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!(
                    "{}#{}",
                    tenant.as_str(),
                    id.as_str()
                )),
            )
            .send()
            .await
            .unwrap();
        self.track(tenant, id, before).await;
    }

    /// Every item of the events table (entries and guards), in key order.
    async fn event_items(&self) -> Vec<Item> {
        let mut items: Vec<Item> = self
            .dynamo
            .scan()
            .table_name(&self.tables.events)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items()
            .to_vec();
        let key = |i: &Item| {
            let s = |k: &str| match i.get(k) {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(s)) => s.clone(),
                _ => String::new(),
            };
            (s("pk"), s("sk"))
        };
        items.sort_by_key(key);
        items
    }

    fn deps(&self, publisher: Arc<dyn wa_shared::ports::EventPublisher>) -> EventsDeps {
        EventsDeps {
            ports: self.ports.clone(),
            publisher,
            settings: EventsSettings {
                messages_table: self.tables.messages.clone(),
                events_table: self.tables.events.clone(),
                publish_backoff: Duration::from_millis(10),
                ..EventsSettings::default()
            },
        }
    }
}

fn new_message(tenant: &TenantId, to: &str) -> NewMessage {
    NewMessage {
        tenant: tenant.clone(),
        id: MessageId::generate(),
        to: PhoneNumber::parse(to).unwrap(),
        template_name: Some("order_shipped".into()),
        template_language: Some("en_US".into()),
        request: json!({"to": to, "template": {"name": "order_shipped", "language": "en_US"}}),
        request_hash: "h".into(),
        metadata: Some(
            json!({"order": "A-1", "n": 2.5})
                .as_object()
                .unwrap()
                .clone(),
        ),
    }
}

fn provider(
    wamid: &Wamid,
    status: ProviderStatusKind,
    at: Timestamp,
    detail: Option<Value>,
) -> EventKind {
    EventKind::Provider(ProviderStatus {
        wamid: wamid.clone(),
        status,
        occurred_at: at,
        failure: None,
        detail,
    })
}

#[tokio::test]
async fn stored_writes_are_logged_once_and_every_logged_event_reaches_the_bus() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let prefix = unique_name("ev");
    let mut w = World::new(&sdk, &prefix).await;
    let demo = TenantId::parse("demo").unwrap();
    let other = TenantId::parse("other").unwrap();
    let policy = w.ports.lifecycle.clone();

    // A message through its whole life: queued, claimed, dispatched, accepted, then
    // Meta's sent (with pricing), delivered and read.
    let sent = Message::new_queued(new_message(&demo, "+14155550123"), w.now(), &policy);
    let (m1, wamid) = (
        sent.id.clone(),
        Wamid::parse("wamid.HBgLMTY1MDM4NzIzNDUVAgARGBI").unwrap(),
    );
    w.create(&sent).await;
    w.record(&demo, &m1, EventKind::Claimed).await;
    w.record(&demo, &m1, EventKind::Dispatched { attempt: 1 })
        .await;
    w.record(
        &demo,
        &m1,
        EventKind::Accepted {
            attempt: 1,
            wamid: wamid.clone(),
            message_status: Some("accepted".into()),
        },
    )
    .await;
    // Meta's extras of a status (the lifecycle keeps them under `detail.provider`).
    let pricing = json!({"pricing": {"billable": true, "pricing_model": "PMP",
                                     "type": "regular", "category": "utility"}});
    for (status, detail) in [
        (ProviderStatusKind::Sent, Some(pricing)),
        (ProviderStatusKind::Delivered, None),
        (ProviderStatusKind::Read, None),
    ] {
        let at = w.now();
        w.record(&demo, &m1, provider(&wamid, status, at, detail))
            .await;
    }
    // Refused by policy at intake (another tenant), later expired by TTL.
    let refused = Message::new_suppressed(
        new_message(&other, "+14155550124"),
        Suppression {
            reason: SuppressionReason::OptedOut,
            detail: None,
        },
        w.now(),
        &policy,
    );
    let m2 = refused.id.clone();
    w.create(&refused).await;
    // Graph refused the send for good.
    let failing = Message::new_queued(new_message(&demo, "+14155550125"), w.now(), &policy);
    let m3 = failing.id.clone();
    w.create(&failing).await;
    w.record(&demo, &m3, EventKind::Claimed).await;
    w.record(
        &demo,
        &m3,
        EventKind::SendFailed {
            attempt: 1,
            failure: Failure {
                class: FailureClass::Rejected,
                code: Some(132001),
                title: "Template name does not exist in the translation".into(),
                detail: None,
                source: FailureSource::Graph,
            },
        },
    )
    .await;
    w.expire(&other, &m2).await;
    // 1 + 6 writes, 1 creation, 1 + 2 writes, 1 removal.
    assert_eq!(w.records.len(), 12);
    let names: Vec<&str> = w
        .records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "INSERT").count(), 3);
    assert_eq!(names.last(), Some(&"REMOVE"));

    // The event source mapping delivers the batch; then again (a retried batch), and
    // once more in two halves (a bisected one).
    let publisher = Arc::new(FlakyPublisher::default());
    let deps = w.deps(publisher.clone());
    for _ in 0..2 {
        let answer = handle(&deps, batch(&w.records)).await;
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    }
    let (first, second) = w.records.split_at(5);
    for half in [first, second] {
        assert!(
            handle(&deps, batch(half))
                .await
                .batch_item_failures
                .is_empty()
        );
    }
    assert!(
        publisher.calls.lock().unwrap().is_empty(),
        "message writes publish nothing"
    );

    // Exactly the advancing events, once each, in write order.
    let log = |tenant: TenantId| {
        let events = w.ports.events.clone();
        async move { events.list(&tenant, None, 100).await.unwrap().events }
    };
    let demo_log = log(demo.clone()).await;
    let types: Vec<EventType> = demo_log.iter().map(|e| e.event.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::MessageAccepted,
            EventType::MessageSent,
            EventType::MessageDelivered,
            EventType::MessageRead,
            EventType::MessageFailed,
        ]
    );
    let sequences: Vec<u64> = demo_log[..4]
        .iter()
        .map(|e| e.event.data["sequence"].as_u64().unwrap())
        .collect();
    // queued, claim, dispatch mark, accepted, sent, delivered, read: entries 4..=7.
    assert_eq!(sequences, [4, 5, 6, 7]);
    assert_eq!(demo_log[0].event.id, format!("evt_{}_4", m1.as_str()));
    assert_eq!(demo_log[1].event.data["pricing"]["pricing_model"], "PMP");
    assert_eq!(
        demo_log[1].event.data["metadata"],
        json!({"order": "A-1", "n": 2.5})
    );
    assert_eq!(demo_log[4].event.data["failure"]["code"], 132001);
    assert_eq!(demo_log[4].event.data["message_id"], m3.as_str());
    let other_log = log(other.clone()).await;
    assert_eq!(other_log.len(), 1);
    assert_eq!(other_log[0].event.event_type, EventType::MessageSuppressed);
    assert_eq!(
        other_log[0].event.data["suppression"]["reason"],
        "opted_out"
    );
    for e in demo_log.iter().chain(&other_log) {
        wa_testkit::events::assert_valid(&serde_json::to_value(&e.event).unwrap());
    }

    // The webhook appends an opt-out to the log directly.
    let opt_out = contact_opt_change(
        &demo,
        &PhoneNumber::parse("+14155550126").unwrap(),
        true,
        w.now(),
        "wamid.inbound-stop",
    );
    w.ports
        .events
        .append(std::slice::from_ref(&opt_out))
        .await
        .unwrap();

    // The events table's stream: every entry and guard, as inserted.
    let mut log_stream = Stream::events(&w.tables.events);
    let items = w.event_items().await;
    assert_eq!(items.len(), 2 * 7, "an entry and a guard per event");
    let log_records: Vec<Value> = items
        .iter()
        .map(|i| log_stream.record(None, Some(i)))
        .collect();

    let bus = BusWorld::create(&sdk, &prefix).await;
    let deps = w.deps(Arc::new(EventBridgePublisher::new(&sdk, bus.bus.clone())));
    let answer = handle(&deps, batch(&log_records)).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");

    let delivered = bus.drain().await;
    let logged: BTreeSet<String> = demo_log
        .iter()
        .chain(&other_log)
        .map(|e| e.event.id.clone())
        .chain([opt_out.id.clone()])
        .collect();
    let got: BTreeSet<String> = delivered
        .iter()
        .map(|e| e["detail"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered.len(), 7, "{delivered:#?}");
    assert_eq!(got, logged);
    for envelope in &delivered {
        assert_eq!(envelope["source"], "wa.pipeline");
        assert_eq!(envelope["detail-type"], envelope["detail"]["type"]);
        wa_testkit::events::assert_valid(&envelope["detail"]);
    }
    let read = delivered
        .iter()
        .find(|e| e["detail-type"] == "message.read")
        .unwrap();
    assert_eq!(read["detail"]["tenant"], "demo");
    assert_eq!(read["detail"]["data"]["wamid"], wamid.as_str());

    // Per tenant: emitted and published, nothing retried or failed.
    assert_eq!(w.metric("EventsEmitted", "demo"), 6.0);
    assert_eq!(w.metric("EventsPublished", "demo"), 6.0);
    assert_eq!(w.metric("EventsEmitted", "other"), 1.0);
    assert_eq!(w.metric("EventsPublished", "other"), 1.0);
    assert_eq!(w.metric("EventsPublishRetried", "demo"), 0.0);
    assert_eq!(w.metric("EventsPublishFailed", "demo"), 0.0);
}

#[tokio::test]
async fn a_bus_that_does_not_exist_fails_every_record_by_its_sequence_number() {
    let Some(sdk) = moto::sdk_config_or_skip().await else {
        return;
    };
    let prefix = unique_name("evnb");
    let mut w = World::new(&sdk, &prefix).await;
    let demo = TenantId::parse("demo").unwrap();
    let refused = Message::new_suppressed(
        new_message(&demo, "+14155550124"),
        Suppression {
            reason: SuppressionReason::WindowClosed,
            detail: None,
        },
        w.now(),
        &w.ports.lifecycle.clone(),
    );
    w.create(&refused).await;
    let deps = w.deps(Arc::new(FlakyPublisher::default()));
    assert!(
        handle(&deps, batch(&w.records))
            .await
            .batch_item_failures
            .is_empty()
    );

    let mut log_stream = Stream::events(&w.tables.events);
    let records: Vec<Value> = w
        .event_items()
        .await
        .iter()
        .map(|i| log_stream.record(None, Some(i)))
        .collect();
    let entry = records
        .iter()
        .find(|r| r["dynamodb"]["NewImage"]["body"].is_object())
        .unwrap();
    let mut deps = w.deps(Arc::new(EventBridgePublisher::new(
        &sdk,
        format!("{prefix}-no-such-bus"),
    )));
    deps.settings.publish_attempts = 2;
    let answer = handle(&deps, batch(&records)).await;
    let failed: Vec<Option<String>> = answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec![Some(sequence(entry))]);
    assert_eq!(w.metric("EventsPublishRetried", "demo"), 1.0);
    assert_eq!(w.metric("EventsPublishFailed", "demo"), 1.0);
}
