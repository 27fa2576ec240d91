//! The real Graph client (`GraphProvider`) against the Graph sandbox over HTTP on
//! 127.0.0.1: one test per failure class, including the ambiguous case where Meta
//! accepted the message but its answer never reached us.

use secrecy::SecretString;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use wa_sandbox::{
    ErrorFault, FaultConfig, LimitsConfig, PhoneNumberConfig, RunningSandbox, SandboxConfig,
    TemplatesSource, WindowFailure,
};
use wa_shared::adapters::graph::{GraphConfig, GraphProvider};
use wa_shared::domain::graph::{SendEndpoint, SendOutcome};
use wa_shared::domain::{FailureClass, PhoneNumberId};
use wa_shared::ports::{Provider, ProviderRequest};

const PHONE: &str = "106540352242922";
const TOKEN: &str = "sandbox-token-not-real";

fn config(faults: FaultConfig, limits: LimitsConfig) -> SandboxConfig {
    let catalog = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tests/fixtures/templates/catalog.json");
    SandboxConfig {
        phone_numbers: vec![PhoneNumberConfig {
            id: PHONE.into(),
            display_phone_number: "15550783881".into(),
            waba_id: "102290129340398".into(),
            access_token: TOKEN.into(),
            throughput_mps: None,
        }],
        templates: TemplatesSource::File(catalog),
        faults,
        limits,
        ..SandboxConfig::default()
    }
}

fn provider(sandbox: &RunningSandbox, timeout: Duration) -> GraphProvider {
    GraphProvider::new(&GraphConfig {
        base_url: sandbox.base_url(),
        timeout,
        connect_timeout: Duration::from_millis(200),
        ..GraphConfig::default()
    })
    .unwrap()
}

fn order_shipped(to: &str) -> Value {
    json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "template",
        "biz_opaque_callback_data": "wa1:demo:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3",
        "template": {"name": "order_shipped", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#1234"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A1B2"}]}
        ]}
    })
}

async fn send_once(
    sandbox: &RunningSandbox,
    body: &Value,
    token: &str,
    timeout: Duration,
) -> SendOutcome {
    let phone = PhoneNumberId::parse(PHONE).unwrap();
    let token = SecretString::from(token.to_owned());
    provider(sandbox, timeout)
        .send(ProviderRequest {
            phone_number_id: &phone,
            endpoint: SendEndpoint::Messages,
            token: &token,
            body,
        })
        .await
}

fn failed_class(outcome: &SendOutcome) -> (FailureClass, Option<i64>) {
    match outcome {
        SendOutcome::Failed(c) => (c.class, c.code),
        SendOutcome::Accepted(a) => panic!("expected a failure, got accepted {}", a.wamid),
    }
}

fn always(code: i64, http_status: u16) -> FaultConfig {
    FaultConfig {
        errors: vec![ErrorFault {
            code,
            http_status: Some(http_status),
            rate: 1.0,
        }],
        ..FaultConfig::default()
    }
}

const QUICK: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_valid_template_send_is_accepted_with_a_wamid() {
    let sandbox = RunningSandbox::start(config(FaultConfig::default(), LimitsConfig::default()))
        .await
        .unwrap();
    match send_once(&sandbox, &order_shipped("+14155550123"), TOKEN, QUICK).await {
        SendOutcome::Accepted(a) => {
            assert!(a.wamid.as_str().starts_with("wamid."));
            assert_eq!(a.message_status.as_deref(), Some("accepted"));
        }
        SendOutcome::Failed(c) => panic!("unexpected failure {c:?}"),
    }
    assert_eq!(sandbox.sandbox.stats().sends_accepted, 1);
}

#[tokio::test]
async fn an_unknown_template_is_rejected_for_good() {
    let sandbox = RunningSandbox::start(config(FaultConfig::default(), LimitsConfig::default()))
        .await
        .unwrap();
    let mut body = order_shipped("+14155550123");
    body["template"]["language"]["code"] = json!("fr");
    let outcome = send_once(&sandbox, &body, TOKEN, QUICK).await;
    assert_eq!(
        failed_class(&outcome),
        (FailureClass::Rejected, Some(132001))
    );
}

#[tokio::test]
async fn a_wrong_token_is_a_tenant_problem() {
    let sandbox = RunningSandbox::start(config(FaultConfig::default(), LimitsConfig::default()))
        .await
        .unwrap();
    let outcome = send_once(&sandbox, &order_shipped("+14155550123"), "expired", QUICK).await;
    assert_eq!(failed_class(&outcome), (FailureClass::Tenant, Some(190)));
}

#[tokio::test]
async fn free_form_text_outside_the_window_is_a_recipient_failure() {
    let limits = LimitsConfig {
        window_failure: WindowFailure::Sync,
        ..LimitsConfig::default()
    };
    let sandbox = RunningSandbox::start(config(FaultConfig::default(), limits))
        .await
        .unwrap();
    let body = json!({"messaging_product": "whatsapp", "to": "+14155550123", "type": "text",
        "text": {"body": "hello"}});
    let outcome = send_once(&sandbox, &body, TOKEN, QUICK).await;
    assert_eq!(
        failed_class(&outcome),
        (FailureClass::Recipient, Some(131047))
    );
}

#[tokio::test]
async fn a_throughput_error_is_throttled_with_a_suggested_delay() {
    let sandbox = RunningSandbox::start(config(always(130429, 429), LimitsConfig::default()))
        .await
        .unwrap();
    let outcome = send_once(&sandbox, &order_shipped("+14155550123"), TOKEN, QUICK).await;
    assert_eq!(
        failed_class(&outcome),
        (FailureClass::Throttled, Some(130429))
    );
    let SendOutcome::Failed(c) = outcome else {
        unreachable!()
    };
    assert!(c.suggested_delay.is_some());
}

#[tokio::test]
async fn the_real_throughput_limit_of_the_number_is_throttled() {
    let mut cfg = config(FaultConfig::default(), LimitsConfig::default());
    cfg.phone_numbers[0].throughput_mps = Some(1.0);
    let sandbox = RunningSandbox::start(cfg).await.unwrap();
    let mut classes = Vec::new();
    for n in 0..6 {
        let to = format!("+1415555{:04}", 100 + n);
        let outcome = send_once(&sandbox, &order_shipped(&to), TOKEN, QUICK).await;
        classes.push(match outcome {
            SendOutcome::Accepted(_) => None,
            SendOutcome::Failed(c) => Some((c.class, c.code)),
        });
    }
    assert!(
        classes.contains(&Some((FailureClass::Throttled, Some(130429)))),
        "a 1 msg/s number sent 6 at once without a throttle: {classes:?}"
    );
}

#[tokio::test]
async fn a_server_error_is_transient() {
    let sandbox = RunningSandbox::start(config(always(131000, 500), LimitsConfig::default()))
        .await
        .unwrap();
    let outcome = send_once(&sandbox, &order_shipped("+14155550123"), TOKEN, QUICK).await;
    assert_eq!(
        failed_class(&outcome),
        (FailureClass::Transient, Some(131000))
    );
}

#[tokio::test]
async fn an_accepted_send_whose_answer_is_lost_is_ambiguous_not_failed() {
    let faults = FaultConfig {
        accept_then_timeout_rate: 1.0,
        accept_then_timeout_hold_ms: Some(3_000),
        ..FaultConfig::default()
    };
    let sandbox = RunningSandbox::start(config(faults, LimitsConfig::default()))
        .await
        .unwrap();
    let outcome = send_once(
        &sandbox,
        &order_shipped("+14155550123"),
        TOKEN,
        Duration::from_millis(400),
    )
    .await;
    assert_eq!(failed_class(&outcome).0, FailureClass::Ambiguous);
    // Meta (the sandbox) did take it: this is why the sender must never blind-retry.
    let stats = sandbox.sandbox.stats();
    assert_eq!(stats.sends_accepted, 1);
    assert_eq!(stats.answers_withheld, 1);
}

#[tokio::test]
async fn a_closed_port_is_transient() {
    let sandbox = RunningSandbox::start(config(FaultConfig::default(), LimitsConfig::default()))
        .await
        .unwrap();
    let provider = provider(&sandbox, QUICK);
    sandbox.stop().await.unwrap();
    let phone = PhoneNumberId::parse(PHONE).unwrap();
    let token = SecretString::from(TOKEN.to_owned());
    let body = order_shipped("+14155550123");
    let outcome = provider
        .send(ProviderRequest {
            phone_number_id: &phone,
            endpoint: SendEndpoint::Messages,
            token: &token,
            body: &body,
        })
        .await;
    assert_eq!(failed_class(&outcome).0, FailureClass::Transient);
}
