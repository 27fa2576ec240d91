//! One delivery attempt: a signed `POST` of one event to one endpoint, shared by
//! `wa dev`'s dispatcher and the AWS `delivery` function.
//!
//! Redirects are never followed (a 3xx fails the attempt), the whole exchange has one
//! timeout, and at most [`MAX_ANSWER_BYTES`] of the answer are read.

use crate::domain::endpoints::signing::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most bytes of an endpoint's answer read (the rest is dropped unread).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Characters of an answer kept in `last_error`.
const ERROR_EXCERPT: usize = 200;

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The HTTP client of every attempt: no redirects followed, `timeout` for the whole
/// exchange, no cookies, our user agent.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    builder(timeout).build()
}

/// [`http_client`] whose names resolve through `resolver` (the AWS delivery's
/// public-addresses-only resolver, [`super::urls::PublicOnlyResolver`]).
pub fn http_client_with_resolver(
    timeout: Duration,
    resolver: Arc<dyn reqwest::dns::Resolve>,
) -> Result<reqwest::Client, reqwest::Error> {
    builder(timeout).dns_resolver(resolver).build()
}

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("wa-events/", env!("CARGO_PKG_VERSION")))
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer.
    Delivered(u16),
    /// Any other answer (a redirect included: never followed).
    Refused {
        /// The status.
        status: u16,
        /// The start of the answer, for `last_error`.
        excerpt: String,
    },
    /// No answer: timeout, connection refused or reset, ...
    NoAnswer(String),
}

/// Send one event: sign it for now with `secret`, POST `body` to `url` with the
/// Standard Webhooks headers, read at most [`MAX_ANSWER_BYTES`] of the answer.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &WebhookSecret,
    event_id: &str,
    body: &str,
) -> Attempt {
    let timestamp = now_ms() / 1000;
    let signature = secret.sign(event_id, timestamp, body.as_bytes());
    let sent = client
        .post(url)
        .header(HEADER_ID, event_id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned())
        .send()
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => return Attempt::NoAnswer(describe(&e)),
    };
    let status = response.status();
    let mut answer = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER_BYTES - answer.len();
                answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if answer.len() >= MAX_ANSWER_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            // A 2xx whose body broke off still counts: the endpoint took the event.
            Err(e) if !status.is_success() => return Attempt::NoAnswer(describe(&e)),
            Err(_) => break,
        }
    }
    if status.is_success() {
        Attempt::Delivered(status.as_u16())
    } else {
        let text = String::from_utf8_lossy(&answer);
        let excerpt: String = text
            .chars()
            .take(ERROR_EXCERPT)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Attempt::Refused {
            status: status.as_u16(),
            excerpt,
        }
    }
}

/// A reqwest error without its URL, by kind.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "answer broke off"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

impl Attempt {
    /// Whether the endpoint took the event.
    pub fn delivered(&self) -> bool {
        matches!(self, Attempt::Delivered(_))
    }

    /// How a failed attempt is recorded in `last_error` (`None` when delivered).
    pub fn error_text(&self) -> Option<String> {
        match self {
            Attempt::Delivered(_) => None,
            Attempt::Refused { status, excerpt } if excerpt.is_empty() => {
                Some(format!("answered {status}"))
            }
            Attempt::Refused { status, excerpt } => Some(format!("answered {status}: {excerpt}")),
            Attempt::NoAnswer(why) => Some(why.clone()),
        }
    }
}
