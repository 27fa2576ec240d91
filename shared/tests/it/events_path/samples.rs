//! The sample events of `events/events/` (what the two event source mappings
//! deliver) through the handler: the message write of `messages-stream.json` logs
//! exactly the event whose log entry `events-stream.json` carries, and that entry is
//! published (its guard is not).

use super::support::*;
use serde_json::Value;
use std::sync::Arc;
use wa_shared::adapters::ManualClock;
use wa_shared::app::events::{EventsDeps, EventsSettings, handle};
use wa_shared::domain::events::EventType;
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::metrics::Metrics;

fn sample(name: &str) -> Value {
    let path = format!("{}/../events/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn the_samples_log_one_event_and_publish_it() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_750_032_000_000)));
    let ports = wa_testkit::backends::sqlite(clock, Metrics::in_memory().0)
        .await
        .ports;
    let publisher = Arc::new(FlakyPublisher::default());
    let deps = EventsDeps {
        ports: ports.clone(),
        publisher: publisher.clone(),
        // The samples' stream ARNs name the dev stage's tables.
        settings: EventsSettings {
            messages_table: "dev-wa-messages".into(),
            events_table: "dev-wa-events".into(),
            ..EventsSettings::default()
        },
    };
    let writes = sample("messages-stream.json");
    let answer = handle(&deps, serde_json::from_value(writes).unwrap()).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let demo = TenantId::parse("demo").unwrap();
    let logged = ports.events.list(&demo, None, 10).await.unwrap().events;
    assert_eq!(
        logged.len(),
        1,
        "the creation emits nothing, the acceptance one event"
    );
    let event = &logged[0].event;
    assert_eq!(event.event_type, EventType::MessageAccepted);
    assert_eq!(event.id, "evt_msg_01M8TGC9JR5ZFKMP9AXJ8P3M63_4");
    wa_testkit::events::assert_valid(&serde_json::to_value(event).unwrap());

    let entries = sample("events-stream.json");
    let body: Value = serde_json::from_str(
        entries["Records"][1]["dynamodb"]["NewImage"]["body"]["S"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body, serde_json::to_value(event).unwrap());
    let answer = handle(&deps, serde_json::from_value(entries).unwrap()).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    assert_eq!(*publisher.accepted.lock().unwrap(), vec![event.clone()]);
}
