use super::*;
use crate::domain::request::{BodyParams, ButtonValue, HeaderParam};
use crate::domain::template::Template;
use serde_json::{Value, json};

const CATALOG: &str = include_str!("../../../tests/fixtures/templates/catalog.json");

fn catalog() -> TemplateCatalog {
    TemplateCatalog::from_json(CATALOG).unwrap()
}

fn shipped() -> Value {
    json!({"to": "+1 415 555 0123", "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]},
        "metadata": {"order": "1234"}})
}

fn problems(request: &Value) -> Vec<(String, &'static str)> {
    match validate(request, &catalog(), FormattingPolicy::Strict) {
        Ok(v) => panic!("expected problems, got {:?}", v.to_json()),
        Err(p) => p.into_iter().map(|p| (p.field, p.code)).collect(),
    }
}

/// `shipped()` with `patch` applied at a JSON pointer (`None` removes the field).
fn shipped_with(pointer: &str, patch: Option<Value>) -> Value {
    let mut v = shipped();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = v.pointer_mut(parent).unwrap();
    match (target, patch) {
        (Value::Object(m), Some(p)) => {
            m.insert(key.to_owned(), p);
        }
        (Value::Object(m), None) => {
            m.remove(key);
        }
        (Value::Array(a), Some(p)) => a[key.parse::<usize>().unwrap()] = p,
        _ => unreachable!(),
    }
    v
}

#[test]
fn a_good_request_is_normalised_and_keeps_its_shape() {
    let v = validate(&shipped(), &catalog(), FormattingPolicy::Strict).unwrap();
    assert_eq!(v.to().as_str(), "+14155550123");
    assert_eq!(v.template_name(), Some("order_shipped"));
    assert!(v.sanitized().is_empty());
    let mut expected = shipped();
    expected["to"] = json!("+14155550123");
    assert_eq!(v.to_json(), expected);
}

#[test]
fn a_validated_request_revalidates_strictly_to_itself() {
    let sloppy = shipped_with("/template/body/0", Some(json!("Ana\n  Maria")));
    let v = validate(&sloppy, &catalog(), FormattingPolicy::Sanitize).unwrap();
    let again = validate(&v.to_json(), &catalog(), FormattingPolicy::Strict).unwrap();
    assert_eq!(again.request(), v.request());
}

#[test]
fn each_rule_reports_its_field_and_code() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            shipped_with("/to", Some(json!("4155550123"))),
            "to",
            code::INVALID_PHONE_NUMBER,
        ),
        (shipped_with("/to", None), "to", code::MISSING_FIELD),
        (
            shipped_with("/to", Some(json!(14155550123u64))),
            "to",
            code::INVALID_TYPE,
        ),
        (
            shipped_with("/priority", Some(json!("high"))),
            "priority",
            code::UNKNOWN_FIELD,
        ),
        (
            shipped_with("/template/name", Some(json!("nope"))),
            "template.name",
            code::UNKNOWN_TEMPLATE,
        ),
        (
            shipped_with("/template/language", Some(json!("en"))),
            "template.language",
            code::UNKNOWN_LANGUAGE,
        ),
        (
            shipped_with("/template/colour", Some(json!(1))),
            "template.colour",
            code::UNKNOWN_FIELD,
        ),
        (
            shipped_with("/template/body", Some(json!(["Ana"]))),
            "template.body",
            code::PARAMETER_COUNT_MISMATCH,
        ),
        (
            shipped_with("/template/body", None),
            "template.body",
            code::MISSING_PARAMETER,
        ),
        (
            shipped_with("/template/body", Some(json!({"a": "b"}))),
            "template.body",
            code::PARAMETER_FORMAT_MISMATCH,
        ),
        (
            shipped_with("/template/body/1", Some(json!("#1\n234"))),
            "template.body[1]",
            code::NEWLINE_OR_TAB,
        ),
        (
            shipped_with("/template/body/1", Some(json!("#1     234"))),
            "template.body[1]",
            code::TOO_MANY_CONSECUTIVE_SPACES,
        ),
        (
            shipped_with("/template/body/1", Some(json!("x".repeat(1025)))),
            "template.body[1]",
            code::TOO_LONG,
        ),
        (
            shipped_with("/template/body/1", Some(json!(" "))),
            "template.body[1]",
            code::MISSING_PARAMETER,
        ),
        (
            shipped_with("/template/body/1", Some(json!(42))),
            "template.body[1]",
            code::INVALID_TYPE,
        ),
        (
            shipped_with(
                "/template/header",
                Some(json!({"type": "text", "text": "Hi"})),
            ),
            "template.header",
            code::UNEXPECTED_PARAMETER,
        ),
        (
            shipped_with("/template/buttons", None),
            "template.buttons",
            code::MISSING_URL_SUFFIX,
        ),
        (
            shipped_with(
                "/template/buttons/0",
                Some(json!({"index": 3, "type": "url", "text": "a"})),
            ),
            "template.buttons[0].index",
            code::BUTTON_INDEX_MISMATCH,
        ),
        (
            shipped_with(
                "/template/buttons/0",
                Some(json!({"index": 0, "type": "quick_reply"})),
            ),
            "template.buttons[0].type",
            code::BUTTON_TYPE_MISMATCH,
        ),
        (
            shipped_with(
                "/template/buttons/0",
                Some(json!({"index": 0, "type": "url", "text": "a", "url": "b"})),
            ),
            "template.buttons[0].url",
            code::UNKNOWN_FIELD,
        ),
        (
            shipped_with(
                "/template/buttons/0",
                Some(json!({"index": 0, "type": "url", "text": "a".repeat(2000)})),
            ),
            "template.buttons[0].text",
            code::TOO_LONG,
        ),
        (
            shipped_with(
                "/template/buttons/0",
                Some(json!({"index": -1, "type": "url", "text": "a"})),
            ),
            "template.buttons[0].index",
            code::INVALID_TYPE,
        ),
        (
            shipped_with(
                "/template/buttons/0",
                Some(json!({"index": 0, "type": "call"})),
            ),
            "template.buttons[0].type",
            code::INVALID_VALUE,
        ),
        (
            shipped_with("/metadata", Some(json!({"blob": "x".repeat(1100)}))),
            "metadata",
            code::METADATA_TOO_LARGE,
        ),
        (
            shipped_with("/metadata", Some(json!("x"))),
            "metadata",
            code::INVALID_TYPE,
        ),
        (
            shipped_with("/metadata", Some(json!({"order": 1234}))),
            "metadata.order",
            code::INVALID_TYPE,
        ),
        (
            shipped_with("/text", Some(json!({"body": "hi"}))),
            "text",
            code::EXACTLY_ONE_OF_TEMPLATE_OR_TEXT,
        ),
        (
            shipped_with("/template", None),
            "template",
            code::EXACTLY_ONE_OF_TEMPLATE_OR_TEXT,
        ),
        (
            json!({"to": "+14155550123", "text": {"body": "x".repeat(4097)}}),
            "text.body",
            code::TEXT_TOO_LONG,
        ),
        (
            json!({"to": "+14155550123", "text": {"body": "hi", "preview_url": "yes"}}),
            "text.preview_url",
            code::INVALID_TYPE,
        ),
        (json!(["not", "an", "object"]), "", code::INVALID_TYPE),
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
fn every_problem_of_a_request_is_reported_at_once() {
    let request = json!({"to": "123", "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana\tB"], "buttons": [{"index": 1, "type": "url", "text": "a"}]},
        "metadata": [], "extra": true});
    let found = problems(&request);
    for expected in [
        ("to", code::INVALID_PHONE_NUMBER),
        ("extra", code::UNKNOWN_FIELD),
        ("metadata", code::INVALID_TYPE),
        ("template.body", code::PARAMETER_COUNT_MISMATCH),
        ("template.body[0]", code::NEWLINE_OR_TAB),
        ("template.buttons[0].index", code::BUTTON_INDEX_MISMATCH),
        ("template.buttons", code::MISSING_URL_SUFFIX),
    ] {
        assert!(
            found.contains(&(expected.0.to_owned(), expected.1)),
            "{expected:?} in {found:?}"
        );
    }
}

#[test]
fn a_paused_template_is_refused_as_not_approved() {
    let request = json!({"to": "+14155550123", "template": {"name": "winter_clearance",
        "language": "en_US", "body": ["Ana"]}});
    assert_eq!(
        problems(&request),
        vec![("template.name".to_owned(), code::TEMPLATE_NOT_APPROVED)]
    );
}

#[test]
fn named_values_are_matched_by_name() {
    let request = json!({"to": "+14155550123", "template": {"name": "appointment_reminder",
        "language": "en_US", "header": {"type": "image", "link": "https://cdn.example/a.jpg"},
        "body": {"first_name": "Ana", "doctor": "Dr. Silva", "time": "10:00"}}});
    let found = problems(&request);
    assert!(found.contains(&("template.body.date".to_owned(), code::MISSING_PARAMETER)));
    assert!(found.contains(&("template.body.time".to_owned(), code::UNEXPECTED_PARAMETER)));
    let positional = json!({"to": "+14155550123", "template": {"name": "appointment_reminder",
        "language": "en_US", "header": {"type": "image", "link": "https://cdn.example/a.jpg"},
        "body": ["Ana", "Dr. Silva", "June 3"]}});
    assert!(
        problems(&positional)
            .contains(&("template.body".to_owned(), code::PARAMETER_FORMAT_MISMATCH))
    );
}

#[test]
fn media_headers_must_be_https_and_of_the_template_kind() {
    let with_header = |header: Value| {
        json!({"to": "+14155550123", "template": {"name": "appointment_reminder", "language": "en_US",
            "header": header, "body": {"first_name": "Ana", "doctor": "Dr. Silva", "date": "June 3"}}})
    };
    let good = with_header(json!({"type": "image", "link": "https://cdn.example/a.jpg"}));
    assert!(validate(&good, &catalog(), FormattingPolicy::Strict).is_ok());
    let http = with_header(json!({"type": "image", "link": "http://cdn.example/a.jpg"}));
    assert_eq!(
        problems(&http),
        vec![(
            "template.header.link".to_owned(),
            code::HEADER_MEDIA_NOT_HTTPS
        )]
    );
    let video = with_header(json!({"type": "video", "link": "https://cdn.example/a.mp4"}));
    assert_eq!(
        problems(&video),
        vec![(
            "template.header.type".to_owned(),
            code::HEADER_KIND_MISMATCH
        )]
    );
    let none = json!({"to": "+14155550123", "template": {"name": "appointment_reminder", "language": "en_US",
        "body": {"first_name": "Ana", "doctor": "Dr. Silva", "date": "June 3"}}});
    assert_eq!(
        problems(&none),
        vec![("template.header".to_owned(), code::MISSING_PARAMETER)]
    );
}

#[test]
fn static_buttons_take_no_value_and_extra_buttons_are_counted() {
    let request = json!({"to": "+14155550123", "template": {"name": "appointment_reminder",
        "language": "en_US", "header": {"type": "image", "link": "https://cdn.example/a.jpg"},
        "body": {"first_name": "Ana", "doctor": "Dr. Silva", "date": "June 3"},
        "buttons": [{"index": 0, "type": "url", "text": "x"}, {"index": 1, "type": "quick_reply"},
                    {"index": 1, "type": "quick_reply", "payload": "again"}]}});
    let found = problems(&request);
    assert!(found.contains(&("template.buttons".to_owned(), code::BUTTON_COUNT_MISMATCH)));
    assert!(found.contains(&("template.buttons[0]".to_owned(), code::UNEXPECTED_PARAMETER)));
    assert!(found.contains(&(
        "template.buttons[2].index".to_owned(),
        code::BUTTON_INDEX_MISMATCH
    )));
}

#[test]
fn coupon_codes_are_required_and_bounded() {
    let sale = |buttons: Value| {
        json!({"to": "+14155550123", "template": {"name": "spring_sale", "language": "en_US",
            "header": {"type": "text", "text": "Ana"}, "body": ["25%", "March 31"], "buttons": buttons}})
    };
    assert!(
        validate(
            &sale(json!([{"index": 0, "type": "copy_code", "coupon_code": "SPRING25"}])),
            &catalog(),
            FormattingPolicy::Strict
        )
        .is_ok()
    );
    assert_eq!(
        problems(&sale(json!([]))),
        vec![("template.buttons".to_owned(), code::MISSING_PARAMETER)]
    );
    let long = sale(json!([{"index": 0, "type": "copy_code", "coupon_code": "C".repeat(21)}]));
    assert_eq!(
        problems(&long),
        vec![("template.buttons[0].coupon_code".to_owned(), code::TOO_LONG)]
    );
    let header_long = json!({"to": "+14155550123", "template": {"name": "spring_sale", "language": "en_US",
        "header": {"type": "text", "text": "h".repeat(61)}, "body": ["25%", "March 31"],
        "buttons": [{"index": 0, "type": "copy_code", "coupon_code": "SPRING25"}]}});
    assert_eq!(
        problems(&header_long),
        vec![("template.header.text".to_owned(), code::TOO_LONG)]
    );
}

#[test]
fn an_omitted_otp_button_takes_the_code_from_the_body() {
    let request = json!({"to": "+14155550123", "template": {"name": "login_code", "language": "en_US", "body": ["482913"]}});
    let v = validate(&request, &catalog(), FormattingPolicy::Strict).unwrap();
    let Content::Template(t) = &v.request().content else {
        panic!("template")
    };
    assert_eq!(t.buttons.len(), 1);
    assert_eq!(t.buttons[0].index, 0);
    assert_eq!(
        t.buttons[0].value,
        ButtonValue::Url {
            text: "482913".into()
        }
    );
    let long = json!({"to": "+14155550123", "template": {"name": "login_code", "language": "en_US", "body": ["1234567890123456"]}});
    assert_eq!(
        problems(&long),
        vec![("template.body[0]".to_owned(), code::TOO_LONG)]
    );
}

#[test]
fn a_named_text_header_gets_its_parameter_name() {
    let template: Template =
        serde_json::from_value(json!({"name": "hi", "language": "en", "status": "APPROVED",
        "parameter_format": "NAMED", "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Hello {{who}}"},
            {"type": "BODY", "text": "Welcome."}]}))
        .unwrap();
    let catalog = TemplateCatalog::new([template]);
    let request = json!({"to": "+14155550123", "template": {"name": "hi", "language": "en", "header": {"type": "text", "text": "Ana"}}});
    let v = validate(&request, &catalog, FormattingPolicy::Strict).unwrap();
    let Content::Template(t) = &v.request().content else {
        panic!("template")
    };
    assert_eq!(
        t.header,
        Some(HeaderParam::Text {
            text: "Ana".into(),
            parameter_name: Some("who".into())
        })
    );
    let wrong = json!({"to": "+14155550123", "template": {"name": "hi", "language": "en",
        "header": {"type": "text", "text": "Ana", "parameter_name": "name"}}});
    let p = validate(&wrong, &catalog, FormattingPolicy::Strict).unwrap_err();
    assert_eq!(p[0].field, "template.header.parameter_name");
    assert_eq!(p[0].code, code::PARAMETER_NAME_MISMATCH);
}

#[test]
fn body_only_templates_allow_long_values() {
    let template: Template = serde_json::from_value(
        json!({"name": "long", "language": "en", "status": "APPROVED",
        "components": [{"type": "BODY", "text": "{{1}}"}]}),
    )
    .unwrap();
    let catalog = TemplateCatalog::new([template]);
    let request = |n: usize| json!({"to": "+14155550123", "template": {"name": "long", "language": "en", "body": ["x".repeat(n)]}});
    assert!(validate(&request(32768), &catalog, FormattingPolicy::Strict).is_ok());
    assert!(validate(&request(32769), &catalog, FormattingPolicy::Strict).is_err());
}

#[test]
fn sanitize_cleans_values_and_reports_each_change() {
    let request = json!({"to": "+14155550123", "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana\nMaria", {"type": "date_time", "fallback_value": "June\t3,      2026"}],
        "buttons": [{"index": 0, "type": "url", "text": "ABC"}]}});
    let v = validate(&request, &catalog(), FormattingPolicy::Sanitize).unwrap();
    let fields: Vec<&str> = v.sanitized().iter().map(|s| s.field.as_str()).collect();
    assert_eq!(
        fields,
        ["template.body[0]", "template.body[1].fallback_value"]
    );
    let Content::Template(t) = &v.request().content else {
        panic!("template")
    };
    let Some(BodyParams::Positional(values)) = &t.body else {
        panic!("positional")
    };
    assert_eq!(values[0].visible_text(), "Ana Maria");
    // Meta allows up to 4 spaces in a row: only the run of 6 is shortened, to 4.
    assert_eq!(values[1].visible_text(), "June 3,    2026");
}

#[test]
fn free_form_text_keeps_newlines_and_ignores_the_catalog() {
    let request =
        json!({"to": "+14155550123", "text": {"body": "Line one\nLine two", "preview_url": true}});
    let v = validate(
        &request,
        &TemplateCatalog::default(),
        FormattingPolicy::Strict,
    )
    .unwrap();
    assert_eq!(v.to_json(), request);
}

#[test]
fn requests_parse_without_a_template_and_round_trip() {
    let r = crate::domain::request::SendRequest::from_json(&shipped()).unwrap();
    assert_eq!(r.to_json(), shipped());
    let back: crate::domain::request::SendRequest = serde_json::from_value(shipped()).unwrap();
    assert_eq!(back, r);
    let err = serde_json::from_value::<crate::domain::request::SendRequest>(json!({"to": 1}))
        .unwrap_err();
    assert!(err.to_string().contains("to: to must be a string"), "{err}");
    assert_eq!(
        requested_template(&shipped()),
        Some(("order_shipped", "en_US"))
    );
}

/// Sends of the FLOW, CATALOG, MPM and VIDEO-header templates of
/// `fixtures/templates/interactive.json`: what each must (and must not) provide.
#[test]
fn flow_catalog_mpm_and_video_header_templates_are_validated_by_their_requirements() {
    let catalog = TemplateCatalog::from_json(include_str!(
        "../../../tests/fixtures/templates/interactive.json"
    ))
    .unwrap();
    let send = |template: Value| json!({"to": "+14155550123", "template": template});
    let check = |request: &Value| match validate(request, &catalog, FormattingPolicy::Strict) {
        Ok(v) => Ok(v.to_json()),
        Err(p) => Err(p.into_iter().map(|p| (p.field, p.code)).collect::<Vec<_>>()),
    };

    // FLOW and CATALOG buttons need nothing: the body values are the whole send.
    let flow = check(&send(
        json!({"name": "book_appointment", "language": "en_US",
        "body": ["Ana", "Downtown clinic"]}),
    ))
    .unwrap();
    assert_eq!(flow["template"]["name"], "book_appointment");
    assert!(
        check(&send(
            json!({"name": "new_arrivals_catalog", "language": "en_US",
            "body": ["Ana"]})
        ))
        .is_ok()
    );

    // MPM needs product sections this service cannot send: refused up front.
    assert_eq!(
        check(&send(json!({"name": "picked_for_you", "language": "en_US",
            "header": {"type": "text", "text": "Ana"}})))
        .unwrap_err(),
        [("template.name".to_owned(), "unsupported_template")]
    );

    // A VIDEO header needs a video by https link; an image, or nothing, is refused.
    let video = |header: Option<Value>| {
        let mut t = json!({"name": "setup_video", "language": "en_US",
            "body": {"first_name": "Ana", "device": "router"},
            "buttons": [{"index": 0, "type": "url", "text": "rt-200"}]});
        if let Some(h) = header {
            t["header"] = h;
        }
        check(&send(t))
    };
    assert!(
        video(Some(
            json!({"type": "video", "link": "https://cdn.example/setup.mp4"})
        ))
        .is_ok()
    );
    assert_eq!(
        video(None).unwrap_err(),
        [("template.header".to_owned(), "missing_parameter")]
    );
    assert_eq!(
        video(Some(
            json!({"type": "image", "link": "https://cdn.example/a.jpg"})
        ))
        .unwrap_err(),
        [("template.header.type".to_owned(), "header_kind_mismatch")]
    );
}
