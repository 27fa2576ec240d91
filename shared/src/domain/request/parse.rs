//! Structural parsing of a request that keeps going after the first problem.

use super::free_form_parse::{parse_context, parse_free_form};
use super::partial::{PartialBody, PartialRequest, PartialTemplate, Slot, optional, required};
use super::{ButtonParam, ButtonValue, Content, HeaderParam, LocationParam, ParamValue};
use crate::domain::validation::{Problem, child, code, item};
use serde_json::{Map, Value};

/// Parse the structure of a request, collecting every problem.
pub(crate) fn parse_partial(json: &Value) -> (PartialRequest, Vec<Problem>) {
    let mut p = Vec::new();
    let mut partial = PartialRequest {
        to: Slot::Absent,
        template: Slot::Absent,
        free_form: Slot::Absent,
        context: Slot::Absent,
        metadata: Slot::Absent,
        from: Slot::Absent,
        send_at: Slot::Absent,
    };
    let Some(map) = object(json, "", &mut p) else {
        return (partial, p);
    };
    let mut allowed = vec!["to", "from", "context", "metadata", "send_at"];
    allowed.extend(Content::KEYS);
    unknown_fields(map, &allowed, "", &mut p);
    partial.to = string(map, "", "to", true, &mut p);
    partial.from = string(map, "", "from", false, &mut p);
    partial.send_at = match string(map, "", "send_at", false, &mut p) {
        Slot::Present(raw) => match parse_send_at(&raw) {
            Some(at) => Slot::Present(at),
            None => {
                p.push(Problem::new(
                    "send_at",
                    code::INVALID_VALUE,
                    format!(
                        "`send_at` must be an RFC 3339 date-time with an offset, e.g. 2026-06-03T09:00:00Z (got {raw:?})"
                    ),
                ));
                Slot::Invalid
            }
        },
        other => other,
    };
    partial.template = match field(map, "template") {
        None => Slot::Absent,
        Some(v) => match object(v, "template", &mut p) {
            Some(m) => Slot::Present(parse_template(m, &mut p)),
            None => Slot::Invalid,
        },
    };
    let given: Vec<&str> = Content::KEYS
        .into_iter()
        .filter(|k| field(map, k).is_some())
        .collect();
    for key in given.iter().filter(|k| **k != "template") {
        let Some(value) = field(map, key) else {
            continue;
        };
        let parsed = parse_free_form(key, value, &mut p);
        if partial.free_form.is_absent() {
            partial.free_form = parsed;
        } else {
            partial.free_form = Slot::Invalid;
        }
    }
    match given.as_slice() {
        [_] => {}
        [] => p.push(Problem::new(
            "template",
            code::EXACTLY_ONE_OF_TEMPLATE_OR_TEXT,
            format!("give exactly one of {}", content_keys()),
        )),
        [_, second, ..] => p.push(Problem::new(
            *second,
            code::EXACTLY_ONE_OF_TEMPLATE_OR_TEXT,
            format!(
                "give exactly one of {}, not {}",
                content_keys(),
                given
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        )),
    }
    partial.context = match field(map, "context") {
        None => Slot::Absent,
        Some(v) => parse_context(v, &mut p),
    };
    partial.metadata = match field(map, "metadata") {
        None => Slot::Absent,
        // String values only: products echo them into events and logs as they are.
        Some(Value::Object(m)) => {
            let before = p.len();
            for (key, value) in m {
                if !value.is_string() {
                    p.push(invalid_type(&child("metadata", key), "a string"));
                }
            }
            if p.len() == before {
                Slot::Present(m.clone())
            } else {
                Slot::Invalid
            }
        }
        Some(_) => {
            p.push(invalid_type("metadata", "an object"));
            Slot::Invalid
        }
    };
    (partial, p)
}

/// `send_at` in its canonical form: the instant in UTC with milliseconds, so the same
/// instant written with another offset is the same request (same idempotency hash).
fn parse_send_at(raw: &str) -> Option<String> {
    let at = chrono::DateTime::parse_from_rfc3339(raw).ok()?;
    Some(crate::domain::Timestamp::from_millis(at.timestamp_millis()).to_rfc3339())
}

fn parse_template(map: &Map<String, Value>, p: &mut Vec<Problem>) -> PartialTemplate {
    let at = "template";
    unknown_fields(
        map,
        &["name", "language", "header", "body", "buttons"],
        at,
        p,
    );
    PartialTemplate {
        name: string(map, at, "name", true, p),
        language: string(map, at, "language", true, p),
        header: field(map, "header").map_or(Slot::Absent, |v| parse_header(v, p)),
        body: field(map, "body").map_or(Slot::Absent, |v| parse_body(v, p)),
        buttons: match field(map, "buttons") {
            None => Slot::Absent,
            Some(Value::Array(list)) => Slot::Present(
                list.iter()
                    .enumerate()
                    .map(|(i, v)| parse_button(v, &item("template.buttons", i), p))
                    .collect(),
            ),
            Some(_) => {
                p.push(invalid_type("template.buttons", "an array"));
                Slot::Invalid
            }
        },
    }
}

fn parse_header(value: &Value, p: &mut Vec<Problem>) -> Slot<HeaderParam> {
    let at = "template.header";
    let Some(map) = object(value, at, p) else {
        return Slot::Invalid;
    };
    let Slot::Present(kind) = string(map, at, "type", true, p) else {
        return Slot::Invalid;
    };
    let allowed: &[&str] = match kind.as_str() {
        "text" => &["type", "text", "parameter_name"],
        "image" | "video" => &["type", "link"],
        "document" => &["type", "link", "filename"],
        "location" => &["type", "latitude", "longitude", "name", "address"],
        _ => {
            p.push(Problem::new(
                child(at, "type"),
                code::INVALID_VALUE,
                "header type must be text, image, video, document or location",
            ));
            return Slot::Invalid;
        }
    };
    unknown_fields(map, allowed, at, p);
    let header = match kind.as_str() {
        "text" => {
            let text = string(map, at, "text", true, p);
            let name = string(map, at, "parameter_name", false, p);
            match (text, name) {
                (Slot::Present(text), Slot::Present(n)) => Some(HeaderParam::Text {
                    text,
                    parameter_name: Some(n),
                }),
                (Slot::Present(text), Slot::Absent) => Some(HeaderParam::Text {
                    text,
                    parameter_name: None,
                }),
                _ => None,
            }
        }
        "image" => {
            required(string(map, at, "link", true, p)).map(|link| HeaderParam::Image { link })
        }
        "video" => {
            required(string(map, at, "link", true, p)).map(|link| HeaderParam::Video { link })
        }
        "document" => {
            let link = string(map, at, "link", true, p);
            let filename = string(map, at, "filename", false, p);
            match (link, optional(filename)) {
                (Slot::Present(link), Some(filename)) => {
                    Some(HeaderParam::Document { link, filename })
                }
                _ => None,
            }
        }
        _ => parse_location(map, at, p).map(HeaderParam::Location),
    };
    header.map_or(Slot::Invalid, Slot::Present)
}

/// `` `template`, `text`, ... `` for messages.
fn content_keys() -> String {
    Content::KEYS
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn parse_location(
    map: &Map<String, Value>,
    at: &str,
    p: &mut Vec<Problem>,
) -> Option<LocationParam> {
    let latitude = degrees(map, at, "latitude", 90.0, p);
    let longitude = degrees(map, at, "longitude", 180.0, p);
    let name = optional(string(map, at, "name", false, p));
    let address = optional(string(map, at, "address", false, p));
    Some(LocationParam {
        latitude: latitude?,
        longitude: longitude?,
        name: name?,
        address: address?,
    })
}

fn degrees(
    map: &Map<String, Value>,
    at: &str,
    key: &str,
    limit: f64,
    p: &mut Vec<Problem>,
) -> Option<f64> {
    let path = child(at, key);
    match field(map, key) {
        None => {
            p.push(missing(&path));
            None
        }
        Some(v) => match v.as_f64() {
            Some(d) if d.abs() <= limit => Some(d),
            Some(_) => {
                p.push(Problem::new(
                    path,
                    code::INVALID_VALUE,
                    format!("{key} must be within ±{limit} degrees"),
                ));
                None
            }
            None => {
                p.push(invalid_type(&path, "a number"));
                None
            }
        },
    }
}

fn parse_body(value: &Value, p: &mut Vec<Problem>) -> Slot<PartialBody> {
    let at = "template.body";
    match value {
        Value::Array(list) => Slot::Present(PartialBody::Positional(
            list.iter()
                .enumerate()
                .map(|(i, v)| parse_value(v, &item(at, i), p))
                .collect(),
        )),
        Value::Object(map) => Slot::Present(PartialBody::Named(
            map.iter()
                .map(|(k, v)| (k.clone(), parse_value(v, &child(at, k), p)))
                .collect(),
        )),
        _ => {
            p.push(invalid_type(
                at,
                "an array (positional) or an object (named)",
            ));
            Slot::Invalid
        }
    }
}

fn parse_value(value: &Value, at: &str, p: &mut Vec<Problem>) -> Slot<ParamValue> {
    let map = match value {
        Value::String(s) => return Slot::Present(ParamValue::Text(s.clone())),
        Value::Object(map) => map,
        _ => {
            p.push(invalid_type(at, "a string or a currency/date_time object"));
            return Slot::Invalid;
        }
    };
    let Slot::Present(kind) = string(map, at, "type", true, p) else {
        return Slot::Invalid;
    };
    let parsed = match kind.as_str() {
        "text" => {
            unknown_fields(map, &["type", "text"], at, p);
            required(string(map, at, "text", true, p)).map(ParamValue::Text)
        }
        "currency" => {
            unknown_fields(
                map,
                &["type", "fallback_value", "code", "amount_1000"],
                at,
                p,
            );
            let fallback = string(map, at, "fallback_value", true, p);
            let currency = string(map, at, "code", true, p);
            let amount = match field(map, "amount_1000") {
                None => {
                    p.push(missing(&child(at, "amount_1000")));
                    None
                }
                Some(v) => v.as_i64().or_else(|| {
                    p.push(invalid_type(&child(at, "amount_1000"), "an integer"));
                    None
                }),
            };
            let currency = match currency {
                Slot::Present(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
                    Some(c)
                }
                Slot::Present(_) => {
                    p.push(Problem::new(
                        child(at, "code"),
                        code::INVALID_VALUE,
                        "code must be an ISO 4217 code like USD",
                    ));
                    None
                }
                _ => None,
            };
            match (required(fallback), currency, amount) {
                (Some(fallback_value), Some(code), Some(amount_1000)) => {
                    Some(ParamValue::Currency {
                        fallback_value,
                        code,
                        amount_1000,
                    })
                }
                _ => None,
            }
        }
        "date_time" => {
            unknown_fields(map, &["type", "fallback_value"], at, p);
            required(string(map, at, "fallback_value", true, p))
                .map(|fallback_value| ParamValue::DateTime { fallback_value })
        }
        _ => {
            p.push(Problem::new(
                child(at, "type"),
                code::INVALID_VALUE,
                "value type must be text, currency or date_time",
            ));
            None
        }
    };
    parsed.map_or(Slot::Invalid, Slot::Present)
}

fn parse_button(value: &Value, at: &str, p: &mut Vec<Problem>) -> Slot<ButtonParam> {
    let Some(map) = object(value, at, p) else {
        return Slot::Invalid;
    };
    let index = match field(map, "index") {
        None => {
            p.push(missing(&child(at, "index")));
            None
        }
        Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                p.push(invalid_type(&child(at, "index"), "a non-negative integer"));
                None
            }
        },
    };
    let Slot::Present(kind) = string(map, at, "type", true, p) else {
        return Slot::Invalid;
    };
    let value = match kind.as_str() {
        "url" => {
            unknown_fields(map, &["index", "type", "text"], at, p);
            required(string(map, at, "text", true, p)).map(|text| ButtonValue::Url { text })
        }
        "quick_reply" => {
            unknown_fields(map, &["index", "type", "payload"], at, p);
            optional(string(map, at, "payload", false, p))
                .map(|payload| ButtonValue::QuickReply { payload })
        }
        "copy_code" => {
            unknown_fields(map, &["index", "type", "coupon_code"], at, p);
            required(string(map, at, "coupon_code", true, p))
                .map(|coupon_code| ButtonValue::CopyCode { coupon_code })
        }
        _ => {
            p.push(Problem::new(
                child(at, "type"),
                code::INVALID_VALUE,
                "button type must be url, quick_reply or copy_code",
            ));
            None
        }
    };
    match (index, value) {
        (Some(index), Some(value)) => Slot::Present(ButtonParam { index, value }),
        _ => Slot::Invalid,
    }
}

/// A field's value; `null` counts as absent.
pub(super) fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

pub(super) fn object<'a>(
    value: &'a Value,
    at: &str,
    p: &mut Vec<Problem>,
) -> Option<&'a Map<String, Value>> {
    let map = value.as_object();
    if map.is_none() {
        p.push(invalid_type(at, "an object"));
    }
    map
}

pub(super) fn string(
    map: &Map<String, Value>,
    at: &str,
    key: &str,
    required: bool,
    p: &mut Vec<Problem>,
) -> Slot<String> {
    match field(map, key) {
        None if required => {
            p.push(missing(&child(at, key)));
            Slot::Invalid
        }
        None => Slot::Absent,
        Some(Value::String(s)) => Slot::Present(s.clone()),
        Some(_) => {
            p.push(invalid_type(&child(at, key), "a string"));
            Slot::Invalid
        }
    }
}

pub(super) fn unknown_fields(
    map: &Map<String, Value>,
    allowed: &[&str],
    at: &str,
    p: &mut Vec<Problem>,
) {
    for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
        p.push(Problem::new(
            child(at, key),
            code::UNKNOWN_FIELD,
            format!(
                "unknown field `{key}`; expected one of: {}",
                allowed.join(", ")
            ),
        ));
    }
}

pub(super) fn missing(path: &str) -> Problem {
    Problem::new(path, code::MISSING_FIELD, format!("`{path}` is required"))
}

pub(super) fn invalid_type(path: &str, expected: &str) -> Problem {
    let shown = if path.is_empty() { "the request" } else { path };
    Problem::new(
        path,
        code::INVALID_TYPE,
        format!("{shown} must be {expected}"),
    )
}
