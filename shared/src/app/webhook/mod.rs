//! The webhook function (DESIGN §6): Meta's `GET`/`POST /webhook` through API Gateway,
//! and the replay of bodies parked on the inbox queue (SQS).
//!
//! One Lambda receives both event shapes, so [`WebhookInvocation`] tells them apart
//! (an SQS event has `Records`) and [`handle`] dispatches. Tests, the binary and
//! `wa dev` call [`handle`], [`handle_http`] or [`handle_inbox`] directly.
//!
//! - `http.rs`: the handshake, body limits and the signature check, then apply or park;
//! - `apply/`: what each event of a verified body does to the store and directory;
//! - `inbox.rs`: parking a body that could not be stored, and replaying it.

mod apply;
mod http;
mod inbox;

pub use apply::{ApplyError, ApplyReport, apply_batch, apply_batch_until};
pub use http::handle_http;
pub use inbox::{
    InboxError, MAX_PARKED_MESSAGE_BYTES, ParkedBody, handle_inbox, park, parked_parts,
};

use super::http::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use crate::app::WebhookDeps;
use crate::ports::QueueRef;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

/// Bodies over this are refused (413) before the HMAC: Meta documents webhook payloads
/// of up to 3 MB, so 3 MiB lets every one of them in (a refused body would be retried
/// by Meta for days, then dropped).
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How long a `POST /webhook` may spend applying a body before it parks the rest: the
/// function's timeout is 10 s, and parking (one SQS send) must fit in what is left.
pub const DEFAULT_APPLY_BUDGET: std::time::Duration = std::time::Duration::from_secs(6);

/// The webhook function's settings (read by its `Config` at cold start).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Meta app secrets that may sign a body: the current one, and the previous one
    /// while a rotation is under way. Empty rejects every POST (fails closed).
    pub app_secrets: Vec<SecretString>,
    /// The verify token of the subscription handshake. Empty refuses every handshake.
    pub verify_token: SecretString,
    /// Where bodies that could not be stored are parked (`WA_WEBHOOK_INBOX_URL`);
    /// without one a store failure is answered 500 and Meta retries.
    pub inbox: Option<QueueRef>,
    /// Largest body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time a `POST /webhook` may spend applying a body's events; a body not done by
    /// then is parked whole on the inbox (its replay skips what was applied, as
    /// duplicates) and Meta gets its 200 in time. `None`: no limit.
    pub apply_budget: Option<std::time::Duration>,
}

impl Default for WebhookSettings {
    /// No secrets, no inbox, a 3 MiB limit: refuses everything until configured.
    fn default() -> Self {
        Self {
            app_secrets: Vec::new(),
            verify_token: SecretString::from(String::new()),
            inbox: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            apply_budget: Some(DEFAULT_APPLY_BUDGET),
        }
    }
}

/// What the webhook Lambda is invoked with.
#[derive(Debug, Clone)]
pub enum WebhookInvocation {
    /// `GET`/`POST /webhook` from API Gateway (HTTP API, payload v2).
    Http(Box<ApiGatewayV2httpRequest>),
    /// A batch of parked bodies from the inbox queue.
    Inbox(SqsEvent),
}

impl<'de> Deserialize<'de> for WebhookInvocation {
    /// An object with `Records` is an SQS event; anything else must be an HTTP request.
    /// Decided on the key rather than by trying both shapes: API Gateway's request type
    /// defaults nearly every field, so it would also accept an SQS event.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.get("Records").is_some() {
            serde_json::from_value(value)
                .map(WebhookInvocation::Inbox)
                .map_err(serde::de::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(|r| WebhookInvocation::Http(Box::new(r)))
                .map_err(serde::de::Error::custom)
        }
    }
}

/// What the webhook Lambda answers, matching the invocation's shape.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum WebhookReply {
    /// The HTTP response.
    Http(Box<ApiGatewayV2httpResponse>),
    /// The inbox records to retry (`ReportBatchItemFailures`).
    Inbox(SqsBatchResponse),
}

/// Handle one invocation of the webhook function. Never fails: every outcome is an
/// HTTP status or a batch item failure.
pub async fn handle(deps: &WebhookDeps, event: WebhookInvocation) -> WebhookReply {
    match event {
        WebhookInvocation::Http(req) => WebhookReply::Http(Box::new(handle_http(deps, &req).await)),
        WebhookInvocation::Inbox(batch) => WebhookReply::Inbox(handle_inbox(deps, batch).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqs_event_and_an_http_request_are_told_apart() {
        let sqs: WebhookInvocation = serde_json::from_str(
            r#"{"Records":[{"messageId":"m1","receiptHandle":"r","body":"{}"}]}"#,
        )
        .unwrap();
        assert!(matches!(sqs, WebhookInvocation::Inbox(e) if e.records.len() == 1));
        let http: WebhookInvocation = serde_json::from_str(
            r#"{"version":"2.0","routeKey":"GET /webhook","rawPath":"/webhook",
                "requestContext":{"http":{"method":"GET","path":"/webhook"}},"isBase64Encoded":false}"#,
        )
        .unwrap();
        assert!(
            matches!(http, WebhookInvocation::Http(r) if r.raw_path.as_deref() == Some("/webhook"))
        );
    }

    #[test]
    fn default_settings_fail_closed() {
        let s = WebhookSettings::default();
        assert!(s.app_secrets.is_empty());
        assert!(s.inbox.is_none());
        assert_eq!(s.max_body_bytes, 3 * 1_048_576);
    }
}
