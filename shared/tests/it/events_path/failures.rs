//! What comes back to Lambda: refused events retried in the invocation, then
//! reported by their records' sequence numbers; a message write whose events cannot
//! be logged stops the batch there. On the SQLite event log (no moto needed); the
//! records are shaped as the DynamoDB streams deliver them.

use super::support::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wa_shared::adapters::ManualClock;
use wa_shared::app::Ports;
use wa_shared::app::events::{EventsDeps, EventsSettings, handle};
use wa_shared::domain::TenantId;
use wa_shared::domain::events::{Event, EventType, message_events};
use wa_shared::domain::lifecycle::{EventKind, LifecycleEvent, LifecyclePolicy, decide};
use wa_shared::domain::{Message, MessageId, NewMessage, PhoneNumber, Timestamp, Wamid};
use wa_shared::metrics::{Metrics, total};
use wa_shared::ports::{EventLog, EventLogError, EventPage};

const MESSAGES: &str = "test-wa-messages";
const EVENTS: &str = "test-wa-events";
const START_MS: i64 = 1_750_032_000_000;

async fn ports() -> (Ports, Arc<Mutex<Vec<Value>>>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(START_MS)));
    let (metrics, lines) = Metrics::in_memory();
    (
        wa_testkit::backends::sqlite(clock, metrics).await.ports,
        lines,
    )
}

fn deps(ports: Ports, publisher: Arc<dyn wa_shared::ports::EventPublisher>) -> EventsDeps {
    EventsDeps {
        ports,
        publisher,
        settings: EventsSettings {
            messages_table: MESSAGES.into(),
            events_table: EVENTS.into(),
            publish_attempts: 3,
            publish_backoff: Duration::from_millis(1),
            ..EventsSettings::default()
        },
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// The entry `DynamoEventLog` writes for `event` logged at `ms`, and its guard.
fn log_items(event: &Event, ms: i64) -> [Item; 2] {
    let entry = Item::from([
        ("pk".to_owned(), s(event.tenant.as_str())),
        ("sk".to_owned(), s(&format!("{ms:013}#{}", event.id))),
        ("type".to_owned(), s(event.event_type.as_str())),
        ("body".to_owned(), s(&serde_json::to_string(event).unwrap())),
        (
            "expires_at".to_owned(),
            AttributeValue::N("1757808000".into()),
        ),
    ]);
    let guard = Item::from([
        ("pk".to_owned(), s(&format!("id#{}", event.id))),
        ("sk".to_owned(), s("guard")),
        (
            "expires_at".to_owned(),
            AttributeValue::N("1757808000".into()),
        ),
    ]);
    [guard, entry]
}

fn event(tenant: &str, n: u32) -> Event {
    serde_json::from_value(json!({
        "id": format!("evt_in_wamid.{tenant}{n}"), "type": "message.received",
        "timestamp": "2025-06-16T00:00:00.000Z", "tenant": tenant,
        "data": {"n": n}
    }))
    .unwrap()
}

fn failures(answer: &wa_shared::app::events::DynamoDbEventResponse) -> Vec<String> {
    answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn refused_events_are_retried_then_their_records_reported_by_sequence_number() {
    let (ports, lines) = ports().await;
    let publisher = Arc::new(FlakyPublisher::default());
    let deps = deps(ports, publisher.clone());
    let events = [
        event("acme", 1),
        event("acme", 2),
        event("beta", 3),
        event("beta", 4),
    ];
    // Refused once (accepted on the retry), and always.
    publisher.refuse(&events[1].id, 1);
    publisher.refuse(&events[3].id, u32::MAX);
    let mut stream = Stream::events(EVENTS);
    let mut records = Vec::new();
    for (n, e) in events.iter().enumerate() {
        for item in log_items(e, START_MS + n as i64) {
            records.push(stream.record(None, Some(&item)));
        }
    }
    // An entry whose body is not an event comes back too; a TTL removal is ignored.
    let mut broken = log_items(&event("acme", 5), START_MS + 9)[1].clone();
    broken.insert("body".into(), s("{"));
    records.push(stream.record(None, Some(&broken)));
    let expired = log_items(&event("acme", 0), START_MS - 1)[1].clone();
    records.push(stream.record(Some(&expired), None));

    let answer = handle(&deps, batch(&records)).await;
    // records: [guard, entry] per event, then the broken entry.
    assert_eq!(
        failures(&answer),
        vec![sequence(&records[8]), sequence(&records[7])],
        "the broken entry, then the event never accepted"
    );
    assert_eq!(
        publisher.accepted_ids(),
        vec![
            events[0].id.clone(),
            events[2].id.clone(),
            events[1].id.clone()
        ]
    );
    let calls = publisher.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[1], vec![events[1].id.clone(), events[3].id.clone()]);
    assert_eq!(calls[2], vec![events[3].id.clone()]);
    let lines = lines.lock().unwrap();
    let m = |name: &str, tenant: &str| total(&lines, name, &[("Tenant", tenant)]);
    assert_eq!(
        (m("EventsEmitted", "acme"), m("EventsEmitted", "beta")),
        (2.0, 2.0)
    );
    assert_eq!(
        (m("EventsPublished", "acme"), m("EventsPublished", "beta")),
        (2.0, 1.0)
    );
    assert_eq!(m("EventsPublishRetried", "acme"), 1.0);
    assert_eq!(m("EventsPublishRetried", "beta"), 2.0);
    assert_eq!(
        (
            m("EventsPublishFailed", "acme"),
            m("EventsPublishFailed", "beta")
        ),
        (0.0, 1.0)
    );
}

/// An event log whose backend is down.
struct DownLog;

#[async_trait]
impl EventLog for DownLog {
    async fn append(&self, _: &[Event]) -> Result<(), EventLogError> {
        Err(EventLogError::Backend {
            operation: "TransactWriteItems",
            source: "connection refused".into(),
        })
    }

    async fn list(
        &self,
        _: &TenantId,
        _: Option<&str>,
        _: usize,
    ) -> Result<EventPage, EventLogError> {
        Ok(EventPage::default())
    }
}

/// `message` as the messages table holds it (serde_dynamo, plus its key).
fn message_item(message: &Message) -> Item {
    let mut item: Item = serde_dynamo::to_item(message).unwrap();
    item.insert(
        "pk".into(),
        s(&format!(
            "{}#{}",
            message.tenant.as_str(),
            message.id.as_str()
        )),
    );
    item
}

/// A queued message and the item after each of `kinds` applied in turn.
fn writes(kinds: Vec<EventKind>) -> Vec<Message> {
    let policy = LifecyclePolicy::default();
    let new = NewMessage {
        tenant: TenantId::parse("acme").unwrap(),
        id: MessageId::generate(),
        to: PhoneNumber::parse("+14155550123").unwrap(),
        template_name: None,
        template_language: None,
        request: json!({"to": "+14155550123", "text": {"body": "hi"}}),
        request_hash: "h".into(),
        metadata: None,
    };
    let mut at = Timestamp::from_millis(START_MS);
    let mut items = vec![Message::new_queued(new, at, &policy)];
    for kind in kinds {
        at = at.plus_millis(100);
        let mut next = items.last().unwrap().clone();
        let decision = decide(&next, &LifecycleEvent::new(at, kind), &policy);
        let transition = decision
            .transition()
            .expect("the event changes the message");
        assert!(transition.apply_if_holds(&mut next));
        items.push(next);
    }
    items
}

#[tokio::test]
async fn a_write_whose_events_cannot_be_logged_stops_the_batch_at_its_record() {
    let (mut ports, _) = ports().await;
    let wamid = Wamid::parse("wamid.HBgL1").unwrap();
    let items = writes(vec![
        EventKind::Claimed,
        EventKind::Accepted {
            attempt: 1,
            wamid,
            message_status: None,
        },
    ]);
    let mut stream = Stream::messages(MESSAGES);
    let item_of: Vec<Item> = items.iter().map(message_item).collect();
    let records = [
        stream.record(None, Some(&item_of[0])),
        stream.record(Some(&item_of[0]), Some(&item_of[1])),
        stream.record(Some(&item_of[1]), Some(&item_of[2])),
    ];
    // Working log: the creation and the claim emit nothing, the acceptance one event.
    let good = deps(ports.clone(), Arc::new(FlakyPublisher::default()));
    assert!(
        handle(&good, batch(&records))
            .await
            .batch_item_failures
            .is_empty()
    );
    let logged = ports
        .events
        .list(&items[0].tenant, None, 10)
        .await
        .unwrap()
        .events;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].event.event_type, EventType::MessageAccepted);
    assert_eq!(
        logged[0].event,
        message_events(Some(&items[1]), &items[2])[0]
    );

    // Log down: the first record that has events to log is reported, and nothing after it runs.
    ports.events = Arc::new(DownLog);
    let down = deps(ports.clone(), Arc::new(FlakyPublisher::default()));
    let answer = handle(&down, batch(&records)).await;
    assert_eq!(failures(&answer), vec![sequence(&records[2])]);

    // An image that is not a message is reported too (it goes to the DLQ after the retries).
    let mut corrupt = item_of[2].clone();
    corrupt.insert("rank".into(), s("high"));
    let bad = stream.record(Some(&item_of[1]), Some(&corrupt));
    let answer = handle(&good, batch(std::slice::from_ref(&bad))).await;
    assert_eq!(failures(&answer), vec![sequence(&bad)]);
}
