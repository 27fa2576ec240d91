//! `SqsWorkQueue`: the [`WorkQueue`] port on Amazon SQS (standard queues).
//!
//! The endpoint comes from the SDK configuration (`AWS_ENDPOINT_URL`), so moto
//! needs no special code path. Every call is counted for the cost model.

use super::aws::{CallCounter, SdkConfig};
use crate::ports::queue::{
    DEAD_LETTER_SUFFIX, check_delay, check_queue_name, check_receive, check_spec, check_visibility,
};
use crate::ports::{
    BatchSendOutcome, DeadLetter, EntryFailure, QueueDepth, QueueError, QueueMessageId, QueueRef,
    QueueSpec, ReceiptHandle, ReceivedMessage, SentEntry, WorkQueue,
};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Most entries of one SQS batch call.
const SQS_BATCH_LIMIT: usize = 10;
/// How long listing and redriving hide the dead letters they page through.
const DEAD_LETTER_PAGING_VISIBILITY: Duration = Duration::from_secs(30);

/// The SQS [`WorkQueue`]. Queue refs are queue URLs.
#[derive(Debug)]
pub struct SqsWorkQueue {
    client: Client,
    calls: CallCounter,
    /// Source queue URL -> dead-letter queue URL, learned from the redrive policy.
    dead_letter_queues: Mutex<HashMap<QueueRef, QueueRef>>,
}

impl SqsWorkQueue {
    /// A queue adapter on a client built from `config` (build it once per process).
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(Client::new(config))
    }

    /// A queue adapter on an existing client.
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            calls: CallCounter::new(),
            dead_letter_queues: Mutex::new(HashMap::new()),
        }
    }

    /// SQS calls made so far, by operation name (`SendMessageBatch`, ...).
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.snapshot()
    }

    /// Create `name` with `attributes`, or, if it exists with other settings, set them.
    async fn create_or_update(
        &self,
        name: &str,
        attributes: Vec<(QueueAttributeName, String)>,
    ) -> Result<QueueRef, QueueError> {
        self.calls.record("CreateQueue");
        let mut create = self.client.create_queue().queue_name(name);
        for (key, value) in &attributes {
            create = create.attributes(key.clone(), value);
        }
        match create.send().await {
            Ok(out) => required(out.queue_url(), "CreateQueue", "QueueUrl").map(QueueRef::new),
            Err(err) if err.code() == Some("QueueAlreadyExists") => {
                self.calls.record("GetQueueUrl");
                let out = self
                    .client
                    .get_queue_url()
                    .queue_name(name)
                    .send()
                    .await
                    .map_err(|e| sqs_error("GetQueueUrl", name, e))?;
                let url = QueueRef::new(required(out.queue_url(), "GetQueueUrl", "QueueUrl")?);
                self.calls.record("SetQueueAttributes");
                let mut set = self.client.set_queue_attributes().queue_url(url.as_str());
                for (key, value) in attributes {
                    set = set.attributes(key, value);
                }
                set.send()
                    .await
                    .map_err(|e| sqs_error("SetQueueAttributes", name, e))?;
                Ok(url)
            }
            Err(err) => Err(sqs_error("CreateQueue", name, err)),
        }
    }

    async fn attributes(
        &self,
        queue: &QueueRef,
        names: &[QueueAttributeName],
    ) -> Result<HashMap<QueueAttributeName, String>, QueueError> {
        self.calls.record("GetQueueAttributes");
        let mut request = self.client.get_queue_attributes().queue_url(queue.as_str());
        for name in names {
            request = request.attribute_names(name.clone());
        }
        let out = request
            .send()
            .await
            .map_err(|e| sqs_error("GetQueueAttributes", queue.as_str(), e))?;
        Ok(out.attributes().cloned().unwrap_or_default())
    }

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

    fn lock_dlqs(&self) -> std::sync::MutexGuard<'_, HashMap<QueueRef, QueueRef>> {
        self.dead_letter_queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One batch call for up to 10 bodies, entry ids being their `indexes`.
    async fn send_chunk(
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
}

#[async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn ensure_queue(&self, name: &str, spec: &QueueSpec) -> Result<QueueRef, QueueError> {
        check_queue_name(name)?;
        check_spec(spec)?;
        let dlq_name = format!("{name}{DEAD_LETTER_SUFFIX}");
        let dlq = self
            .create_or_update(
                &dlq_name,
                vec![(
                    QueueAttributeName::MessageRetentionPeriod,
                    seconds(spec.dead_letter_retention).to_string(),
                )],
            )
            .await?;
        let dlq_arn = self
            .attributes(&dlq, &[QueueAttributeName::QueueArn])
            .await?
            .remove(&QueueAttributeName::QueueArn)
            .ok_or_else(|| aws_error("GetQueueAttributes", "answer has no QueueArn"))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": spec.max_receive_count.to_string(),
        });
        let queue = self
            .create_or_update(
                name,
                vec![
                    (
                        QueueAttributeName::VisibilityTimeout,
                        seconds(spec.visibility_timeout).to_string(),
                    ),
                    (
                        QueueAttributeName::MessageRetentionPeriod,
                        seconds(spec.message_retention).to_string(),
                    ),
                    (QueueAttributeName::RedrivePolicy, redrive.to_string()),
                ],
            )
            .await?;
        self.lock_dlqs().insert(queue.clone(), dlq);
        Ok(queue)
    }

    async fn send(
        &self,
        queue: &QueueRef,
        body: &str,
        delay: Duration,
    ) -> Result<QueueMessageId, QueueError> {
        check_delay(delay)?;
        self.calls.record("SendMessage");
        let out = self
            .client
            .send_message()
            .queue_url(queue.as_str())
            .message_body(body)
            .delay_seconds(seconds(delay))
            .send()
            .await
            .map_err(|e| sqs_error("SendMessage", queue.as_str(), e))?;
        required(out.message_id(), "SendMessage", "MessageId").map(QueueMessageId::new)
    }

    async fn send_many(
        &self,
        queue: &QueueRef,
        bodies: &[String],
    ) -> Result<BatchSendOutcome, QueueError> {
        let mut outcome = BatchSendOutcome::default();
        for (chunk_number, chunk) in bodies.chunks(SQS_BATCH_LIMIT).enumerate() {
            self.send_chunk(queue, chunk_number * SQS_BATCH_LIMIT, chunk, &mut outcome)
                .await?;
        }
        outcome.sent.sort_by_key(|entry| entry.index);
        outcome.failed.sort_by_key(|entry| entry.index);
        Ok(outcome)
    }

    async fn receive(
        &self,
        queue: &QueueRef,
        max: usize,
        visibility_timeout: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        check_receive(max, visibility_timeout, wait)?;
        self.calls.record("ReceiveMessage");
        let out = self
            .client
            .receive_message()
            .queue_url(queue.as_str())
            .max_number_of_messages(i32::try_from(max).unwrap_or(10))
            .visibility_timeout(seconds(visibility_timeout))
            .wait_time_seconds(seconds(wait))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", queue.as_str(), e))?;
        out.messages()
            .iter()
            .map(|message| {
                let receive_count = message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1);
                Ok(ReceivedMessage {
                    id: QueueMessageId::new(required(
                        message.message_id(),
                        "ReceiveMessage",
                        "MessageId",
                    )?),
                    receipt: ReceiptHandle::new(required(
                        message.receipt_handle(),
                        "ReceiveMessage",
                        "ReceiptHandle",
                    )?),
                    body: message.body().unwrap_or_default().to_owned(),
                    receive_count,
                })
            })
            .collect()
    }

    async fn change_visibility(
        &self,
        queue: &QueueRef,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        check_visibility(timeout)?;
        self.calls.record("ChangeMessageVisibility");
        self.client
            .change_message_visibility()
            .queue_url(queue.as_str())
            .receipt_handle(receipt.as_str())
            .visibility_timeout(seconds(timeout))
            .send()
            .await
            .map_err(|e| sqs_error("ChangeMessageVisibility", queue.as_str(), e))?;
        Ok(())
    }

    async fn delete(&self, queue: &QueueRef, receipt: &ReceiptHandle) -> Result<(), QueueError> {
        self.calls.record("DeleteMessage");
        self.client
            .delete_message()
            .queue_url(queue.as_str())
            .receipt_handle(receipt.as_str())
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessage", queue.as_str(), e))?;
        Ok(())
    }

    async fn approximate_depth(&self, queue: &QueueRef) -> Result<QueueDepth, QueueError> {
        let attributes = self
            .attributes(
                queue,
                &[
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                    QueueAttributeName::ApproximateNumberOfMessagesDelayed,
                ],
            )
            .await?;
        let count = |name: QueueAttributeName| {
            attributes
                .get(&name)
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    async fn dead_letters(
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

    async fn redrive_dead_letters(
        &self,
        queue: &QueueRef,
        max: usize,
    ) -> Result<usize, QueueError> {
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

/// Whole seconds, rounded up (SQS takes seconds; a delay must never be shortened).
fn seconds(duration: Duration) -> i32 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

fn entry_index(id: &str, indexes: &std::ops::Range<usize>) -> Option<usize> {
    id.parse().ok().filter(|index| indexes.contains(index))
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

fn required(
    value: Option<&str>,
    operation: &'static str,
    field: &str,
) -> Result<String, QueueError> {
    value
        .map(str::to_owned)
        .ok_or_else(|| aws_error(operation, format!("answer has no {field}")))
}

fn aws_error(
    operation: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> QueueError {
    QueueError::Aws {
        operation,
        source: source.into(),
    }
}

/// Map the errors callers act on; keep every other SDK error as the source.
fn sqs_error<E>(operation: &'static str, queue: &str, error: E) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error.code() {
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist") => {
            QueueError::QueueNotFound(queue.to_owned())
        }
        Some(
            "AWS.SimpleQueueService.MessageNotInflight"
            | "MessageNotInflight"
            | "ReceiptHandleIsInvalid",
        ) => QueueError::ReceiptNotInFlight,
        _ => aws_error(operation, error),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(seconds(Duration::ZERO), 0);
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_millis(1000)), 1);
        assert_eq!(seconds(Duration::from_millis(1001)), 2);
    }

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

    #[test]
    fn batch_entry_ids_map_back_only_to_their_chunk() {
        assert_eq!(entry_index("12", &(10..20)), Some(12));
        assert_eq!(entry_index("3", &(10..20)), None);
        assert_eq!(entry_index("x", &(10..20)), None);
    }
}
