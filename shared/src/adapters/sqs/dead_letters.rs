//! Dead letters on SQS: find the DLQ from the redrive policy, list by
//! receive-then-release, redrive by receive + send + delete (moto lacks
//! `StartMessageMoveTask`, and this path works on both).

use super::errors::{aws_error, required, sqs_error};
use super::{DEAD_LETTER_PAGING_VISIBILITY, SQS_BATCH_LIMIT, SqsWorkQueue};
use crate::ports::{DeadLetter, QueueError, QueueRef, ReceivedMessage, WorkQueue};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, QueueAttributeName,
};
use std::collections::HashSet;
use std::time::Duration;

impl SqsWorkQueue {
    /// The dead-letter queue of `queue`, from its redrive policy (cached).
    async fn dead_letter_queue(&self, queue: &QueueRef) -> Result<QueueRef, QueueError> {
        if let Some(dlq) = self.lock_dlqs().get(queue) {
            return Ok(dlq.clone());
        }
        let attributes = self
            .attributes(queue, &[QueueAttributeName::RedrivePolicy])
            .await?;
        let policy = attributes
            .get(&QueueAttributeName::RedrivePolicy)
            .ok_or_else(|| {
                QueueError::InvalidArgument(format!("queue {queue} has no dead-letter queue"))
            })?;
        let (account, name) = dead_letter_target(policy)?;
        self.calls.record("GetQueueUrl");
        let out = self
            .client
            .get_queue_url()
            .queue_name(&name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|e| sqs_error("GetQueueUrl", &name, e))?;
        let dlq = QueueRef::new(required(out.queue_url(), "GetQueueUrl", "QueueUrl")?);
        self.lock_dlqs().insert(queue.clone(), dlq.clone());
        Ok(dlq)
    }

    /// Receive from the dead-letter queue, hiding what it returns for a while.
    async fn receive_dead_letters(
        &self,
        dlq: &QueueRef,
        max: usize,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.receive(
            dlq,
            max.min(SQS_BATCH_LIMIT),
            DEAD_LETTER_PAGING_VISIBILITY,
            Duration::ZERO,
        )
        .await
    }

    /// Up to `max` dead letters of `queue`, left in the DLQ.
    pub(super) async fn list_dead_letters(
        &self,
        queue: &QueueRef,
        max: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let dlq = self.dead_letter_queue(queue).await?;
        // SQS has no peek: page through by receiving (which hides each page so the
        // next receive returns new messages), then make everything visible again.
        let mut seen = HashSet::new();
        let mut letters = Vec::new();
        let mut receipts = Vec::new();
        while letters.len() < max {
            let page = self.receive_dead_letters(&dlq, max - letters.len()).await?;
            if page.is_empty() {
                break;
            }
            for message in page {
                receipts.push(message.receipt);
                if seen.insert(message.id.clone()) {
                    letters.push(DeadLetter {
                        id: message.id,
                        body: message.body,
                    });
                }
            }
        }
        for chunk in receipts.chunks(SQS_BATCH_LIMIT) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt.as_str())
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| aws_error("ChangeMessageVisibilityBatch", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.calls.record("ChangeMessageVisibilityBatch");
            self.client
                .change_message_visibility_batch()
                .queue_url(dlq.as_str())
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sqs_error("ChangeMessageVisibilityBatch", dlq.as_str(), e))?;
        }
        Ok(letters)
    }

    /// Move up to `max` dead letters back to `queue`; how many moved.
    pub(super) async fn redrive(&self, queue: &QueueRef, max: usize) -> Result<usize, QueueError> {
        let dlq = self.dead_letter_queue(queue).await?;
        let mut moved = 0;
        while moved < max {
            let page = self.receive_dead_letters(&dlq, max - moved).await?;
            if page.is_empty() {
                break;
            }
            let bodies: Vec<String> = page.iter().map(|m| m.body.clone()).collect();
            let outcome = self.send_many(queue, &bodies).await?;
            // Delete only what was sent again; a dead letter whose send failed
            // reappears in the DLQ when its paging visibility ends.
            let entries = outcome
                .sent
                .iter()
                .filter_map(|sent| page.get(sent.index))
                .enumerate()
                .map(|(i, message)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(message.receipt.as_str())
                        .build()
                        .map_err(|e| aws_error("DeleteMessageBatch", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if !entries.is_empty() {
                self.calls.record("DeleteMessageBatch");
                self.client
                    .delete_message_batch()
                    .queue_url(dlq.as_str())
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| sqs_error("DeleteMessageBatch", dlq.as_str(), e))?;
            }
            moved += outcome.sent.len();
            if !outcome.is_complete() {
                break;
            }
        }
        Ok(moved)
    }
}

/// `(account id, queue name)` of the `deadLetterTargetArn` in a redrive policy.
fn dead_letter_target(policy: &str) -> Result<(String, String), QueueError> {
    let parsed: serde_json::Value =
        serde_json::from_str(policy).map_err(|e| aws_error("GetQueueAttributes", e))?;
    let arn = parsed
        .get("deadLetterTargetArn")
        .and_then(|arn| arn.as_str())
        .unwrap_or_default();
    // arn:aws:sqs:REGION:ACCOUNT:NAME
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "sqs", _, account, name] if !name.is_empty() => {
            Ok(((*account).to_owned(), (*name).to_owned()))
        }
        _ => Err(aws_error(
            "GetQueueAttributes",
            format!("unexpected deadLetterTargetArn {arn:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_target_is_read_from_the_redrive_policy() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:acme-dlq","maxReceiveCount":"5"}"#;
        assert_eq!(
            dead_letter_target(policy).unwrap(),
            ("123456789012".to_owned(), "acme-dlq".to_owned())
        );
        assert!(dead_letter_target(r#"{"maxReceiveCount":"5"}"#).is_err());
        assert!(dead_letter_target("not json").is_err());
    }
}
