//! The free-form (non-template) message types, sendable only inside the 24-hour
//! customer service window. Each serializes to its canonical request JSON, which is
//! also the object Meta's Graph API takes under the same key.
//!
//! ```json
//! {"to": "+14155550123", "image": {"link": "https://cdn.example/a.jpg", "caption": "Your receipt"}}
//! {"to": "+14155550123", "document": {"id": "1013859600285441", "filename": "invoice.pdf"}}
//! {"to": "+14155550123", "interactive": {"type": "button", "body": {"text": "Confirm?"},
//!   "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]}}}
//! {"to": "+14155550123", "location": {"latitude": 38.72, "longitude": -9.14, "name": "Store"}}
//! {"to": "+14155550123", "reaction": {"message_id": "wamid.HBgL...", "emoji": "👍"}}
//! ```

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// `"context": {"message_id": "wamid..."}`: send the message as a quoted reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyContext {
    /// The wamid of the message replied to.
    pub message_id: String,
}

/// Where a media file comes from: exactly one of a link or an uploaded media id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    /// `"link": "https://..."`.
    Link(String),
    /// `"id": "<media id>"` of media uploaded to Meta.
    Id(String),
}

/// An image, document, video, audio or sticker message, or an interactive header's media.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaMessage {
    /// The file.
    #[serde(flatten)]
    pub source: MediaSource,
    /// Image, document and video messages only (≤ 1024 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Documents only: the file name shown to the recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// The media message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `image`.
    Image,
    /// `document`.
    Document,
    /// `video`.
    Video,
    /// `audio`.
    Audio,
    /// `sticker`.
    Sticker,
}

impl MediaType {
    /// Every kind, in the order the API lists them.
    pub const ALL: [MediaType; 5] = [
        MediaType::Image,
        MediaType::Document,
        MediaType::Video,
        MediaType::Audio,
        MediaType::Sticker,
    ];

    /// The request key and Graph `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Document => "document",
            MediaType::Video => "video",
            MediaType::Audio => "audio",
            MediaType::Sticker => "sticker",
        }
    }

    /// The kind named `key`.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == key)
    }

    /// Whether Meta takes a `caption` for this kind.
    pub fn takes_caption(self) -> bool {
        matches!(
            self,
            MediaType::Image | MediaType::Document | MediaType::Video
        )
    }

    /// Whether Meta takes a `filename` for this kind.
    pub fn takes_filename(self) -> bool {
        self == MediaType::Document
    }
}

/// An interactive message: reply buttons or a list. Serialized in Meta's order:
/// `type`, `header`, `body`, `footer`, `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractiveMessage {
    /// `"type"` and `"action"`.
    pub action: InteractiveAction,
    /// Optional header (lists: text only).
    pub header: Option<InteractiveHeader>,
    /// The message text (required).
    pub body: InteractiveText,
    /// Optional footer text (≤ 60 characters).
    pub footer: Option<InteractiveText>,
}

impl Serialize for InteractiveMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.action.type_name())?;
        if let Some(header) = &self.header {
            map.serialize_entry("header", header)?;
        }
        map.serialize_entry("body", &self.body)?;
        if let Some(footer) = &self.footer {
            map.serialize_entry("footer", footer)?;
        }
        match &self.action {
            InteractiveAction::Button(a) => map.serialize_entry("action", a)?,
            InteractiveAction::List(a) => map.serialize_entry("action", a)?,
        }
        map.end()
    }
}

/// `{"text": ...}` of an interactive body or footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InteractiveText {
    /// The text.
    pub text: String,
}

/// The interactive kind (`"type"`) with its `"action"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractiveAction {
    /// `"type": "button"`: 1 to 3 reply buttons.
    Button(ButtonsAction),
    /// `"type": "list"`: a button opening sections of rows.
    List(ListAction),
}

impl InteractiveAction {
    /// The interactive `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            InteractiveAction::Button(_) => "button",
            InteractiveAction::List(_) => "list",
        }
    }
}

/// `action` of a reply-buttons message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ButtonsAction {
    /// The buttons, in display order.
    pub buttons: Vec<ReplyButton>,
}

/// One reply button: `{"type": "reply", "reply": {"id": ..., "title": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyButton {
    /// Echoed back in the user's reply (≤ 256 characters, unique).
    pub id: String,
    /// Label (≤ 20 characters, unique).
    pub title: String,
}

impl Serialize for ReplyButton {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Reply<'a> {
            id: &'a str,
            title: &'a str,
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", "reply")?;
        map.serialize_entry(
            "reply",
            &Reply {
                id: &self.id,
                title: &self.title,
            },
        )?;
        map.end()
    }
}

/// `action` of a list message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListAction {
    /// The label of the button that opens the list (≤ 20 characters).
    pub button: String,
    /// 1 to 10 sections, at most 10 rows in all.
    pub sections: Vec<ListSection>,
}

/// One section of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListSection {
    /// Section title (≤ 24 characters; required when there are several sections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The rows.
    pub rows: Vec<ListRow>,
}

/// One row of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListRow {
    /// Echoed back in the user's reply (≤ 200 characters, unique in the list).
    pub id: String,
    /// Row title (≤ 24 characters).
    pub title: String,
    /// Row description (≤ 72 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The header of an interactive message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InteractiveHeader {
    /// `{"type": "text", "text": ...}` (≤ 60 characters).
    Text {
        /// The header text.
        text: String,
    },
    /// `{"type": "image", "image": {"link"|"id": ...}}` (reply buttons only).
    Image {
        /// The image.
        image: MediaMessage,
    },
    /// `{"type": "video", "video": {...}}` (reply buttons only).
    Video {
        /// The video.
        video: MediaMessage,
    },
    /// `{"type": "document", "document": {..., "filename"?}}` (reply buttons only).
    Document {
        /// The document.
        document: MediaMessage,
    },
}

impl InteractiveHeader {
    /// The header's `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            InteractiveHeader::Text { .. } => "text",
            InteractiveHeader::Image { .. } => "image",
            InteractiveHeader::Video { .. } => "video",
            InteractiveHeader::Document { .. } => "document",
        }
    }

    /// The media of a media header.
    pub fn media(&self) -> Option<&MediaMessage> {
        match self {
            InteractiveHeader::Text { .. } => None,
            InteractiveHeader::Image { image: m }
            | InteractiveHeader::Video { video: m }
            | InteractiveHeader::Document { document: m } => Some(m),
        }
    }

    pub(crate) fn media_mut(&mut self) -> Option<&mut MediaMessage> {
        match self {
            InteractiveHeader::Text { .. } => None,
            InteractiveHeader::Image { image: m }
            | InteractiveHeader::Video { video: m }
            | InteractiveHeader::Document { document: m } => Some(m),
        }
    }
}

/// A reaction to a message the user sent: an emoji, or `""` to remove one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReactionMessage {
    /// The wamid of the message reacted to.
    pub message_id: String,
    /// One emoji, or empty to remove the reaction.
    pub emoji: String,
}
