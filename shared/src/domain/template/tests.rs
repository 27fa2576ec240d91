use super::*;
use serde_json::json;

const CATALOG: &str = include_str!("../../../tests/fixtures/templates/catalog.json");

fn catalog() -> TemplateCatalog {
    TemplateCatalog::from_json(CATALOG).unwrap()
}

fn requirements(name: &str) -> SendRequirements {
    SendRequirements::of(catalog().get(name, "en_US").unwrap())
}

#[test]
fn the_fixture_catalog_parses_as_a_graph_page() {
    let page: TemplatePage = serde_json::from_str(CATALOG).unwrap();
    assert_eq!(page.data.len(), 9);
    assert!(page.paging.unwrap().cursors.unwrap().after.is_some());
    let c = catalog();
    assert_eq!(c.len(), 9);
    let shipped = c.get("order_shipped", "en_US").unwrap();
    assert_eq!(shipped.status, Some(TemplateStatus::Approved));
    assert_eq!(shipped.category, Some(TemplateCategory::Utility));
    assert_eq!(shipped.id.as_deref(), Some("1152803165811234"));
    assert!(shipped.is_approved());
    let paused = c.get("winter_clearance", "en_US").unwrap();
    assert_eq!(paused.status, Some(TemplateStatus::Paused));
    assert!(!paused.is_approved());
    assert_eq!(paused.extra["quality_score"]["score"], "RED");
}

#[test]
fn lookups_match_the_locale_exactly() {
    let c = catalog();
    assert!(matches!(c.lookup("order_shipped", "es"), Lookup::Found(_)));
    assert_eq!(
        c.lookup("order_shipped", "en"),
        Lookup::OtherLanguages(vec!["en_US", "es"])
    );
    assert_eq!(c.lookup("no_such_template", "en_US"), Lookup::Unknown);
    assert_eq!(c.languages_of("order_shipped"), vec!["en_US", "es"]);
}

#[test]
fn a_catalog_reads_a_single_template_or_a_bare_array_too() {
    let one = json!({"name": "hello_world", "language": "en_US", "status": "APPROVED",
        "components": [{"type": "BODY", "text": "Hello World"}]});
    assert_eq!(TemplateCatalog::from_value(one.clone()).unwrap().len(), 1);
    assert_eq!(TemplateCatalog::from_value(json!([one])).unwrap().len(), 1);
    assert!(TemplateCatalog::from_json("{\"data\": 3}").is_err());
}

#[test]
fn unknown_components_buttons_and_fields_are_kept_and_round_trip() {
    let raw = json!({
        "name": "promo_carousel", "language": "en", "status": "APPROVED",
        "category": "MARKETING", "parameter_format": "POSITIONAL", "id": "1",
        "future_field": {"x": 1},
        "components": [
            {"type": "BODY", "text": "Look {{1}}", "new_body_flag": true},
            {"type": "CAROUSEL", "cards": [{"components": []}]},
            {"type": "BUTTONS", "buttons": [
                {"type": "VOICE_CALL", "text": "Call us", "ttl_minutes": 60},
                {"type": "URL", "text": "Go", "url": "https://x.example/{{1}}", "tracking": "on"}
            ]}
        ]
    });
    let t: Template = serde_json::from_value(raw.clone()).unwrap();
    assert!(matches!(t.components[1], Component::Other(_)));
    assert!(matches!(t.buttons()[0], Button::Other(_)));
    assert_eq!(t.buttons()[0].type_name(), "VOICE_CALL");
    assert_eq!(t.extra["future_field"], json!({"x": 1}));
    assert_eq!(serde_json::to_value(&t).unwrap(), raw);
}

#[test]
fn unknown_statuses_and_categories_are_kept_verbatim() {
    let t: Template = serde_json::from_value(json!({
        "name": "x", "language": "en", "status": "LOCKED", "category": "SERVICE"}))
    .unwrap();
    assert_eq!(t.status, Some(TemplateStatus::Other("LOCKED".into())));
    assert_eq!(
        t.category.as_ref().map(TemplateCategory::as_str),
        Some("SERVICE")
    );
    assert_eq!(t.parameter_format, ParameterFormat::Positional);
}

#[test]
fn a_template_with_a_malformed_known_component_is_refused() {
    let bad = json!({"name": "x", "language": "en", "components": [{"type": "BODY", "text": 3}]});
    assert!(serde_json::from_value::<Template>(bad).is_err());
    let untyped = json!({"name": "x", "language": "en", "components": [{"text": "hi"}]});
    assert!(serde_json::from_value::<Template>(untyped).is_err());
}

#[test]
fn order_shipped_needs_two_body_values_and_a_url_suffix() {
    let r = requirements("order_shipped");
    assert_eq!(r.header, HeaderRequirement::None);
    assert_eq!(r.body, ParamSlots::Positional(2));
    let base = "https://shop.example/track/".len();
    assert_eq!(
        r.buttons,
        vec![ButtonRequirement::UrlSuffix {
            max_chars: 2000 - base
        }]
    );
    assert!(!r.body_only);
}

#[test]
fn welcome_offer_needs_nothing_but_allows_quick_reply_payloads() {
    let r = requirements("welcome_offer");
    assert_eq!(r.header, HeaderRequirement::None);
    assert!(r.body.is_empty());
    assert_eq!(r.buttons, vec![ButtonRequirement::QuickReplyPayload; 2]);
    assert!(r.buttons.iter().all(|b| !b.is_required()));
}

#[test]
fn login_code_needs_the_code_in_body_and_otp_button() {
    let r = requirements("login_code");
    assert_eq!(r.body, ParamSlots::Positional(1));
    assert_eq!(r.buttons, vec![ButtonRequirement::OtpCode]);
}

#[test]
fn otp_buttons_returned_as_whatsapp_urls_need_the_code() {
    let t: Template = serde_json::from_value(json!({
        "name": "otp", "language": "en", "category": "AUTHENTICATION",
        "components": [{"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Copy code",
            "url": "https://www.whatsapp.com/otp/code/?otp_type=COPY_CODE&code=otp{{1}}"}]}]}))
    .unwrap();
    assert_eq!(
        SendRequirements::of(&t).buttons,
        vec![ButtonRequirement::OtpCode]
    );
}

#[test]
fn named_template_lists_names_and_its_image_header() {
    let r = requirements("appointment_reminder");
    assert_eq!(r.parameter_format, ParameterFormat::Named);
    assert_eq!(r.header, HeaderRequirement::Media(MediaKind::Image));
    assert_eq!(
        r.body,
        ParamSlots::Named(vec!["first_name".into(), "doctor".into(), "date".into()])
    );
    assert_eq!(
        r.buttons,
        vec![
            ButtonRequirement::Nothing,
            ButtonRequirement::QuickReplyPayload
        ]
    );
}

#[test]
fn coupon_codes_of_marketing_templates_get_twenty_characters() {
    let r = requirements("spring_sale");
    assert_eq!(r.header, HeaderRequirement::Text(ParamSlots::Positional(1)));
    assert_eq!(
        r.buttons,
        vec![
            ButtonRequirement::CouponCode { max_chars: 20 },
            ButtonRequirement::Nothing
        ]
    );
}

#[test]
fn document_and_location_headers_are_recognised() {
    assert_eq!(
        requirements("invoice_ready").header,
        HeaderRequirement::Media(MediaKind::Document)
    );
    assert_eq!(
        requirements("pickup_ready").header,
        HeaderRequirement::Location
    );
}

#[test]
fn a_body_only_template_is_flagged_and_examples_stand_in_for_missing_text() {
    let t: Template = serde_json::from_value(json!({
        "name": "x", "language": "en",
        "components": [{"type": "BODY", "example": {"body_text": [["a", "b", "c"]]}}]}))
    .unwrap();
    let r = SendRequirements::of(&t);
    assert!(r.body_only);
    assert_eq!(r.body, ParamSlots::Positional(3));
}

#[test]
fn placeholders_are_counted_by_highest_index_or_distinct_name() {
    use ParameterFormat::{Named, Positional};
    assert_eq!(
        slots_in_text(Positional, "{{1}} {{2}} {{1}}"),
        ParamSlots::Positional(2)
    );
    assert_eq!(
        slots_in_text(Positional, "no vars {{ }} {{"),
        ParamSlots::Positional(0)
    );
    assert_eq!(
        slots_in_text(Named, "{{a}} and {{b_2}} and {{a}}"),
        ParamSlots::Named(vec!["a".into(), "b_2".into()])
    );
}

const INTERACTIVE: &str = include_str!("../../../tests/fixtures/templates/interactive.json");

fn interactive(name: &str) -> SendRequirements {
    let catalog = TemplateCatalog::from_json(INTERACTIVE).unwrap();
    SendRequirements::of(catalog.get(name, "en_US").unwrap())
}

/// FLOW, CATALOG and MPM buttons and a VIDEO header, in the shapes the Graph API
/// returns them: parsed into their own variants (Meta's extra fields kept), and what
/// a send must provide for each.
#[test]
fn flow_catalog_mpm_buttons_and_video_headers_parse_with_their_send_requirements() {
    let catalog = TemplateCatalog::from_json(INTERACTIVE).unwrap();
    assert_eq!(catalog.len(), 4);

    let flow = catalog.get("book_appointment", "en_US").unwrap();
    let Some(Button::Flow(button)) = flow.buttons().first() else {
        panic!("not a FLOW button: {:?}", flow.buttons());
    };
    assert_eq!(button.text.as_deref(), Some("Book now"));
    assert_eq!(button.extra["flow_id"], "1188427329541007");
    assert_eq!(button.extra["navigate_screen"], "PICK_SLOT");
    // The flow opens from the template itself: only the body's two values are sent.
    let r = interactive("book_appointment");
    assert_eq!(r.header, HeaderRequirement::None);
    assert_eq!(r.body, ParamSlots::Positional(2));
    assert_eq!(r.buttons, [ButtonRequirement::Nothing]);
    assert!(!r.buttons[0].is_required());

    let r = interactive("new_arrivals_catalog");
    assert!(matches!(
        catalog
            .get("new_arrivals_catalog", "en_US")
            .unwrap()
            .buttons()
            .first(),
        Some(Button::Catalog(_))
    ));
    assert_eq!(r.body, ParamSlots::Positional(1));
    assert_eq!(r.buttons, [ButtonRequirement::Nothing]);

    // MPM needs product sections at send time, which this service cannot fill.
    let r = interactive("picked_for_you");
    assert!(matches!(
        catalog
            .get("picked_for_you", "en_US")
            .unwrap()
            .buttons()
            .first(),
        Some(Button::Mpm(_))
    ));
    assert_eq!(r.header, HeaderRequirement::Text(ParamSlots::Positional(1)));
    assert_eq!(r.body, ParamSlots::Positional(0));
    assert_eq!(r.buttons, [ButtonRequirement::Unsupported("MPM".into())]);

    // A VIDEO header needs a video link; the URL button its suffix.
    let r = interactive("setup_video");
    assert_eq!(r.header, HeaderRequirement::Media(MediaKind::Video));
    assert_eq!(
        r.body,
        ParamSlots::Named(vec!["first_name".into(), "device".into()])
    );
    assert!(matches!(r.buttons[0], ButtonRequirement::UrlSuffix { .. }));
    assert_eq!(r.buttons[1], ButtonRequirement::QuickReplyPayload);

    // Meta's JSON survives a round trip (what the directory stores).
    for t in catalog.iter() {
        let again: Template = serde_json::from_value(serde_json::to_value(t).unwrap()).unwrap();
        assert_eq!(&again, t);
    }
}
