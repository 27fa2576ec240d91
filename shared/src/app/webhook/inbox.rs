//! The durable inbox: a signed body the store could not take is parked on an SQS queue
//! and replayed later by this same function (DESIGN §6).
//!
//! The parked message keeps the exact raw bytes (base64) and the signature header, so
//! the replay checks the signature again: nothing on the queue is trusted just for
//! being there.

use super::apply::{ApplyError, apply_batch_until};
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

/// Largest inbox message: SQS's message size limit (256 KiB).
pub const MAX_PARKED_MESSAGE_BYTES: usize = 256 * 1024;

/// Room for the parked message's other fields (version, signature, time).
const PARKED_OVERHEAD_BYTES: usize = 512;

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
    /// Events of the body already applied by an earlier replay that ran out of time
    /// (0: none). Outside the signature: it can only make a replay skip events, never
    /// invent one, and only whoever can write to the inbox queue can set it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub applied: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ParkedBody {
    /// Wrap a raw body and its signature header.
    pub fn new(raw: &[u8], signature: &str, received_at: Timestamp) -> Self {
        Self {
            v: FORMAT_VERSION,
            body: base64::engine::general_purpose::STANDARD.encode(raw),
            signature: signature.to_owned(),
            received_at,
            applied: 0,
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

/// The parked form of a verified body: itself when it fits one inbox message. A larger
/// one (Meta's bodies go up to 3 MB, base64 makes them a third larger) is split into
/// smaller envelopes: one per change, and a change's `statuses` or `messages` halved
/// until each fits. Each part is signed with `secret`, the app secret Meta signs with,
/// so the replay verifies it exactly like a body from Meta; its events are the body's.
pub fn parked_parts(
    raw: &[u8],
    signature: &str,
    secret: &[u8],
    received_at: Timestamp,
) -> Vec<ParkedBody> {
    if fits(raw.len()) {
        return vec![ParkedBody::new(raw, signature, received_at)];
    }
    let Ok(envelope) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return vec![ParkedBody::new(raw, signature, received_at)];
    };
    let parts = split_envelope(&envelope);
    if parts.len() <= 1 {
        return vec![ParkedBody::new(raw, signature, received_at)];
    }
    parts
        .iter()
        .map(|part| {
            let bytes = part.to_string().into_bytes();
            let signed = crate::domain::webhook::sign(secret, &bytes);
            ParkedBody::new(&bytes, &signed, received_at)
        })
        .collect()
}

/// Whether a body of `len` bytes fits one inbox message once base64-encoded.
fn fits(len: usize) -> bool {
    len.div_ceil(3) * 4 + PARKED_OVERHEAD_BYTES <= MAX_PARKED_MESSAGE_BYTES
}

/// Envelopes of one change each, halving a change's item lists until each part fits.
fn split_envelope(envelope: &serde_json::Value) -> Vec<serde_json::Value> {
    use serde_json::Value;
    let mut parts = Vec::new();
    let Some(entries) = envelope.get("entry").and_then(Value::as_array) else {
        return vec![envelope.clone()];
    };
    for entry in entries {
        let changes = entry
            .get("changes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for change in changes {
            let mut one = envelope.clone();
            let mut entry = entry.clone();
            entry["changes"] = Value::Array(vec![change]);
            one["entry"] = Value::Array(vec![entry]);
            halve_until_fits(one, &mut parts);
        }
    }
    parts
}

/// `one` (an envelope of one entry with one change) if it fits, else its largest item
/// list (`statuses`, `messages`) in two halves, each again until it fits.
fn halve_until_fits(one: serde_json::Value, parts: &mut Vec<serde_json::Value>) {
    use serde_json::Value;
    if fits(one.to_string().len()) {
        parts.push(one);
        return;
    }
    let value = &one["entry"][0]["changes"][0]["value"];
    let list = ["statuses", "messages"]
        .into_iter()
        .filter_map(|key| Some((key, value.get(key)?.as_array()?.len())))
        .filter(|(_, len)| *len > 1)
        .max_by_key(|(_, len)| *len);
    let Some((key, len)) = list else {
        // One huge item: parked as it is (the queue may refuse it; Meta then retries).
        parts.push(one);
        return;
    };
    let items = value[key].as_array().cloned().unwrap_or_default();
    let (first, second) = items.split_at(len / 2);
    for half in [first, second] {
        let mut part = one.clone();
        part["entry"][0]["changes"][0]["value"][key] = Value::Array(half.to_vec());
        halve_until_fits(part, parts);
    }
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
///
/// The batch shares the apply budget (`WebhookSettings::apply_budget`, counted from
/// now): a body that runs out of time is parked again with the count of events it
/// applied, and a record not reached in time is parked again as it is, so a long
/// replay makes progress across invocations instead of timing out and being retried
/// whole until it is dead-lettered.
#[tracing::instrument(skip_all, fields(records = batch.records.len()))]
pub async fn handle_inbox(deps: &WebhookDeps, batch: SqsEvent) -> SqsBatchResponse {
    let started = std::time::Instant::now();
    let deadline = deps.settings.apply_budget.map(|b| started + b);
    let mut response = SqsBatchResponse::default();
    for record in &batch.records {
        let id = record.message_id.clone().unwrap_or_default();
        match replay(deps, record, deadline).await {
            Ok(Replayed::Applied) => info!(message_id = %id, "parked webhook applied"),
            Ok(Replayed::Reparked { applied, total }) => {
                deps.ports.metrics.count("WebhookReplayOutOfTime", &[]);
                warn!(message_id = %id, applied, total, "parked webhook not fully applied within the budget; parked again to go on from there");
            }
            Err(e) => {
                error!(message_id = %id, error = %e, source = ?std::error::Error::source(&e), "parked webhook not applied; retrying later");
                response.add_failure(id);
            }
        }
    }
    response
}

/// What a replay did with one record.
#[derive(Debug, PartialEq, Eq)]
enum Replayed {
    /// Every event is applied.
    Applied,
    /// Time ran out: the body is parked again to resume after `applied` events.
    Reparked { applied: usize, total: usize },
}

async fn replay(
    deps: &WebhookDeps,
    record: &SqsMessage,
    deadline: Option<std::time::Instant>,
) -> Result<Replayed, InboxError> {
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
    match apply_batch_until(deps, &batch, parked.applied, deadline).await {
        Ok(_) => Ok(Replayed::Applied),
        Err(ApplyError::OutOfTime { applied, total }) => {
            let mut rest = parked;
            rest.applied = applied;
            park(deps, &rest).await?;
            Ok(Replayed::Reparked { applied, total })
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook::{parse_envelope, verify_signature_with_any};

    fn statuses_envelope(n: usize) -> Vec<u8> {
        let statuses: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({"id": format!("wamid.{i:06}"), "status": "delivered",
                    "timestamp": "1750030200", "recipient_id": "16505551234",
                    "biz_opaque_callback_data": "x".repeat(400)})
            })
            .collect();
        serde_json::json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "1", "phone_number_id": "2"},
                "statuses": statuses}}]}]})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_body_that_fits_is_parked_as_it_came() {
        let raw = statuses_envelope(3);
        let parts = parked_parts(&raw, "sha256=ab", b"secret", Timestamp::from_millis(1));
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].raw().unwrap(), raw);
        assert_eq!(parts[0].signature, "sha256=ab");
    }

    #[test]
    fn a_body_over_the_queue_limit_is_split_into_signed_parts_with_every_event() {
        let raw = statuses_envelope(2_000);
        assert!(raw.len() > 900_000, "{}", raw.len());
        let parts = parked_parts(&raw, "sha256=ab", b"secret", Timestamp::from_millis(1));
        assert!(parts.len() > 3, "{}", parts.len());
        let mut wamids = Vec::new();
        for part in &parts {
            let json = serde_json::to_string(part).unwrap();
            assert!(json.len() <= MAX_PARKED_MESSAGE_BYTES, "{}", json.len());
            let bytes = part.raw().unwrap();
            let secrets = [b"secret".as_slice()];
            verify_signature_with_any(secrets, &bytes, Some(&part.signature)).unwrap();
            let batch = parse_envelope(&bytes).unwrap();
            wamids.extend(batch.statuses().map(|s| s.wamid.as_str().to_owned()));
        }
        let expected: Vec<String> = (0..2_000).map(|i| format!("wamid.{i:06}")).collect();
        assert_eq!(wamids, expected, "every status, once, in order");
    }

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
