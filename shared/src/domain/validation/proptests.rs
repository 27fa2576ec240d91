//! Properties of validation over arbitrary JSON.

use super::*;
use crate::domain::request::{BodyParams, SendRequest};
use proptest::prelude::*;
use serde_json::{Value, json};

fn catalog() -> TemplateCatalog {
    TemplateCatalog::from_json(include_str!(
        "../../../tests/fixtures/templates/catalog.json"
    ))
    .unwrap()
}

/// Resolve every segment of `field` but the last in `request`: the problem points at a
/// field that exists, or at a missing field of an object that exists.
fn parent_exists(request: &Value, field: &str) -> bool {
    let mut segments: Vec<Segment> = Vec::new();
    let mut rest = field;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            if r.starts_with('"') {
                let mut de = serde_json::Deserializer::from_str(r).into_iter::<String>();
                let Some(Ok(key)) = de.next() else {
                    return false;
                };
                let used = de.byte_offset();
                segments.push(Segment::Key(key));
                rest = r[used..].strip_prefix(']').unwrap_or("?");
            } else {
                let Some((n, r)) = r.split_once(']') else {
                    return false;
                };
                let Ok(n) = n.parse() else { return false };
                segments.push(Segment::Index(n));
                rest = r;
            }
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return false;
            }
            segments.push(Segment::Key(r[..end].to_owned()));
            rest = &r[end..];
        }
    }
    segments.pop();
    let mut at = request;
    for s in segments {
        let next = match s {
            Segment::Key(k) => at.get(k.as_str()),
            Segment::Index(i) => at.get(i),
        };
        match next {
            Some(v) => at = v,
            None => return false,
        }
    }
    true
}

enum Segment {
    Key(String),
    Index(usize),
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[ -~\n\t]{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "+14155550123",
            "url",
            "text",
            "image",
            "https://x.example/a",
            "currency",
            "date_time",
            "location"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "to",
            "template",
            "text",
            "metadata",
            "name",
            "language",
            "header",
            "body",
            "buttons",
            "index",
            "type",
            "link",
            "payload",
            "coupon_code",
            "preview_url",
            "fallback_value",
            "code",
            "amount_1000",
            "latitude",
            "longitude",
            "image",
            "document",
            "interactive",
            "reaction",
            "location",
            "context",
            "message_id",
            "emoji",
            "caption",
            "id",
            "action",
            "sections",
            "rows",
            "reply",
            "title",
            "a.b",
            "first_name",
            "",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(key, inner, 0..6).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

/// Requests that mostly reach the template rules: a known template with arbitrary parts.
fn arb_template_request() -> impl Strategy<Value = Value> {
    let name = prop::sample::select(vec![
        "order_shipped",
        "welcome_offer",
        "login_code",
        "appointment_reminder",
        "spring_sale",
        "pickup_ready",
        "winter_clearance",
    ]);
    let text = "[a-z \n\t]{0,20}";
    let body = prop_oneof![
        prop::collection::vec(text.prop_map(Value::from), 0..4).prop_map(Value::from),
        prop::collection::btree_map(
            prop::sample::select(vec!["first_name", "doctor", "date", "x"]),
            text,
            0..4
        )
        .prop_map(|m| json!(m)),
        arb_json(),
    ];
    (name, body, arb_json(), arb_json(), text).prop_map(|(name, body, header, buttons, header_text)| {
        let header = if header.is_null() { json!({"type": "text", "text": header_text}) } else { header };
        json!({"to": "+14155550123", "template": {"name": name, "language": "en_US", "body": body,
            "header": header, "buttons": buttons}})
    })
}

/// Free-form requests of every type, with arbitrary (often invalid) texts and sizes.
fn arb_free_form_request() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        "[a-zA-Z0-9 ]{0,30}",
        "[a-z \n\t\u{200B}\u{202E}é👍]{0,30}",
        (1usize..300).prop_map(|n| "x".repeat(n)),
    ];
    let texts = prop::collection::vec(text, 12);
    let small = 0usize..5;
    let media = prop::sample::select(vec!["image", "document", "video", "audio", "sticker"]);
    let emoji = prop::sample::select(vec!["👍", "", "❤️", "ok", "👩‍👩‍👧", "🇵🇹"]);
    let wamid = prop::sample::select(vec!["wamid.HBgLMTQx", "wamid.", "abc"]);
    (0u8..6, texts, small.clone(), small, media, emoji, wamid, any::<bool>(), -200.0f64..200.0)
        .prop_map(|(kind, t, n, m, media, emoji, wamid, with_context, deg)| {
            let content = match kind {
                0 => json!({"text": {"body": t[0], "preview_url": with_context}}),
                1 => {
                    let mut o = json!({"caption": t[1], "filename": t[2]});
                    if n % 2 == 0 { o["link"] = json!(format!("https://x.example/{}", t[3])); } else { o["id"] = json!("123"); }
                    if media != "document" { o.as_object_mut().unwrap().remove("filename"); }
                    if media == "audio" || media == "sticker" { o.as_object_mut().unwrap().remove("caption"); }
                    json!({ media: o })
                }
                2 => {
                    let buttons: Vec<Value> = (0..n).map(|i| json!({"type": "reply",
                        "reply": {"id": format!("{}{}", t[4], i % 2), "title": t[5 + i % 3]}})).collect();
                    json!({"interactive": {"type": "button", "body": {"text": t[6]},
                        "footer": {"text": t[7]}, "action": {"buttons": buttons}}})
                }
                3 => {
                    let sections: Vec<Value> = (0..n).map(|s| json!({"title": t[8 + s % 2],
                        "rows": (0..m).map(|r| json!({"id": format!("r{s}{r}"), "title": t[10], "description": t[11]})).collect::<Vec<_>>()})).collect();
                    json!({"interactive": {"type": "list", "header": {"type": "text", "text": t[9]},
                        "body": {"text": t[0]}, "action": {"button": t[1], "sections": sections}}})
                }
                4 => json!({"location": {"latitude": deg / 2.0, "longitude": deg, "name": t[2], "address": t[3]}}),
                _ => json!({"reaction": {"message_id": wamid, "emoji": emoji}}),
            };
            let mut request = json!({"to": "+14155550123"});
            for (k, v) in content.as_object().unwrap() { request[k] = v.clone(); }
            if with_context { request["context"] = json!({"message_id": wamid}); }
            request
        })
}

proptest! {
    #[test]
    fn a_valid_free_form_request_round_trips_through_its_canonical_json(
        request in arb_free_form_request(),
        sanitize in any::<bool>(),
    ) {
        let policy = if sanitize { FormattingPolicy::Sanitize } else { FormattingPolicy::Strict };
        match validate(&request, &catalog(), policy) {
            Ok(v) => {
                let canonical = v.to_json();
                let parsed = SendRequest::from_json(&canonical).unwrap();
                prop_assert_eq!(&parsed.to_json(), &canonical);
                prop_assert_eq!(&parsed, v.request());
                // The sender re-validates the stored JSON strictly: it must pass unchanged.
                let again = validate(&canonical, &catalog(), FormattingPolicy::Strict).unwrap();
                prop_assert_eq!(again.request(), v.request());
                prop_assert!(again.sanitized().is_empty());
                prop_assert_eq!(v.template_name(), None);
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                for p in problems {
                    prop_assert!(parent_exists(&request, &p.field), "{} ({}) in {}", p.field, p.code, request);
                }
            }
        }
    }

    #[test]
    fn validation_never_panics_and_problems_point_into_the_request(
        request in prop_oneof![arb_json(), arb_template_request(), arb_free_form_request()],
        sanitize in any::<bool>(),
    ) {
        let policy = if sanitize { FormattingPolicy::Sanitize } else { FormattingPolicy::Strict };
        if let Err(problems) = validate(&request, &catalog(), policy) {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert!(p.field.is_empty() || parent_exists(&request, &p.field), "{} ({}) in {}", p.field, p.code, request);
            }
        }
    }

    #[test]
    fn sanitized_template_values_never_break_the_formatting_rule(
        values in prop::collection::vec("[a-z \n\t\r]{1,30}", 2),
        suffix in "[a-z]{1,10}",
    ) {
        let request = json!({"to": "+14155550123", "template": {"name": "order_shipped", "language": "en_US",
            "body": values, "buttons": [{"index": 0, "type": "url", "text": suffix}]}});
        match validate(&request, &catalog(), FormattingPolicy::Sanitize) {
            Ok(v) => {
                let Content::Template(t) = &v.request().content else { panic!("template") };
                let Some(BodyParams::Positional(values)) = &t.body else { panic!("positional") };
                for value in values {
                    let text = value.visible_text();
                    prop_assert!(!text.chars().any(is_line_break_or_tab), "{text:?}");
                    prop_assert!(!text.contains("     "), "{text:?}");
                }
            }
            // Only values that are blank once cleaned may fail.
            Err(problems) => prop_assert!(problems.iter().all(|p| p.code == code::MISSING_PARAMETER), "{problems:?}"),
        }
    }
}

#[test]
fn the_path_checker_used_by_the_property_refuses_paths_outside_the_request() {
    let request = json!({"template": {"body": ["a"], "x.y": {"k": 1}}});
    assert!(parent_exists(&request, "template.body[0]"));
    assert!(parent_exists(&request, "template.header"));
    assert!(parent_exists(&request, r#"template["x.y"].k"#));
    assert!(!parent_exists(&request, "template.body[3].text"));
    assert!(!parent_exists(&request, "text.body"));
    assert!(!parent_exists(&request, "template.x.y.k"));
}
