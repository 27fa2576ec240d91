//! The pure parts of the handler: telling the streams apart, reading log entries,
//! the backoff. The handler itself is tested in `tests/it/events_path` (SQLite and
//! DynamoDB + EventBridge on moto) and as the built binary (`functions/events`).

use super::*;
use serde_json::json;

fn record(value: serde_json::Value) -> EventRecord {
    serde_json::from_value(value).unwrap()
}

fn settings() -> EventsSettings {
    EventsSettings {
        messages_table: "dev-wa-messages".into(),
        events_table: "dev-wa-events".into(),
        ..EventsSettings::default()
    }
}

fn stream_record(arn: &str, keys: serde_json::Value) -> EventRecord {
    record(json!({
        "awsRegion": "us-east-1",
        "eventID": "1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.1",
        "eventSourceARN": arn,
        "dynamodb": {"Keys": keys, "SequenceNumber": "100", "SizeBytes": 10,
                     "StreamViewType": "NEW_IMAGE"}
    }))
}

#[test]
fn a_stream_arn_names_its_table() {
    assert_eq!(
        table_of_stream_arn(
            "arn:aws:dynamodb:us-east-1:123456789012:table/dev-wa-events/stream/2025-06-16T00:00:00.000"
        ),
        Some("dev-wa-events")
    );
    assert_eq!(table_of_stream_arn("arn:aws:sqs:us-east-1:1:q"), None);
    assert_eq!(
        table_of_stream_arn("arn:aws:dynamodb:r:1:table//stream/x"),
        None
    );
}

#[test]
fn records_are_told_apart_by_table_then_by_key() {
    let s = settings();
    let arn = |t: &str| format!("arn:aws:dynamodb:us-east-1:1:table/{t}/stream/2025");
    let pk_only = json!({"pk": {"S": "acme#msg_1"}});
    let pk_sk = json!({"pk": {"S": "acme"}, "sk": {"S": "1750032000000#evt_1"}});
    // The ARN wins over the key shape.
    assert_eq!(
        stream_of(&stream_record(&arn("dev-wa-events"), pk_only.clone()), &s),
        Stream::EventLog
    );
    assert_eq!(
        stream_of(&stream_record(&arn("dev-wa-messages"), pk_sk.clone()), &s),
        Stream::Messages
    );
    // Another table (or no configured names): only log entries have a sort key.
    assert_eq!(
        stream_of(&stream_record(&arn("other"), pk_sk.clone()), &s),
        Stream::EventLog
    );
    assert_eq!(
        stream_of(
            &stream_record(&arn("other"), pk_only),
            &EventsSettings::default()
        ),
        Stream::Messages
    );
    assert_eq!(
        stream_of(
            &stream_record(&arn("dev-wa-messages"), pk_sk),
            &EventsSettings::default()
        ),
        Stream::EventLog
    );
}

#[test]
fn guards_are_skipped_and_entries_decoded() {
    let image = |v: serde_json::Value| -> serde_dynamo::Item { serde_json::from_value(v).unwrap() };
    let guard =
        image(json!({"pk": {"S": "id#evt_1"}, "sk": {"S": "guard"}, "expires_at": {"N": "1"}}));
    assert!(log_entries::entry_of(&guard).unwrap().is_none());
    let event = json!({"id": "evt_in_wamid.1", "type": "message.received",
                       "timestamp": "2025-06-16T00:00:00.000Z", "tenant": "acme", "data": {}});
    let entry = image(
        json!({"pk": {"S": "acme"}, "sk": {"S": "1750032000000#evt_in_wamid.1"},
                             "type": {"S": "message.received"},
                             "body": {"S": event.to_string()}}),
    );
    let got = log_entries::entry_of(&entry).unwrap().unwrap();
    assert_eq!(got.id, "evt_in_wamid.1");
    let broken = image(json!({"pk": {"S": "acme"}, "sk": {"S": "1#x"}, "body": {"S": "{"}}));
    assert!(log_entries::entry_of(&broken).is_err());
    let bodiless = image(json!({"pk": {"S": "acme"}, "sk": {"S": "1#x"}}));
    assert!(log_entries::entry_of(&bodiless).is_err());
}

#[test]
fn the_backoff_doubles_up_to_its_cap() {
    let s = EventsSettings::default();
    let waits: Vec<u128> = (2..=6).map(|a| s.backoff_before(a).as_millis()).collect();
    assert_eq!(waits, vec![100, 200, 400, 800, 1000]);
    assert_eq!(s.backoff_before(1000), Duration::from_secs(1));
}
