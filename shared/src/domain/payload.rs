//! The Graph API request body of a send (`POST /{phone-number-id}/messages`).
//!
//! Built from a [`ValidatedRequest`] alone: validation already filled in everything the
//! template decides (header `parameter_name`, the OTP button's code), so the sender does
//! not need the template here, and what intake stored is exactly what gets sent.

use crate::domain::request::{
    BodyParams, ButtonValue, Content, HeaderParam, InteractiveMessage, LocationParam, MediaMessage,
    ParamValue, ReactionMessage, ReplyContext, TemplateMessage,
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
    /// `template`, `text`, `image`, `document`, `video`, `audio`, `sticker`,
    /// `interactive`, `location` or `reaction`: the one content field present below.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Send as a quoted reply to this wamid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ReplyContext>,
    /// Echoed in every status webhook of this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// For template sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<GraphTemplate>,
    /// For text sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<GraphText>,
    /// For image sends (`link` or `id`, `caption`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<MediaMessage>,
    /// For document sends (`link` or `id`, `caption`, `filename`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<MediaMessage>,
    /// For video sends (`link` or `id`, `caption`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<MediaMessage>,
    /// For audio sends (`link` or `id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<MediaMessage>,
    /// For sticker sends (`link` or `id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticker: Option<MediaMessage>,
    /// For interactive sends: Meta's object, which the request's mirrors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactive: Option<InteractiveMessage>,
    /// For location sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationParam>,
    /// For reaction sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reaction: Option<ReactionMessage>,
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
    let sent = request.request();
    let mut message = GraphMessage {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to: request.to().as_str().to_owned(),
        kind: sent.content.type_name(),
        context: sent.context.clone(),
        biz_opaque_callback_data: (!callback_data.is_empty()).then(|| callback_data.to_owned()),
        template: None,
        text: None,
        image: None,
        document: None,
        video: None,
        audio: None,
        sticker: None,
        interactive: None,
        location: None,
        reaction: None,
    };
    match &sent.content {
        Content::Template(t) => message.template = Some(template(t)),
        Content::Text(t) => {
            message.text = Some(GraphText {
                body: t.body.clone(),
                preview_url: t.preview_url,
            });
        }
        Content::Image(m) => message.image = Some(m.clone()),
        Content::Document(m) => message.document = Some(m.clone()),
        Content::Video(m) => message.video = Some(m.clone()),
        Content::Audio(m) => message.audio = Some(m.clone()),
        Content::Sticker(m) => message.sticker = Some(m.clone()),
        Content::Interactive(i) => message.interactive = Some(i.clone()),
        Content::Location(l) => message.location = Some(l.clone()),
        Content::Reaction(r) => message.reaction = Some(r.clone()),
    }
    Ok(message)
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

    const WAMID: &str = "wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA";

    /// The Graph body built for `content` (one content key and an optional context).
    fn built(content: Value) -> Value {
        let mut request = json!({"to": "+1 415 555 0123"});
        for (k, v) in content.as_object().unwrap() {
            request[k] = v.clone();
        }
        build_payload(&validated(request), "cb").unwrap().to_json()
    }

    fn envelope(kind: &str, key: &str, object: Value) -> Value {
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "+14155550123", "type": kind, "biz_opaque_callback_data": "cb", key: object})
    }

    #[test]
    fn text_sends_carry_preview_url_and_a_reply_context() {
        assert_eq!(
            built(json!({"text": {"body": "https://shop.example", "preview_url": true}})),
            envelope(
                "text",
                "text",
                json!({"body": "https://shop.example", "preview_url": true})
            )
        );
        let mut expected = envelope("text", "text", json!({"body": "ok", "preview_url": false}));
        expected["context"] = json!({"message_id": WAMID});
        assert_eq!(
            built(json!({"text": {"body": "ok"}, "context": {"message_id": WAMID}})),
            expected
        );
    }

    #[test]
    fn media_sends_are_metas_media_objects() {
        assert_eq!(
            built(json!({"image": {"link": "https://cdn.example/a.jpg", "caption": "Receipt"}})),
            envelope(
                "image",
                "image",
                json!({"link": "https://cdn.example/a.jpg", "caption": "Receipt"})
            )
        );
        assert_eq!(
            built(
                json!({"document": {"id": "1013859600285441", "caption": "Invoice", "filename": "inv.pdf"}})
            ),
            envelope(
                "document",
                "document",
                json!({"id": "1013859600285441", "caption": "Invoice", "filename": "inv.pdf"})
            )
        );
        assert_eq!(
            built(json!({"video": {"id": "9"}})),
            envelope("video", "video", json!({"id": "9"}))
        );
        assert_eq!(
            built(json!({"audio": {"link": "https://cdn.example/a.ogg"}})),
            envelope(
                "audio",
                "audio",
                json!({"link": "https://cdn.example/a.ogg"})
            )
        );
        let mut sticker = envelope("sticker", "sticker", json!({"id": "5"}));
        sticker["context"] = json!({"message_id": WAMID});
        assert_eq!(
            built(json!({"sticker": {"id": "5"}, "context": {"message_id": WAMID}})),
            sticker
        );
    }

    #[test]
    fn interactive_sends_are_metas_interactive_objects() {
        let buttons = json!({"type": "button",
            "header": {"type": "image", "image": {"link": "https://cdn.example/h.jpg"}},
            "body": {"text": "Keep your 9am slot?"}, "footer": {"text": "Lucky Shrub"},
            "action": {"buttons": [
                {"type": "reply", "reply": {"id": "keep", "title": "Keep"}},
                {"type": "reply", "reply": {"id": "change", "title": "Change"}}]}});
        assert_eq!(
            built(json!({"interactive": buttons.clone()})),
            envelope("interactive", "interactive", buttons)
        );
        let list = json!({"type": "list", "header": {"type": "text", "text": "Shipping"},
            "body": {"text": "Which option?"},
            "action": {"button": "Options", "sections": [
                {"title": "Fast", "rows": [{"id": "express", "title": "Express", "description": "Next day"}]},
                {"title": "Cheap", "rows": [{"id": "ground", "title": "Ground"}]}]}});
        assert_eq!(
            built(json!({"interactive": list.clone()})),
            envelope("interactive", "interactive", list)
        );
    }

    #[test]
    fn location_and_reaction_sends_are_metas_objects() {
        assert_eq!(
            built(
                json!({"location": {"latitude": 38.7223, "longitude": -9.1393,
                "name": "Store", "address": "Rua Augusta 1"}})
            ),
            envelope(
                "location",
                "location",
                json!({"latitude": 38.7223, "longitude": -9.1393, "name": "Store",
                    "address": "Rua Augusta 1"})
            )
        );
        assert_eq!(
            built(json!({"location": {"latitude": 1.5, "longitude": 2.5}})),
            envelope(
                "location",
                "location",
                json!({"latitude": 1.5, "longitude": 2.5})
            )
        );
        assert_eq!(
            built(json!({"reaction": {"message_id": WAMID, "emoji": "👍"}})),
            envelope(
                "reaction",
                "reaction",
                json!({"message_id": WAMID, "emoji": "👍"})
            )
        );
        assert_eq!(
            built(json!({"reaction": {"message_id": WAMID, "emoji": ""}}))["reaction"]["emoji"],
            ""
        );
    }
}
