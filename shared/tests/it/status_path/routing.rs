//! Verified routing (DESIGN §11 invariant): a status changes a message only when the
//! message's tenant owns the phone number the status came from; a status from another
//! tenant's number, or from a number nobody owns, changes nothing and is counted.

use crate::status_path::support::*;
use wa_shared::domain::MessageState;

/// Tenant `other` owns this number (and its own WABA).
const OTHER_NUMBER: &str = "106540352240000";

async fn add_other_tenant(w: &World) {
    let other = wa_testkit::fixtures::tenant("other")
        .phone_number_id(OTHER_NUMBER)
        .waba_id("102290129340000")
        .queue("send-other")
        .build();
    w.ports.directory.put_tenant(&other).await.unwrap();
}

/// `status_body` as if it came from `number`.
fn from_number(body: &str, number: &str) -> String {
    body.replace(PHONE_NUMBER_ID, number)
}

async fn a_status_from_another_tenants_number_changes_nothing(w: World) {
    add_other_tenant(&w).await;
    let callback = "wa1:demo:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R1";
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R1", "wamid.R1")
        .await;
    // Signed with our app secret (another tenant of the same app), found by the
    // callback data and by the wamid: still not this number's message.
    for cb in [Some(callback), None] {
        let body = from_number(
            &status_body("wamid.R1", "read", 1_750_030_300, cb),
            OTHER_NUMBER,
        );
        let resp = w.post(&body).await;
        assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    }
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Accepted, "on {}", w.backend);
    assert_eq!(m.timestamps.read_at, None);
    assert_eq!(w.metric("MisroutedWebhook", &[("Tenant", "other")]), 2.0);
    // The owner's own status still applies.
    let resp = w
        .post(&status_body(
            "wamid.R1",
            "read",
            1_750_030_300,
            Some(callback),
        ))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(w.message(&id).await.state, MessageState::Read);
}

async fn a_status_from_a_number_nobody_owns_changes_nothing(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R2", "wamid.R2")
        .await;
    let body = from_number(
        &status_body("wamid.R2", "delivered", 1_750_030_200, None),
        "199999999999999",
    );
    let resp = w.post(&body).await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(w.message(&id).await.state, MessageState::Accepted);
    assert_eq!(w.metric("UnroutedWebhook", &[]), 1.0);
}

/// The world's tenant also owns this number.
const SECOND_NUMBER: &str = "106540352249999";

/// A tenant with several numbers: a status from any of them applies to its messages,
/// while a number it dropped no longer routes to it.
async fn a_status_from_any_of_the_tenants_numbers_applies(w: World) {
    let mut profile = w.ports.directory.tenant(&w.tenant).await.unwrap().unwrap();
    profile.other_phone_number_ids =
        vec![wa_shared::domain::PhoneNumberId::parse(SECOND_NUMBER).unwrap()];
    w.ports.directory.put_tenant(&profile).await.unwrap();
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2R3", "wamid.R3")
        .await;
    let body = from_number(
        &status_body("wamid.R3", "delivered", 1_750_030_200, None),
        SECOND_NUMBER,
    );
    assert_eq!(status_code(&w.post(&body).await), 200);
    assert_eq!(
        w.message(&id).await.state,
        MessageState::Delivered,
        "on {}",
        w.backend
    );
    // Dropped again: its statuses route nowhere.
    profile.other_phone_number_ids.clear();
    w.ports.directory.put_tenant(&profile).await.unwrap();
    let body = from_number(
        &status_body("wamid.R3", "read", 1_750_030_300, None),
        SECOND_NUMBER,
    );
    assert_eq!(status_code(&w.post(&body).await), 200);
    assert_eq!(w.message(&id).await.state, MessageState::Delivered);
    assert_eq!(w.metric("UnroutedWebhook", &[]), 1.0);
}

/// Two tenants on one WABA (each with its own number and catalog copy): a template
/// status webhook of that WABA applies to both.
async fn a_template_update_of_a_shared_waba_applies_to_every_tenant_on_it(w: World) {
    let other = wa_testkit::fixtures::tenant("other")
        .phone_number_id(OTHER_NUMBER)
        .waba_id(WABA_ID)
        .queue("send-other")
        .build();
    w.ports.directory.put_tenant(&other).await.unwrap();
    let sale = w
        .ports
        .directory
        .template(&w.tenant, "spring_sale", "en_US")
        .await
        .unwrap()
        .unwrap()
        .template;
    let start = wa_shared::domain::Timestamp::from_millis(START_MS);
    w.ports
        .directory
        .put_template(&other.id, &sale, start)
        .await
        .unwrap();
    let resp = wa_shared::app::webhook::handle_http(
        &w.functions.webhook,
        &signed_event("webhook/post-template-paused.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    for tenant in [&w.tenant, &other.id] {
        let t = w
            .ports
            .directory
            .template(tenant, "spring_sale", "en_US")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            t.template.status.as_ref().map(|s| s.as_str()),
            Some("PAUSED"),
            "{tenant} on {}",
            w.backend
        );
    }
}

on_every_backend!(
    a_status_from_another_tenants_number_changes_nothing,
    a_status_from_a_number_nobody_owns_changes_nothing,
    a_status_from_any_of_the_tenants_numbers_applies,
    a_template_update_of_a_shared_waba_applies_to_every_tenant_on_it,
);
