//! Golden files: the Graph payload built for representative requests must equal the
//! checked-in JSON under `tests/golden/`. `UPDATE_GOLDEN=1` rewrites them after a
//! deliberate change; review the diff before committing.

use serde_json::Value;
use std::path::PathBuf;
use wa_shared::domain::graph::CallbackData;
use wa_shared::domain::payload::build_payload;
use wa_shared::domain::template::TemplateCatalog;
use wa_shared::domain::validation::{FormattingPolicy, validate};
use wa_shared::domain::{MessageId, TenantId};

const CASES: &[&str] = &[
    "order_shipped_url_button",
    "appointment_named_image",
    "login_code_otp",
    "spring_sale_coupon",
    "welcome_offer_quick_replies",
    "invoice_document_currency",
    "pickup_location",
    "text_with_preview",
    "text_reply_context",
    "image_caption",
    "document_by_id",
    "interactive_reply_buttons",
    "interactive_list",
    "location_pin",
    "reaction_thumbs_up",
];

/// The callback data of the golden payloads: the real encoder's output for tenant
/// `acme` and this message id (`wa1:acme:msg_…`), so the files show exactly what the
/// sender puts in `biz_opaque_callback_data`.
fn callback() -> String {
    CallbackData::new(
        TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}")),
        MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3").unwrap_or_else(|e| panic!("{e}")),
    )
    .encode()
}

#[test]
fn the_golden_callback_is_the_encoders_and_decodes_back() {
    let encoded = callback();
    assert_eq!(encoded, "wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3");
    let decoded = CallbackData::decode(&encoded).unwrap();
    assert_eq!(decoded.tenant.as_str(), "acme");
    for case in CASES {
        let golden = read_json(&dir().join(format!("{case}.payload.json")));
        assert_eq!(
            golden["biz_opaque_callback_data"],
            encoded.as_str(),
            "{case}"
        );
    }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read_json(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn built_payloads_match_the_golden_files() {
    let catalog_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates/catalog.json");
    let catalog = TemplateCatalog::from_value(read_json(&catalog_path)).unwrap();
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut missing = Vec::new();
    for case in CASES {
        let request = read_json(&dir().join(format!("{case}.request.json")));
        let validated = validate(&request, &catalog, FormattingPolicy::Strict)
            .unwrap_or_else(|p| panic!("{case}: {p:?}"));
        let payload = build_payload(&validated, &callback()).unwrap().to_json();
        let golden_path = dir().join(format!("{case}.payload.json"));
        if update || !golden_path.exists() {
            let text = serde_json::to_string_pretty(&payload).unwrap() + "\n";
            std::fs::write(&golden_path, text).unwrap();
            if !update {
                missing.push(*case);
            }
            continue;
        }
        assert_eq!(
            payload,
            read_json(&golden_path),
            "{case}: payload differs from golden file"
        );
    }
    // A missing file is written so it can be reviewed, but never silently passes.
    assert!(
        missing.is_empty(),
        "golden files were missing and have been written: {missing:?}"
    );
}
