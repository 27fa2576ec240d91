//! Status and event webhooks: signed, in Meta's envelope, batched, retried.

use crate::support::*;
use std::time::Duration;
use wa_sandbox::{InboundText, PhoneQualityChange, TemplateQualityChange, TemplateStatusChange};
use wa_shared::domain::webhook::{DeliveryStatus, WebhookEvent, parse_envelope, verify_signature};

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
async fn a_receiver_that_times_out_gets_the_same_signed_post_again() {
    // The first answer takes 1.5 s; the sandbox gives up after 200 ms.
    let receiver = Receiver::hanging(1, Duration::from_millis(1_500)).await;
    let mut config = config();
    config.webhook.url = Some(receiver.url.clone());
    config.webhook.timeout_ms = 200;
    config.webhook.delivered_after_ms = None;
    config.webhook.read_after_ms = None;
    let sandbox = start(config).await;
    send(
        &client(),
        &sandbox,
        &order_shipped("+14155550123", Some(&callback(3))),
    )
    .await;
    let taken = receiver.wait_for(WAIT, |t| t.len() >= 2).await;
    // Meta's retry is the same bytes under the same signature: the receiver must
    // deduplicate, it cannot tell a retry from a new event.
    assert_eq!(taken[0].body, taken[1].body);
    assert_eq!(taken[0].signature, taken[1].signature);
    verify_signature(
        SECRET.as_bytes(),
        &taken[1].body,
        taken[1].signature.as_deref(),
    )
    .unwrap();
    // The retry came immediately after the timeout, not after the hang ended.
    let gap = taken[1].at - taken[0].at;
    assert!(
        gap >= Duration::from_millis(200) && gap < Duration::from_millis(1_500),
        "{gap:?}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while sandbox.sandbox.stats().webhooks.posts_ok < 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let attempts = sandbox.sandbox.deliveries();
    let summary: Vec<_> = attempts
        .iter()
        .map(|d| (d.attempt, d.ok, d.http_status, d.error.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, false, None, Some("timeout")),
            (2, true, Some(200), None)
        ]
    );
    let stats = sandbox.sandbox.stats().webhooks;
    assert_eq!(
        (
            stats.posts_failed,
            stats.retries,
            stats.posts_ok,
            stats.posts_abandoned
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(
        stats.statuses_delivered, 1,
        "counted once, when it was taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_post_at_a_time_statuses_arrive_in_the_order_they_were_due() {
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.limits = no_limits();
    config.webhook.url = Some(receiver.url.clone());
    // Statuses of a message due 10 ms apart, 1,000 messages at once: POSTs queue up.
    config.webhook.sent_after_ms = 20;
    config.webhook.delivered_after_ms = Some(30);
    config.webhook.read_after_ms = Some(40);
    config.webhook.concurrency = 1;
    let sandbox = start(config).await;
    let messages = 1_000u32;
    let bodies = (0..messages).map(|i| order_shipped(&format!("+1415{i:07}"), Some(&callback(i))));
    let answers = send_concurrently(&client(), &messages_url(&sandbox), bodies).await;
    assert!(answers.iter().all(|(s, _)| *s == 200));
    let taken = receiver
        .wait_for(Duration::from_secs(30), |t| {
            statuses(t).len() >= 3 * messages as usize
        })
        .await;
    // No fault is configured: any inversion would be the scheduler's own doing.
    let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (wamid, status, _) in statuses(&taken) {
        seen.entry(wamid).or_default().push(status);
    }
    assert_eq!(seen.len(), messages as usize);
    let out_of_order: Vec<_> = seen
        .iter()
        .filter(|(_, order)| order.as_slice() != ["sent", "delivered", "read"])
        .collect();
    assert!(out_of_order.is_empty(), "{out_of_order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_statuses_are_held_back_by_the_delay_at_their_rate() {
    const DELAY_MS: u64 = 1_500;
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.limits = no_limits();
    config.seed = 5;
    config.webhook.url = Some(receiver.url.clone());
    config.webhook.sent_after_ms = 20;
    config.webhook.delivered_after_ms = None;
    config.webhook.read_after_ms = None;
    config.faults.webhook = wa_sandbox::WebhookFaults {
        delay_rate: 0.2,
        delay_ms: DELAY_MS,
        ..Default::default()
    };
    let sandbox = start(config).await;
    let messages = 1_000u32;
    // Eight senders, each noting when it started each send: a status is due
    // `sent_after_ms` (+ the delay) after the sandbox took the send, so never earlier
    // than that after the send started.
    let url = messages_url(&sandbox);
    let workers: Vec<_> = (0..8u32)
        .map(|w| {
            let (client, url) = (client(), url.clone());
            tokio::spawn(async move {
                let mut started = Vec::new();
                for i in (w..messages).step_by(8) {
                    let at = tokio::time::Instant::now();
                    let answer: serde_json::Value = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .json(&order_shipped(&format!("+1415{i:07}"), Some(&callback(i))))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let wamid = answer["messages"][0]["id"].as_str().unwrap().to_owned();
                    started.push((wamid, at));
                }
                started
            })
        })
        .collect();
    let mut started = std::collections::HashMap::new();
    for w in workers {
        started.extend(w.await.unwrap());
    }
    let taken = receiver
        .wait_for(Duration::from_secs(30), |t| {
            statuses(t).len() >= messages as usize
        })
        .await;
    let mut late = 0u32;
    for post in &taken {
        let batch = parse_envelope(&post.body).unwrap();
        for s in batch.statuses() {
            let waited = post.at - started[s.wamid.as_str()];
            // A held status cannot come sooner than the delay; an on-time one comes
            // after `sent_after_ms` plus this machine's lag, far below it.
            if waited >= Duration::from_millis(DELAY_MS) {
                late += 1;
            }
        }
    }
    let stats = sandbox.sandbox.stats().webhooks;
    assert_eq!(u64::from(late), stats.statuses_delayed, "{stats:?}");
    let rate = f64::from(late) / f64::from(messages);
    // Four binomial standard deviations of 1,000 draws at 20%: 0.05.
    assert!((rate - 0.2).abs() < 0.05, "delay rate {rate}");
    assert_eq!(stats.statuses_delivered, u64::from(messages));
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

/// Meta reports a reaction only as `sent`: no `delivered` or `read` follows it.
#[tokio::test]
async fn a_reaction_gets_only_a_sent_status() {
    let receiver = Receiver::start(0).await;
    let mut config = config();
    config.webhook.url = Some(receiver.url.clone());
    let sandbox = start(config).await;
    let client = client();
    let inbound = client
        .post(format!("{}/_sandbox/inbound", sandbox.base_url()))
        .json(&serde_json::json!({"phone_number_id": PHONE, "from": "14155550123", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(inbound.status(), 200);
    let reaction = serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual",
        "to": "+14155550123", "type": "reaction",
        "reaction": {"message_id": "wamid.HBgLMTQxNTU1NTAxMjMVAgASGBQzQUVCNTlBRjQ2", "emoji": "👍"}});
    let (status, body) = send(&client, &sandbox, &reaction).await;
    assert_eq!(status, 200, "{body}");
    let taken = receiver.wait_for(WAIT, |t| !statuses(t).is_empty()).await;
    // Room for a `delivered` the config would send after 80 ms, had it been planned.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = statuses(&receiver.taken());
    assert_eq!(statuses(&taken)[0].1, "sent", "{all:?}");
    assert!(all.iter().all(|s| s.1 == "sent"), "{all:?}");
}
