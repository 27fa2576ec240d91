//! The answer to `POST /{phone_number_id}/messages` (reference §1).
//!
//! A 200 means *accepted*, not delivered: what we keep is the wamid, the key of
//! every later status webhook.

use super::classify::{Classification, classify};
use super::error::{GraphError, ReplyParseError, json_body, text};
use crate::domain::ids::Wamid;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `message_status` of a template Meta is pacing: sent later, or dropped with 132015.
pub const HELD_FOR_QUALITY_ASSESSMENT: &str = "held_for_quality_assessment";

/// One `contacts[]` entry: who Meta resolved the recipient to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendContact {
    /// What we sent as `to` / `recipient`.
    pub input: Option<String>,
    /// The WhatsApp id (phone digits); may differ from `input` after normalisation.
    pub wa_id: Option<String>,
    /// The business-scoped user id, present instead of or beside `wa_id` for BSUIDs.
    pub user_id: Option<String>,
}

/// A send Meta accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendAccepted {
    /// `messages[0].id`.
    pub wamid: Wamid,
    /// `messages[0].message_status` (templates only): `accepted`,
    /// `held_for_quality_assessment`, or a value we do not know yet.
    pub message_status: Option<String>,
    /// `contacts[]`, in Meta's order.
    pub contacts: Vec<SendContact>,
}

impl SendAccepted {
    /// Read a success body. A missing or unusable `messages[0].id` is a typed error.
    pub fn parse(body: &[u8]) -> Result<Self, ReplyParseError> {
        Self::from_value(&json_body(body)?)
    }

    /// Read an already parsed success body.
    pub fn from_value(body: &Value) -> Result<Self, ReplyParseError> {
        let message = body
            .get("messages")
            .and_then(|m| m.get(0))
            .ok_or(ReplyParseError::MissingWamid)?;
        let id = message
            .get("id")
            .and_then(Value::as_str)
            .ok_or(ReplyParseError::MissingWamid)?;
        let wamid = Wamid::parse(id).map_err(ReplyParseError::InvalidWamid)?;
        let contacts = body
            .get("contacts")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|c| SendContact {
                        input: text(c.get("input")),
                        wa_id: text(c.get("wa_id")),
                        user_id: text(c.get("user_id")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            wamid,
            message_status: text(message.get("message_status")),
            contacts,
        })
    }

    /// Whether Meta is holding the template for quality assessment (pacing).
    pub fn is_held(&self) -> bool {
        self.message_status.as_deref() == Some(HELD_FOR_QUALITY_ASSESSMENT)
    }
}

/// What a Graph answer means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Meta took it: record the wamid.
    Accepted(SendAccepted),
    /// It did not (or we cannot tell): the class says what to do.
    Failed(Classification),
}

/// Interpret an HTTP answer to a send. Never panics, whatever the body:
/// a 2xx with a wamid is accepted; an error envelope is classified by its code;
/// anything else by the status, with the reading problem as the detail.
pub fn read_send_reply(http_status: u16, body: &[u8]) -> SendOutcome {
    let value = match json_body(body) {
        Ok(value) => value,
        Err(problem) => return SendOutcome::Failed(unreadable(http_status, &problem)),
    };
    // What we expected and did not find: a wamid on a 2xx, an error object otherwise.
    let problem = if (200..300).contains(&http_status) {
        match SendAccepted::from_value(&value) {
            Ok(accepted) => return SendOutcome::Accepted(accepted),
            Err(problem) => problem,
        }
    } else {
        ReplyParseError::NoErrorObject
    };
    SendOutcome::Failed(match GraphError::from_value(&value) {
        Ok(error) => classify(http_status, Some(&error)),
        Err(_) => unreadable(http_status, &problem),
    })
}

/// Classify by status alone, keeping what we could not read as the detail.
fn unreadable(http_status: u16, problem: &ReplyParseError) -> Classification {
    Classification {
        detail: Some(problem.to_string()),
        ..classify(http_status, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::failure::FailureClass;

    fn failed(outcome: SendOutcome) -> Classification {
        match outcome {
            SendOutcome::Failed(c) => c,
            SendOutcome::Accepted(a) => panic!("unexpectedly accepted {a:?}"),
        }
    }

    #[test]
    fn an_accepted_template_yields_its_wamid_status_and_contacts() {
        let a =
            SendAccepted::parse(include_bytes!("testdata/success-template-accepted.json")).unwrap();
        assert_eq!(
            a.wamid.as_str(),
            "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
        );
        assert_eq!(a.message_status.as_deref(), Some("accepted"));
        assert!(!a.is_held());
        assert_eq!(
            a.contacts,
            [SendContact {
                input: Some("+15551234567".into()),
                wa_id: Some("15551234567".into()),
                user_id: None
            }]
        );
    }

    #[test]
    fn a_paced_template_is_accepted_but_held() {
        let a = SendAccepted::parse(include_bytes!("testdata/success-template-held.json")).unwrap();
        assert!(a.is_held());
    }

    #[test]
    fn a_bsuid_recipient_reports_user_id_and_no_message_status() {
        let a = SendAccepted::parse(include_bytes!("testdata/success-text-bsuid.json")).unwrap();
        assert_eq!(a.message_status, None);
        assert_eq!(
            a.contacts[0].user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        assert_eq!(a.contacts[0].wa_id, None);
    }

    #[test]
    fn a_success_without_a_usable_id_is_a_typed_error() {
        let cases: &[(&[u8], ReplyParseError)] = &[
            (
                br#"{"messaging_product":"whatsapp"}"#,
                ReplyParseError::MissingWamid,
            ),
            (br#"{"messages":[]}"#, ReplyParseError::MissingWamid),
            (br#"{"messages":{}}"#, ReplyParseError::MissingWamid),
            (
                br#"{"messages":[{"message_status":"accepted"}]}"#,
                ReplyParseError::MissingWamid,
            ),
            (
                br#"{"messages":[{"id":42}]}"#,
                ReplyParseError::MissingWamid,
            ),
            (b"", ReplyParseError::EmptyBody),
        ];
        for (body, expected) in cases {
            assert_eq!(
                &SendAccepted::parse(body).unwrap_err(),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            SendAccepted::parse(br#"{"messages":[{"id":""}]}"#),
            Err(ReplyParseError::InvalidWamid(_))
        ));
        assert!(matches!(
            SendAccepted::parse(br#"{"messages":[{"id":"has space"}]}"#),
            Err(ReplyParseError::InvalidWamid(_))
        ));
    }

    #[test]
    fn a_200_with_a_wamid_is_accepted() {
        let outcome = read_send_reply(
            200,
            include_bytes!("testdata/success-template-accepted.json"),
        );
        assert!(
            matches!(outcome, SendOutcome::Accepted(a) if a.message_status.as_deref() == Some("accepted"))
        );
    }

    #[test]
    fn a_200_without_a_wamid_is_ambiguous_and_says_why() {
        let c = failed(read_send_reply(200, br#"{"messages":[]}"#));
        assert_eq!(c.class, FailureClass::Ambiguous);
        assert_eq!(c.detail.as_deref(), Some("response has no messages[0].id"));
        let c = failed(read_send_reply(200, b"<html>oops</html>"));
        assert_eq!(c.class, FailureClass::Ambiguous);
    }

    #[test]
    fn an_error_envelope_is_classified_by_its_code() {
        let c = failed(read_send_reply(
            400,
            include_bytes!("testdata/error-131056-pair-rate.json"),
        ));
        assert_eq!((c.class, c.code), (FailureClass::Throttled, Some(131056)));
        let c = failed(read_send_reply(
            200,
            include_bytes!("testdata/error-132001-template-missing.json"),
        ));
        assert_eq!(
            c.class,
            FailureClass::Rejected,
            "a known code wins even on a 2xx"
        );
    }

    #[test]
    fn an_html_502_is_transient_with_a_short_excerpt() {
        let c = failed(read_send_reply(
            502,
            include_bytes!("testdata/html-502.html"),
        ));
        assert_eq!(c.class, FailureClass::Transient);
        assert_eq!(c.code, None);
        let detail = c.detail.unwrap();
        assert!(
            detail.starts_with("response body is not JSON: <html>"),
            "{detail}"
        );
        assert!(detail.len() < 400);
        assert_eq!(
            failed(read_send_reply(503, b"")).detail.as_deref(),
            Some("empty response body")
        );
    }

    #[test]
    fn a_non_2xx_success_shape_is_not_taken_as_accepted() {
        let c = failed(read_send_reply(
            500,
            include_bytes!("testdata/success-template-accepted.json"),
        ));
        assert_eq!(c.class, FailureClass::Transient);
        assert_eq!(c.detail.as_deref(), Some("response has no error object"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(status in proptest::num::u16::ANY, body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = read_send_reply(status, &body);
        }
    }
}
