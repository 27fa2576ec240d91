//! The `events` function (DESIGN §10, "the workflow emits events") on AWS: two
//! DynamoDB streams feed one handler, which tells their records apart by table.
//!
//! - **The messages table's stream** (`NEW_AND_OLD_IMAGES`): each record is one
//!   stored write of a message. Its events come from the item before and after the
//!   write ([`message_events`](crate::domain::events::message_events), pure), and are
//!   appended to the tenant's event log, idempotently by event id: a redelivered
//!   record logs nothing new. So an event exists if and only if its transition was
//!   stored, with no dual write. `REMOVE` records (TTL expiry) emit nothing.
//! - **The events table's stream** (`NEW_IMAGE`): each new log entry (`pk` the
//!   tenant, `sk` `"<13 digits>#<event id>"`; guard items `id#…` are skipped) is
//!   published to the stage's bus through the [`EventPublisher`] port. Inbound
//!   messages, opt-outs and template changes are appended to the log by the webhook
//!   function, so every event reaches the bus once the log holds it.
//!
//! Publishing retries the entries the bus refused, with backoff, within the
//! invocation ([`EventsSettings::publish_attempts`]). A record that still fails (an
//! append that failed, an image that does not decode, an event never accepted) is
//! reported in `batchItemFailures` by its `SequenceNumber`: Lambda retries the shard
//! from the lowest one, up to the event source mapping's `MaximumRetryAttempts`
//! (bisecting the batch), then sends the batch's description to the function's DLQ,
//! which alarms. Delivery is at least once: a retried batch publishes again what had
//! been accepted after the failed record, and consumers dedupe on the event id.
//!
//! Metrics (per tenant): `EventsEmitted` (a new log entry arrived on the events
//! table's stream), `EventsPublished` (the bus accepted it), `EventsPublishRetried`
//! (refused, tried again in the invocation) and `EventsPublishFailed` (still refused
//! after the last attempt: reported for Lambda to retry; what never succeeds ends in
//! the DLQ). A redelivered record is counted again.

mod log_entries;
mod message_writes;

#[cfg(test)]
mod tests;

use crate::app::Ports;
use crate::ports::EventPublisher;
pub use aws_lambda_events::dynamodb::{Event as DynamoDbEvent, EventRecord};
pub use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_dynamo::AttributeValue;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// The `events` function's settings (read by its config at cold start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsSettings {
    /// The messages table (`WA_MESSAGES_TABLE`): records whose `eventSourceARN` names
    /// it are message writes.
    pub messages_table: String,
    /// The events table (`WA_EVENTS_TABLE`): records whose `eventSourceARN` names it
    /// are log entries. A record from neither table is told by its key (only log
    /// entries have a sort key).
    pub events_table: String,
    /// Attempts at publishing one event within an invocation (at least 1).
    pub publish_attempts: u32,
    /// Wait before the second attempt; doubled for each later one.
    pub publish_backoff: Duration,
    /// Longest wait between two attempts.
    pub max_publish_backoff: Duration,
}

impl Default for EventsSettings {
    /// No table names (records are told apart by their keys), 4 attempts, 100 ms
    /// doubling up to 1 s (under 2 s of waiting per invocation).
    fn default() -> Self {
        Self {
            messages_table: String::new(),
            events_table: String::new(),
            publish_attempts: 4,
            publish_backoff: Duration::from_millis(100),
            max_publish_backoff: Duration::from_secs(1),
        }
    }
}

impl EventsSettings {
    /// The wait before attempt `attempt` (2, 3, ...): the backoff doubled per earlier
    /// retry, capped.
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(16);
        self.publish_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_publish_backoff)
    }
}

/// The `events` function: the shared ports (its event log), the bus and its settings.
#[derive(Clone)]
pub struct EventsDeps {
    /// Shared ports (`events`, the event log; `metrics`).
    pub ports: Ports,
    /// The stage's bus.
    pub publisher: Arc<dyn EventPublisher>,
    /// Table names and publishing retries.
    pub settings: EventsSettings,
}

/// Which stream a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// The messages table: one stored write of a message.
    Messages,
    /// The events table: one change of a tenant's event log.
    EventLog,
}

/// Process one batch of stream records. Never fails as a whole: a record that must
/// come back is listed in `batchItemFailures` by its sequence number (Lambda resumes
/// the shard from the lowest one; a failed record without a sequence number is listed
/// without one, which Lambda takes as the whole batch failing).
pub async fn handle(deps: &EventsDeps, event: DynamoDbEvent) -> DynamoDbEventResponse {
    let (mut message_writes, mut log_changes) = (Vec::new(), Vec::new());
    for record in event.records {
        match stream_of(&record, &deps.settings) {
            Stream::Messages => message_writes.push(record),
            Stream::EventLog => log_changes.push(record),
        }
    }
    let (records, writes, changes) = (
        message_writes.len() + log_changes.len(),
        message_writes.len(),
        log_changes.len(),
    );
    let mut failed = message_writes::derive(deps, message_writes).await;
    failed.extend(log_entries::publish(deps, log_changes).await);
    // A clean batch is a debug line: at info it was a third of the pipeline's log
    // bytes (CloudWatch Logs is billed by the byte; the counts are metrics already).
    if failed.is_empty() {
        debug!(
            records,
            message_writes = writes,
            log_changes = changes,
            "stream batch processed"
        );
    } else {
        warn!(
            records,
            message_writes = writes,
            log_changes = changes,
            failed = failed.len(),
            "stream batch processed with records to retry"
        );
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|sequence_number| {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = sequence_number;
            f
        })
        .collect();
    response
}

/// The stream of `record`: by the table its `eventSourceARN` names, else by its key.
fn stream_of(record: &EventRecord, settings: &EventsSettings) -> Stream {
    let table = record
        .event_source_arn
        .as_deref()
        .and_then(table_of_stream_arn)
        .or(record.table_name.as_deref());
    match table {
        Some(t) if !t.is_empty() && t == settings.events_table => Stream::EventLog,
        Some(t) if !t.is_empty() && t == settings.messages_table => Stream::Messages,
        _ => {
            let change = &record.change;
            let has_sort_key = [&change.keys, &change.new_image, &change.old_image]
                .iter()
                .any(|item| item.contains_key("sk"));
            if has_sort_key {
                Stream::EventLog
            } else {
                Stream::Messages
            }
        }
    }
}

/// The table of a stream ARN: `arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>`.
fn table_of_stream_arn(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":table/")?;
    let table = rest.split('/').next()?;
    (!table.is_empty()).then_some(table)
}

/// A string attribute of an image.
fn string_attribute<'a>(item: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// How a record is named in logs: its sequence number, or its `eventID`.
fn record_name(record: &EventRecord) -> &str {
    record
        .change
        .sequence_number
        .as_deref()
        .unwrap_or(&record.event_id)
}
