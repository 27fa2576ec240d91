//! The messages table's stream: each record is one stored write of a message; its
//! events, derived from the item before and after the write, go to the event log.

use super::{EventRecord, EventsDeps, record_name};
use crate::app::errors::ErrorChain;
use crate::domain::Message;
use crate::domain::events::message_events;
use crate::ports::EventLogError;
use tracing::{debug, error, warn};

/// Why a message write's events could not be logged.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// An `INSERT` or `MODIFY` without the item after the write (the stream does not
    /// carry new images).
    #[error("the record has no NewImage (the stream must be NEW_AND_OLD_IMAGES)")]
    NoNewImage,
    /// An image that is not a message item.
    #[error("the record's {image} is not a message")]
    Image {
        /// `NewImage` or `OldImage`.
        image: &'static str,
        /// The decoding error.
        #[source]
        source: serde_dynamo::Error,
    },
    /// The event log refused or failed.
    #[error(transparent)]
    Append(#[from] EventLogError),
}

/// Log the events of `records`, in order. Stops at the first record that fails and
/// returns its sequence number: Lambda resumes the shard from the lowest reported
/// record, so the records after it come back too (appending is idempotent, and
/// stopping keeps the log in the order of the writes).
pub(super) async fn derive(deps: &EventsDeps, records: Vec<EventRecord>) -> Vec<Option<String>> {
    for record in records {
        if let Err(problem) = derive_one(deps, &record).await {
            error!(
                record = record_name(&record),
                error = %ErrorChain(&problem),
                "could not log the events of a message write; it and the records after it come back"
            );
            return vec![record.change.sequence_number];
        }
    }
    Vec::new()
}

async fn derive_one(deps: &EventsDeps, record: &EventRecord) -> Result<(), WriteError> {
    // A removed item (TTL expiry) is not a transition: nothing to tell.
    if record.event_name == "REMOVE" {
        return Ok(());
    }
    let change = &record.change;
    if change.new_image.is_empty() {
        return Err(WriteError::NoNewImage);
    }
    let new = decode(&change.new_image, "NewImage")?;
    let old = if change.old_image.is_empty() {
        if record.event_name == "MODIFY" {
            // Derived as a creation: a state the write entered is still told, with
            // the same id; a write that did not change the state may be told again.
            warn!(
                record = record_name(record),
                "MODIFY record without OldImage (the stream must be NEW_AND_OLD_IMAGES)"
            );
        }
        None
    } else {
        Some(decode(&change.old_image, "OldImage")?)
    };
    let events = message_events(old.as_ref(), &new);
    if events.is_empty() {
        return Ok(());
    }
    deps.ports.events.append(&events).await?;
    for event in &events {
        debug!(
            tenant = %new.tenant.as_str(),
            message_id = %new.id.as_str(),
            event_id = %event.id,
            event_type = %event.event_type,
            "event logged"
        );
    }
    Ok(())
}

/// A stream image as a message (the table-only attributes, `pk` and
/// `tenant_shard`, are ignored; `flags` is a string set).
fn decode(image: &serde_dynamo::Item, name: &'static str) -> Result<Message, WriteError> {
    serde_dynamo::from_item(image.clone()).map_err(|source| WriteError::Image {
        image: name,
        source,
    })
}
