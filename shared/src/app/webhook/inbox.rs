//! The durable inbox: a signed body the store could not take is parked on an SQS queue
//! and replayed later by this same function (DESIGN §6).
//!
//! The parked message keeps the exact raw bytes (base64) and the signature header, so
//! the replay checks the signature again: nothing on the queue is trusted just for
//! being there.

use super::apply::apply_batch;
use crate::app::WebhookDeps;
use crate::domain::Timestamp;
use crate::domain::webhook::{parse_envelope, verify_signature_with_any};
use crate::ports::QueueError;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use base64::Engine;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tracing::{error, info, warn};

/// Version of the parked message format.
const FORMAT_VERSION: u32 = 1;

/// One parked webhook body, as it travels on the inbox queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedBody {
    /// Format version (1).
    pub v: u32,
    /// The raw body, standard base64 (the HMAC covers these exact bytes).
    pub body: String,
    /// The `X-Hub-Signature-256` header as received.
    pub signature: String,
    /// When the webhook function received it.
    pub received_at: Timestamp,
}

impl ParkedBody {
    /// Wrap a raw body and its signature header.
    pub fn new(raw: &[u8], signature: &str, received_at: Timestamp) -> Self {
        Self {
            v: FORMAT_VERSION,
            body: base64::engine::general_purpose::STANDARD.encode(raw),
            signature: signature.to_owned(),
            received_at,
        }
    }

    /// The raw body bytes.
    pub fn raw(&self) -> Result<Vec<u8>, InboxError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.body.as_bytes())
            .map_err(|_| InboxError::Malformed("body is not base64"))
    }
}

/// Why parking or replaying a body failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// No inbox queue is configured.
    #[error("no webhook inbox queue is configured")]
    NotConfigured,
    /// The queue refused the message.
    #[error("could not send to the webhook inbox")]
    Queue(#[from] QueueError),
    /// A record on the inbox is not a parked body.
    #[error("inbox record is malformed: {0}")]
    Malformed(&'static str),
    /// The parked body's signature does not verify with the configured secrets.
    #[error("parked body's signature is rejected: {0}")]
    Signature(#[from] crate::domain::webhook::SignatureError),
    /// The parked body is not a webhook envelope.
    #[error("parked body is not a webhook envelope")]
    Parse(#[from] crate::domain::webhook::WebhookParseError),
    /// Applying it failed again (the record is retried).
    #[error("parked body could not be applied")]
    Apply(#[from] super::ApplyError),
}

/// Put a body on the inbox queue.
pub async fn park(deps: &WebhookDeps, parked: &ParkedBody) -> Result<(), InboxError> {
    let inbox = deps
        .settings
        .inbox
        .as_ref()
        .ok_or(InboxError::NotConfigured)?;
    let body =
        serde_json::to_string(parked).map_err(|_| InboxError::Malformed("unserializable"))?;
    deps.ports.queue.send(inbox, &body, Duration::ZERO).await?;
    info!("webhook body parked on the inbox");
    Ok(())
}

/// Replay a batch of parked bodies; the records that failed are returned for retry
/// (after `maxReceiveCount` receives they move to the inbox's dead-letter queue).
#[tracing::instrument(skip_all, fields(records = batch.records.len()))]
pub async fn handle_inbox(deps: &WebhookDeps, batch: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &batch.records {
        let id = record.message_id.clone().unwrap_or_default();
        match replay(deps, record).await {
            Ok(()) => info!(message_id = %id, "parked webhook applied"),
            Err(e) => {
                error!(message_id = %id, error = %e, source = ?std::error::Error::source(&e), "parked webhook not applied; retrying later");
                response.add_failure(id);
            }
        }
    }
    response
}

async fn replay(deps: &WebhookDeps, record: &SqsMessage) -> Result<(), InboxError> {
    let body = record
        .body
        .as_deref()
        .ok_or(InboxError::Malformed("no body"))?;
    let parked: ParkedBody =
        serde_json::from_str(body).map_err(|_| InboxError::Malformed("not a parked body"))?;
    if parked.v != FORMAT_VERSION {
        return Err(InboxError::Malformed("unknown format version"));
    }
    let raw = parked.raw()?;
    let secrets = deps
        .settings
        .app_secrets
        .iter()
        .map(|s| s.expose_secret().as_bytes());
    if let Err(e) = verify_signature_with_any(secrets, &raw, Some(&parked.signature)) {
        // Left to fail into the dead-letter queue: a secret fixed later can redrive it.
        warn!(reason = e.as_str(), "parked webhook signature rejected");
        deps.ports.metrics.count("SignatureRejected", &[]);
        return Err(e.into());
    }
    let batch = parse_envelope(&raw)?;
    apply_batch(deps, &batch).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_body_keeps_the_exact_bytes() {
        let raw = b"{\"object\":\"x\"}\n\xff";
        let parked = ParkedBody::new(raw, "sha256=00", Timestamp::from_millis(5));
        let json = serde_json::to_string(&parked).unwrap();
        let back: ParkedBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back.raw().unwrap(), raw);
        assert_eq!(back.signature, "sha256=00");
        assert_eq!(back.v, 1);
    }
}
