//! `EventBridgePublisher`: the [`EventPublisher`] port on an EventBridge bus
//! (`PutEvents`).
//!
//! Each event becomes one entry: `Source` [`SOURCE`], `DetailType` the event's type
//! (`message.delivered`), `Detail` the event's JSON (the same envelope as the pull
//! API and the schemas in `docs/events/v1`), `Time` the event's timestamp and
//! `EventBusName` the stage's bus. Rules match on `source` and `detail-type`, and on
//! `detail.tenant` to route one tenant's events.
//!
//! `PutEvents` takes at most [`MAX_ENTRIES`] entries and [`MAX_REQUEST_BYTES`] per
//! call, so a slice is sent in as many calls as those limits need. A call that fails
//! as a whole fails each of its events with [`PublishError::Backend`]; an entry
//! EventBridge refused (its `ErrorCode`, counted in `FailedEntryCount`) fails with
//! [`PublishError::Rejected`]. Retrying is the caller's: the SDK retries a failed
//! call, never a refused entry.

use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::events::Event;
use crate::ports::{EventPublisher, PublishError};
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::primitives::{DateTime, DateTimeFormat};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

/// The `source` of every event the pipeline puts on a bus.
pub const SOURCE: &str = "wa.pipeline";

/// Most entries one `PutEvents` call takes.
pub const MAX_ENTRIES: usize = 10;

/// Most bytes one `PutEvents` call takes (256 KiB, counted as EventBridge does).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// What EventBridge counts for an entry's `Time`.
const TIME_BYTES: usize = 14;

/// The EventBridge [`EventPublisher`].
#[derive(Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
    calls: CallCounter,
}

/// One event ready to put: its index in the caller's slice, entry and size.
struct Prepared {
    index: usize,
    entry: PutEventsRequestEntry,
    size: usize,
}

impl EventBridgePublisher {
    /// A publisher to the bus `bus` (name or ARN), with a client built from `config`
    /// (once per process).
    pub fn new(config: &SdkConfig, bus: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            bus: bus.into(),
            calls: CallCounter::new(),
        }
    }

    /// The bus events go to.
    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// AWS calls made so far, by operation.
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    fn prepare(&self, index: usize, event: &Event) -> Result<Prepared, PublishError> {
        let detail = serde_json::to_string(event).map_err(|e| PublishError::Backend {
            operation: "encode_event",
            source: e.into(),
        })?;
        let detail_type = event.event_type.as_str();
        let time = DateTime::from_str(&event.timestamp, DateTimeFormat::DateTimeWithOffset).ok();
        let size = SOURCE.len() + detail_type.len() + detail.len() + time.map_or(0, |_| TIME_BYTES);
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .set_time(time)
            .event_bus_name(&self.bus)
            .build();
        Ok(Prepared { index, entry, size })
    }

    /// Put one call's entries; one result per entry, in order.
    async fn put(&self, batch: &[Prepared]) -> Vec<Result<(), PublishError>> {
        self.calls.record("PutEvents");
        let sent = self
            .client
            .put_events()
            .set_entries(Some(batch.iter().map(|p| p.entry.clone()).collect()))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(err) => {
                let text = DisplayErrorContext(&err).to_string();
                return batch
                    .iter()
                    .map(|_| {
                        Err(PublishError::Backend {
                            operation: "PutEvents",
                            source: text.clone().into(),
                        })
                    })
                    .collect();
            }
        };
        let results = out.entries();
        (0..batch.len())
            .map(|i| match results.get(i) {
                Some(r) => match r.error_code() {
                    Some(code) => Err(PublishError::Rejected {
                        code: code.to_owned(),
                        message: r.error_message().map(str::to_owned),
                    }),
                    None if r.event_id().is_some() => Ok(()),
                    None => Err(PublishError::Rejected {
                        code: "NoEventId".into(),
                        message: Some(
                            "the entry's result has neither an event id nor an error".into(),
                        ),
                    }),
                },
                None => Err(PublishError::Backend {
                    operation: "PutEvents",
                    source: format!(
                        "PutEvents returned {} results for {} entries",
                        results.len(),
                        batch.len()
                    )
                    .into(),
                }),
            })
            .collect()
    }
}

/// Split `prepared` into calls within [`MAX_ENTRIES`] and [`MAX_REQUEST_BYTES`]. An
/// entry larger than the limit on its own goes alone (EventBridge refuses it, and
/// the refusal is reported for that event only).
fn calls_of(prepared: Vec<Prepared>) -> Vec<Vec<Prepared>> {
    let mut calls: Vec<Vec<Prepared>> = Vec::new();
    let mut current: Vec<Prepared> = Vec::new();
    let mut bytes = 0;
    for p in prepared {
        if !current.is_empty()
            && (current.len() == MAX_ENTRIES || bytes + p.size > MAX_REQUEST_BYTES)
        {
            calls.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += p.size;
        current.push(p);
    }
    if !current.is_empty() {
        calls.push(current);
    }
    calls
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[Event]) -> Vec<Result<(), PublishError>> {
        let mut results: Vec<Option<Result<(), PublishError>>> =
            events.iter().map(|_| None).collect();
        let mut prepared = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            match self.prepare(index, event) {
                Ok(p) => prepared.push(p),
                Err(e) => results[index] = Some(Err(e)),
            }
        }
        for call in calls_of(prepared) {
            let outcomes = self.put(&call).await;
            for (p, outcome) in call.iter().zip(outcomes) {
                results[p.index] = Some(outcome);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(PublishError::Backend {
                        operation: "PutEvents",
                        source: "the event was not sent".into(),
                    })
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(index: usize, size: usize) -> Prepared {
        Prepared {
            index,
            entry: PutEventsRequestEntry::builder().build(),
            size,
        }
    }

    fn shape(calls: &[Vec<Prepared>]) -> Vec<Vec<usize>> {
        calls
            .iter()
            .map(|c| c.iter().map(|p| p.index).collect())
            .collect()
    }

    #[test]
    fn calls_hold_at_most_ten_entries() {
        let calls = calls_of((0..23).map(|i| prepared(i, 100)).collect());
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 10, 3]
        );
        assert_eq!(shape(&calls)[2], vec![20, 21, 22]);
        assert!(calls_of(Vec::new()).is_empty());
    }

    #[test]
    fn calls_stay_under_the_request_size_and_an_oversized_entry_goes_alone() {
        let big = MAX_REQUEST_BYTES / 2;
        let sizes = [big, big - 10, 20, MAX_REQUEST_BYTES + 1, 5];
        let calls = calls_of(
            sizes
                .iter()
                .enumerate()
                .map(|(i, s)| prepared(i, *s))
                .collect(),
        );
        assert_eq!(shape(&calls), vec![vec![0, 1], vec![2], vec![3], vec![4]]);
    }

    #[tokio::test]
    async fn an_entry_carries_the_source_type_detail_time_and_bus() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let publisher = EventBridgePublisher::new(&sdk, "dev-wa-events");
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": "evt_msg_1_3", "type": "message.delivered",
            "timestamp": "2025-06-16T00:00:00.250Z", "tenant": "acme", "data": {"sequence": 3}
        }))
        .unwrap();
        let p = publisher.prepare(4, &event).unwrap();
        assert_eq!(p.index, 4);
        assert_eq!(p.entry.source(), Some("wa.pipeline"));
        assert_eq!(p.entry.detail_type(), Some("message.delivered"));
        assert_eq!(p.entry.event_bus_name(), Some("dev-wa-events"));
        let detail: Event = serde_json::from_str(p.entry.detail().unwrap()).unwrap();
        assert_eq!(detail, event);
        assert_eq!(
            p.entry.time().map(|t| t.to_millis().unwrap()),
            Some(1_750_032_000_250)
        );
        assert_eq!(
            p.size,
            SOURCE.len() + "message.delivered".len() + p.entry.detail().unwrap().len() + 14
        );
    }
}
