//! `SqsDeliveryQueue`: the [`DeliveryQueue`] port on the `deliveries` SQS queue.
//! Each job is one message (its JSON), hidden for its delay (`DelaySeconds`, rounded
//! up to whole seconds, at most 900); up to 10 per `SendMessageBatch`.

use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::endpoints::DeliveryJob;
use crate::ports::{DeliveryQueue, DeliveryQueueError, MAX_JOB_DELAY};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use std::time::Duration;

/// The SQS [`DeliveryQueue`].
#[derive(Debug)]
pub struct SqsDeliveryQueue {
    client: Client,
    url: String,
    calls: CallCounter,
}

fn backend(
    operation: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> DeliveryQueueError {
    DeliveryQueueError::Backend {
        operation,
        source: e.into(),
    }
}

/// `DelaySeconds` for `delay`: whole seconds rounded up, at most 900.
pub fn delay_seconds(delay: Duration) -> i32 {
    let capped = delay.min(MAX_JOB_DELAY);
    let secs = capped.as_secs() + u64::from(capped.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(900)
}

impl SqsDeliveryQueue {
    /// Jobs to the queue at `url`, with a client built from `config`.
    pub fn new(config: &SdkConfig, url: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            url: url.into(),
            calls: CallCounter::new(),
        }
    }

    /// AWS calls made so far, by operation.
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }
}

#[async_trait]
impl DeliveryQueue for SqsDeliveryQueue {
    async fn schedule(&self, jobs: &[(DeliveryJob, Duration)]) -> Result<(), DeliveryQueueError> {
        for chunk in jobs.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, (job, delay)) in chunk.iter().enumerate() {
                let body = serde_json::to_string(job).map_err(|e| backend("encode_job", e))?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(delay_seconds(*delay))
                        .build()
                        .map_err(|e| backend("SendMessageBatch", e))?,
                );
            }
            self.calls.record("SendMessageBatch");
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| backend("SendMessageBatch", e))?;
            if let Some(failed) = out.failed().first() {
                return Err(backend(
                    "SendMessageBatch",
                    format!(
                        "{} of {} jobs refused, first: {} {}",
                        out.failed().len(),
                        chunk.len(),
                        failed.code(),
                        failed.message().unwrap_or("")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_and_cap() {
        assert_eq!(delay_seconds(Duration::ZERO), 0);
        assert_eq!(delay_seconds(Duration::from_millis(1)), 1);
        assert_eq!(delay_seconds(Duration::from_millis(4_500)), 5);
        assert_eq!(delay_seconds(Duration::from_secs(3600)), 900);
    }
}
