//! Tolerance of what Meta may add or get wrong, refusal of what is not a webhook, and
//! property tests: parsing never panics.

use super::fixture_tests::{FIXTURE_DIR, FIXTURES, codes, parse};
use super::*;
use EventKind as K;
use proptest::prelude::*;

fn envelope(changes: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{changes}]}}]}}"#
    )
}

const META: &str = r#""metadata":{"phone_number_id":"106540352242922"}"#;

#[test]
fn unknown_keys_anywhere_are_ignored_silently() {
    let body = envelope(&format!(
        r#"{{"field":"messages","extra":1,"value":{{{META},"user_actions":[{{"a":1}}],
        "statuses":[{{"id":"wamid.X","status":"sent","timestamp":"1","new_thing":{{"x":[1]}}}}]}}}}"#
    ));
    let batch = parse(&body);
    assert_eq!(batch.statuses().count(), 1);
    assert!(batch.warnings.is_empty(), "{:?}", batch.warnings);
}

#[test]
fn one_unreadable_item_is_dropped_and_its_neighbours_kept() {
    let body = envelope(&format!(
        r#"{{"field":"messages","value":{{{META},"statuses":[
          {{"id":"wamid.A","status":"sent","timestamp":"1"}},
          {{"id":"wamid.B","status":5,"timestamp":"1"}},
          {{"status":"sent","timestamp":"1"}},
          {{"id":"wamid.D","timestamp":"1"}},
          {{"id":"wamid.E","status":"read","timestamp":"1"}}],
          "messages":[{{"id":"wamid.F","type":"text","text":{{"body":"hi"}},"timestamp":"1"}}]}}}}"#
    ));
    let batch = parse(&body);
    let kept: Vec<&str> = batch.statuses().map(|s| s.wamid.as_str()).collect();
    assert_eq!(kept, ["wamid.A", "wamid.E"]);
    assert_eq!(batch.inbound_messages().count(), 0);
    let dropped: Vec<(ItemList, usize)> = batch
        .warnings
        .iter()
        .filter_map(|w| match w.problem {
            Problem::DroppedItem { list, index, .. } => Some((list, index)),
            _ => None,
        })
        .collect();
    assert_eq!(
        dropped,
        [
            (ItemList::Statuses, 1),
            (ItemList::Statuses, 2),
            (ItemList::Statuses, 3),
            (ItemList::Messages, 0),
        ]
    );
}

#[test]
fn unreadable_or_missing_timestamps_are_reported_not_fatal() {
    let body = envelope(&format!(
        r#"{{"field":"messages","value":{{{META},"statuses":[
          {{"id":"wamid.A","status":"sent","timestamp":"yesterday"}},
          {{"id":"wamid.B","status":"sent","timestamp":-5}},
          {{"id":"wamid.C","status":"sent"}}]}}}}"#
    ));
    let batch = parse(&body);
    assert!(batch.statuses().all(|s| s.timestamp.is_none()));
    let raws: Vec<Option<String>> = batch
        .warnings
        .iter()
        .map(|w| match &w.problem {
            Problem::BadTimestamp { raw, .. } => raw.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(raws, [Some("yesterday".into()), Some("-5".into()), None]);
}

#[test]
fn error_codes_sent_as_strings_are_read() {
    let body = envelope(&format!(
        r#"{{"field":"messages","value":{{{META},"statuses":[{{"id":"wamid.A","status":"failed",
        "timestamp":"1","errors":[{{"code":"131026"}},{{"code":"n/a"}}]}}]}}}}"#
    ));
    let s = parse(&body).statuses().next().cloned().unwrap();
    let codes: Vec<_> = s.errors.iter().map(|e| e.code).collect();
    assert_eq!(codes, [Some(131_026), None]);
}

#[test]
fn a_known_field_with_the_wrong_shape_is_kept_as_unknown_and_reported() {
    let body = envelope(
        r#"{"field":"message_template_status_update","value":{"message_template_name":"x"}},
           {"field":"messages","value":null},
           {"field":"account_update","value":{"event":"PARTNER_REMOVED"}}"#,
    );
    let batch = parse(&body);
    let kinds: Vec<_> = batch.events.iter().map(WebhookEvent::kind).collect();
    assert_eq!(kinds, [K::Unknown, K::Unknown, K::AccountUpdate]);
    assert_eq!(codes(&batch), ["malformed_change", "malformed_change"]);
    assert!(batch.warnings[1].to_string().contains("no value"));
}

#[test]
fn a_messages_change_without_metadata_is_reported() {
    let body = envelope(
        r#"{"field":"messages","value":{"statuses":[{"id":"w.1","status":"sent","timestamp":"1"}]}}"#,
    );
    let batch = parse(&body);
    assert_eq!(batch.statuses().next().unwrap().phone_number_id, None);
    assert_eq!(codes(&batch), ["missing_phone_number_id"]);
}

#[test]
fn entries_without_id_or_changes_are_tolerated() {
    let body =
        r#"{"object":"whatsapp_business_account","entry":[{"time":1},{"id":2,"changes":[]}]}"#;
    let batch = parse(body);
    assert!(batch.events.is_empty());
    assert_eq!(codes(&batch), ["missing_waba_id"]);
}

#[test]
fn bodies_that_are_not_webhooks_are_typed_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "json"),
        (b"not json", "json"),
        (
            br#"{"object":"whatsapp_business_account","entry":["#,
            "json",
        ),
        (b"\xff\xfe{}", "json"),
        (b"[]", "shape"),
        (br#"{"entry":[]}"#, "shape"),
        (br#"{"object":"whatsapp_business_account"}"#, "shape"),
        (
            br#"{"object":"whatsapp_business_account","entry":{}}"#,
            "shape",
        ),
        (
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{}}]}]}"#,
            "shape",
        ),
        (br#"{"object":"page","entry":[]}"#, "object"),
    ];
    for (body, expected) in cases {
        let got = match parse_envelope(body) {
            Err(WebhookParseError::InvalidJson(_)) => "json",
            Err(WebhookParseError::WrongShape(_)) => "shape",
            Err(WebhookParseError::WrongObject(_)) => "object",
            Ok(_) => "ok",
        };
        assert_eq!(got, *expected, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn deeply_nested_values_do_not_overflow_the_stack() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    // In an unknown change: kept, with `null` standing in for what serde_json will
    // not build past its recursion limit.
    let body = envelope(&format!(r#"{{"field":"foo","value":{deep}}}"#));
    let batch = parse(&body);
    let WebhookEvent::Unknown(change) = &batch.events[0] else {
        panic!("expected an unknown change");
    };
    assert_eq!(change.value, serde_json::Value::Null);
    // Inside a status: the status is read, the unknown key skipped.
    let body = envelope(&format!(
        r#"{{"field":"messages","value":{{{META},"deep":{deep},
        "statuses":[{{"id":"wamid.A","status":"sent","timestamp":"1","deep":{deep}}}]}}}}"#
    ));
    let batch = parse(&body);
    assert_eq!(batch.statuses().count(), 1);
}

#[test]
fn a_long_foreign_object_name_is_truncated_in_the_error() {
    let body = format!(r#"{{"object":"{}","entry":[]}}"#, "x".repeat(10_000));
    let err = parse_envelope(body.as_bytes()).unwrap_err();
    assert!(err.to_string().len() < 200);
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_envelope(&body);
    }

    #[test]
    fn parse_never_panics_on_corrupted_fixtures(
        which in 0..FIXTURES.len(),
        cut in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let name = FIXTURES[which].0;
        let mut body = std::fs::read(format!("{FIXTURE_DIR}/{name}.json")).unwrap();
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        body.truncate(cut.index(body.len() + 1));
        let _ = parse_envelope(&body);
    }
}

#[test]
fn warnings_do_not_quote_message_content() {
    let body = envelope(&format!(
        r#"{{"field":"messages","value":{{{META},"messages":[
          {{"from":"16505551234","type":"text","text":"call me on +1 650 555 1234"}}]}}}}"#
    ));
    let batch = parse(&body);
    let warning = batch.warnings[0].to_string();
    assert!(warning.starts_with("dropped messages[0]"), "{warning}");
    assert!(warning.contains("invalid type"), "{warning}");
    assert!(!warning.contains("555"), "{warning}");
}
