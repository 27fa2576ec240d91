//! `DynamoEventLog`: the [`EventLog`] port on the `events` table.
//!
//! A tenant's log is one partition (`pk` = tenant) sorted by `sk` =
//! `"{logged at ms, 13 digits}#{event id}"`: the time of *logging*, not the event's
//! own time, so an event derived late (a stream record retried) lands after what a
//! reader has already paged past instead of behind it. Appending writes the entry
//! and a guard item (`pk` = `"id#{event id}"`) in one transaction conditioned on the
//! guard's absence, so a redelivered stream record logs nothing twice. Reads are
//! strongly consistent. Entries and guards expire with the table's TTL (90 days).

use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::TenantId;
use crate::domain::events::Event;
use crate::ports::{EventLog, EventLogError, EventPage, LoggedEvent, MAX_EVENT_PAGE};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use std::time::{SystemTime, UNIX_EPOCH};

/// How long a logged event is kept.
const RETENTION_SECS: i64 = 90 * 86_400;

/// The DynamoDB [`EventLog`].
#[derive(Debug)]
pub struct DynamoEventLog {
    client: Client,
    table: String,
    calls: CallCounter,
}

fn backend(
    operation: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> EventLogError {
    EventLogError::Backend {
        operation,
        source: e.into(),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether `position` has the shape of an `sk` this log hands out.
fn valid_position(position: &str) -> bool {
    position.split_once('#').is_some_and(|(ms, id)| {
        ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit()) && !id.is_empty()
    })
}

impl DynamoEventLog {
    /// A log on `table`, with a client built from `config` (once per process).
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            table: table.into(),
            calls: CallCounter::new(),
        }
    }

    /// AWS calls made so far, by operation (the cost tests count them).
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    async fn append_one(&self, event: &Event) -> Result<(), EventLogError> {
        let body = serde_json::to_string(event).map_err(|e| backend("encode_event", e))?;
        let logged = now_ms();
        let expires = logged / 1000 + RETENTION_SECS;
        let guard = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("id#{}", event.id)))
            .item("sk", s("guard"))
            .item("expires_at", AttributeValue::N(expires.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| backend("TransactWriteItems", e))?;
        let entry = Put::builder()
            .table_name(&self.table)
            .item("pk", s(event.tenant.as_str()))
            .item("sk", s(format!("{logged:013}#{}", event.id)))
            .item("type", s(event.event_type.as_str()))
            .item("body", s(body))
            .item("expires_at", AttributeValue::N(expires.to_string()))
            .build()
            .map_err(|e| backend("TransactWriteItems", e))?;
        self.calls.record("TransactWriteItems");
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(guard).build())
            .transact_items(TransactWriteItem::builder().put(entry).build())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                // The guard exists: this event was logged before.
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if c.cancellation_reasons().first().and_then(|r| r.code())
                        == Some("ConditionalCheckFailed") =>
                {
                    Ok(())
                }
                _ => Err(backend("TransactWriteItems", err)),
            },
        }
    }
}

#[async_trait]
impl EventLog for DynamoEventLog {
    async fn append(&self, events: &[Event]) -> Result<(), EventLogError> {
        for event in events {
            self.append_one(event).await?;
        }
        Ok(())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EventPage, EventLogError> {
        if after.is_some_and(|p| !valid_position(p)) {
            return Err(EventLogError::InvalidPosition);
        }
        let limit = limit.clamp(1, MAX_EVENT_PAGE);
        self.calls.record("Query");
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk > :after")
            .expression_attribute_values(":pk", s(tenant.as_str()))
            // Every position sorts after "0" and before ":" (digits first).
            .expression_attribute_values(":after", s(after.unwrap_or("0")))
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| backend("Query", e))?;
        let items = out.items();
        let more = items.len() > limit;
        let events = items
            .iter()
            .take(limit)
            .map(|item| {
                let sk = match item.get("sk") {
                    Some(AttributeValue::S(sk)) => sk.clone(),
                    _ => return Err(backend("Query", "an event item has no sk")),
                };
                let body = match item.get("body") {
                    Some(AttributeValue::S(b)) => b,
                    _ => return Err(backend("Query", format!("event {sk} has no body"))),
                };
                let event = serde_json::from_str(body).map_err(|e| EventLogError::Corrupt {
                    key: sk.clone(),
                    source: e.into(),
                })?;
                Ok(LoggedEvent {
                    position: sk,
                    event,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventPage { events, more })
    }
}
