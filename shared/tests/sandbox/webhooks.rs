//! Status and event webhooks: signed, in Meta's envelope, batched, retried.

use crate::support::*;
use std::time::Duration;
use wa_shared::domain::webhook::{DeliveryStatus, WebhookEvent, parse_envelope, verify_signature};
use wa_shared::sandbox::{
    InboundText, PhoneQualityChange, TemplateQualityChange, TemplateStatusChange,
};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn statuses_arrive_signed_in_metas_envelope_and_echo_the_callback_data() {
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.webhook.url = Some(receiver.url.clone());
    let sandbox = start(config).await;
    let (_, body) = send(
        &client(),
        &sandbox,
        &order_shipped("+14155550123", Some(&callback(7))),
    )
    .await;
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_owned();

    let taken = receiver.wait_for(WAIT, |t| statuses(t).len() >= 3).await;
    for post in &taken {
        verify_signature(SECRET.as_bytes(), &post.body, post.signature.as_deref()).unwrap();
        assert!(verify_signature(b"other", &post.body, post.signature.as_deref()).is_err());
    }
    let batch = parse_envelope(&taken[0].body).unwrap();
    assert!(batch.warnings.is_empty(), "{:?}", batch.warnings);
    let sent = batch.statuses().next().unwrap();
    assert_eq!(sent.waba_id, WABA);
    assert_eq!(sent.phone_number_id.as_ref().unwrap().as_str(), PHONE);
    assert_eq!(sent.wamid.as_str(), wamid);
    assert_eq!(sent.status, DeliveryStatus::Sent);
    assert_eq!(sent.recipient_id.as_deref(), Some("14155550123"));
    assert!(sent.timestamp.is_some());
    let pricing = sent.pricing.as_ref().unwrap();
    assert_eq!(pricing.category.as_deref(), Some("utility"));
    assert_eq!(pricing.pricing_model.as_deref(), Some("PMP"));
    let raw: serde_json::Value = serde_json::from_slice(&taken[0].body).unwrap();
    assert!(raw["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"].is_string());
    assert_eq!(raw["entry"][0]["changes"][0]["field"], "messages");

    let order: Vec<_> = statuses(&taken)
        .into_iter()
        .map(|(w, s, c)| (w, s, c.unwrap()))
        .collect();
    let expected: Vec<_> = ["sent", "delivered", "read"]
        .iter()
        .map(|s| (wamid.clone(), (*s).to_owned(), callback(7)))
        .collect();
    assert_eq!(order, expected);
}

#[tokio::test]
async fn a_failing_recipient_gets_a_failed_status_with_131026() {
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.webhook.url = Some(receiver.url.clone());
    config.failing_recipients = vec!["+14155550999".into()];
    let sandbox = start(config).await;
    let (status, _) = send(
        &client(),
        &sandbox,
        &order_shipped("+14155550999", Some(&callback(1))),
    )
    .await;
    assert_eq!(status, 200, "Meta accepts, then fails by webhook");
    let taken = receiver.wait_for(WAIT, |t| !statuses(t).is_empty()).await;
    let batch = parse_envelope(&taken[0].body).unwrap();
    let failed = batch.statuses().next().unwrap();
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.errors[0].code, Some(131026));
    assert_eq!(
        failed.biz_opaque_callback_data.as_deref(),
        Some(callback(1).as_str())
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        statuses(&receiver.taken()).len(),
        1,
        "no sent/delivered after failed"
    );
}

#[tokio::test]
async fn free_form_text_outside_the_window_fails_by_webhook_with_131047() {
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.webhook.url = Some(receiver.url.clone());
    let sandbox = start(config).await;
    let (status, _) = send(&client(), &sandbox, &text("+14155550123", "hello")).await;
    assert_eq!(status, 200);
    let taken = receiver.wait_for(WAIT, |t| !statuses(t).is_empty()).await;
    let batch = parse_envelope(&taken[0].body).unwrap();
    assert_eq!(
        batch.statuses().next().unwrap().errors[0].code,
        Some(131047)
    );
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_webhook_on_the_third_attempt() {
    let receiver = Receiver::start(2).await;
    let mut config = config();
    config.webhook.url = Some(receiver.url.clone());
    config.webhook.delivered_after_ms = None;
    config.webhook.read_after_ms = None;
    let sandbox = start(config).await;
    send(
        &client(),
        &sandbox,
        &order_shipped("+14155550123", Some(&callback(2))),
    )
    .await;
    let taken = receiver.wait_for(WAIT, |t| !t.is_empty()).await;
    assert_eq!(statuses(&taken)[0].1, "sent");
    // The receiver saw it before the sandbox recorded the answer: wait for the record.
    let deadline = tokio::time::Instant::now() + WAIT;
    while sandbox.sandbox.deliveries().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let attempts = sandbox.sandbox.deliveries();
    let summary: Vec<_> = attempts
        .iter()
        .map(|d| (d.attempt, d.ok, d.http_status))
        .collect();
    assert_eq!(
        summary,
        [
            (1, false, Some(500)),
            (2, false, Some(500)),
            (3, true, Some(200))
        ]
    );
    // Meta retries immediately, then waits: the third attempt came after the backoff.
    assert!(attempts[2].at_ms >= attempts[1].at_ms + 20, "{attempts:?}");
    let stats = sandbox.sandbox.stats().webhooks;
    assert_eq!(
        (stats.posts_failed, stats.retries, stats.posts_ok),
        (2, 2, 1)
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_abandoned_after_the_configured_attempts() {
    let mut config = config();
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.webhook.url = Some(format!("http://127.0.0.1:{port}/webhook"));
    config.webhook.delivered_after_ms = None;
    config.webhook.read_after_ms = None;
    config.webhook.retry.max_attempts = 3;
    let sandbox = start(config).await;
    send(&client(), &sandbox, &order_shipped("+14155550123", None)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while sandbox.sandbox.stats().webhooks.posts_abandoned == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never abandoned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sandbox.sandbox.deliveries().len(), 3);
}

#[tokio::test]
async fn statuses_due_together_share_one_post() {
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.webhook.url = Some(receiver.url.clone());
    config.webhook.sent_after_ms = 200;
    config.webhook.batch_window_ms = 100;
    config.webhook.delivered_after_ms = None;
    config.webhook.read_after_ms = None;
    config.limits = no_limits();
    let sandbox = start(config).await;
    let client = client();
    for i in 0..10 {
        send(
            &client,
            &sandbox,
            &order_shipped(&format!("+1415555{i:04}"), None),
        )
        .await;
    }
    let taken = receiver.wait_for(WAIT, |t| statuses(t).len() >= 10).await;
    assert!(
        taken.len() < 10,
        "10 statuses came in {} POSTs",
        taken.len()
    );
}

#[tokio::test]
async fn inbound_and_management_updates_are_posted_on_request() {
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.webhook.url = Some(receiver.url.clone());
    let sandbox = start(config).await;
    let base = sandbox.base_url();
    let client = client();
    let post = |path: &str, body: serde_json::Value| {
        let request = client.post(format!("{base}/_sandbox/{path}")).json(&body);
        async move { assert_eq!(request.send().await.unwrap().status(), 200) }
    };
    post(
        "inbound",
        serde_json::json!({"phone_number_id": PHONE, "from": "+14155550123", "text": "STOP"}),
    )
    .await;
    post(
        "template_status",
        serde_json::json!({"name": "order_shipped", "language": "en_US", "event": "PAUSED"}),
    )
    .await;
    post("template_quality", serde_json::json!({"name": "order_shipped", "language": "en_US", "new_quality_score": "RED"})).await;
    post("phone_quality", serde_json::json!({"phone_number_id": PHONE, "event": "DOWNGRADE", "max_daily_conversations_per_business": "TIER_250"})).await;
    let taken = receiver.wait_for(WAIT, |t| t.len() >= 4).await;
    let mut seen = Vec::new();
    for post in &taken {
        verify_signature(SECRET.as_bytes(), &post.body, post.signature.as_deref()).unwrap();
        for event in parse_envelope(&post.body).unwrap().events {
            match event {
                WebhookEvent::Inbound(m) => {
                    assert_eq!(m.text(), Some("STOP"));
                    seen.push("inbound");
                }
                WebhookEvent::TemplateStatus(s) => {
                    assert_eq!(
                        (s.event.as_str(), s.name.as_deref()),
                        ("PAUSED", Some("order_shipped"))
                    );
                    seen.push("status");
                }
                WebhookEvent::TemplateQuality(q) => {
                    assert_eq!(q.new_quality_score, "RED");
                    seen.push("quality");
                }
                WebhookEvent::PhoneNumberQuality(_) => seen.push("phone"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, ["inbound", "phone", "quality", "status"]);
    // The pause also changed the sandbox's own catalog.
    let (status, body) = send(&client, &sandbox, &order_shipped("+14155550123", None)).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(132015))
    );
    // And reinstating it makes it sendable again.
    sandbox
        .sandbox
        .template_status(&TemplateStatusChange {
            waba_id: Some(WABA.into()),
            name: "order_shipped".into(),
            language: "en_US".into(),
            event: "REINSTATED".into(),
            reason: None,
        })
        .unwrap();
    assert_eq!(
        send(&client, &sandbox, &order_shipped("+14155550123", None))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn control_requests_for_unknown_things_are_refused() {
    let sandbox = start(config()).await;
    let s = &sandbox.sandbox;
    let inbound = InboundText {
        phone_number_id: "1".into(),
        from: "+14155550123".into(),
        text: "x".into(),
        name: None,
    };
    assert!(s.inbound_text(&inbound).is_err());
    let quality = TemplateQualityChange {
        waba_id: None,
        name: "nope".into(),
        language: "en_US".into(),
        new_quality_score: "RED".into(),
    };
    assert!(s.template_quality(&quality).is_err());
    let phone = PhoneQualityChange {
        phone_number_id: "1".into(),
        event: "UPGRADE".into(),
        max_daily_conversations_per_business: None,
    };
    assert!(s.phone_quality(&phone).is_err());
}
