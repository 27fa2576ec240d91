//! Free-form message types and reply contexts: every limit with its field path and code,
//! normalisation, and the canonical round trip.

use super::*;
use crate::domain::request::SendRequest;
use serde_json::{Value, json};

const TO: &str = "+14155550123";
const WAMID: &str = "wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA";

fn check(request: &Value) -> Result<ValidatedRequest, Vec<(String, &'static str)>> {
    validate(
        request,
        &TemplateCatalog::default(),
        FormattingPolicy::Strict,
    )
    .map_err(|p| p.into_iter().map(|p| (p.field, p.code)).collect())
}

fn problems(request: &Value) -> Vec<(String, &'static str)> {
    match check(request) {
        Ok(v) => panic!("expected problems, got {}", v.to_json()),
        Err(p) => p,
    }
}

fn send(key: &str, value: Value) -> Value {
    json!({"to": TO, key: value})
}

fn buttons(list: Value) -> Value {
    send(
        "interactive",
        json!({"type": "button", "body": {"text": "Confirm your slot?"}, "action": {"buttons": list}}),
    )
}

fn reply(id: &str, title: &str) -> Value {
    json!({"type": "reply", "reply": {"id": id, "title": title}})
}

fn list(sections: Value) -> Value {
    send(
        "interactive",
        json!({"type": "list", "body": {"text": "Pick a delivery option"},
            "action": {"button": "Options", "sections": sections}}),
    )
}

fn rows(n: usize, prefix: &str) -> Value {
    (0..n)
        .map(|i| json!({"id": format!("{prefix}{i}"), "title": format!("Row {i}")}))
        .collect()
}

/// Every good example: validates strictly to itself and round-trips through
/// `SendRequest::from_json`/`to_json`.
fn good_examples() -> Vec<Value> {
    vec![
        send(
            "text",
            json!({"body": "See https://shop.example", "preview_url": true}),
        ),
        send(
            "image",
            json!({"link": "https://cdn.example/a.jpg", "caption": "Your receipt"}),
        ),
        send("image", json!({"id": "1013859600285441"})),
        send(
            "document",
            json!({"link": "https://cdn.example/i.pdf", "caption": "Invoice", "filename": "invoice.pdf"}),
        ),
        send(
            "video",
            json!({"id": "1013859600285442", "caption": "How to"}),
        ),
        send("audio", json!({"link": "https://cdn.example/a.ogg"})),
        send("sticker", json!({"id": "1013859600285443"})),
        buttons(json!([reply("yes", "Yes"), reply("no", "No")])),
        send(
            "interactive",
            json!({"type": "button",
                "header": {"type": "document", "document": {"link": "https://cdn.example/t.pdf", "filename": "terms.pdf"}},
                "body": {"text": "Accept the terms?"}, "footer": {"text": "Lucky Shrub"},
                "action": {"buttons": [reply("accept", "Accept")]}}),
        ),
        send(
            "interactive",
            json!({"type": "button", "header": {"type": "image", "image": {"id": "42"}},
                "body": {"text": "Like it?"}, "action": {"buttons": [reply("y", "👍")]}}),
        ),
        send(
            "interactive",
            json!({"type": "list", "header": {"type": "text", "text": "Shipping"},
                "body": {"text": "Which option?"}, "footer": {"text": "Prices include VAT"},
                "action": {"button": "Options", "sections": [
                    {"title": "Fast", "rows": [{"id": "express", "title": "Express", "description": "Next day"}]},
                    {"title": "Cheap", "rows": [{"id": "ground", "title": "Ground"}]}]}}),
        ),
        list(json!([{"rows": rows(10, "r")}])),
        send(
            "location",
            json!({"latitude": 38.7223, "longitude": -9.1393, "name": "Store", "address": "Rua Augusta 1, Lisboa"}),
        ),
        send("location", json!({"latitude": -90.0, "longitude": 180.0})),
        send("reaction", json!({"message_id": WAMID, "emoji": "👍"})),
        send("reaction", json!({"message_id": WAMID, "emoji": ""})),
        json!({"to": TO, "context": {"message_id": WAMID}, "text": {"body": "You're welcome", "preview_url": false}}),
        json!({"to": TO, "context": {"message_id": WAMID}, "image": {"id": "7"}, "metadata": {"k": "v"}}),
    ]
}

#[test]
fn every_free_form_type_validates_to_itself_and_round_trips() {
    for request in good_examples() {
        let v = check(&request).unwrap_or_else(|p| panic!("{request}: {p:?}"));
        let mut canonical = request.clone();
        if canonical.get("text").is_some() && canonical["text"].get("preview_url").is_none() {
            canonical["text"]["preview_url"] = json!(false);
        }
        assert_eq!(v.to_json(), canonical, "{request}");
        assert_eq!(v.template_name(), None, "{request}");
        assert!(!v.request().content.is_template());
        let parsed = SendRequest::from_json(&request).unwrap();
        assert_eq!(parsed.to_json(), canonical);
        let back: SendRequest = serde_json::from_value(parsed.to_json()).unwrap();
        assert_eq!(back, parsed);
        let again = check(&v.to_json()).unwrap();
        assert_eq!(again.request(), v.request());
    }
}

#[test]
fn exactly_one_content_key_is_allowed() {
    assert_eq!(
        problems(&json!({"to": TO, "text": {"body": "a"}, "image": {"id": "1"}})),
        [("image".to_owned(), code::EXACTLY_ONE_OF_TEMPLATE_OR_TEXT)]
    );
    let found = problems(
        &json!({"to": TO, "template": {"name": "x", "language": "en"},
        "reaction": {"message_id": WAMID, "emoji": "👍"}}),
    );
    assert!(found.contains(&("reaction".to_owned(), code::EXACTLY_ONE_OF_TEMPLATE_OR_TEXT)));
    assert_eq!(
        problems(&json!({"to": TO})),
        [("template".to_owned(), code::EXACTLY_ONE_OF_TEMPLATE_OR_TEXT)]
    );
    assert_eq!(
        problems(&json!({"to": TO, "contacts": [], "text": {"body": "a"}})),
        [("contacts".to_owned(), code::UNKNOWN_FIELD)]
    );
}

#[test]
fn media_limits_have_field_paths() {
    let cases = [
        (
            send("image", json!({})),
            "image",
            code::EXACTLY_ONE_OF_LINK_OR_ID,
        ),
        (
            send(
                "image",
                json!({"link": "https://a.example/x.jpg", "id": "1"}),
            ),
            "image.id",
            code::EXACTLY_ONE_OF_LINK_OR_ID,
        ),
        (
            send("video", json!({"link": "http://a.example/x.mp4"})),
            "video.link",
            code::MEDIA_NOT_HTTPS,
        ),
        (
            send("video", json!({"link": "https://a.example/x y.mp4"})),
            "video.link",
            code::MEDIA_NOT_HTTPS,
        ),
        (
            send("audio", json!({"id": "abc"})),
            "audio.id",
            code::INVALID_VALUE,
        ),
        (
            send("audio", json!({"id": "1", "caption": "hi"})),
            "audio.caption",
            code::UNKNOWN_FIELD,
        ),
        (
            send("sticker", json!({"id": "1", "caption": "hi"})),
            "sticker.caption",
            code::UNKNOWN_FIELD,
        ),
        (
            send("image", json!({"id": "1", "filename": "a.jpg"})),
            "image.filename",
            code::UNKNOWN_FIELD,
        ),
        (
            send("image", json!({"id": "1", "caption": "x".repeat(1025)})),
            "image.caption",
            code::TOO_LONG,
        ),
        (
            send("document", json!({"id": "1", "caption": "a\u{202E}b"})),
            "document.caption",
            code::INVISIBLE_CHARACTER,
        ),
        (
            send("document", json!({"id": "1", "filename": "a\nb.pdf"})),
            "document.filename",
            code::NEWLINE_OR_TAB,
        ),
        (
            send("image", json!({"id": 7})),
            "image.id",
            code::INVALID_TYPE,
        ),
        (
            send("image", json!("https://x")),
            "image",
            code::INVALID_TYPE,
        ),
    ];
    for (request, field, code) in cases {
        let found = problems(&request);
        assert!(
            found.iter().any(|(f, c)| f == field && *c == code),
            "expected {code} at {field:?}, got {found:?} for {request}"
        );
    }
    // A caption of exactly 1024 characters is fine.
    assert!(
        check(&send(
            "image",
            json!({"id": "1", "caption": "é".repeat(1024)})
        ))
        .is_ok()
    );
}

#[test]
fn reply_button_limits_have_field_paths() {
    let b = "interactive.action.buttons";
    let cases = [
        (buttons(json!([])), b.to_owned(), code::INVALID_ITEM_COUNT),
        (
            buttons(json!([
                reply("a", "A"),
                reply("b", "B"),
                reply("c", "C"),
                reply("d", "D")
            ])),
            b.to_owned(),
            code::INVALID_ITEM_COUNT,
        ),
        (
            buttons(json!([reply("a", &"t".repeat(21))])),
            format!("{b}[0].reply.title"),
            code::TOO_LONG,
        ),
        (
            buttons(json!([reply(&"i".repeat(257), "A")])),
            format!("{b}[0].reply.id"),
            code::TOO_LONG,
        ),
        (
            buttons(json!([reply("a", "A"), reply("a", "B")])),
            format!("{b}[1].reply.id"),
            code::DUPLICATE_VALUE,
        ),
        (
            buttons(json!([reply("a", "Same"), reply("b", "Same")])),
            format!("{b}[1].reply.title"),
            code::DUPLICATE_VALUE,
        ),
        (
            buttons(json!([reply("", "A")])),
            format!("{b}[0].reply.id"),
            code::MISSING_PARAMETER,
        ),
        (
            buttons(json!([reply("a", "Yes\nplease")])),
            format!("{b}[0].reply.title"),
            code::NEWLINE_OR_TAB,
        ),
        (
            buttons(json!([{"type": "url", "reply": {"id": "a", "title": "A"}}])),
            format!("{b}[0].type"),
            code::INVALID_VALUE,
        ),
        (
            buttons(json!([{"type": "reply", "reply": {"id": "a"}}])),
            format!("{b}[0].reply.title"),
            code::MISSING_FIELD,
        ),
        (
            send(
                "interactive",
                json!({"type": "button", "body": {"text": "x".repeat(1025)},
                    "action": {"buttons": [reply("a", "A")]}}),
            ),
            "interactive.body.text".to_owned(),
            code::TOO_LONG,
        ),
        (
            send(
                "interactive",
                json!({"type": "button", "action": {"buttons": [reply("a", "A")]}}),
            ),
            "interactive.body".to_owned(),
            code::MISSING_FIELD,
        ),
        (
            send(
                "interactive",
                json!({"type": "button", "body": {"text": "Hi"}, "footer": {"text": "f".repeat(61)},
                    "action": {"buttons": [reply("a", "A")]}}),
            ),
            "interactive.footer.text".to_owned(),
            code::TOO_LONG,
        ),
        (
            send(
                "interactive",
                json!({"type": "button", "header": {"type": "text", "text": "h".repeat(61)},
                    "body": {"text": "Hi"}, "action": {"buttons": [reply("a", "A")]}}),
            ),
            "interactive.header.text".to_owned(),
            code::TOO_LONG,
        ),
        (
            send(
                "interactive",
                json!({"type": "button", "header": {"type": "video", "video": {"link": "ftp://x"}},
                    "body": {"text": "Hi"}, "action": {"buttons": [reply("a", "A")]}}),
            ),
            "interactive.header.video.link".to_owned(),
            code::MEDIA_NOT_HTTPS,
        ),
        (
            send(
                "interactive",
                json!({"type": "button", "header": {"type": "image", "image": {"id": "1", "caption": "c"}},
                    "body": {"text": "Hi"}, "action": {"buttons": [reply("a", "A")]}}),
            ),
            "interactive.header.image.caption".to_owned(),
            code::UNKNOWN_FIELD,
        ),
        (
            send(
                "interactive",
                json!({"type": "product", "body": {"text": "Hi"}, "action": {}}),
            ),
            "interactive.type".to_owned(),
            code::INVALID_VALUE,
        ),
    ];
    for (request, field, code) in cases {
        let found = problems(&request);
        assert!(
            found.iter().any(|(f, c)| *f == field && *c == code),
            "expected {code} at {field:?}, got {found:?} for {request}"
        );
    }
    // A title of exactly 20 characters (counted as characters, not bytes) is fine.
    assert!(check(&buttons(json!([reply("a", &"é".repeat(20))]))).is_ok());
}

#[test]
fn list_limits_have_field_paths() {
    let s = "interactive.action.sections";
    let cases = [
        (list(json!([])), s.to_owned(), code::INVALID_ITEM_COUNT),
        (
            list(
                (0..11)
                    .map(|i| json!({"title": format!("S{i}"), "rows": rows(1, &format!("s{i}"))}))
                    .collect(),
            ),
            s.to_owned(),
            code::INVALID_ITEM_COUNT,
        ),
        (
            list(
                json!([{"title": "A", "rows": rows(6, "a")}, {"title": "B", "rows": rows(5, "b")}]),
            ),
            s.to_owned(),
            code::INVALID_ITEM_COUNT,
        ),
        (
            list(json!([{"rows": []}])),
            format!("{s}[0].rows"),
            code::INVALID_ITEM_COUNT,
        ),
        (
            list(json!([{"title": "A", "rows": rows(1, "a")}, {"rows": rows(1, "b")}])),
            format!("{s}[1].title"),
            code::MISSING_FIELD,
        ),
        (
            list(json!([{"title": "t".repeat(25), "rows": rows(1, "a")}])),
            format!("{s}[0].title"),
            code::TOO_LONG,
        ),
        (
            list(json!([{"rows": [{"id": "a", "title": "t".repeat(25)}]}])),
            format!("{s}[0].rows[0].title"),
            code::TOO_LONG,
        ),
        (
            list(json!([{"rows": [{"id": "a", "title": "A", "description": "d".repeat(73)}]}])),
            format!("{s}[0].rows[0].description"),
            code::TOO_LONG,
        ),
        (
            list(json!([{"rows": [{"id": "i".repeat(201), "title": "A"}]}])),
            format!("{s}[0].rows[0].id"),
            code::TOO_LONG,
        ),
        (
            list(
                json!([{"title": "A", "rows": rows(1, "x")}, {"title": "B", "rows": rows(1, "x")}]),
            ),
            format!("{s}[1].rows[0].id"),
            code::DUPLICATE_VALUE,
        ),
        (
            list(json!([{"rows": [{"id": "a\u{200B}", "title": "A"}]}])),
            format!("{s}[0].rows[0].id"),
            code::INVISIBLE_CHARACTER,
        ),
        (
            list(json!([{"rows": [{"id": "a", "title": "A", "extra": 1}]}])),
            format!("{s}[0].rows[0].extra"),
            code::UNKNOWN_FIELD,
        ),
        (
            send(
                "interactive",
                json!({"type": "list", "body": {"text": "Hi"},
                    "action": {"button": "b".repeat(21), "sections": [{"rows": rows(1, "a")}]}}),
            ),
            "interactive.action.button".to_owned(),
            code::TOO_LONG,
        ),
        (
            send(
                "interactive",
                json!({"type": "list", "body": {"text": "x".repeat(4097)},
                    "action": {"button": "B", "sections": [{"rows": rows(1, "a")}]}}),
            ),
            "interactive.body.text".to_owned(),
            code::TOO_LONG,
        ),
        (
            send(
                "interactive",
                json!({"type": "list", "header": {"type": "image", "image": {"id": "1"}},
                    "body": {"text": "Hi"},
                    "action": {"button": "B", "sections": [{"rows": rows(1, "a")}]}}),
            ),
            "interactive.header.type".to_owned(),
            code::INVALID_VALUE,
        ),
        (
            send(
                "interactive",
                json!({"type": "list", "body": {"text": "Hi"},
                    "action": {"buttons": [reply("a", "A")]}}),
            ),
            "interactive.action.buttons".to_owned(),
            code::UNKNOWN_FIELD,
        ),
    ];
    for (request, field, code) in cases {
        let found = problems(&request);
        assert!(
            found.iter().any(|(f, c)| *f == field && *c == code),
            "expected {code} at {field:?}, got {found:?} for {request}"
        );
    }
    // A list body may be longer than a buttons body (Meta: 4096 vs 1024).
    let long = send(
        "interactive",
        json!({"type": "list", "body": {"text": "x".repeat(4096)},
            "action": {"button": "B", "sections": [{"rows": rows(1, "a")}]}}),
    );
    assert!(check(&long).is_ok());
}

#[test]
fn location_reaction_and_context_limits_have_field_paths() {
    let cases = [
        (
            send("location", json!({"latitude": 91, "longitude": 0})),
            "location.latitude",
            code::INVALID_VALUE,
        ),
        (
            send("location", json!({"latitude": 0, "longitude": -180.5})),
            "location.longitude",
            code::INVALID_VALUE,
        ),
        (
            send("location", json!({"latitude": 0})),
            "location.longitude",
            code::MISSING_FIELD,
        ),
        (
            send("location", json!({"latitude": "1", "longitude": 0})),
            "location.latitude",
            code::INVALID_TYPE,
        ),
        (
            send(
                "location",
                json!({"latitude": 0, "longitude": 0, "name": "A\nB"}),
            ),
            "location.name",
            code::NEWLINE_OR_TAB,
        ),
        (
            send(
                "location",
                json!({"latitude": 0, "longitude": 0, "url": "x"}),
            ),
            "location.url",
            code::UNKNOWN_FIELD,
        ),
        (
            send("reaction", json!({"message_id": "123", "emoji": "👍"})),
            "reaction.message_id",
            code::INVALID_MESSAGE_ID,
        ),
        (
            send("reaction", json!({"message_id": WAMID, "emoji": "ok"})),
            "reaction.emoji",
            code::INVALID_EMOJI,
        ),
        (
            send("reaction", json!({"message_id": WAMID, "emoji": "👍👎"})),
            "reaction.emoji",
            code::INVALID_EMOJI,
        ),
        (
            send("reaction", json!({"message_id": WAMID})),
            "reaction.emoji",
            code::MISSING_FIELD,
        ),
        (
            json!({"to": TO, "context": {"message_id": WAMID}, "reaction": {"message_id": WAMID, "emoji": "👍"}}),
            "context",
            code::CONTEXT_NOT_ALLOWED,
        ),
        (
            json!({"to": TO, "context": {"message_id": WAMID},
                "template": {"name": "order_shipped", "language": "en_US"}}),
            "context",
            code::CONTEXT_NOT_ALLOWED,
        ),
        (
            json!({"to": TO, "context": {"message_id": "nope"}, "text": {"body": "a"}}),
            "context.message_id",
            code::INVALID_MESSAGE_ID,
        ),
        (
            json!({"to": TO, "context": {}, "text": {"body": "a"}}),
            "context.message_id",
            code::MISSING_FIELD,
        ),
        (
            json!({"to": TO, "context": "wamid.x", "text": {"body": "a"}}),
            "context",
            code::INVALID_TYPE,
        ),
        (
            json!({"to": TO, "text": {"body": "a\u{202E}b"}}),
            "text.body",
            code::INVISIBLE_CHARACTER,
        ),
    ];
    for (request, field, code) in cases {
        let found = problems(&request);
        assert!(
            found.iter().any(|(f, c)| f == field && *c == code),
            "expected {code} at {field:?}, got {found:?} for {request}"
        );
    }
}

#[test]
fn sanitize_cleans_free_form_texts_but_never_identifiers() {
    let request = json!({"to": TO, "interactive": {"type": "button",
        "body": {"text": "Hi\u{200B}\nthere"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes\tplease"}}]}}});
    let v = validate(
        &request,
        &TemplateCatalog::default(),
        FormattingPolicy::Sanitize,
    )
    .unwrap();
    let json = v.to_json();
    assert_eq!(json["interactive"]["body"]["text"], "Hi\nthere");
    assert_eq!(
        json["interactive"]["action"]["buttons"][0]["reply"]["title"],
        "Yes please"
    );
    let fields: Vec<&str> = v.sanitized().iter().map(|s| s.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "interactive.body.text",
            "interactive.action.buttons[0].reply.title"
        ]
    );
    // What sanitizing produced re-validates strictly to itself (the sender's re-check).
    let again = check(&json).unwrap();
    assert_eq!(again.request(), v.request());

    // An id is refused, not rewritten, whatever the policy.
    let bad_id = json!({"to": TO, "interactive": {"type": "button", "body": {"text": "Hi"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "y\u{200B}", "title": "Yes"}}]}}});
    let p = validate(
        &bad_id,
        &TemplateCatalog::default(),
        FormattingPolicy::Sanitize,
    )
    .unwrap_err();
    assert_eq!(p[0].field, "interactive.action.buttons[0].reply.id");
    assert_eq!(p[0].code, code::INVISIBLE_CHARACTER);
}

#[test]
fn only_templates_are_exempt_from_the_window() {
    use crate::domain::Timestamp;
    use crate::domain::policy::recipient_refusal;
    use crate::domain::tenant::Contact;
    let now = Timestamp::from_secs(1_000_000);
    let closed = Contact::default();
    for request in good_examples() {
        let v = check(&request).unwrap();
        let free_form = v.template_name().is_none();
        assert!(
            recipient_refusal(&closed, free_form, false, now).is_some(),
            "{request}"
        );
    }
}
