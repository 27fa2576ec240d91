//! The events table's stream: each new log entry is published to the stage's bus,
//! refused entries retried with backoff within the invocation.

use super::{EventRecord, EventsDeps, record_name, string_attribute};
use crate::app::errors::ErrorChain;
use crate::domain::events::Event;
use crate::ports::PublishError;
use std::collections::BTreeMap;
use tracing::{error, warn};

/// The partition key prefix of the log's idempotency guards (`id#<event id>`, see
/// `DynamoEventLog`): not events.
const GUARD_PREFIX: &str = "id#";

/// Why a log entry could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum EntryError {
    /// No string `pk` in the new image.
    #[error("the log entry has no pk")]
    NoKey,
    /// No string `body`.
    #[error("the log entry has no body")]
    NoBody,
    /// A body that is not an event.
    #[error("the log entry's body is not an event")]
    Corrupt(#[source] serde_json::Error),
}

/// One event to publish and the record it came from.
struct Entry {
    sequence_number: Option<String>,
    event: Event,
}

/// Publish the events of the `INSERT`s among `records`; returns the sequence
/// numbers of the records that must come back (unreadable, or never accepted).
pub(super) async fn publish(deps: &EventsDeps, records: Vec<EventRecord>) -> Vec<Option<String>> {
    let mut failed = Vec::new();
    let mut entries = Vec::new();
    for record in records {
        // Entries are written once; a REMOVE is the TTL expiring one (or its guard).
        if record.event_name != "INSERT" {
            continue;
        }
        match entry_of(&record.change.new_image) {
            Ok(Some(event)) => entries.push(Entry {
                sequence_number: record.change.sequence_number,
                event,
            }),
            Ok(None) => {}
            Err(problem) => {
                error!(
                    record = record_name(&record),
                    error = %ErrorChain(&problem),
                    "unreadable event log entry; it comes back until it goes to the DLQ"
                );
                failed.push(record.change.sequence_number);
            }
        }
    }
    let metrics = &deps.ports.metrics;
    for (tenant, n) in per_tenant(entries.iter().map(|e| &e.event)) {
        metrics.count_n("EventsEmitted", n, &[("Tenant", tenant)]);
    }
    failed.extend(publish_with_retries(deps, entries).await);
    failed
}

/// The event of a new log entry; `None` for a guard item.
pub(super) fn entry_of(image: &serde_dynamo::Item) -> Result<Option<Event>, EntryError> {
    let pk = string_attribute(image, "pk").ok_or(EntryError::NoKey)?;
    if pk.starts_with(GUARD_PREFIX) {
        return Ok(None);
    }
    let body = string_attribute(image, "body").ok_or(EntryError::NoBody)?;
    serde_json::from_str(body)
        .map(Some)
        .map_err(EntryError::Corrupt)
}

/// Publish `entries`, trying refused ones again up to the configured attempts;
/// returns the sequence numbers of the entries never accepted.
async fn publish_with_retries(deps: &EventsDeps, entries: Vec<Entry>) -> Vec<Option<String>> {
    let settings = &deps.settings;
    let metrics = &deps.ports.metrics;
    let attempts = settings.publish_attempts.max(1);
    let mut pending: Vec<&Entry> = entries.iter().collect();
    let mut last_errors: Vec<PublishError> = Vec::new();
    for attempt in 1..=attempts {
        if pending.is_empty() {
            break;
        }
        if attempt > 1 {
            tokio::time::sleep(settings.backoff_before(attempt)).await;
        }
        let events: Vec<Event> = pending.iter().map(|e| e.event.clone()).collect();
        let mut results = deps.publisher.publish(&events).await.into_iter();
        let mut published = Vec::new();
        let mut refused = Vec::new();
        last_errors.clear();
        for entry in pending {
            match results.next() {
                Some(Ok(())) => published.push(entry),
                Some(Err(e)) => {
                    refused.push(entry);
                    last_errors.push(e);
                }
                None => {
                    refused.push(entry);
                    last_errors.push(PublishError::Backend {
                        operation: "publish",
                        source: "the publisher returned fewer results than events".into(),
                    });
                }
            }
        }
        for (tenant, n) in per_tenant(published.iter().map(|e| &e.event)) {
            metrics.count_n("EventsPublished", n, &[("Tenant", tenant)]);
        }
        if !refused.is_empty() && attempt < attempts {
            for (tenant, n) in per_tenant(refused.iter().map(|e| &e.event)) {
                metrics.count_n("EventsPublishRetried", n, &[("Tenant", tenant)]);
            }
            warn!(
                refused = refused.len(),
                attempt,
                first_error = %ErrorChain(&last_errors[0]),
                "the bus refused events; trying them again"
            );
        }
        pending = refused;
    }
    for (entry, problem) in pending.iter().zip(&last_errors) {
        error!(
            tenant = %entry.event.tenant.as_str(),
            event_id = %entry.event.id,
            event_type = %entry.event.event_type,
            attempts,
            error = %ErrorChain(problem),
            "event not published; its record comes back"
        );
    }
    for (tenant, n) in per_tenant(pending.iter().map(|e| &e.event)) {
        metrics.count_n("EventsPublishFailed", n, &[("Tenant", tenant)]);
    }
    pending
        .into_iter()
        .map(|e| e.sequence_number.clone())
        .collect()
}

/// How many of `events` each tenant has.
fn per_tenant<'a>(events: impl Iterator<Item = &'a Event>) -> BTreeMap<&'a str, u64> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event.tenant.as_str()).or_insert(0) += 1;
    }
    counts
}
