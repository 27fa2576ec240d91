//! Reading the body of `POST /{version}/{phone_number_id}/messages` as Meta's send
//! schema (reference §1): `messaging_product`, `to` (or `recipient`), `type`, the
//! object named after the type, `biz_opaque_callback_data`. Mark-as-read bodies
//! (`status: "read"`) are recognised too.
//!
//! Recipient decision: a `to` that is not a phone number at all (after removing `+`,
//! spaces, hyphens and parentheses, not 7–15 digits) is refused synchronously with
//! code 100, as Graph does for malformed parameters; a well-formed number that cannot
//! receive (listed in `failing_recipients`) is accepted and then fails by webhook with
//! 131026, as Meta does for numbers not on WhatsApp.
//!
//! Free-form objects (text, media, interactive reply buttons and lists, location,
//! reaction) and a reply `context` are checked against Meta's limits in [`free_form`]
//! (131008 missing, 131009 out of limits, 100 wrong type or unknown parameter).

mod free_form;

use super::meta_error::MetaError;
use serde_json::{Map, Value};

/// Meta's limit on `biz_opaque_callback_data`.
const MAX_CALLBACK_CHARS: usize = 512;
/// Meta's limit on `text.body`.
const MAX_TEXT_CHARS: usize = 4096;
/// Free-form types the sandbox accepts without looking inside their object.
const OTHER_TYPES: [&str; 9] = [
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "reaction",
];

/// A send body the sandbox understood.
#[derive(Debug, Clone, PartialEq)]
pub enum SendBody<'a> {
    /// A message to deliver.
    Message(OutboundMessage<'a>),
    /// `{"status":"read","message_id":..}`: mark an inbound message as read.
    MarkRead,
}

/// A message to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage<'a> {
    /// Who it goes to.
    pub recipient: Recipient,
    /// `biz_opaque_callback_data`, echoed in its status webhooks.
    pub callback_data: Option<String>,
    /// What it is.
    pub content: OutboundContent<'a>,
}

/// The recipient as Meta resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// What the client sent (`contacts[].input`).
    pub input: String,
    /// Digits of a phone recipient (`wa_id`, `recipient_id`).
    pub wa_id: Option<String>,
    /// A business-scoped user id sent as `recipient`.
    pub user_id: Option<String>,
}

impl Recipient {
    /// The key of this recipient for limits and windows: its digits, else its BSUID.
    pub fn key(&self) -> &str {
        self.wa_id
            .as_deref()
            .or(self.user_id.as_deref())
            .unwrap_or(&self.input)
    }
}

/// Template or free-form.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundContent<'a> {
    /// `type: template`, with its `template` object (checked against the catalog later).
    Template(&'a Map<String, Value>),
    /// Any other type (text, media, interactive...): only inside the service window.
    FreeForm {
        /// The `type` value.
        kind: String,
    },
}

/// Read the structure of a send body; the template itself is checked separately.
pub fn parse_send(body: &Value) -> Result<SendBody<'_>, MetaError> {
    let Some(body) = body.as_object() else {
        return Err(MetaError::new(
            100,
            "The request body must be a JSON object",
        ));
    };
    match body.get("messaging_product").and_then(Value::as_str) {
        Some("whatsapp") => {}
        Some(_) => {
            return Err(MetaError::new(
                100,
                "Param messaging_product must be 'whatsapp'",
            ));
        }
        None => {
            return Err(MetaError::new(
                100,
                "The parameter messaging_product is required.",
            ));
        }
    }
    if body.get("status").and_then(Value::as_str) == Some("read") {
        return match body.get("message_id").and_then(Value::as_str) {
            Some(_) => Ok(SendBody::MarkRead),
            None => Err(MetaError::new(100, "The parameter message_id is required.")),
        };
    }
    if let Some(t) = body.get("recipient_type").and_then(Value::as_str)
        && t != "individual"
    {
        return Err(MetaError::new(
            100,
            format!("recipient_type {t:?} is not supported"),
        ));
    }
    let recipient = recipient(body)?;
    let callback_data = match body.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_CALLBACK_CHARS => Some(s.clone()),
        Some(Value::String(_)) => {
            return Err(MetaError::new(
                100,
                "biz_opaque_callback_data is longer than 512 characters",
            ));
        }
        Some(_) => {
            return Err(MetaError::new(
                100,
                "biz_opaque_callback_data must be a string",
            ));
        }
    };
    let kind = match body.get("type") {
        None => "text",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(MetaError::new(100, "Param type must be a string")),
    };
    let content = match kind {
        "template" => match body.get("template") {
            Some(Value::Object(t)) => OutboundContent::Template(t),
            _ => {
                return Err(MetaError::new(
                    131008,
                    "The parameter template is required.",
                ));
            }
        },
        "text" => {
            if let Some(Value::Object(t)) = body.get("text") {
                free_form::check_text(t)?;
            }
            free_form::check_context("text", body)?;
            let text = body
                .get("text")
                .and_then(|t| t.get("body"))
                .and_then(Value::as_str);
            match text {
                None => {
                    return Err(MetaError::new(
                        131008,
                        "The parameter text['body'] is required.",
                    ));
                }
                Some(t) if t.trim().is_empty() => {
                    return Err(MetaError::new(100, "Param text['body'] must not be empty"));
                }
                Some(t) if t.chars().count() > MAX_TEXT_CHARS => {
                    return Err(MetaError::new(
                        100,
                        "Param text['body'] must be at most 4096 characters long.",
                    ));
                }
                Some(_) => OutboundContent::FreeForm {
                    kind: "text".into(),
                },
            }
        }
        other if OTHER_TYPES.contains(&other) => {
            free_form::check_context(other, body)?;
            free_form::check(other, body)?;
            OutboundContent::FreeForm {
                kind: other.to_owned(),
            }
        }
        other => {
            return Err(MetaError::new(
                100,
                format!("Param type {other:?} is not a supported message type"),
            ));
        }
    };
    Ok(SendBody::Message(OutboundMessage {
        recipient,
        callback_data,
        content,
    }))
}

fn recipient(body: &Map<String, Value>) -> Result<Recipient, MetaError> {
    if let Some(to) = body.get("to") {
        let Some(to) = to.as_str() else {
            return Err(MetaError::new(100, "Param to must be a string"));
        };
        let digits = phone_digits(to).ok_or_else(|| {
            MetaError::new(
                100,
                format!("Invalid parameter: to {:?} is not a phone number", mask(to)),
            )
        })?;
        return Ok(Recipient {
            input: to.to_owned(),
            wa_id: Some(digits),
            user_id: None,
        });
    }
    match body.get("recipient").and_then(Value::as_str) {
        Some(r) if is_bsuid(r) => Ok(Recipient {
            input: r.to_owned(),
            wa_id: None,
            user_id: Some(r.to_owned()),
        }),
        Some(_) => Err(MetaError::new(
            100,
            "Invalid parameter: recipient is not a business-scoped user id",
        )),
        None => Err(MetaError::new(100, "The parameter to is required.")),
    }
}

/// The digits of a phone number written with optional `+`, spaces, hyphens and
/// parentheses; `None` unless 7 to 15 digits remain (E.164's maximum is 15).
pub fn phone_digits(to: &str) -> Option<String> {
    let trimmed = to.trim();
    let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    (7..=15).contains(&digits.len()).then_some(digits)
}

/// `CC.digits`, like `US.13491208655302741918`.
fn is_bsuid(s: &str) -> bool {
    s.split_once('.').is_some_and(|(cc, id)| {
        cc.len() == 2
            && cc.bytes().all(|b| b.is_ascii_uppercase())
            && !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
    })
}

/// At most the last four characters, so error details never echo a whole number.
fn mask(s: &str) -> String {
    let n = s.chars().count();
    let tail: String = s.chars().skip(n.saturating_sub(4)).collect();
    format!("***{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phone_numbers_are_read_as_meta_reads_them() {
        assert_eq!(
            phone_digits("+1 (415) 555-0123").as_deref(),
            Some("14155550123")
        );
        assert_eq!(phone_digits("14155550123").as_deref(), Some("14155550123"));
        assert_eq!(phone_digits("+12"), None);
        assert_eq!(phone_digits("+1415555012345678"), None);
        assert_eq!(phone_digits("+1415abc0123"), None);
    }

    #[test]
    fn a_template_send_is_read_with_its_callback_data() {
        let body = json!({"messaging_product":"whatsapp","to":"+14155550123","type":"template",
            "biz_opaque_callback_data":"wa1:acme:msg_x","template":{"name":"a","language":{"code":"en"}}});
        let SendBody::Message(m) = parse_send(&body).unwrap() else {
            panic!()
        };
        assert_eq!(m.recipient.wa_id.as_deref(), Some("14155550123"));
        assert_eq!(m.callback_data.as_deref(), Some("wa1:acme:msg_x"));
        assert!(matches!(m.content, OutboundContent::Template(_)));
    }

    #[test]
    fn structural_problems_have_metas_codes() {
        let cases = [
            (json!([]), 100),
            (json!({"to":"+14155550123"}), 100),
            (
                json!({"messaging_product":"whatsapp","type":"text","text":{"body":"x"}}),
                100,
            ),
            (
                json!({"messaging_product":"whatsapp","to":"hello","text":{"body":"x"}}),
                100,
            ),
            (
                json!({"messaging_product":"whatsapp","to":"+14155550123","type":"template"}),
                131008,
            ),
            (
                json!({"messaging_product":"whatsapp","to":"+14155550123","type":"text"}),
                131008,
            ),
            (
                json!({"messaging_product":"whatsapp","to":"+14155550123","type":"fax"}),
                100,
            ),
            (
                json!({"messaging_product":"whatsapp","to":"+14155550123","text":{"body":"x"},
                "biz_opaque_callback_data":"x".repeat(513)}),
                100,
            ),
        ];
        for (body, code) in cases {
            assert_eq!(parse_send(&body).unwrap_err().code, code, "{body}");
        }
    }

    #[test]
    fn bsuid_recipients_resolve_to_a_user_id() {
        let body = json!({"messaging_product":"whatsapp","recipient":"US.1349120865",
            "type":"text","text":{"body":"hi"}});
        let SendBody::Message(m) = parse_send(&body).unwrap() else {
            panic!()
        };
        assert_eq!(m.recipient.user_id.as_deref(), Some("US.1349120865"));
        assert_eq!(m.recipient.key(), "US.1349120865");
    }
}
