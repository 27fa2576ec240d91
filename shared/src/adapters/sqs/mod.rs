//! `SqsWorkQueue`: the [`WorkQueue`] port on Amazon SQS (standard queues).
//!
//! The endpoint comes from the SDK configuration (`AWS_ENDPOINT_URL`), so moto
//! needs no special code path. Every call is counted for the cost model.

mod batch;
mod dead_letters;
pub mod deliveries;
mod errors;

use super::aws::{CallCounter, SdkConfig};
use crate::ports::queue::{
    DEAD_LETTER_SUFFIX, check_delay, check_queue_name, check_receive, check_spec, check_visibility,
};
use crate::ports::{
    BatchSendOutcome, DeadLetter, QueueDepth, QueueError, QueueMessageId, QueueRef, QueueSpec,
    ReceiptHandle, ReceivedMessage, WorkQueue,
};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use errors::{aws_error, required, sqs_error};
use std::collections::{BTreeMap, HashMap};
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

    fn lock_dlqs(&self) -> std::sync::MutexGuard<'_, HashMap<QueueRef, QueueRef>> {
        self.dead_letter_queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
#[async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn ensure_queue(&self, name: &str, spec: &QueueSpec) -> Result<QueueRef, QueueError> {
        check_queue_name(name)?;
        check_spec(spec)?;
        let dlq_name = format!("{name}{DEAD_LETTER_SUFFIX}");
        // Written as "true" or "false", so an existing queue is brought to the spec too.
        let sse = (
            QueueAttributeName::SqsManagedSseEnabled,
            spec.encrypted.to_string(),
        );
        let dlq = self
            .create_or_update(
                &dlq_name,
                vec![
                    (
                        QueueAttributeName::MessageRetentionPeriod,
                        seconds(spec.dead_letter_retention).to_string(),
                    ),
                    sse.clone(),
                ],
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
                    sse,
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
        self.list_dead_letters(queue, max).await
    }

    async fn redrive_dead_letters(
        &self,
        queue: &QueueRef,
        max: usize,
    ) -> Result<usize, QueueError> {
        self.redrive(queue, max).await
    }
}

/// Whole seconds, rounded up (SQS takes seconds; a delay must never be shortened).
fn seconds(duration: Duration) -> i32 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
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
}
