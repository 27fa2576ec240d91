//! Inbound messages (`value.messages[]` of a `messages` change): they open the 24-hour
//! window and carry opt-out/opt-in keywords.

use super::ItemList;
use super::parse::{Scope, read_error};
use super::{WebhookError, WebhookEvent, wire};
use crate::domain::{PhoneNumberId, Timestamp, Wamid};

/// A message a user sent to one of our numbers (`value.messages[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// `entry.id`: the WABA.
    pub waba_id: String,
    /// `value.metadata.phone_number_id`: the number written to.
    pub phone_number_id: Option<PhoneNumberId>,
    /// `id`: the message's wamid.
    pub id: Option<Wamid>,
    /// `from`: the user's wa_id (phone digits); absent for username-only users.
    pub from: Option<String>,
    /// `from_user_id`: the user's BSUID.
    pub from_user_id: Option<String>,
    /// `timestamp`.
    pub timestamp: Option<Timestamp>,
    /// `type` as Meta sent it (`text`, `button`, `interactive`, `image`, …).
    pub message_type: Option<String>,
    /// The part of the content we act on.
    pub content: InboundContent,
    /// `context.id`: the wamid this message replies to.
    pub context_wamid: Option<Wamid>,
    /// `context.from`: who sent the message replied to (our business number).
    pub context_from: Option<String>,
    /// `contacts[].profile.name` of the sender.
    pub profile_name: Option<String>,
    /// `errors[]` (e.g. on `unsupported` messages).
    pub errors: Vec<WebhookError>,
}

/// The content of an inbound message, as far as the pipeline reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundContent {
    /// `type: text`: `text.body`.
    Text {
        /// The text.
        body: String,
    },
    /// `type: button`: a tap on a template quick-reply button.
    QuickReply {
        /// `button.text`: the label.
        text: Option<String>,
        /// `button.payload`: the payload set when sending the template.
        payload: Option<String>,
    },
    /// `type: interactive` with `button_reply` or `list_reply`.
    InteractiveReply {
        /// `button_reply` or `list_reply`.
        reply: ReplyKind,
        /// The reply's `id`.
        id: Option<String>,
        /// The reply's `title`.
        title: Option<String>,
        /// A list row's `description`.
        description: Option<String>,
    },
    /// `type: image|video|audio|document|sticker`: a media reference (the media is
    /// fetched from Graph by `id`; it is not copied here).
    Media {
        /// Meta's `type`: `image`, `video`, `audio`, `document` or `sticker`.
        kind: String,
        /// The media id.
        id: Option<String>,
        /// Its MIME type.
        mime_type: Option<String>,
        /// Its SHA-256, as Meta gives it.
        sha256: Option<String>,
        /// The caption (image, video, document).
        caption: Option<String>,
        /// The file name (document).
        filename: Option<String>,
    },
    /// `type: reaction`: an emoji on one of our messages (empty emoji: removed).
    Reaction {
        /// The wamid reacted to.
        message_id: Option<String>,
        /// The emoji.
        emoji: Option<String>,
    },
    /// `type: location`: a shared location.
    Location {
        /// Latitude in degrees.
        latitude: Option<f64>,
        /// Longitude in degrees.
        longitude: Option<f64>,
        /// The place's name.
        name: Option<String>,
        /// The place's address.
        address: Option<String>,
    },
    /// Any other type (contacts, order, unsupported, a flow reply…): see `message_type`.
    Other,
}

/// Which interactive element a user answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// A reply button.
    Button,
    /// A list row.
    List,
}

impl InboundMessage {
    /// The words the user sent or chose (text body, button label, reply title), e.g.
    /// for opt-out keywords.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            InboundContent::Text { body } => Some(body),
            InboundContent::QuickReply { text, .. } => text.as_deref(),
            InboundContent::InteractiveReply { title, .. } => title.as_deref(),
            InboundContent::Media { .. }
            | InboundContent::Reaction { .. }
            | InboundContent::Location { .. }
            | InboundContent::Other => None,
        }
    }

    /// The machine id of the choice (quick-reply payload or interactive reply id).
    pub fn reply_id(&self) -> Option<&str> {
        match &self.content {
            InboundContent::QuickReply { payload, .. } => payload.as_deref(),
            InboundContent::InteractiveReply { id, .. } => id.as_deref(),
            InboundContent::Text { .. }
            | InboundContent::Media { .. }
            | InboundContent::Reaction { .. }
            | InboundContent::Location { .. }
            | InboundContent::Other => None,
        }
    }
}

/// Turn `messages[index]` into an [`InboundMessage`] event; one with neither `from`
/// nor `from_user_id` tells us nothing about a user and is dropped (reported).
pub(super) fn read(
    scope: &mut Scope<'_>,
    phone_number_id: &Option<PhoneNumberId>,
    contacts: &[wire::Contact],
    index: usize,
    message: wire::Message,
) {
    let list = ItemList::Messages;
    if message.from.is_none() && message.from_user_id.is_none() {
        scope.drop_item(list, index, "no `from` or `from_user_id`".to_owned());
        return;
    }
    let timestamp = scope.item_time(list, index, message.timestamp.as_ref());
    let profile_name = sender_contact(contacts, &message)
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.name.clone());
    let content = content(&message);
    scope.emit(WebhookEvent::Inbound(InboundMessage {
        waba_id: scope.origin.waba_id.to_owned(),
        phone_number_id: phone_number_id.clone(),
        id: message.id.as_deref().and_then(|id| Wamid::parse(id).ok()),
        from: message.from,
        from_user_id: message.from_user_id,
        timestamp,
        message_type: message.message_type,
        content,
        context_wamid: message
            .context
            .as_ref()
            .and_then(|c| c.id.as_deref())
            .and_then(|id| Wamid::parse(id).ok()),
        context_from: message.context.as_ref().and_then(|c| c.from.clone()),
        profile_name,
        errors: message
            .errors
            .into_iter()
            .flatten()
            .map(read_error)
            .collect(),
    }));
}

/// The `contacts[]` entry of the sender: matched by wa_id or BSUID, or the only one.
fn sender_contact<'c>(
    contacts: &'c [wire::Contact],
    message: &wire::Message,
) -> Option<&'c wire::Contact> {
    let matches = |c: &&wire::Contact| {
        let by_phone = message.from.is_some() && c.wa_id == message.from;
        let by_user = message.from_user_id.is_some() && c.user_id == message.from_user_id;
        by_phone || by_user
    };
    match contacts.iter().find(matches) {
        Some(contact) => Some(contact),
        None if contacts.len() == 1 => contacts.first(),
        None => None,
    }
}

fn content(message: &wire::Message) -> InboundContent {
    match message.message_type.as_deref() {
        Some("text") => match message.text.as_ref().and_then(|t| t.body.clone()) {
            Some(body) => InboundContent::Text { body },
            None => InboundContent::Other,
        },
        Some("button") => {
            let button = message.button.as_ref();
            InboundContent::QuickReply {
                text: button.and_then(|b| b.text.clone()),
                payload: button.and_then(|b| b.payload.clone()),
            }
        }
        Some("interactive") => {
            let interactive = message.interactive.as_ref();
            let button = interactive.and_then(|i| i.button_reply.as_ref());
            let list = interactive.and_then(|i| i.list_reply.as_ref());
            let (reply, chosen) = match (button, list) {
                (Some(b), _) => (ReplyKind::Button, b),
                (None, Some(l)) => (ReplyKind::List, l),
                // nfm_reply (flows) and other interactive answers are not read here.
                (None, None) => return InboundContent::Other,
            };
            InboundContent::InteractiveReply {
                reply,
                id: chosen.id.clone(),
                title: chosen.title.clone(),
                description: chosen.description.clone(),
            }
        }
        Some(kind @ ("image" | "video" | "audio" | "document" | "sticker")) => {
            let media = match kind {
                "image" => message.image.as_ref(),
                "video" => message.video.as_ref(),
                "audio" => message.audio.as_ref(),
                "document" => message.document.as_ref(),
                _ => message.sticker.as_ref(),
            };
            match media {
                Some(m) => InboundContent::Media {
                    kind: kind.to_owned(),
                    id: m.id.clone(),
                    mime_type: m.mime_type.clone(),
                    sha256: m.sha256.clone(),
                    caption: m.caption.clone(),
                    filename: m.filename.clone(),
                },
                None => InboundContent::Other,
            }
        }
        Some("reaction") => match message.reaction.as_ref() {
            Some(r) => InboundContent::Reaction {
                message_id: r.message_id.clone(),
                emoji: r.emoji.clone(),
            },
            None => InboundContent::Other,
        },
        Some("location") => match message.location.as_ref() {
            Some(l) => InboundContent::Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name.clone(),
                address: l.address.clone(),
            },
            None => InboundContent::Other,
        },
        _ => InboundContent::Other,
    }
}
