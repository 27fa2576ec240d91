//! Throughput, pair rate and the customer service window.

use crate::support::*;
use std::time::Instant;
use wa_sandbox::{LimitsConfig, WindowFailure};

#[tokio::test]
async fn the_throughput_limit_trips_at_the_configured_rate() {
    let mut config = config();
    config.phone_numbers[0].throughput_mps = Some(20.0);
    config.limits = LimitsConfig {
        pair_rate_enabled: false,
        ..LimitsConfig::default()
    };
    let sandbox = start(config).await;
    let client = client();
    let started = Instant::now();
    let bodies = (0..100).map(|i| order_shipped(&format!("+1415555{i:04}"), None));
    let answers = send_concurrently(&client, &messages_url(&sandbox), bodies).await;
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = answers.iter().filter(|(s, _)| *s == 200).count();
    let throttled = answers
        .iter()
        .filter(|(_, b)| b["error"]["code"] == 130429)
        .count();
    assert_eq!(accepted + throttled, 100);
    // A full bucket of 20 plus what refilled while the burst ran.
    let most = 20.0 + elapsed * 20.0 + 1.0;
    assert!(
        accepted >= 20 && (accepted as f64) <= most,
        "{accepted} accepted in {elapsed:.2}s"
    );
    assert_eq!(sandbox.sandbox.stats().rejected(130429), throttled as u64);
}

#[tokio::test]
async fn the_pair_rate_refuses_one_recipient_past_its_burst_but_not_others() {
    let mut config = config();
    config.limits.pair_rate_burst = 5;
    config.limits.pair_rate_interval_ms = 60_000;
    let sandbox = start(config).await;
    let client = client();
    for _ in 0..5 {
        assert_eq!(
            send(&client, &sandbox, &order_shipped("+14155550123", None))
                .await
                .0,
            200
        );
    }
    let (status, body) = send(&client, &sandbox, &order_shipped("+14155550123", None)).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131056)),
        "{body}"
    );
    assert_eq!(
        send(&client, &sandbox, &order_shipped("+14155550124", None))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_disabled_limit_lets_everything_through() {
    let mut config = config();
    config.limits = no_limits();
    config.phone_numbers[0].throughput_mps = Some(1.0);
    let sandbox = start(config).await;
    let client = client();
    for _ in 0..60 {
        assert_eq!(
            send(&client, &sandbox, &order_shipped("+14155550123", None))
                .await
                .0,
            200
        );
    }
}

#[tokio::test]
async fn an_inbound_message_opens_the_window_for_free_form_text() {
    let mut config = config();
    config.limits.window_failure = WindowFailure::Sync;
    let sandbox = start(config).await;
    let client = client();
    let to = "+14155550123";
    assert_eq!(
        send(&client, &sandbox, &text(to, "hello")).await.1["error"]["code"],
        131047
    );
    let inbound = client
        .post(format!("{}/_sandbox/inbound", sandbox.base_url()))
        .json(&serde_json::json!({"phone_number_id": PHONE, "from": "14155550123", "text": "STOP"}))
        .send()
        .await
        .unwrap();
    assert_eq!(inbound.status(), 200);
    let (status, body) = send(&client, &sandbox, &text(to, "hello")).await;
    assert_eq!(status, 200, "{body}");
    // Windows are per recipient.
    assert_eq!(
        send(&client, &sandbox, &text("+14155550124", "hi")).await.1["error"]["code"],
        131047
    );
}

#[tokio::test]
async fn the_window_closes_after_its_configured_length() {
    let mut config = config();
    config.limits.window_failure = WindowFailure::Sync;
    config.limits.window_seconds = 1;
    let sandbox = start(config).await;
    let client = client();
    sandbox
        .sandbox
        .inbound_text(&wa_sandbox::InboundText {
            phone_number_id: PHONE.into(),
            from: "+14155550123".into(),
            text: "hi".into(),
            name: None,
        })
        .unwrap();
    assert_eq!(
        send(&client, &sandbox, &text("+14155550123", "a")).await.0,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        send(&client, &sandbox, &text("+14155550123", "b")).await.1["error"]["code"],
        131047
    );
}
