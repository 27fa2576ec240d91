//! `GET /{version}/{waba_id}/message_templates` (reference §7), from the sandbox's
//! catalog of that WABA, with Meta's cursor paging: `limit`, `after`, `before`,
//! `paging.cursors.{before,after}`, `paging.next` (absent on the last page) and
//! `paging.previous`; filters `name` (substring), `status`, `category`, `language`;
//! `fields` picks fields (`id` always kept). An unreadable cursor answers 131059.
//!
//! A cursor is the base64 of the item's `(name, language)` key, so it stays valid
//! while the catalog changes around it, as Graph cursors do.

use super::meta_error::MetaError;
use super::state::Shared;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use wa_shared::domain::template::Template;

/// Default page size (Graph's usual 25).
const DEFAULT_LIMIT: usize = 25;
/// Largest page served.
const MAX_LIMIT: usize = 1000;

/// Answer a listing: HTTP status and JSON body.
pub fn list_templates(
    shared: &Shared,
    base_url: &str,
    waba_id: &str,
    bearer: Option<&str>,
    query: &HashMap<String, String>,
) -> Result<Value, MetaError> {
    let numbers = shared.phones_of_waba(waba_id);
    if numbers.is_empty() {
        return Err(MetaError::new(100, format!(
            "Unsupported get request. Object with ID '{waba_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        )).with_status(400));
    }
    if !bearer.is_some_and(|t| numbers.iter().any(|p| p.access_token.expose() == t)) {
        return Err(MetaError::new(
            190,
            "Invalid OAuth access token - Cannot parse access token",
        ));
    }
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| MetaError::new(100, "Param limit must be a positive integer"))?
            .min(MAX_LIMIT),
    };
    let core = shared.core();
    let all: Vec<&Template> = core
        .catalogs
        .get(waba_id)
        .map(|c| c.iter().filter(|t| matches(t, query)).collect())
        .unwrap_or_default();
    let position = |cursor: &String| {
        decode_cursor(cursor)
            .and_then(|(n, l)| all.iter().position(|t| t.name == n && t.language == l))
            .ok_or_else(|| {
                MetaError::new(
                    131059,
                    "The pagination cursor is not valid. Retry without it.",
                )
            })
    };
    let (start, end) = match (query.get("after"), query.get("before")) {
        (Some(after), _) => {
            let s = position(after)? + 1;
            (s, (s + limit).min(all.len()))
        }
        (None, Some(before)) => {
            let e = position(before)?;
            (e.saturating_sub(limit), e)
        }
        (None, None) => (0, limit.min(all.len())),
    };
    let fields: Option<Vec<&str>> = query
        .get("fields")
        .map(|f| f.split(',').map(str::trim).collect());
    let data: Vec<Value> = all[start..end]
        .iter()
        .map(|t| project(t, fields.as_deref()))
        .collect();
    let mut paging = Map::new();
    if let (Some(first), Some(last)) = (all[start..end].first(), all[start..end].last()) {
        paging.insert(
            "cursors".into(),
            json!({"before": cursor(first), "after": cursor(last)}),
        );
        let link = |key: &str, value: String| {
            let mut q: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| *k != "after" && *k != "before")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            q.sort();
            q.push((key.to_owned(), value));
            let q: Vec<String> = q
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            format!("{base_url}?{}", q.join("&"))
        };
        if end < all.len() {
            paging.insert("next".into(), json!(link("after", cursor(last))));
        }
        if start > 0 {
            paging.insert("previous".into(), json!(link("before", cursor(first))));
        }
    }
    Ok(json!({"data": data, "paging": paging}))
}

fn matches(t: &Template, q: &HashMap<String, String>) -> bool {
    let eq = |key: &str, value: Option<&str>| {
        q.get(key)
            .is_none_or(|want| value.is_some_and(|v| v.eq_ignore_ascii_case(want)))
    };
    q.get("name").is_none_or(|n| t.name.contains(n.as_str()))
        && eq("status", t.status.as_ref().map(|s| s.as_str()))
        && eq("category", t.category.as_ref().map(|c| c.as_str()))
        && eq("language", Some(&t.language))
}

fn project(t: &Template, fields: Option<&[&str]>) -> Value {
    let full = serde_json::to_value(t).unwrap_or(Value::Null);
    match (fields, full) {
        (Some(fields), Value::Object(map)) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k == "id" || fields.contains(&k.as_str()))
                .collect(),
        ),
        (_, full) => full,
    }
}

fn cursor(t: &Template) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}\u{1f}{}", t.name, t.language))
}

fn decode_cursor(c: &str) -> Option<(String, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(c).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (n, l) = text.split_once('\u{1f}')?;
    Some((n.to_owned(), l.to_owned()))
}

/// Percent-encode a query value (cursors are URL-safe already; names may not be).
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
