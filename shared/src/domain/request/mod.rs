//! The send request accepted by `POST /v1/messages`, in its canonical form.
//!
//! ```json
//! {"to": "+14155550123",
//!  "template": {"name": "order_shipped", "language": "en_US",
//!               "header": {"type": "image", "link": "https://cdn.example/a.jpg"},
//!               "body": ["Ana", "#1234"],
//!               "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]},
//!  "metadata": {"order": "1234"}}
//! ```
//! Optional beside the content: `from` (a business number id of the tenant) and
//! `send_at` (RFC 3339; a future instant schedules the send).
//! or `{"to": ..., "text": {"body": "...", "preview_url": false}, "metadata": ...}`, or one of
//! the other free-form types of [`free_form`] (`image`, `document`, `video`, `audio`,
//! `sticker`, `interactive`, `location`, `reaction`): exactly one content key. Any
//! content but a template or a reaction may add `"context": {"message_id": "wamid..."}`
//! to be sent as a quoted reply.
//!
//! - `header`: `{"type":"text","text":..}` (optional `parameter_name`, filled in by
//!   validation for named templates), `{"type":"image"|"video","link":"https://.."}`,
//!   `{"type":"document","link":..,"filename":..?}`,
//!   `{"type":"location","latitude":..,"longitude":..,"name":..?,"address":..?}`.
//! - `body`: an array for positional templates, an object for named ones. Each value is a
//!   string, `{"type":"currency","fallback_value":"$10.50","code":"USD","amount_1000":10500}`
//!   or `{"type":"date_time","fallback_value":"June 3, 2026"}`.
//! - `buttons`: `{"index":n,"type":"url","text":suffix}`, `{"index":n,"type":"quick_reply",
//!   "payload":..?}`, `{"index":n,"type":"copy_code","coupon_code":..}`.
//!
//! Values of these types only come out of [`SendRequest::from_json`] (structure) or
//! validation (structure and template); serializing gives the canonical JSON back.

mod free_form;
mod free_form_parse;
mod parse;
mod partial;

pub use free_form::{
    ButtonsAction, InteractiveAction, InteractiveHeader, InteractiveMessage, InteractiveText,
    ListAction, ListRow, ListSection, MediaMessage, MediaSource, MediaType, ReactionMessage,
    ReplyButton, ReplyContext,
};

pub(crate) use parse::parse_partial;
pub(crate) use partial::{PartialBody, PartialTemplate, Slot};

use crate::domain::template::MediaKind;
use crate::domain::validation::Problem;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A request to send one message to one recipient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendRequest {
    /// Recipient as given (validation normalises it to E.164).
    pub to: String,
    /// Send as a quoted reply to this message (not with templates or reactions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ReplyContext>,
    /// A template or a free-form message.
    #[serde(flatten)]
    pub content: Content,
    /// Caller's own data, stored and returned, never sent to Meta (≤ 1 KiB serialized).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// The tenant's business phone number id to send from (absent: its default number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// When to send (RFC 3339, canonical UTC with milliseconds): a future instant keeps
    /// the message `scheduled` until then (at most 30 days ahead, checked by intake).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
}

impl SendRequest {
    /// Parse the structure of a request (types, required and unknown fields), without a
    /// template. Every problem is returned, each with the path of the field at fault.
    pub fn from_json(json: &Value) -> Result<Self, Vec<Problem>> {
        let (partial, problems) = parse_partial(json);
        match partial.into_request() {
            Some(request) if problems.is_empty() => Ok(request),
            _ => Err(problems),
        }
    }

    /// The canonical JSON of this request.
    pub fn to_json(&self) -> Value {
        // Serializing these plain types cannot fail (string keys, finite numbers checked
        // at parse time); Null is an honest fallback that validation would refuse.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl<'de> Deserialize<'de> for SendRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        SendRequest::from_json(&value).map_err(|problems| {
            let text: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            serde::de::Error::custom(text.join("; "))
        })
    }
}

/// What is sent: a template, or one free-form message (only inside the 24-hour
/// customer service window).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// `"template": {...}`.
    Template(TemplateMessage),
    /// `"text": {...}`.
    Text(TextMessage),
    /// `"image": {...}`.
    Image(MediaMessage),
    /// `"document": {...}`.
    Document(MediaMessage),
    /// `"video": {...}`.
    Video(MediaMessage),
    /// `"audio": {...}`.
    Audio(MediaMessage),
    /// `"sticker": {...}`.
    Sticker(MediaMessage),
    /// `"interactive": {...}`.
    Interactive(InteractiveMessage),
    /// `"location": {...}`.
    Location(LocationParam),
    /// `"reaction": {...}`.
    Reaction(ReactionMessage),
}

impl Content {
    /// Every content key of a request, `template` first.
    pub const KEYS: [&'static str; 10] = [
        "template",
        "text",
        "image",
        "document",
        "video",
        "audio",
        "sticker",
        "interactive",
        "location",
        "reaction",
    ];

    /// The request key and Graph `type` of this content.
    pub fn type_name(&self) -> &'static str {
        match self {
            Content::Template(_) => "template",
            Content::Text(_) => "text",
            Content::Interactive(_) => "interactive",
            Content::Location(_) => "location",
            Content::Reaction(_) => "reaction",
            Content::Image(_) => "image",
            Content::Document(_) => "document",
            Content::Video(_) => "video",
            Content::Audio(_) => "audio",
            Content::Sticker(_) => "sticker",
        }
    }

    /// Whether this is a template send; every other content is free-form, allowed only
    /// inside the 24-hour customer service window.
    pub fn is_template(&self) -> bool {
        matches!(self, Content::Template(_))
    }

    /// The media message kind and object, for media content.
    pub fn media(&self) -> Option<(MediaType, &MediaMessage)> {
        match self {
            Content::Image(m) => Some((MediaType::Image, m)),
            Content::Document(m) => Some((MediaType::Document, m)),
            Content::Video(m) => Some((MediaType::Video, m)),
            Content::Audio(m) => Some((MediaType::Audio, m)),
            Content::Sticker(m) => Some((MediaType::Sticker, m)),
            _ => None,
        }
    }

    /// A media message of kind `kind`.
    pub fn from_media(kind: MediaType, media: MediaMessage) -> Self {
        match kind {
            MediaType::Image => Content::Image(media),
            MediaType::Document => Content::Document(media),
            MediaType::Video => Content::Video(media),
            MediaType::Audio => Content::Audio(media),
            MediaType::Sticker => Content::Sticker(media),
        }
    }
}

/// A template send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateMessage {
    /// Template name.
    pub name: String,
    /// Exact locale of the approved template (`en_US`).
    pub language: String,
    /// The header's value, if the template's header takes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderParam>,
    /// The body's values, if the body has variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyParams>,
    /// Values of the buttons that take one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<ButtonParam>,
}

/// A free-form text send (only inside the 24-hour customer service window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextMessage {
    /// Up to 4096 characters; newlines allowed.
    pub body: String,
    /// Render a link preview.
    pub preview_url: bool,
}

/// The value of a template header.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HeaderParam {
    /// The one variable of a text header.
    Text {
        /// The value (≤ 60 characters).
        text: String,
        /// The variable's name in named templates.
        #[serde(skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    /// An image by HTTPS link.
    Image {
        /// `https://` URL.
        link: String,
    },
    /// A video by HTTPS link.
    Video {
        /// `https://` URL.
        link: String,
    },
    /// A document by HTTPS link.
    Document {
        /// `https://` URL.
        link: String,
        /// File name shown to the recipient.
        #[serde(skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// A location.
    Location(LocationParam),
}

impl HeaderParam {
    /// The request's `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            HeaderParam::Text { .. } => "text",
            HeaderParam::Image { .. } => "image",
            HeaderParam::Video { .. } => "video",
            HeaderParam::Document { .. } => "document",
            HeaderParam::Location(_) => "location",
        }
    }

    /// The media kind of a media header.
    pub fn media_kind(&self) -> Option<MediaKind> {
        match self {
            HeaderParam::Image { .. } => Some(MediaKind::Image),
            HeaderParam::Video { .. } => Some(MediaKind::Video),
            HeaderParam::Document { .. } => Some(MediaKind::Document),
            HeaderParam::Text { .. } | HeaderParam::Location(_) => None,
        }
    }
}

/// A location header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocationParam {
    /// Latitude in degrees, -90..=90.
    pub latitude: f64,
    /// Longitude in degrees, -180..=180.
    pub longitude: f64,
    /// Place name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Street address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The body's values.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyParams {
    /// `["Ana", "#1234"]` for `{{1}}`, `{{2}}`.
    Positional(Vec<ParamValue>),
    /// `{"first_name": "Ana"}`, in the caller's order.
    Named(Vec<NamedValue>),
}

impl Serialize for BodyParams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BodyParams::Positional(values) => values.serialize(serializer),
            BodyParams::Named(values) => {
                let mut map = serializer.serialize_map(Some(values.len()))?;
                for v in values {
                    map.serialize_entry(&v.name, &v.value)?;
                }
                map.end()
            }
        }
    }
}

/// One named body value.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedValue {
    /// The variable name.
    pub name: String,
    /// Its value.
    pub value: ParamValue,
}

/// One body value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Plain text (≤ 1024 characters, 32768 in body-only templates).
    Text(String),
    /// An amount, localised by WhatsApp; `fallback_value` is shown where it cannot be.
    Currency {
        /// Text shown as is.
        fallback_value: String,
        /// ISO 4217 code, e.g. `USD`.
        code: String,
        /// Amount times 1000.
        amount_1000: i64,
    },
    /// A date and time; Cloud API always shows `fallback_value`.
    DateTime {
        /// Text shown as is.
        fallback_value: String,
    },
}

impl ParamValue {
    /// The text the recipient sees (the value, or the fallback).
    pub fn visible_text(&self) -> &str {
        match self {
            ParamValue::Text(s) => s,
            ParamValue::Currency { fallback_value, .. }
            | ParamValue::DateTime { fallback_value } => fallback_value,
        }
    }

    pub(crate) fn visible_text_mut(&mut self) -> &mut String {
        match self {
            ParamValue::Text(s) => s,
            ParamValue::Currency { fallback_value, .. }
            | ParamValue::DateTime { fallback_value } => fallback_value,
        }
    }
}

impl Serialize for ParamValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ParamValue::Text(s) => s.serialize(serializer),
            ParamValue::Currency {
                fallback_value,
                code,
                amount_1000,
            } => {
                let mut map = serializer.serialize_map(Some(4))?;
                map.serialize_entry("type", "currency")?;
                map.serialize_entry("fallback_value", fallback_value)?;
                map.serialize_entry("code", code)?;
                map.serialize_entry("amount_1000", amount_1000)?;
                map.end()
            }
            ParamValue::DateTime { fallback_value } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("type", "date_time")?;
                map.serialize_entry("fallback_value", fallback_value)?;
                map.end()
            }
        }
    }
}

/// The value of one template button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ButtonParam {
    /// Zero-based position of the button in the template.
    pub index: usize,
    /// What the button gets.
    #[serde(flatten)]
    pub value: ButtonValue,
}

/// What a button gets, by the button's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ButtonValue {
    /// The suffix of a dynamic URL button, or the code of an OTP button.
    Url {
        /// The suffix (percent-encoded by the caller where needed).
        text: String,
    },
    /// A quick reply's payload, echoed back when the user taps it.
    QuickReply {
        /// The payload; none sends the button without one.
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<String>,
    },
    /// The code of a `COPY_CODE` button.
    CopyCode {
        /// The code (≤ 15 characters, 20 in marketing templates).
        coupon_code: String,
    },
}

impl ButtonValue {
    /// The request's `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            ButtonValue::Url { .. } => "url",
            ButtonValue::QuickReply { .. } => "quick_reply",
            ButtonValue::CopyCode { .. } => "copy_code",
        }
    }
}
