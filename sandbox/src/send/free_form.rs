//! The objects of free-form sends, checked the way Meta checks them (reference §1 and
//! Meta's pages on media, interactive reply-buttons and list, location and reaction
//! messages, and contextual replies), independently of the pipeline's own validator so
//! the sandbox refuses what that validator would have let through wrongly.
//!
//! Codes: a missing required parameter is 131008; a value out of Meta's limits (length,
//! count, range, duplicate) is 131009; a parameter of the wrong type, or one the type
//! does not take, is 100. `details` names the parameter like Meta does
//! (`interactive['action']['buttons'][0]['reply']['title']`).
//!
//! Interactive types other than `button` and `list` (cta_url, flow, product, ...) are
//! accepted without looking inside: the pipeline does not send them.

use crate::meta_error::MetaError;
use serde_json::{Map, Value};
use std::collections::HashSet;

const MAX_CAPTION: usize = 1024;
const MAX_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;
const MAX_BUTTON_ID: usize = 256;
const MAX_BUTTONS_BODY: usize = 1024;
const MAX_LIST_BODY: usize = 4096;
const MAX_LIST_BUTTON: usize = 20;
const MAX_SECTIONS: usize = 10;
const MAX_ROWS: usize = 10;
const MAX_SECTION_TITLE: usize = 24;
const MAX_ROW_TITLE: usize = 24;
const MAX_ROW_DESCRIPTION: usize = 72;
const MAX_ROW_ID: usize = 200;
const MAX_HEADER_TEXT: usize = 60;
const MAX_FOOTER: usize = 60;
/// Interactive types Meta documents besides `button` and `list`.
const OTHER_INTERACTIVE: [&str; 7] = [
    "cta_url",
    "flow",
    "product",
    "product_list",
    "catalog_message",
    "location_request_message",
    "address_message",
];

/// The body's reply `context`, for a free-form send of type `kind` (Meta also takes it
/// with templates, only without showing the quote: not checked there).
pub(super) fn check_context(kind: &str, body: &Map<String, Value>) -> Result<(), MetaError> {
    let Some(context) = body.get("context").filter(|c| !c.is_null()) else {
        return Ok(());
    };
    let context = object(context, "context")?;
    allowed(context, "context", &["message_id"])?;
    required_str(context, "context", "message_id")?;
    if kind == "reaction" {
        return Err(MetaError::new(
            100,
            "A reaction message cannot be sent as a contextual reply (context)",
        ));
    }
    Ok(())
}

/// Check the object of a free-form send of type `kind` (not `text`, not `template`).
pub(super) fn check(kind: &str, body: &Map<String, Value>) -> Result<(), MetaError> {
    let Some(value) = body.get(kind).filter(|v| !v.is_null()) else {
        return Err(MetaError::new(
            131008,
            format!("The parameter {kind} is required."),
        ));
    };
    let map = object(value, kind)?;
    match kind {
        "image" | "document" | "video" => media(map, kind, true, kind == "document"),
        "audio" | "sticker" => media(map, kind, false, false),
        "interactive" => interactive(map),
        "location" => location(map),
        "reaction" => reaction(map),
        // `contacts` and anything else the pipeline does not send: not looked into.
        _ => Ok(()),
    }
}

/// `text` objects: `body` required (1–4096 characters, checked by the caller),
/// `preview_url` a boolean.
pub(super) fn check_text(text: &Map<String, Value>) -> Result<(), MetaError> {
    allowed(text, "text", &["body", "preview_url"])?;
    match text.get("preview_url") {
        None | Some(Value::Null | Value::Bool(_)) => Ok(()),
        Some(_) => Err(MetaError::new(
            100,
            "Param text['preview_url'] must be a boolean",
        )),
    }
}

fn path(parent: &str, key: &str) -> String {
    format!("{parent}['{key}']")
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, MetaError> {
    value
        .as_object()
        .ok_or_else(|| MetaError::new(100, format!("Param {at} must be a JSON object")))
}

fn allowed(map: &Map<String, Value>, at: &str, keys: &[&str]) -> Result<(), MetaError> {
    match map.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(MetaError::new(
            100,
            format!("Param {} is not a valid parameter", path(at, k)),
        )),
        None => Ok(()),
    }
}

fn optional_str<'a>(
    map: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<&'a str>, MetaError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(MetaError::new(
            100,
            format!("Param {} must be a string", path(at, key)),
        )),
    }
}

fn required_str<'a>(
    map: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<&'a str, MetaError> {
    optional_str(map, at, key)?.ok_or_else(|| {
        MetaError::new(
            131008,
            format!("The parameter {} is required.", path(at, key)),
        )
    })
}

/// A text of 1 to `max` characters (blank counts as empty, as Meta trims).
fn length(text: &str, at: &str, max: usize) -> Result<(), MetaError> {
    let n = text.chars().count();
    if text.trim().is_empty() || n > max {
        return Err(MetaError::new(
            131009,
            format!("{at} length invalid: {n}. Min length: 1, Max length: {max}"),
        ));
    }
    Ok(())
}

fn media(
    map: &Map<String, Value>,
    at: &str,
    caption: bool,
    filename: bool,
) -> Result<(), MetaError> {
    let mut keys = vec!["link", "id"];
    if caption {
        keys.push("caption");
    }
    if filename {
        keys.push("filename");
    }
    allowed(map, at, &keys)?;
    let link = optional_str(map, at, "link")?;
    let id = optional_str(map, at, "id")?;
    match (link, id) {
        (None, None) => {
            return Err(MetaError::new(
                131008,
                format!("The parameter {at}['link'] or {at}['id'] is required."),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(MetaError::new(
                100,
                format!("Param {at} must have either link or id, not both"),
            ));
        }
        (Some(link), None) => {
            let scheme = link.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            let host = link.split_once("://").map_or("", |(_, rest)| rest);
            if !matches!(scheme.as_deref(), Some("https" | "http"))
                || host.is_empty()
                || link.chars().any(char::is_whitespace)
            {
                return Err(MetaError::new(
                    131009,
                    format!("Param {at}['link'] is not a valid URL"),
                ));
            }
        }
        (None, Some(id)) => {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MetaError::new(
                    131009,
                    format!("Param {at}['id'] is not a valid media id"),
                ));
            }
        }
    }
    if let Some(c) = optional_str(map, at, "caption")? {
        length(c, &path(at, "caption"), MAX_CAPTION)?;
    }
    if let Some(f) = optional_str(map, at, "filename")? {
        length(f, &path(at, "filename"), usize::MAX)?;
    }
    Ok(())
}

fn text_object(map: &Map<String, Value>, key: &str, max: usize) -> Result<(), MetaError> {
    let at = path("interactive", key);
    let Some(v) = map.get(key).filter(|v| !v.is_null()) else {
        return Err(MetaError::new(
            131008,
            format!("The parameter {at} is required."),
        ));
    };
    let o = object(v, &at)?;
    allowed(o, &at, &["text"])?;
    length(required_str(o, &at, "text")?, &path(&at, "text"), max)
}

fn interactive(map: &Map<String, Value>) -> Result<(), MetaError> {
    let at = "interactive";
    let kind = required_str(map, at, "type")?;
    match kind {
        "button" | "list" => {}
        other if OTHER_INTERACTIVE.contains(&other) => return Ok(()),
        other => {
            return Err(MetaError::new(
                100,
                format!("Param interactive['type'] {other:?} is not a valid interactive type"),
            ));
        }
    }
    allowed(map, at, &["type", "header", "body", "footer", "action"])?;
    let is_list = kind == "list";
    if let Some(h) = map.get("header").filter(|v| !v.is_null()) {
        let hat = path(at, "header");
        let h = object(h, &hat)?;
        let htype = required_str(h, &hat, "type")?;
        match htype {
            "text" => {
                allowed(h, &hat, &["type", "text"])?;
                length(
                    required_str(h, &hat, "text")?,
                    &path(&hat, "text"),
                    MAX_HEADER_TEXT,
                )?;
            }
            "image" | "video" | "document" if !is_list => {
                allowed(h, &hat, &["type", htype])?;
                let mat = path(&hat, htype);
                let Some(m) = h.get(htype).filter(|v| !v.is_null()) else {
                    return Err(MetaError::new(
                        131008,
                        format!("The parameter {mat} is required."),
                    ));
                };
                media(object(m, &mat)?, &mat, false, htype == "document")?;
            }
            other => {
                return Err(MetaError::new(
                    131009,
                    format!("Param {hat}['type'] {other:?} is not valid for a {kind} message"),
                ));
            }
        }
    }
    text_object(
        map,
        "body",
        if is_list {
            MAX_LIST_BODY
        } else {
            MAX_BUTTONS_BODY
        },
    )?;
    if map.get("footer").is_some_and(|v| !v.is_null()) {
        text_object(map, "footer", MAX_FOOTER)?;
    }
    let aat = path(at, "action");
    let Some(action) = map.get("action").filter(|v| !v.is_null()) else {
        return Err(MetaError::new(
            131008,
            format!("The parameter {aat} is required."),
        ));
    };
    let action = object(action, &aat)?;
    if is_list {
        list_action(action, &aat)
    } else {
        buttons_action(action, &aat)
    }
}

fn array<'a>(map: &'a Map<String, Value>, at: &str, key: &str) -> Result<&'a [Value], MetaError> {
    match map.get(key) {
        None | Some(Value::Null) => Err(MetaError::new(
            131008,
            format!("The parameter {} is required.", path(at, key)),
        )),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(MetaError::new(
            100,
            format!("Param {} must be an array", path(at, key)),
        )),
    }
}

fn unique(seen: &mut HashSet<String>, value: &str, at: &str) -> Result<(), MetaError> {
    if seen.insert(value.to_owned()) {
        Ok(())
    } else {
        Err(MetaError::new(
            131009,
            format!("{at} {value:?} is not unique"),
        ))
    }
}

fn buttons_action(action: &Map<String, Value>, at: &str) -> Result<(), MetaError> {
    allowed(action, at, &["buttons"])?;
    let buttons = array(action, at, "buttons")?;
    let bat = path(at, "buttons");
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        return Err(MetaError::new(
            131009,
            format!(
                "{bat} count invalid: {}. Min: 1, Max: {MAX_BUTTONS}",
                buttons.len()
            ),
        ));
    }
    let (mut ids, mut titles) = (HashSet::new(), HashSet::new());
    for (i, b) in buttons.iter().enumerate() {
        let iat = format!("{bat}[{i}]");
        let b = object(b, &iat)?;
        allowed(b, &iat, &["type", "reply"])?;
        if required_str(b, &iat, "type")? != "reply" {
            return Err(MetaError::new(
                131009,
                format!("Param {iat}['type'] must be 'reply'"),
            ));
        }
        let rat = path(&iat, "reply");
        let Some(r) = b.get("reply").filter(|v| !v.is_null()) else {
            return Err(MetaError::new(
                131008,
                format!("The parameter {rat} is required."),
            ));
        };
        let r = object(r, &rat)?;
        allowed(r, &rat, &["id", "title"])?;
        let id = required_str(r, &rat, "id")?;
        length(id, &path(&rat, "id"), MAX_BUTTON_ID)?;
        unique(&mut ids, id, &path(&rat, "id"))?;
        let title = required_str(r, &rat, "title")?;
        length(title, &path(&rat, "title"), MAX_BUTTON_TITLE)?;
        unique(&mut titles, title, &path(&rat, "title"))?;
    }
    Ok(())
}

fn list_action(action: &Map<String, Value>, at: &str) -> Result<(), MetaError> {
    allowed(action, at, &["button", "sections"])?;
    length(
        required_str(action, at, "button")?,
        &path(at, "button"),
        MAX_LIST_BUTTON,
    )?;
    let sections = array(action, at, "sections")?;
    let sat = path(at, "sections");
    if sections.is_empty() || sections.len() > MAX_SECTIONS {
        return Err(MetaError::new(
            131009,
            format!(
                "{sat} count invalid: {}. Min: 1, Max: {MAX_SECTIONS}",
                sections.len()
            ),
        ));
    }
    let mut ids = HashSet::new();
    let mut total = 0;
    for (i, s) in sections.iter().enumerate() {
        let iat = format!("{sat}[{i}]");
        let s = object(s, &iat)?;
        allowed(s, &iat, &["title", "rows"])?;
        match optional_str(s, &iat, "title")? {
            Some(t) => length(t, &path(&iat, "title"), MAX_SECTION_TITLE)?,
            None if sections.len() > 1 => {
                return Err(MetaError::new(
                    131008,
                    format!(
                        "The parameter {} is required when there is more than one section.",
                        path(&iat, "title")
                    ),
                ));
            }
            None => {}
        }
        let rows = array(s, &iat, "rows")?;
        let rat = path(&iat, "rows");
        if rows.is_empty() {
            return Err(MetaError::new(
                131009,
                format!("{rat} count invalid: 0. Min: 1"),
            ));
        }
        total += rows.len();
        for (j, r) in rows.iter().enumerate() {
            let jat = format!("{rat}[{j}]");
            let r = object(r, &jat)?;
            allowed(r, &jat, &["id", "title", "description"])?;
            let id = required_str(r, &jat, "id")?;
            length(id, &path(&jat, "id"), MAX_ROW_ID)?;
            unique(&mut ids, id, &path(&jat, "id"))?;
            length(
                required_str(r, &jat, "title")?,
                &path(&jat, "title"),
                MAX_ROW_TITLE,
            )?;
            if let Some(d) = optional_str(r, &jat, "description")? {
                length(d, &path(&jat, "description"), MAX_ROW_DESCRIPTION)?;
            }
        }
    }
    if total > MAX_ROWS {
        return Err(MetaError::new(
            131009,
            format!("Total row count invalid: {total}. Max: {MAX_ROWS}"),
        ));
    }
    Ok(())
}

fn degrees(map: &Map<String, Value>, key: &str, limit: f64) -> Result<(), MetaError> {
    let at = path("location", key);
    let value = match map.get(key) {
        None | Some(Value::Null) => {
            return Err(MetaError::new(
                131008,
                format!("The parameter {at} is required."),
            ));
        }
        // Meta's examples give coordinates as numbers or as numeric strings.
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match value {
        Some(d) if d.is_finite() && d.abs() <= limit => Ok(()),
        Some(_) => Err(MetaError::new(
            131009,
            format!("Param {at} must be between -{limit} and {limit}"),
        )),
        None => Err(MetaError::new(100, format!("Param {at} must be a number"))),
    }
}

fn location(map: &Map<String, Value>) -> Result<(), MetaError> {
    allowed(
        map,
        "location",
        &["latitude", "longitude", "name", "address"],
    )?;
    degrees(map, "latitude", 90.0)?;
    degrees(map, "longitude", 180.0)?;
    optional_str(map, "location", "name")?;
    optional_str(map, "location", "address")?;
    Ok(())
}

fn reaction(map: &Map<String, Value>) -> Result<(), MetaError> {
    let at = "reaction";
    allowed(map, at, &["message_id", "emoji"])?;
    let id = required_str(map, at, "message_id")?;
    if !id.starts_with("wamid.") || id.len() <= "wamid.".len() {
        return Err(MetaError::new(
            131009,
            format!("Param {} is not a valid message id", path(at, "message_id")),
        ));
    }
    let emoji = required_str(map, at, "emoji")?;
    // Empty removes a reaction; otherwise one emoji (no letters, no spaces, short).
    if !emoji.is_empty()
        && (emoji
            .chars()
            .any(|c| c.is_alphabetic() || c.is_whitespace() || c.is_control())
            || emoji.chars().count() > 16)
    {
        return Err(MetaError::new(
            131009,
            format!("Param {} must be a single emoji", path(at, "emoji")),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{SendBody, parse_send};
    use serde_json::{Value, json};

    const WAMID: &str = "wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA";

    fn body(kind: &str, object: Value) -> Value {
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "+14155550123", "type": kind, kind: object})
    }

    /// `Ok(())` if the sandbox takes it, else Meta's code.
    fn code(b: &Value) -> Result<(), i64> {
        match parse_send(b) {
            Ok(SendBody::Message(_)) => Ok(()),
            Ok(SendBody::MarkRead) => panic!("not a send"),
            Err(e) => Err(e.code),
        }
    }

    fn reply(id: &str, title: &str) -> Value {
        json!({"type": "reply", "reply": {"id": id, "title": title}})
    }

    fn buttons(list: Value) -> Value {
        body(
            "interactive",
            json!({"type": "button", "body": {"text": "Hi"}, "action": {"buttons": list}}),
        )
    }

    fn list(sections: Value) -> Value {
        body(
            "interactive",
            json!({"type": "list", "body": {"text": "Hi"},
                "action": {"button": "Options", "sections": sections}}),
        )
    }

    fn rows(n: usize, prefix: &str) -> Value {
        (0..n)
            .map(|i| json!({"id": format!("{prefix}{i}"), "title": "Row"}))
            .collect()
    }

    #[test]
    fn what_meta_takes_is_taken() {
        let mut with_context = body("image", json!({"id": "1"}));
        with_context["context"] = json!({"message_id": WAMID});
        for b in [
            body(
                "image",
                json!({"link": "https://cdn.example/a.jpg", "caption": "c"}),
            ),
            body("image", json!({"link": "http://cdn.example/a.jpg"})),
            body(
                "document",
                json!({"id": "1", "caption": "c", "filename": "a.pdf"}),
            ),
            body("audio", json!({"id": "1"})),
            body("sticker", json!({"link": "https://cdn.example/s.webp"})),
            body("video", json!({"id": "1", "caption": "x".repeat(1024)})),
            buttons(json!([reply("a", "A"), reply("b", "B"), reply("c", "C")])),
            body(
                "interactive",
                json!({"type": "button", "header": {"type": "video", "video": {"id": "3"}},
                    "body": {"text": "x".repeat(1024)}, "footer": {"text": "f".repeat(60)},
                    "action": {"buttons": [reply(&"i".repeat(256), &"t".repeat(20))]}}),
            ),
            list(json!([{"rows": rows(10, "r")}])),
            list(
                json!([{"title": "A", "rows": rows(5, "a")}, {"title": "B", "rows": rows(5, "b")}]),
            ),
            body(
                "interactive",
                json!({"type": "list", "header": {"type": "text", "text": "h"},
                    "body": {"text": "x".repeat(4096)},
                    "action": {"button": "b".repeat(20), "sections": [{"title": "t".repeat(24),
                        "rows": [{"id": "i".repeat(200), "title": "t".repeat(24), "description": "d".repeat(72)}]}]}}),
            ),
            body(
                "interactive",
                json!({"type": "cta_url", "body": {"text": "Hi"}, "action": {}}),
            ),
            body(
                "location",
                json!({"latitude": -90, "longitude": 180.0, "name": "n"}),
            ),
            body("location", json!({"latitude": "38.7", "longitude": "-9.1"})),
            body("reaction", json!({"message_id": WAMID, "emoji": "👍🏽"})),
            body("reaction", json!({"message_id": WAMID, "emoji": ""})),
            with_context,
        ] {
            assert_eq!(code(&b), Ok(()), "{b}");
        }
    }

    #[test]
    fn what_meta_refuses_is_refused_with_its_code() {
        let mut reaction_reply = body("reaction", json!({"message_id": WAMID, "emoji": "👍"}));
        reaction_reply["context"] = json!({"message_id": WAMID});
        let mut empty_context = body("text", json!({"body": "hi"}));
        empty_context["context"] = json!({});
        let cases = [
            (body("image", json!({})), 131008),
            (
                body("image", json!({"id": "1", "link": "https://a.example/x"})),
                100,
            ),
            (body("image", json!({"link": "ftp://a.example/x"})), 131009),
            (body("image", json!({"id": "abc"})), 131009),
            (body("audio", json!({"id": "1", "caption": "c"})), 100),
            (body("sticker", json!({"id": "1", "caption": "c"})), 100),
            (body("image", json!({"id": "1", "filename": "a"})), 100),
            (
                body("image", json!({"id": "1", "caption": "x".repeat(1025)})),
                131009,
            ),
            (body("image", json!("https://a.example/x")), 100),
            (buttons(json!([])), 131009),
            (
                buttons(json!([reply("a", "A"), reply("b", "B"), reply("c", "C"), reply("d", "D")])),
                131009,
            ),
            (buttons(json!([reply("a", &"t".repeat(21))])), 131009),
            (buttons(json!([reply(&"i".repeat(257), "A")])), 131009),
            (buttons(json!([reply("a", "A"), reply("a", "B")])), 131009),
            (buttons(json!([reply("a", "A"), reply("b", "A")])), 131009),
            (
                buttons(json!([{"type": "reply", "reply": {"id": "a"}}])),
                131008,
            ),
            (
                body(
                    "interactive",
                    json!({"type": "button", "body": {"text": "x".repeat(1025)},
                        "action": {"buttons": [reply("a", "A")]}}),
                ),
                131009,
            ),
            (
                body(
                    "interactive",
                    json!({"type": "button", "action": {"buttons": [reply("a", "A")]}}),
                ),
                131008,
            ),
            (
                body(
                    "interactive",
                    json!({"type": "button", "body": {"text": "Hi"}, "footer": {"text": "f".repeat(61)},
                        "action": {"buttons": [reply("a", "A")]}}),
                ),
                131009,
            ),
            (
                body(
                    "interactive",
                    json!({"type": "carousel", "body": {"text": "Hi"}, "action": {}}),
                ),
                100,
            ),
            (list(json!([])), 131009),
            (
                list((0..11).map(|i| json!({"title": format!("S{i}"), "rows": rows(1, &format!("s{i}"))})).collect()),
                131009,
            ),
            (
                list(json!([{"title": "A", "rows": rows(6, "a")}, {"title": "B", "rows": rows(5, "b")}])),
                131009,
            ),
            (
                list(json!([{"title": "A", "rows": rows(1, "a")}, {"rows": rows(1, "b")}])),
                131008,
            ),
            (list(json!([{"rows": []}])), 131009),
            (list(json!([{"title": "t".repeat(25), "rows": rows(1, "a")}])), 131009),
            (
                list(json!([{"rows": [{"id": "a", "title": "t".repeat(25)}]}])),
                131009,
            ),
            (
                list(json!([{"rows": [{"id": "a", "title": "A", "description": "d".repeat(73)}]}])),
                131009,
            ),
            (list(json!([{"rows": [{"id": "i".repeat(201), "title": "A"}]}])), 131009),
            (
                list(json!([{"title": "A", "rows": rows(1, "x")}, {"title": "B", "rows": rows(1, "x")}])),
                131009,
            ),
            (
                body(
                    "interactive",
                    json!({"type": "list", "header": {"type": "image", "image": {"id": "1"}},
                        "body": {"text": "Hi"}, "action": {"button": "B", "sections": [{"rows": rows(1, "a")}]}}),
                ),
                131009,
            ),
            (
                body(
                    "interactive",
                    json!({"type": "list", "body": {"text": "x".repeat(4097)},
                        "action": {"button": "B", "sections": [{"rows": rows(1, "a")}]}}),
                ),
                131009,
            ),
            (body("location", json!({"latitude": 91, "longitude": 0})), 131009),
            (body("location", json!({"latitude": 0})), 131008),
            (body("location", json!({"latitude": true, "longitude": 0})), 100),
            (body("reaction", json!({"message_id": "123", "emoji": "👍"})), 131009),
            (body("reaction", json!({"message_id": WAMID, "emoji": "ok"})), 131009),
            (body("reaction", json!({"message_id": WAMID})), 131008),
            (reaction_reply, 100),
            (empty_context, 131008),
            (body("text", json!({"body": "hi", "preview_url": "yes"})), 100),
            (body("text", json!({"body": "hi", "caption": "x"})), 100),
        ];
        for (b, expected) in cases {
            assert_eq!(code(&b), Err(expected), "{b}");
        }
    }
}
