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

on_every_backend!(
    a_status_from_another_tenants_number_changes_nothing,
    a_status_from_a_number_nobody_owns_changes_nothing,
);
