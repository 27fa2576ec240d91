//! `GraphProvider`: the [`Provider`] port over Meta's Graph API (reference §1),
//! `POST {base}/{version}/{phone_number_id}/messages` with the tenant's token (or
//! `/marketing_messages`, the Marketing Messages API, when the request says so).
//!
//! - [`config`] — base URL, pinned API version, timeouts; checked once.
//! - [`transport`] — failures without a Graph answer, mapped to failure classes.
//!
//! Every HTTP answer, whatever its status, is read by the domain's
//! [`read_send_reply`]; this module only moves bytes and decides what a broken
//! exchange means.

pub mod config;
pub mod transport;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, GRAPH_API_VERSION, GRAPH_BASE_URL, GraphConfig,
    GraphConfigError,
};
pub use transport::MAX_REPLY_BYTES;

use crate::domain::PhoneNumberId;
use crate::domain::graph::{SendEndpoint, SendOutcome, read_send_reply};
use crate::ports::provider::{Provider, ProviderRequest};
use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::time::Duration;
use transport::BodyProblem;

/// How long an idle pooled connection is kept. Shorter than the idle limits of
/// Meta's edge, so a warm Lambda rarely writes a send into a connection the server
/// already closed, which would make that send look ambiguous.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The Graph API client. Cheap to clone (the connection pool is shared); build it
/// once per process, outside the handler, so warm invocations reuse connections.
#[derive(Clone)]
pub struct GraphProvider {
    client: reqwest::Client,
    /// `{base}/{version}/`, checked at construction.
    messages_prefix: String,
}

impl fmt::Debug for GraphProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphProvider")
            .field("messages_prefix", &self.messages_prefix)
            .finish_non_exhaustive()
    }
}

impl GraphProvider {
    /// Check `config` and build the HTTP client (rustls, no redirects followed: a
    /// 3xx is not a Graph answer and is classified as such).
    pub fn new(config: &GraphConfig) -> Result<Self, GraphConfigError> {
        let messages_prefix = config.messages_url_prefix()?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("wa-shared/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(GraphConfigError::Client)?;
        Ok(Self {
            client,
            messages_prefix,
        })
    }

    /// The send URL for one business phone number. Ids are digits only, so
    /// nothing needs escaping.
    pub fn messages_url(&self, phone_number_id: &PhoneNumberId) -> String {
        self.send_url(phone_number_id, SendEndpoint::Messages)
    }

    /// The URL of `endpoint` (`/messages` or `/marketing_messages`) for one business
    /// phone number.
    pub fn send_url(&self, phone_number_id: &PhoneNumberId, endpoint: SendEndpoint) -> String {
        format!(
            "{}{}/{}",
            self.messages_prefix,
            phone_number_id.as_str(),
            endpoint.path()
        )
    }
}

#[async_trait]
impl Provider for GraphProvider {
    async fn send(&self, request: ProviderRequest<'_>) -> SendOutcome {
        let authorization = match bearer(request.token) {
            Ok(value) => value,
            Err(reason) => return SendOutcome::Failed(transport::unusable_token(reason)),
        };
        let sent = self
            .client
            .post(self.send_url(request.phone_number_id, request.endpoint))
            .header(AUTHORIZATION, authorization)
            .json(request.body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return SendOutcome::Failed(transport::send_error(error)),
        };
        let status = response.status().as_u16();
        let outcome = match read_capped(&mut response).await {
            Ok(body) => read_send_reply(status, &body),
            Err(problem) => SendOutcome::Failed(transport::body_problem(status, problem)),
        };
        if let SendOutcome::Failed(c) = &outcome {
            tracing::debug!(
                phone_number_id = request.phone_number_id.as_str(),
                http_status = status,
                class = c.class.as_str(),
                code = c.code,
                "graph send failed"
            );
        }
        outcome
    }
}

/// `Bearer <token>`, marked sensitive so hyper never prints it.
fn bearer(token: &SecretString) -> Result<HeaderValue, &'static str> {
    let token = token.expose_secret();
    if token.trim().is_empty() {
        return Err("the tenant has no access token");
    }
    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| "the access token has characters not allowed in an HTTP header")?;
    value.set_sensitive(true);
    Ok(value)
}

/// The whole body, or why not. Stops at [`MAX_REPLY_BYTES`].
async fn read_capped(response: &mut reqwest::Response) -> Result<Vec<u8>, BodyProblem> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyProblem::Read)? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(BodyProblem::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_base_version_phone_number_id_messages() {
        let provider = GraphProvider::new(&GraphConfig::default()).unwrap();
        let id = PhoneNumberId::parse("106540352242922").unwrap();
        assert_eq!(
            provider.messages_url(&id),
            "https://graph.facebook.com/v25.0/106540352242922/messages"
        );
    }

    #[test]
    fn the_marketing_messages_api_url_differs_only_in_its_last_segment() {
        let provider = GraphProvider::new(&GraphConfig::default()).unwrap();
        let id = PhoneNumberId::parse("106540352242922").unwrap();
        assert_eq!(
            provider.send_url(&id, SendEndpoint::MarketingMessages),
            "https://graph.facebook.com/v25.0/106540352242922/marketing_messages"
        );
        assert_eq!(
            provider.send_url(&id, SendEndpoint::Messages),
            provider.messages_url(&id)
        );
    }

    #[test]
    fn unusable_tokens_are_refused_before_sending() {
        let cases = [
            ("", "the tenant has no access token"),
            ("  ", "the tenant has no access token"),
            (
                "abc\ndef",
                "the access token has characters not allowed in an HTTP header",
            ),
            (
                "tok\u{7f}en",
                "the access token has characters not allowed in an HTTP header",
            ),
        ];
        for (token, reason) in cases {
            assert_eq!(bearer(&SecretString::from(token)).unwrap_err(), reason);
        }
        let value = bearer(&SecretString::from("EAAGabc")).unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Bearer EAAGabc");
    }
}
