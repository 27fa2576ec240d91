//! Meta's error envelope and the errors of reading a Graph answer.
//!
//! `{"error":{"message","type","code","error_subcode","error_user_title",
//! "error_user_msg","error_data":{"messaging_product","details"},"fbtrace_id"}}`
//! (reference §3). Fields are picked out of a `serde_json::Value` one by one rather
//! than derived, so one field of an unexpected type (a code sent as a string, a
//! `details` object) loses that field, not the whole error and its code.

use super::excerpt;
use crate::domain::ids::IdError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Why a Graph answer could not be read as what we expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyParseError {
    /// The body was empty (or only whitespace), e.g. a bare 502 from a load balancer.
    #[error("empty response body")]
    EmptyBody,
    /// The body was not JSON (an HTML error page, a proxy's text); holds a short excerpt.
    #[error("response body is not JSON: {excerpt}")]
    NotJson {
        /// The first characters of the body, single-line.
        excerpt: String,
    },
    /// The JSON had no `error` object.
    #[error("response has no error object")]
    NoErrorObject,
    /// The JSON had no `messages[0].id`, so there is no wamid to track.
    #[error("response has no messages[0].id")]
    MissingWamid,
    /// `messages[0].id` was present but is not a usable wamid.
    #[error("messages[0].id is not a valid wamid: {0}")]
    InvalidWamid(#[source] IdError),
}

/// `error.error_data` of a Graph error: where Meta puts the useful detail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorData {
    /// Always `whatsapp` for WhatsApp endpoints.
    pub messaging_product: Option<String>,
    /// Human-readable detail, e.g. which parameter was wrong.
    pub details: Option<String>,
}

/// The `error` object of a Graph error answer. Only [`GraphError::code`] should
/// drive decisions; the texts are for people (reference §3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphError {
    /// Usually `(#code) Title`.
    pub message: Option<String>,
    /// Graph's exception type, e.g. `OAuthException`.
    pub error_type: Option<String>,
    /// The error code the classification table is keyed by.
    pub code: Option<i64>,
    /// Dropped by Meta since v16; kept when present.
    pub error_subcode: Option<i64>,
    /// A title meant for end users, when Meta gives one.
    pub error_user_title: Option<String>,
    /// A message meant for end users, when Meta gives one.
    pub error_user_msg: Option<String>,
    /// `messaging_product` and `details`.
    pub error_data: Option<GraphErrorData>,
    /// Meta's trace id: quote it in support tickets.
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    /// Read the error envelope from a response body. Empty, non-JSON and
    /// error-less bodies are typed errors, never panics.
    pub fn parse(body: &[u8]) -> Result<Self, ReplyParseError> {
        let value = json_body(body)?;
        Self::from_value(&value)
    }

    /// Read the error envelope from an already parsed body.
    pub fn from_value(body: &Value) -> Result<Self, ReplyParseError> {
        let error = body
            .get("error")
            .filter(|e| e.is_object())
            .ok_or(ReplyParseError::NoErrorObject)?;
        let error_data =
            error
                .get("error_data")
                .filter(|d| d.is_object())
                .map(|d| GraphErrorData {
                    messaging_product: text(d.get("messaging_product")),
                    details: text(d.get("details")),
                });
        Ok(Self {
            message: text(error.get("message")),
            error_type: text(error.get("type")),
            code: integer(error.get("code")),
            error_subcode: integer(error.get("error_subcode")),
            error_user_title: text(error.get("error_user_title")),
            error_user_msg: text(error.get("error_user_msg")),
            error_data,
            fbtrace_id: text(error.get("fbtrace_id")),
        })
    }

    /// `error_data.details`, if any.
    pub fn details(&self) -> Option<&str> {
        self.error_data.as_ref()?.details.as_deref()
    }

    /// The message without Meta's `(#code) ` prefix, which repeats the code.
    pub fn title(&self) -> Option<&str> {
        let message = self.message.as_deref()?.trim();
        let title = match message.strip_prefix("(#") {
            Some(rest) => rest
                .split_once(')')
                .map_or(message, |(_, t)| t.trim_start()),
            None => message,
        };
        (!title.is_empty()).then_some(title)
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "Graph error {code}")?,
            None => f.write_str("Graph error without code")?,
        }
        if let Some(title) = self.title() {
            write!(f, ": {}", excerpt(title))?;
        }
        if let Some(trace) = &self.fbtrace_id {
            write!(f, " (fbtrace_id {})", excerpt(trace))?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphError {}

/// Parse a body as JSON, telling an empty body from a non-JSON one.
pub(super) fn json_body(body: &[u8]) -> Result<Value, ReplyParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ReplyParseError::EmptyBody);
    }
    serde_json::from_slice(body).map_err(|_| ReplyParseError::NotJson {
        excerpt: excerpt(&String::from_utf8_lossy(body)),
    })
}

/// A non-empty string field; other JSON types count as absent.
pub(super) fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An integer field, also accepted as a string of digits (some proxies rewrite it).
fn integer(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_error_envelope_is_read_field_by_field() {
        let e = GraphError::parse(include_bytes!("testdata/error-131056-pair-rate.json")).unwrap();
        assert_eq!(e.code, Some(131056));
        assert_eq!(e.error_type.as_deref(), Some("OAuthException"));
        assert_eq!(
            e.title(),
            Some("(Business Account, Consumer Account) pair rate limit hit")
        );
        assert_eq!(
            e.details(),
            Some(
                "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time."
            )
        );
        assert_eq!(e.fbtrace_id.as_deref(), Some("AazXvLr2dT3u3HC6ngxPuz8"));
        assert_eq!(e.error_subcode, None);
    }

    #[test]
    fn an_old_style_error_keeps_subcode_and_user_texts() {
        let e = GraphError::parse(include_bytes!("testdata/error-190-token-expired.json")).unwrap();
        assert_eq!(e.code, Some(190));
        assert_eq!(e.error_subcode, Some(463));
        assert_eq!(e.error_user_title.as_deref(), Some("Session expired"));
        assert!(e.error_user_msg.is_some());
        assert_eq!(e.details(), None);
    }

    #[test]
    fn a_code_sent_as_a_string_is_still_read() {
        let e = GraphError::parse(br#"{"error":{"code":"130429","message":"x"}}"#).unwrap();
        assert_eq!(e.code, Some(130429));
    }

    #[test]
    fn fields_of_unexpected_types_are_dropped_not_fatal() {
        let e = GraphError::parse(
            br#"{"error":{"code":131000,"message":7,"error_data":{"details":{"a":1}}}}"#,
        )
        .unwrap();
        assert_eq!(e.code, Some(131000));
        assert_eq!(e.message, None);
        assert_eq!(e.details(), None);
    }

    #[test]
    fn html_empty_and_error_less_bodies_are_typed_errors() {
        let html = include_bytes!("testdata/html-502.html");
        match GraphError::parse(html) {
            Err(ReplyParseError::NotJson { excerpt }) => {
                assert!(excerpt.starts_with("<html>"), "{excerpt}");
                assert!(excerpt.chars().count() <= super::super::EXCERPT_CHARS + 1);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(GraphError::parse(b""), Err(ReplyParseError::EmptyBody));
        assert_eq!(GraphError::parse(b" \n"), Err(ReplyParseError::EmptyBody));
        assert_eq!(
            GraphError::parse(br#"{"error":"nope"}"#),
            Err(ReplyParseError::NoErrorObject)
        );
        assert_eq!(
            GraphError::parse(b"[]"),
            Err(ReplyParseError::NoErrorObject)
        );
    }

    #[test]
    fn display_is_short_and_never_the_raw_body() {
        let long_message = "A".repeat(5_000);
        let body = format!(r#"{{"error":{{"code":100,"message":"(#100) {long_message}"}}}}"#);
        let shown = GraphError::parse(body.as_bytes()).unwrap().to_string();
        assert!(shown.starts_with("Graph error 100: AAAA"), "{shown}");
        assert!(shown.len() < 400, "{}", shown.len());

        let html = "<html>".repeat(1_000);
        let shown = GraphError::parse(html.as_bytes()).unwrap_err().to_string();
        assert!(shown.len() < 400, "{}", shown.len());
    }

    #[test]
    fn titles_lose_only_the_code_prefix() {
        let with = |m: &str| GraphError {
            message: Some(m.into()),
            ..GraphError::default()
        };
        assert_eq!(
            with("(#132001) Template name does not exist").title(),
            Some("Template name does not exist")
        );
        assert_eq!(with("Plain message").title(), Some("Plain message"));
        assert_eq!(with("(#1) ").title(), None);
        assert_eq!(with("(#unterminated").title(), Some("(#unterminated"));
    }
}
