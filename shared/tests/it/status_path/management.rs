//! Inbound messages and management changes, stored in the directory, and what intake
//! then does with them: the chained cases (a webhook through `handle_http`, then a
//! real intake request) run on SQLite (`sqlite::`) and DynamoDB + SQS (`dynamo::`).

use crate::status_path::support::*;
use serde_json::json;
use wa_shared::app::webhook::handle_http;
use wa_shared::domain::template::{Template, TemplateStatus};
use wa_shared::domain::{MessageId, MessageState, PhoneNumber, Timestamp};

on_every_backend!(
    a_131050_by_webhook_records_the_marketing_stop,
    a_users_wa_id_keys_the_same_contact_as_the_number_the_caller_writes,
    a_131049_by_webhook_holds_the_recipients_marketing_and_retries_after_24_hours,
    a_131049_by_webhook_exhausts_a_message_whose_wait_passes_its_max_age,
    a_marketing_stop_suppresses_marketing_templates_only_until_resumed,
    a_completed_category_change_is_stored_and_its_notice_is_not,
    stop_then_a_send_to_that_contact_is_suppressed_by_intake,
    a_template_paused_by_webhook_then_a_send_of_it_is_suppressed_by_intake,
    quality_and_account_updates_shape_sending_as_the_table_says,
);

/// An `order_shipped` request to `to`.
fn order_shipped(to: &str) -> serde_json::Value {
    json!({"to": to, "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}})
}

/// A `spring_sale` request (text header, two body values, a coupon code).
fn spring_sale(to: &str) -> serde_json::Value {
    json!({"to": to, "template": {"name": "spring_sale", "language": "en_US",
        "header": {"type": "text", "text": "Ana"}, "body": ["25%", "March 31"],
        "buttons": [{"index": 0, "type": "copy_code", "coupon_code": "SPRING25"}]}})
}

/// Intake's answer must be 202; returns its JSON body and the stored message.
async fn accepted_by_intake(w: &World, key: &str, body: &serde_json::Value) -> serde_json::Value {
    let resp = w.intake(intake_request(key, body)).await;
    assert_eq!(resp.status_code, 202, "{key}: {}", body_text(&resp));
    body_json(&resp)
}

async fn stop_then_a_send_to_that_contact_is_suppressed_by_intake(w: World) {
    // The STOP fixture's sender.
    let ben = "+16505559876";
    let before = accepted_by_intake(&w, "ben-1", &order_shipped(ben)).await;
    assert_eq!(before["status"], "queued");
    assert_eq!(w.drain(&w.send_queue).await.len(), 1);

    let resp = handle_http(
        &w.functions.webhook,
        &signed_event("webhook/post-inbound-stop.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));

    let after = accepted_by_intake(&w, "ben-2", &order_shipped(ben)).await;
    assert_eq!(after["status"], "suppressed", "{after}");
    assert_eq!(after["suppression"]["reason"], "opted_out");
    let id = MessageId::parse(after["id"].as_str().unwrap()).unwrap();
    assert_eq!(w.message(&id).await.state, MessageState::Suppressed);
    assert!(w.drain(&w.send_queue).await.is_empty(), "nothing to send");
    assert_eq!(
        w.metric("Suppressed", &[("Tenant", TENANT), ("Reason", "opted_out")]),
        1.0
    );
    // Another recipient is still served.
    let other = accepted_by_intake(&w, "ana-1", &order_shipped("+14155550123")).await;
    assert_eq!(other["status"], "queued");
}

async fn a_template_paused_by_webhook_then_a_send_of_it_is_suppressed_by_intake(w: World) {
    let before = accepted_by_intake(&w, "sale-1", &spring_sale(RECIPIENT)).await;
    assert_eq!(before["status"], "queued", "{before}");
    assert_eq!(w.drain(&w.send_queue).await.len(), 1);

    let resp = handle_http(
        &w.functions.webhook,
        &signed_event("webhook/post-template-paused.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    // Intake caches directory reads for a few seconds per container: the pause applies
    // once that copy expires.
    w.advance(wa_shared::app::intake::DEFAULT_CACHE_TTL + std::time::Duration::from_secs(1));

    let after = accepted_by_intake(&w, "sale-2", &spring_sale(RECIPIENT)).await;
    assert_eq!(after["status"], "suppressed", "{after}");
    assert_eq!(after["suppression"]["reason"], "template_paused");
    let id = MessageId::parse(after["id"].as_str().unwrap()).unwrap();
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Suppressed);
    assert!(w.drain(&w.send_queue).await.is_empty(), "nothing to send");
    // Other templates are still served.
    let other = accepted_by_intake(&w, "order-1", &order_shipped(RECIPIENT)).await;
    assert_eq!(other["status"], "queued");
}

/// Meta identifies a user by `wa_id`, which can differ from the number the caller
/// writes: a Brazilian mobile written `+5511987654303` writes in as `551187654303`.
/// Its reply opens the 24-hour window and its STOP suppresses the next template to the
/// number the caller writes.
async fn a_users_wa_id_keys_the_same_contact_as_the_number_the_caller_writes(w: World) {
    let written = "+5511987654303";
    let now_secs = w.now().as_millis() / 1000;
    let resp = w
        .post(&inbound_body(
            "551187654303",
            "hi",
            now_secs,
            PHONE_NUMBER_ID,
        ))
        .await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    let text = accepted_by_intake(
        &w,
        "br-text",
        &json!({"to": written, "text": {"body": "hello"}}),
    )
    .await;
    assert_eq!(text["status"], "queued", "the window is open: {text}");
    let resp = w
        .post(&inbound_body(
            "551187654303",
            "STOP",
            now_secs + 1,
            PHONE_NUMBER_ID,
        ))
        .await;
    assert_eq!(status_code(&resp), 200);
    // Intake caches directory reads for a few seconds per container.
    w.advance(wa_shared::app::intake::DEFAULT_CACHE_TTL + std::time::Duration::from_secs(1));
    let after = accepted_by_intake(&w, "br-order", &order_shipped(written)).await;
    assert_eq!(after["status"], "suppressed", "on {}: {after}", w.backend);
    assert_eq!(after["suppression"]["reason"], "opted_out");
}

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
    w.ports
        .directory
        .put_template(&w.tenant, &t, w.now())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_inbound_text_opens_the_contacts_window() {
    let w = World::new().await;
    let resp = handle_http(
        &w.functions.webhook,
        &signed_event("webhook/post-inbound-text.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200);
    let raw =
        wa_shared::app::http::body_bytes(&signed_event("webhook/post-inbound-text.json")).unwrap();
    let batch = wa_shared::domain::webhook::parse_envelope(&raw).unwrap();
    let m = batch.inbound_messages().next().unwrap();
    let who = PhoneNumber::parse(&format!("+{}", m.from.as_deref().unwrap())).unwrap();
    let contact = w.ports.directory.contact(&w.tenant, &who).await.unwrap();
    assert_eq!(contact.last_inbound_at, m.timestamp);
    assert!(!contact.opted_out);
}

#[tokio::test]
async fn stop_opts_the_contact_out_and_start_opts_it_back_in() {
    let w = World::new().await;
    let resp = handle_http(
        &w.functions.webhook,
        &signed_event("webhook/post-inbound-stop.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200);
    let who = PhoneNumber::parse("+16505559876").unwrap();
    let contact = w.ports.directory.contact(&w.tenant, &who).await.unwrap();
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
        !w.ports
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
        w.ports
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
        !w.ports
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
        w.ports
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
    let contact = w.ports.directory.contact(&w.tenant, &who).await.unwrap();
    assert!(!contact.opted_out && contact.last_inbound_at.is_none());
}

#[tokio::test]
async fn a_template_paused_webhook_pauses_the_template_in_the_directory() {
    let w = World::new().await;
    put_spring_sale(&w).await;
    let resp = handle_http(
        &w.functions.webhook,
        &signed_event("webhook/post-template-paused.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200);
    let stored = w
        .ports
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
    w.ports
        .directory
        .put_template(&w.tenant, &t, w.now())
        .await
        .unwrap();
    let resp = handle_http(
        &w.functions.webhook,
        &signed_event("webhook/post-template-quality-update.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200);
    let stored = w
        .ports
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
        &w.functions.webhook,
        &signed_event("webhook/post-phone-quality-update.json"),
    )
    .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(
        w.profile().await.phone_quality.as_deref(),
        Some("UPGRADE TIER_10K")
    );
    let resp = handle_http(
        &w.functions.webhook,
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

/// Meta's completed category change (`new_category`) is stored in the catalog; its
/// advance notice (`correct_category`) changes nothing.
async fn a_completed_category_change_is_stored_and_its_notice_is_not(w: World) {
    let t: Template = serde_json::from_value(json!({"name": "loyalty_points_update",
        "language": "en_US", "status": "APPROVED", "category": "UTILITY", "components": []}))
    .unwrap();
    w.ports
        .directory
        .put_template(&w.tenant, &t, w.now())
        .await
        .unwrap();
    let category = || async {
        w.ports
            .directory
            .template(&w.tenant, "loyalty_points_update", "en_US")
            .await
            .unwrap()
            .unwrap()
            .template
            .category
            .map(|c| c.as_str().to_owned())
    };
    let resp = w
        .post(&event_file("meta/template-category-update-impending.json"))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(category().await.as_deref(), Some("UTILITY"));
    let resp = w
        .post(&event_file("meta/template-category-update.json"))
        .await;
    assert_eq!(status_code(&resp), 200);
    assert_eq!(
        category().await.as_deref(),
        Some("MARKETING"),
        "on {}",
        w.backend
    );
}

/// Meta's `user_preferences` stop: the next MARKETING template to that user is
/// suppressed (`marketing_opted_out`) before anything is sent, a UTILITY one is not;
/// the resume lifts it.
async fn a_marketing_stop_suppresses_marketing_templates_only_until_resumed(w: World) {
    let ana = "+16505551234";
    let resp = w.post(&event_file("meta/user-preferences-stop.json")).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    let marketing = accepted_by_intake(&w, "ana-m1", &spring_sale(ana)).await;
    assert_eq!(
        marketing["status"], "suppressed",
        "{marketing} on {}",
        w.backend
    );
    assert_eq!(marketing["suppression"]["reason"], "marketing_opted_out");
    let utility = accepted_by_intake(&w, "ana-u1", &order_shipped(ana)).await;
    assert_eq!(utility["status"], "queued", "{utility}");
    let resp = w
        .post(&event_file("meta/user-preferences-resume.json"))
        .await;
    assert_eq!(status_code(&resp), 200);
    let again = accepted_by_intake(&w, "ana-m2", &spring_sale(ana)).await;
    assert_eq!(again["status"], "queued", "{again}");
}

/// A `failed` status with 131050 records the recipient's marketing stop, like the
/// synchronous error does in the sender.
async fn a_131050_by_webhook_records_the_marketing_stop(w: World) {
    w.accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2M1", "wamid.M1")
        .await;
    let body = statuses_body(vec![json!({
        "id": "wamid.M1", "status": "failed", "timestamp": "1750030300",
        "recipient_id": "16505551234",
        "errors": [{"code": 131050, "title": "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business"}]
    })]);
    let resp = w.post(&body).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    let who = PhoneNumber::parse(RECIPIENT).unwrap();
    let contact = w.ports.directory.contact(&w.tenant, &who).await.unwrap();
    assert!(contact.marketing_opted_out, "on {}", w.backend);
    let m = w
        .message(&MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2M1").unwrap())
        .await;
    assert_eq!(m.state, MessageState::Failed);
}

/// A `failed` status with 131049 (Meta's per-user marketing limit).
fn marketing_limit_status(wamid: &str, at: Timestamp) -> String {
    statuses_body(vec![json!({
        "id": wamid, "status": "failed", "timestamp": (at.as_millis() / 1000).to_string(),
        "recipient_id": "16505551234",
        "errors": [{"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement."}]
    })])
}

/// A 131049 by webhook holds the recipient's other MARKETING templates for 24 h from
/// Meta's time, and puts the message back to `queued` (the refused attempt does not
/// count): the reconciler enqueues it again once the 24 h and the grace are over. A
/// duplicate of the webhook, or a late `sent` of the refused wamid, changes nothing.
async fn a_131049_by_webhook_holds_the_recipients_marketing_and_retries_after_24_hours(
    mut w: World,
) {
    const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);
    w.set_lifecycle(|l| l.max_age = 72 * HOUR);
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2M2", "wamid.M2")
        .await;
    let meta_time = Timestamp::from_secs(w.now().as_millis() / 1000);
    let resp = w.post(&marketing_limit_status("wamid.M2", meta_time)).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    let who = PhoneNumber::parse(RECIPIENT).unwrap();
    let contact = w.ports.directory.contact(&w.tenant, &who).await.unwrap();
    let until = meta_time.plus_millis(24 * 3600 * 1000);
    assert_eq!(
        contact.marketing_limited_until,
        Some(until),
        "on {}",
        w.backend
    );
    assert!(!contact.marketing_opted_out);
    let m = w.message(&id).await;
    assert_eq!(
        m.state,
        MessageState::Queued,
        "on {}: {:?}",
        w.backend,
        m.failure
    );
    let f = m.failure.clone().unwrap();
    assert_eq!(f.code, Some(131049));
    assert_eq!(
        m.counted_attempts(),
        0,
        "the refused attempt is not the message's fault"
    );
    let entries = m.history.len();

    // Meta's duplicate, and a late `sent` of the refused wamid: nothing changes.
    assert_eq!(
        status_code(&w.post(&marketing_limit_status("wamid.M2", meta_time)).await),
        200
    );
    let late_sent = statuses_body(vec![json!({"id": "wamid.M2", "status": "sent",
        "timestamp": (meta_time.as_millis() / 1000).to_string(), "recipient_id": "16505551234"})]);
    assert_eq!(status_code(&w.post(&late_sent).await), 200);
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Queued, "on {}", w.backend);
    assert_eq!(m.history.len(), entries);

    // Swept again only once the 24 h and the queued grace are over.
    let reconcile = || async {
        wa_shared::app::reconciler::run(&w.functions.reconciler)
            .await
            .unwrap()
    };
    w.advance(23 * HOUR);
    reconcile().await;
    assert!(
        w.drain(&w.send_queue).await.is_empty(),
        "enqueued within 24 h"
    );
    w.advance(HOUR + w.ports.lifecycle.queued_grace + std::time::Duration::from_secs(1));
    reconcile().await;
    assert_eq!(w.drain(&w.send_queue).await.len(), 1, "on {}", w.backend);
    assert_eq!(w.message(&id).await.state, MessageState::Queued);
}

/// With the default max age (24 h) the wait after a 131049 by webhook never fits: the
/// message fails `exhausted`, with the 131049 as its code and Meta's reason.
async fn a_131049_by_webhook_exhausts_a_message_whose_wait_passes_its_max_age(w: World) {
    let id = w
        .accepted("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2M3", "wamid.M3")
        .await;
    let meta_time = Timestamp::from_secs(w.now().as_millis() / 1000);
    let resp = w.post(&marketing_limit_status("wamid.M3", meta_time)).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    let m = w.message(&id).await;
    assert_eq!(m.state, MessageState::Failed, "on {}", w.backend);
    let f = m.failure.unwrap();
    assert_eq!(f.class, wa_shared::domain::FailureClass::Exhausted);
    assert_eq!(f.code, Some(131049));
    assert!(f.detail.unwrap_or_default().contains("healthy ecosystem"));
}

/// The account-state table (`domain::account_state`) through the real webhook and
/// intake: a FLAGGED number holds marketing (MARKETING templates suppressed with
/// `number_quality_low`, UTILITY still queued) until a better quality arrives; an
/// older update changes nothing; an account restriction holds the tenant and alarms.
async fn quality_and_account_updates_shape_sending_as_the_table_says(w: World) {
    let ana = "+16505551234";
    let quality = |event: &str, time: i64| {
        let mut v: serde_json::Value =
            serde_json::from_str(&event_file("meta/phone-quality-update.json")).unwrap();
        v["entry"][0]["time"] = json!(time);
        v["entry"][0]["changes"][0]["value"]["event"] = json!(event);
        v.to_string()
    };
    let resp = w.post(&quality("FLAGGED", 1_750_200_000)).await;
    assert_eq!(status_code(&resp), 200, "{}", body_text(&resp));
    // Intake caches profiles for a few seconds per container.
    w.advance(wa_shared::app::intake::DEFAULT_CACHE_TTL + std::time::Duration::from_secs(1));
    assert_eq!(
        w.metric(
            "AccountAlert",
            &[("Tenant", w.tenant.as_str()), ("Signal", "FLAGGED")]
        ),
        1.0
    );
    let marketing = accepted_by_intake(&w, "q-m1", &spring_sale(ana)).await;
    assert_eq!(
        marketing["status"], "suppressed",
        "{marketing} on {}",
        w.backend
    );
    assert_eq!(marketing["suppression"]["reason"], "number_quality_low");
    let utility = accepted_by_intake(&w, "q-u1", &order_shipped(ana)).await;
    assert_eq!(utility["status"], "queued", "{utility}");
    // An older UPGRADE (replayed late) does not end the hold; a newer one does.
    w.post(&quality("UPGRADE", 1_750_100_000)).await;
    w.advance(wa_shared::app::intake::DEFAULT_CACHE_TTL + std::time::Duration::from_secs(1));
    let still = accepted_by_intake(&w, "q-m2", &spring_sale(ana)).await;
    assert_eq!(still["status"], "suppressed", "{still}");
    w.post(&quality("UPGRADE", 1_750_300_000)).await;
    w.advance(wa_shared::app::intake::DEFAULT_CACHE_TTL + std::time::Duration::from_secs(1));
    let again = accepted_by_intake(&w, "q-m3", &spring_sale(ana)).await;
    assert_eq!(again["status"], "queued", "{again}");

    let resp = w
        .post(&event_file("meta/account-update-restriction.json"))
        .await;
    assert_eq!(status_code(&resp), 200);
    let p = w.profile().await;
    let hold = p.hold.expect("an account restriction holds the tenant");
    assert_eq!(hold.reason, "account_update ACCOUNT_RESTRICTION");
    assert!(w.metric("TenantHeld", &[("Tenant", w.tenant.as_str())]) >= 1.0);
    assert_eq!(p.account_event.as_deref(), Some("ACCOUNT_RESTRICTION"));
}
