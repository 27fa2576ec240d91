//! The Graph API request body of a send (`POST /{phone-number-id}/messages`).
//!
//! Built from a [`ValidatedRequest`] alone: validation already filled in everything the
//! template decides (header `parameter_name`, the OTP button's code), so the sender does
//! not need the template here, and what intake stored is exactly what gets sent.

use crate::domain::request::{
    BodyParams, ButtonValue, Content, HeaderParam, LocationParam, ParamValue, TemplateMessage,
};
use crate::domain::validation::ValidatedRequest;
use serde::Serialize;
use serde_json::Value;

/// Meta's limit on `biz_opaque_callback_data`.
pub const MAX_CALLBACK_DATA_CHARS: usize = 512;

/// Why a payload could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The callback data would be refused by Meta.
    #[error("biz_opaque_callback_data has {chars} characters; the limit is 512")]
    CallbackDataTooLong {
        /// Its length in characters.
        chars: usize,
    },
}

/// The body of one Graph send request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphMessage {
    /// Always `whatsapp`.
    pub messaging_product: &'static str,
    /// Always `individual`.
    pub recipient_type: &'static str,
    /// Recipient in E.164 with the `+`, so Meta never guesses the country.
    pub to: String,
    /// `template` or `text`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Echoed in every status webhook of this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// For template sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<GraphTemplate>,
    /// For text sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<GraphText>,
}

impl GraphMessage {
    /// The payload as JSON.
    pub fn to_json(&self) -> Value {
        // Only strings, integers and finite floats from parsed JSON: cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `template` of a send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphTemplate {
    /// Template name.
    pub name: String,
    /// `{"code": "en_US"}`.
    pub language: GraphLanguage,
    /// Only the variable parts; omitted when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<GraphComponent>,
}

/// `language` of a template send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphLanguage {
    /// Exact locale.
    pub code: String,
}

/// One component of a template send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphComponent {
    /// `header`, `body` or `button`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// For buttons: `url`, `quick_reply` or `copy_code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<&'static str>,
    /// For buttons: the zero-based index, as a string like Meta's examples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The values.
    pub parameters: Vec<GraphParameter>,
}

/// One parameter of a component.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GraphParameter {
    /// Text; named templates carry `parameter_name`.
    Text {
        /// Variable name (named templates only).
        #[serde(skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
        /// The value.
        text: String,
    },
    /// A localised amount.
    Currency {
        /// Variable name (named templates only).
        #[serde(skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
        /// The amount.
        currency: GraphCurrency,
    },
    /// A date and time.
    DateTime {
        /// Variable name (named templates only).
        #[serde(skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
        /// The date.
        date_time: GraphDateTime,
    },
    /// Header image.
    Image {
        /// The media.
        image: GraphMedia,
    },
    /// Header video.
    Video {
        /// The media.
        video: GraphMedia,
    },
    /// Header document.
    Document {
        /// The media.
        document: GraphMedia,
    },
    /// Header location.
    Location {
        /// The place.
        location: LocationParam,
    },
    /// Quick-reply payload.
    Payload {
        /// Echoed back when the user taps the button.
        payload: String,
    },
    /// Copy-code button value.
    CouponCode {
        /// The code.
        coupon_code: String,
    },
}

/// `currency` of a parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphCurrency {
    /// Shown where localisation is not possible.
    pub fallback_value: String,
    /// ISO 4217 code.
    pub code: String,
    /// Amount times 1000.
    pub amount_1000: i64,
}

/// `date_time` of a parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphDateTime {
    /// Shown as is.
    pub fallback_value: String,
}

/// Media by link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphMedia {
    /// HTTPS URL.
    pub link: String,
    /// Documents only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// `text` of a free-form send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphText {
    /// Message text.
    pub body: String,
    /// Render a link preview.
    pub preview_url: bool,
}

/// Build the Graph request body for `request`, with `callback_data` (≤ 512 characters;
/// empty means none) as `biz_opaque_callback_data`.
pub fn build_payload(
    request: &ValidatedRequest,
    callback_data: &str,
) -> Result<GraphMessage, PayloadError> {
    let chars = callback_data.chars().count();
    if chars > MAX_CALLBACK_DATA_CHARS {
        return Err(PayloadError::CallbackDataTooLong { chars });
    }
    let (kind, template, text) = match &request.request().content {
        Content::Template(t) => ("template", Some(template(t)), None),
        Content::Text(t) => (
            "text",
            None,
            Some(GraphText {
                body: t.body.clone(),
                preview_url: t.preview_url,
            }),
        ),
    };
    Ok(GraphMessage {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to: request.to().as_str().to_owned(),
        kind,
        biz_opaque_callback_data: (!callback_data.is_empty()).then(|| callback_data.to_owned()),
        template,
        text,
    })
}

fn template(t: &TemplateMessage) -> GraphTemplate {
    let mut components = Vec::new();
    if let Some(header) = &t.header {
        components.push(component("header", vec![header_parameter(header)]));
    }
    let body: Vec<GraphParameter> = match &t.body {
        None => Vec::new(),
        Some(BodyParams::Positional(values)) => {
            values.iter().map(|v| value_parameter(None, v)).collect()
        }
        Some(BodyParams::Named(values)) => values
            .iter()
            .map(|v| value_parameter(Some(&v.name), &v.value))
            .collect(),
    };
    if !body.is_empty() {
        components.push(component("body", body));
    }
    let mut buttons: Vec<_> = t.buttons.iter().collect();
    buttons.sort_by_key(|b| b.index);
    for b in buttons {
        let (sub_type, parameter) = match &b.value {
            ButtonValue::Url { text } => (
                "url",
                GraphParameter::Text {
                    parameter_name: None,
                    text: url_safe_suffix(text),
                },
            ),
            ButtonValue::CopyCode { coupon_code } => (
                "copy_code",
                GraphParameter::CouponCode {
                    coupon_code: coupon_code.clone(),
                },
            ),
            ButtonValue::QuickReply {
                payload: Some(payload),
            } => (
                "quick_reply",
                GraphParameter::Payload {
                    payload: payload.clone(),
                },
            ),
            // A quick reply without a payload needs no component at all.
            ButtonValue::QuickReply { payload: None } => continue,
        };
        components.push(GraphComponent {
            kind: "button",
            sub_type: Some(sub_type),
            index: Some(b.index.to_string()),
            parameters: vec![parameter],
        });
    }
    GraphTemplate {
        name: t.name.clone(),
        language: GraphLanguage {
            code: t.language.clone(),
        },
        components,
    }
}

fn component(kind: &'static str, parameters: Vec<GraphParameter>) -> GraphComponent {
    GraphComponent {
        kind,
        sub_type: None,
        index: None,
        parameters,
    }
}

fn header_parameter(header: &HeaderParam) -> GraphParameter {
    let media = |link: &String, filename: Option<&String>| GraphMedia {
        link: link.clone(),
        filename: filename.cloned(),
    };
    match header {
        HeaderParam::Text {
            text,
            parameter_name,
        } => GraphParameter::Text {
            parameter_name: parameter_name.clone(),
            text: text.clone(),
        },
        HeaderParam::Image { link } => GraphParameter::Image {
            image: media(link, None),
        },
        HeaderParam::Video { link } => GraphParameter::Video {
            video: media(link, None),
        },
        HeaderParam::Document { link, filename } => GraphParameter::Document {
            document: media(link, filename.as_ref()),
        },
        HeaderParam::Location(location) => GraphParameter::Location {
            location: location.clone(),
        },
    }
}

fn value_parameter(name: Option<&String>, value: &ParamValue) -> GraphParameter {
    let parameter_name = name.cloned();
    match value {
        ParamValue::Text(text) => GraphParameter::Text {
            parameter_name,
            text: text.clone(),
        },
        ParamValue::Currency {
            fallback_value,
            code,
            amount_1000,
        } => GraphParameter::Currency {
            parameter_name,
            currency: GraphCurrency {
                fallback_value: fallback_value.clone(),
                code: code.clone(),
                amount_1000: *amount_1000,
            },
        },
        ParamValue::DateTime { fallback_value } => GraphParameter::DateTime {
            parameter_name,
            date_time: GraphDateTime {
                fallback_value: fallback_value.clone(),
            },
        },
    }
}

/// A dynamic URL button's suffix made URL-safe: Meta appends it to the template's base
/// URL as is, so a space or any other character a URL cannot hold (controls, non-ASCII,
/// `"<>\^`{|}`, a `%` that starts no escape) is percent-encoded as UTF-8, while the
/// characters a caller may mean (`/ ? = & #` and the rest of RFC 3986's reserved set)
/// and escapes already made (`%20`) are kept.
pub fn url_safe_suffix(suffix: &str) -> String {
    let bytes = suffix.as_bytes();
    let mut out = String::with_capacity(suffix.len());
    for (i, &b) in bytes.iter().enumerate() {
        let allowed = b.is_ascii_alphanumeric()
            || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)
            || (b == b'%'
                && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit));
        if allowed {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template::TemplateCatalog;
    use crate::domain::validation::{FormattingPolicy, validate};
    use serde_json::json;

    fn validated(request: Value) -> ValidatedRequest {
        let catalog =
            TemplateCatalog::from_json(include_str!("../../tests/fixtures/templates/catalog.json"))
                .unwrap();
        validate(&request, &catalog, FormattingPolicy::Strict).unwrap()
    }

    #[test]
    fn callback_data_over_512_characters_is_refused() {
        let v = validated(json!({"to": "+14155550123", "text": {"body": "hi"}}));
        assert!(build_payload(&v, &"é".repeat(512)).is_ok());
        assert_eq!(
            build_payload(&v, &"é".repeat(513)),
            Err(PayloadError::CallbackDataTooLong { chars: 513 })
        );
        let none = build_payload(&v, "").unwrap().to_json();
        assert!(none.get("biz_opaque_callback_data").is_none());
    }

    #[test]
    fn quick_replies_without_payload_send_no_button_component() {
        let v = validated(
            json!({"to": "+14155550123", "template": {"name": "welcome_offer",
            "language": "en_US", "buttons": [{"index": 0, "type": "quick_reply"}]}}),
        );
        let payload = build_payload(&v, "cb").unwrap().to_json();
        assert_eq!(
            payload["template"],
            json!({"name": "welcome_offer", "language": {"code": "en_US"}})
        );
    }

    #[test]
    fn a_url_suffix_is_made_url_safe_and_keeps_what_a_caller_means() {
        assert_eq!(url_safe_suffix("TRK 42"), "TRK%2042");
        assert_eq!(url_safe_suffix("ABC123"), "ABC123");
        assert_eq!(
            url_safe_suffix("track?id=42&lang=pt"),
            "track?id=42&lang=pt"
        );
        assert_eq!(url_safe_suffix("already%20encoded"), "already%20encoded");
        assert_eq!(url_safe_suffix("100%"), "100%25");
        assert_eq!(url_safe_suffix("São\"<>"), "S%C3%A3o%22%3C%3E");
        assert_eq!(url_safe_suffix("a\tb"), "a%09b");
    }
}
