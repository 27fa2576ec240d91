//! Inbound messages and management changes, stored in the directory.

use crate::support::*;
use serde_json::json;
use wa_shared::app::webhook::handle_http;
use wa_shared::domain::template::{Template, TemplateStatus};
use wa_shared::domain::{PhoneNumber, Timestamp};

fn inbound_body(from: &str, text: &str, secs: i64, phone_number_id: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "Ben"}, "wa_id": from}],
        "messages": [{"from": from, "id": format!("wamid.IN{secs}"), "timestamp": secs.to_string(),
            "type": "text", "text": {"body": text}}]}}]}]})
    .to_string()
}

async fn put_spring_sale(w: &World) {
    let t: Template = serde_json::from_value(json!({"name": "spring_sale", "language": "en_US",
        "status": "APPROVED", "category": "MARKETING", "components": []}))
    .unwrap();
    w.deps
        .directory
        .put_template(&w.tenant, &t, w.now())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_inbound_text_opens_the_contacts_window() {
    let w = World::new().await;
    let resp = handle_http(&w.deps, &signed_event("webhook/post-inbound-text.json")).await;
    assert_eq!(status_code(&resp), 200);
    let raw =
        wa_shared::app::http::body_bytes(&signed_event("webhook/post-inbound-text.json")).unwrap();
    let batch = wa_shared::domain::webhook::parse_envelope(&raw).unwrap();
    let m = batch.inbound_messages().next().unwrap();
    let who = PhoneNumber::parse(&format!("+{}", m.from.as_deref().unwrap())).unwrap();
    let contact = w.deps.directory.contact(&w.tenant, &who).await.unwrap();
    assert_eq!(contact.last_inbound_at, m.timestamp);
    assert!(!contact.opted_out);
}

#[tokio::test]
async fn stop_opts_the_contact_out_and_start_opts_it_back_in() {
    let w = World::new().await;
    let resp = handle_http(&w.deps, &signed_event("webhook/post-inbound-stop.json")).await;
    assert_eq!(status_code(&resp), 200);
    let who = PhoneNumber::parse("+16505559876").unwrap();
    let contact = w.deps.directory.contact(&w.tenant, &who).await.unwrap();
    assert!(contact.opted_out);
    assert_eq!(
        contact.last_inbound_at,
        Some(Timestamp::from_secs(1_750_030_620))
    );
    w.post(&inbound_body(
        "16505559876",
        " start ",
        1_750_030_700,
        PHONE_NUMBER_ID,
    ))
    .await;
    assert!(
        !w.deps
            .directory
            .contact(&w.tenant, &who)
            .await
            .unwrap()
            .opted_out
    );
    w.post(&inbound_body(
        "16505559876",
        "Unsubscribe",
        1_750_030_800,
        PHONE_NUMBER_ID,
    ))
    .await;
    assert!(
        w.deps
            .directory
            .contact(&w.tenant, &who)
            .await
            .unwrap()
            .opted_out
    );
}

#[tokio::test]
async fn keywords_are_the_tenants_own() {
    let w = World::new().await;
    w.set_profile(|p| {
        p.opt_out_keywords = vec!["ARRET".into()];
        p.opt_in_keywords = vec!["ALLEZ".into()];
    })
    .await;
    let who = PhoneNumber::parse("+16505559876").unwrap();
    w.post(&inbound_body(
        "16505559876",
        "STOP",
        1_750_030_600,
        PHONE_NUMBER_ID,
    ))
    .await;
    assert!(
        !w.deps
            .directory
            .contact(&w.tenant, &who)
            .await
            .unwrap()
            .opted_out
    );
    w.post(&inbound_body(
        "16505559876",
        "arret",
        1_750_030_700,
        PHONE_NUMBER_ID,
    ))
    .await;
    assert!(
        w.deps
            .directory
            .contact(&w.tenant, &who)
            .await
            .unwrap()
            .opted_out
    );
}

#[tokio::test]
async fn an_unknown_phone_number_id_is_counted_and_acknowledged() {
    let w = World::new().await;
    let resp = w
        .post(&inbound_body(
            "16505559876",
            "STOP",
            1_750_030_600,
            "999999",
        ))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(w.metric("UnroutedWebhook", &[]), 1.0);
    let who = PhoneNumber::parse("+16505559876").unwrap();
    let contact = w.deps.directory.contact(&w.tenant, &who).await.unwrap();
    assert!(!contact.opted_out && contact.last_inbound_at.is_none());
}

#[tokio::test]
async fn a_template_paused_webhook_pauses_the_template_in_the_directory() {
    let w = World::new().await;
    put_spring_sale(&w).await;
    let resp = handle_http(&w.deps, &signed_event("webhook/post-template-paused.json")).await;
    assert_eq!(status_code(&resp), 200);
    let stored = w
        .deps
        .directory
        .template(&w.tenant, "spring_sale", "en_US")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.template.status, Some(TemplateStatus::Paused));
}

#[tokio::test]
async fn a_template_quality_webhook_stores_the_new_score() {
    let w = World::new().await;
    let raw = event_file("meta/template-quality-update.json");
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let value = &v["entry"][0]["changes"][0]["value"];
    let t: Template = serde_json::from_value(json!({"name": value["message_template_name"],
        "language": value["message_template_language"], "status": "APPROVED", "components": []}))
    .unwrap();
    w.deps
        .directory
        .put_template(&w.tenant, &t, w.now())
        .await
        .unwrap();
    let resp = handle_http(
        &w.deps,
        &signed_event("webhook/post-template-quality-update.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200);
    let stored = w
        .deps
        .directory
        .template(&w.tenant, &t.name, &t.language)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.quality.as_deref(),
        value["new_quality_score"].as_str()
    );
}

#[tokio::test]
async fn phone_quality_and_account_updates_are_stored_on_the_tenant() {
    let w = World::new().await;
    let resp = handle_http(
        &w.deps,
        &signed_event("webhook/post-phone-quality-update.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(
        w.profile().await.phone_quality.as_deref(),
        Some("UPGRADE TIER_10K")
    );
    let resp = handle_http(
        &w.deps,
        &signed_event("webhook/post-account-update-restriction.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200);
    let p = w.profile().await;
    assert_eq!(p.account_event.as_deref(), Some("ACCOUNT_RESTRICTION"));
    // The rest of the profile is untouched.
    assert_eq!(p.phone_quality.as_deref(), Some("UPGRADE TIER_10K"));
    assert_eq!(p.queue, w.send_queue.as_str());
}
