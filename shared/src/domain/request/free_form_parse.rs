//! Structural parsing of the free-form content keys and of `context`: types, required
//! and unknown fields, each problem at its field's path. Limits (lengths, counts,
//! uniqueness, https, emoji) are validation's ([`crate::domain::validation`]).

use super::free_form::{
    ButtonsAction, InteractiveAction, InteractiveHeader, InteractiveMessage, InteractiveText,
    ListAction, ListRow, ListSection, MediaMessage, MediaSource, MediaType, ReactionMessage,
    ReplyButton, ReplyContext,
};
use super::parse::{field, invalid_type, missing, object, parse_location, string, unknown_fields};
use super::partial::{Slot, optional, required};
use super::{Content, TextMessage};
use crate::domain::validation::{Problem, child, code, item};
use serde_json::{Map, Value};

/// Parse the value of the free-form content key `key` (any of [`Content::KEYS`] but
/// `template`).
pub(super) fn parse_free_form(key: &str, value: &Value, p: &mut Vec<Problem>) -> Slot<Content> {
    let Some(map) = object(value, key, p) else {
        return Slot::Invalid;
    };
    let content = match key {
        "text" => parse_text(map, p).map(Content::Text),
        "interactive" => parse_interactive(map, p).map(Content::Interactive),
        "location" => {
            unknown_fields(map, &["latitude", "longitude", "name", "address"], key, p);
            parse_location(map, key, p).map(Content::Location)
        }
        "reaction" => {
            unknown_fields(map, &["message_id", "emoji"], key, p);
            let message_id = string(map, key, "message_id", true, p);
            let emoji = string(map, key, "emoji", true, p);
            match (message_id, emoji) {
                (Slot::Present(message_id), Slot::Present(emoji)) => {
                    Some(Content::Reaction(ReactionMessage { message_id, emoji }))
                }
                _ => None,
            }
        }
        _ => MediaType::from_key(key).and_then(|kind| {
            parse_media(map, key, kind.takes_caption(), kind.takes_filename(), p)
                .map(|m| Content::from_media(kind, m))
        }),
    };
    content.map_or(Slot::Invalid, Slot::Present)
}

/// `"context": {"message_id": ...}`.
pub(super) fn parse_context(value: &Value, p: &mut Vec<Problem>) -> Slot<ReplyContext> {
    let Some(map) = object(value, "context", p) else {
        return Slot::Invalid;
    };
    unknown_fields(map, &["message_id"], "context", p);
    match string(map, "context", "message_id", true, p) {
        Slot::Present(message_id) => Slot::Present(ReplyContext { message_id }),
        _ => Slot::Invalid,
    }
}

fn parse_text(map: &Map<String, Value>, p: &mut Vec<Problem>) -> Option<TextMessage> {
    unknown_fields(map, &["body", "preview_url"], "text", p);
    let body = string(map, "text", "body", true, p);
    let preview_url = match field(map, "preview_url") {
        None => Some(false),
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            p.push(invalid_type("text.preview_url", "a boolean"));
            None
        }
    };
    match (body, preview_url) {
        (Slot::Present(body), Some(preview_url)) => Some(TextMessage { body, preview_url }),
        _ => None,
    }
}

/// A media object at `at`: exactly one of `link` and `id`, plus `caption` and
/// `filename` where the kind takes them.
fn parse_media(
    map: &Map<String, Value>,
    at: &str,
    caption: bool,
    filename: bool,
    p: &mut Vec<Problem>,
) -> Option<MediaMessage> {
    let mut allowed = vec!["link", "id"];
    if caption {
        allowed.push("caption");
    }
    if filename {
        allowed.push("filename");
    }
    unknown_fields(map, &allowed, at, p);
    let link = string(map, at, "link", false, p);
    let id = string(map, at, "id", false, p);
    let source = match (link, id) {
        (Slot::Present(link), Slot::Absent) => Some(MediaSource::Link(link)),
        (Slot::Absent, Slot::Present(id)) => Some(MediaSource::Id(id)),
        (Slot::Absent, Slot::Absent) => {
            p.push(Problem::new(
                at,
                code::EXACTLY_ONE_OF_LINK_OR_ID,
                format!("`{at}` needs a `link` (https URL) or the `id` of uploaded media"),
            ));
            None
        }
        (Slot::Present(_), Slot::Present(_)) => {
            p.push(Problem::new(
                child(at, "id"),
                code::EXACTLY_ONE_OF_LINK_OR_ID,
                format!("`{at}` takes a `link` or an `id`, not both"),
            ));
            None
        }
        _ => None,
    };
    let caption = if caption {
        optional(string(map, at, "caption", false, p))
    } else {
        Some(None)
    };
    let filename = if filename {
        optional(string(map, at, "filename", false, p))
    } else {
        Some(None)
    };
    Some(MediaMessage {
        source: source?,
        caption: caption?,
        filename: filename?,
    })
}

fn parse_interactive(map: &Map<String, Value>, p: &mut Vec<Problem>) -> Option<InteractiveMessage> {
    let at = "interactive";
    unknown_fields(map, &["type", "header", "body", "footer", "action"], at, p);
    let kind = match string(map, at, "type", true, p) {
        Slot::Present(k) if k == "button" || k == "list" => Some(k),
        Slot::Present(_) => {
            p.push(Problem::new(
                child(at, "type"),
                code::INVALID_VALUE,
                "interactive type must be button or list",
            ));
            None
        }
        _ => None,
    };
    let header = match field(map, "header") {
        None => Some(None),
        Some(v) => parse_header(v, p).map(Some),
    };
    let body = match field(map, "body") {
        None => {
            p.push(missing("interactive.body"));
            None
        }
        Some(v) => parse_text_object(v, "interactive.body", p),
    };
    let footer = match field(map, "footer") {
        None => Some(None),
        Some(v) => parse_text_object(v, "interactive.footer", p).map(Some),
    };
    let action = match (kind.as_deref(), field(map, "action")) {
        (_, None) => {
            p.push(missing("interactive.action"));
            None
        }
        (None, Some(_)) => None,
        (Some(kind), Some(v)) => object(v, "interactive.action", p).and_then(|m| {
            if kind == "button" {
                parse_buttons(m, p).map(InteractiveAction::Button)
            } else {
                parse_list(m, p).map(InteractiveAction::List)
            }
        }),
    };
    Some(InteractiveMessage {
        action: action?,
        header: header?,
        body: body?,
        footer: footer?,
    })
}

/// `{"text": ...}` at `at`.
fn parse_text_object(value: &Value, at: &str, p: &mut Vec<Problem>) -> Option<InteractiveText> {
    let map = object(value, at, p)?;
    unknown_fields(map, &["text"], at, p);
    required(string(map, at, "text", true, p)).map(|text| InteractiveText { text })
}

fn parse_header(value: &Value, p: &mut Vec<Problem>) -> Option<InteractiveHeader> {
    let at = "interactive.header";
    let map = object(value, at, p)?;
    let Slot::Present(kind) = string(map, at, "type", true, p) else {
        return None;
    };
    if !["text", "image", "video", "document"].contains(&kind.as_str()) {
        p.push(Problem::new(
            child(at, "type"),
            code::INVALID_VALUE,
            "interactive header type must be text, image, video or document",
        ));
        return None;
    }
    unknown_fields(map, &["type", kind.as_str()], at, p);
    if kind == "text" {
        return required(string(map, at, "text", true, p))
            .map(|text| InteractiveHeader::Text { text });
    }
    let path = child(at, &kind);
    let media = match field(map, &kind) {
        None => {
            p.push(missing(&path));
            None
        }
        Some(v) => {
            object(v, &path, p).and_then(|m| parse_media(m, &path, false, kind == "document", p))
        }
    }?;
    Some(match kind.as_str() {
        "image" => InteractiveHeader::Image { image: media },
        "video" => InteractiveHeader::Video { video: media },
        _ => InteractiveHeader::Document { document: media },
    })
}

/// The elements of the array `key` of `map` (at `at`), each parsed by `each`.
fn list<T>(
    map: &Map<String, Value>,
    at: &str,
    key: &str,
    p: &mut Vec<Problem>,
    mut each: impl FnMut(&Value, &str, &mut Vec<Problem>) -> Option<T>,
) -> Option<Vec<T>> {
    let path = child(at, key);
    match field(map, key) {
        None => {
            p.push(missing(&path));
            None
        }
        Some(Value::Array(values)) => {
            let parsed: Vec<Option<T>> = values
                .iter()
                .enumerate()
                .map(|(i, v)| each(v, &item(&path, i), p))
                .collect();
            parsed.into_iter().collect()
        }
        Some(_) => {
            p.push(invalid_type(&path, "an array"));
            None
        }
    }
}

fn parse_buttons(map: &Map<String, Value>, p: &mut Vec<Problem>) -> Option<ButtonsAction> {
    let at = "interactive.action";
    unknown_fields(map, &["buttons"], at, p);
    let buttons = list(map, at, "buttons", p, |v, path, p| {
        let m = object(v, path, p)?;
        unknown_fields(m, &["type", "reply"], path, p);
        let kind = match string(m, path, "type", true, p) {
            Slot::Present(k) if k == "reply" => Some(()),
            Slot::Present(_) => {
                p.push(Problem::new(
                    child(path, "type"),
                    code::INVALID_VALUE,
                    "reply button type must be reply",
                ));
                None
            }
            _ => None,
        };
        let reply_path = child(path, "reply");
        let reply = match field(m, "reply") {
            None => {
                p.push(missing(&reply_path));
                None
            }
            Some(r) => object(r, &reply_path, p).and_then(|r| {
                unknown_fields(r, &["id", "title"], &reply_path, p);
                let id = string(r, &reply_path, "id", true, p);
                let title = string(r, &reply_path, "title", true, p);
                match (id, title) {
                    (Slot::Present(id), Slot::Present(title)) => Some(ReplyButton { id, title }),
                    _ => None,
                }
            }),
        };
        kind?;
        reply
    })?;
    Some(ButtonsAction { buttons })
}

fn parse_list(map: &Map<String, Value>, p: &mut Vec<Problem>) -> Option<ListAction> {
    let at = "interactive.action";
    unknown_fields(map, &["button", "sections"], at, p);
    let button = string(map, at, "button", true, p);
    let sections = list(map, at, "sections", p, |v, path, p| {
        let m = object(v, path, p)?;
        unknown_fields(m, &["title", "rows"], path, p);
        let title = optional(string(m, path, "title", false, p));
        let rows = list(m, path, "rows", p, |v, path, p| {
            let r = object(v, path, p)?;
            unknown_fields(r, &["id", "title", "description"], path, p);
            let id = string(r, path, "id", true, p);
            let title = string(r, path, "title", true, p);
            let description = optional(string(r, path, "description", false, p));
            match (id, title, description) {
                (Slot::Present(id), Slot::Present(title), Some(description)) => Some(ListRow {
                    id,
                    title,
                    description,
                }),
                _ => None,
            }
        });
        Some(ListSection {
            title: title?,
            rows: rows?,
        })
    });
    Some(ListAction {
        button: required(button)?,
        sections: sections?,
    })
}
