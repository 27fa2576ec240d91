//! Stream records shaped as DynamoDB Streams delivers them to Lambda, fake
//! publishers, and the EventBridge world on moto (bus, rule, SQS target).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use wa_shared::adapters::aws::SdkConfig;
use wa_shared::app::events::DynamoDbEvent;
use wa_shared::domain::events::Event;
use wa_shared::ports::{EventPublisher, PublishError};

/// moto's account and region: the ARNs of its tables.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// A DynamoDB item as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;

/// The stream ARN of `table`, as an event source mapping names it.
pub fn stream_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/2025-06-16T00:00:00.000")
}

/// An item as DynamoDB JSON (`{"pk": {"S": "..."}}`), the encoding of stream images.
pub fn dynamo_json(item: &Item) -> Value {
    serde_json::to_value(serde_dynamo::Item::from(item.clone())).unwrap()
}

/// One stream, numbering its records as DynamoDB does (increasing decimal strings).
pub struct Stream {
    table: String,
    /// Attribute names of the table's key.
    key: &'static [&'static str],
    view: &'static str,
    next: u64,
}

impl Stream {
    /// The messages table's stream (`NEW_AND_OLD_IMAGES`).
    pub fn messages(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            key: &["pk"],
            view: "NEW_AND_OLD_IMAGES",
            next: 0,
        }
    }

    /// The events table's stream (`NEW_IMAGE`).
    pub fn events(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            key: &["pk", "sk"],
            view: "NEW_IMAGE",
            next: 0,
        }
    }

    /// The record of one write that changed the item from `old` to `new` (`None`:
    /// absent): `INSERT`, `MODIFY` or `REMOVE`, with the images the view carries.
    pub fn record(&mut self, old: Option<&Item>, new: Option<&Item>) -> Value {
        self.next += 1;
        let sequence = format!("{:021}", 4_000_000_000_000_000_000u64 + self.next);
        let name = match (old, new) {
            (None, Some(_)) => "INSERT",
            (Some(_), Some(_)) => "MODIFY",
            (Some(_), None) => "REMOVE",
            (None, None) => panic!("a write changes something"),
        };
        let some = new.or(old).unwrap();
        let keys: Item = self
            .key
            .iter()
            .map(|k| ((*k).to_owned(), some[*k].clone()))
            .collect();
        let mut change = json!({
            "ApproximateCreationDateTime": 1_750_032_000.0,
            "Keys": dynamo_json(&keys),
            "SequenceNumber": sequence,
            "SizeBytes": 0,
            "StreamViewType": self.view,
        });
        let mut size = 0;
        if let Some(new) = new {
            let image = dynamo_json(new);
            size += image.to_string().len();
            change["NewImage"] = image;
        }
        if let (Some(old), "NEW_AND_OLD_IMAGES") = (old, self.view) {
            let image = dynamo_json(old);
            size += image.to_string().len();
            change["OldImage"] = image;
        }
        change["SizeBytes"] = json!(size);
        json!({
            "eventID": format!("{:032x}", self.next),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": change,
            "eventSourceARN": stream_arn(&self.table),
        })
    }
}

/// A Lambda event of `records`.
pub fn batch(records: &[Value]) -> DynamoDbEvent {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// The sequence number of a record.
pub fn sequence(record: &Value) -> String {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A publisher that accepts everything except the events whose ids it was told to
/// refuse, each refused `times` times in a row (`u32::MAX`: always).
#[derive(Default)]
pub struct FlakyPublisher {
    refusals: Mutex<BTreeMap<String, u32>>,
    /// Every call, the ids it was handed.
    pub calls: Mutex<Vec<Vec<String>>>,
    /// What it accepted, in order.
    pub accepted: Mutex<Vec<Event>>,
}

impl FlakyPublisher {
    pub fn refuse(&self, id: &str, times: u32) {
        self.refusals.lock().unwrap().insert(id.to_owned(), times);
    }

    pub fn accepted_ids(&self) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.id.clone())
            .collect()
    }
}

#[async_trait]
impl EventPublisher for FlakyPublisher {
    async fn publish(&self, events: &[Event]) -> Vec<Result<(), PublishError>> {
        self.calls
            .lock()
            .unwrap()
            .push(events.iter().map(|e| e.id.clone()).collect());
        let mut refusals = self.refusals.lock().unwrap();
        events
            .iter()
            .map(|event| match refusals.get_mut(&event.id) {
                Some(left) if *left > 0 => {
                    *left = left.saturating_sub(1);
                    Err(PublishError::Rejected {
                        code: "ThrottlingException".into(),
                        message: Some("Rate exceeded".into()),
                    })
                }
                _ => {
                    self.accepted.lock().unwrap().push(event.clone());
                    Ok(())
                }
            })
            .collect()
    }
}

/// A bus on moto with a rule matching `source: wa.pipeline` that targets an SQS
/// queue: what a consumer of the stage's bus sees.
pub struct BusWorld {
    pub bus: String,
    pub queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl BusWorld {
    pub async fn create(sdk: &SdkConfig, prefix: &str) -> Self {
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let bus = format!("{prefix}-bus");
        events.create_event_bus().name(&bus).send().await.unwrap();
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{prefix}-consumer"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        let rule = format!("{prefix}-all");
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(json!({"source": ["wa.pipeline"]}).to_string())
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("consumer")
                    .arn(queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        Self {
            bus,
            queue_url,
            sqs,
        }
    }

    /// Everything the consumer's queue holds now: EventBridge envelopes.
    pub async fn drain(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .send()
                .await
                .unwrap();
            let messages = got.messages();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            }
        }
    }
}
