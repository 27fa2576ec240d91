//! `SendMessageBatch` in chunks of 10, with per-entry outcomes.

use super::SqsWorkQueue;
use super::errors::{aws_error, error_chain};
use crate::ports::{
    BatchSendOutcome, EntryFailure, QueueError, QueueMessageId, QueueRef, SentEntry,
};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use std::collections::HashSet;

impl SqsWorkQueue {
    /// One batch call for up to 10 bodies, entry ids being their `indexes`.
    pub(super) async fn send_chunk(
        &self,
        queue: &QueueRef,
        first_index: usize,
        chunk: &[String],
        outcome: &mut BatchSendOutcome,
    ) -> Result<(), QueueError> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(offset, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id((first_index + offset).to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| aws_error("SendMessageBatch", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.calls.record("SendMessageBatch");
        let result = self
            .client
            .send_message_batch()
            .queue_url(queue.as_str())
            .set_entries(Some(entries))
            .send()
            .await;
        let indexes = first_index..first_index + chunk.len();
        let out = match result {
            Ok(out) => out,
            Err(err) => {
                // The whole call failed after the SDK's retries: report every entry so
                // the caller (intake, reconciler) can count them; the store stays the truth.
                let code = err.code().unwrap_or("RequestFailed").to_owned();
                let message = error_chain(&err);
                tracing::warn!(queue = %queue, %code, "SendMessageBatch failed");
                outcome.failed.extend(indexes.map(|index| EntryFailure {
                    index,
                    code: code.clone(),
                    message: message.clone(),
                    sender_fault: false,
                }));
                return Ok(());
            }
        };
        let mut answered = HashSet::new();
        for entry in out.successful() {
            if let Some(index) = entry_index(entry.id(), &indexes) {
                answered.insert(index);
                outcome.sent.push(SentEntry {
                    index,
                    id: QueueMessageId::new(entry.message_id()),
                });
            }
        }
        for entry in out.failed() {
            if let Some(index) = entry_index(entry.id(), &indexes) {
                answered.insert(index);
                outcome.failed.push(EntryFailure {
                    index,
                    code: entry.code().to_owned(),
                    message: entry.message().unwrap_or_default().to_owned(),
                    sender_fault: entry.sender_fault(),
                });
            }
        }
        outcome
            .failed
            .extend(
                indexes
                    .filter(|i| !answered.contains(i))
                    .map(|index| EntryFailure {
                        index,
                        code: "MissingFromResponse".into(),
                        message: "SQS answered neither success nor failure for this entry".into(),
                        sender_fault: false,
                    }),
            );
        Ok(())
    }
}

fn entry_index(id: &str, indexes: &std::ops::Range<usize>) -> Option<usize> {
    id.parse().ok().filter(|index| indexes.contains(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_entry_ids_map_back_only_to_their_chunk() {
        assert_eq!(entry_index("12", &(10..20)), Some(12));
        assert_eq!(entry_index("3", &(10..20)), None);
        assert_eq!(entry_index("x", &(10..20)), None);
    }
}
