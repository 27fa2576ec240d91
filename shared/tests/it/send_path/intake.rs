//! Intake through its real handler with API Gateway v2 events from `events/intake/`.

use crate::send_path::support::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wa_shared::domain::template::TemplateStatus;
use wa_shared::domain::tenant::TenantStatus;
use wa_shared::domain::{MessageId, MessageState, PhoneNumber, TenantId};
use wa_shared::ports::QueueRef;

async fn pipeline() -> Pipeline {
    Pipeline::new(Arc::new(ScriptedProvider::default())).await
}

fn demo() -> TenantId {
    TenantId::parse("demo").unwrap()
}

async fn queue_len(p: &Pipeline) -> u64 {
    p.queues.approximate_depth(&p.queue).await.unwrap().visible
}

#[tokio::test]
async fn a_template_send_is_stored_queued_enqueued_and_answered_202() {
    let p = pipeline().await;
    let resp = p.intake(request("intake/send-template.json")).await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    assert_eq!(header(&resp, "x-request-id"), Some("req-send-template"));
    let b = body(&resp);
    assert_eq!(b["id"], fixture_id().as_str());
    assert_eq!(b["status"], "queued");
    assert_eq!(b["to"], "+14155550123");
    assert_eq!(b["created_at"], "2026-06-03T10:15:30.000Z");

    let m = p.stored(&fixture_id()).await;
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.template_name.as_deref(), Some("order_shipped"));
    assert_eq!(m.metadata.as_ref().unwrap()["order"], "1234");
    let batch = p.receive().await;
    assert_eq!(batch.records.len(), 1);
    let reference: Value = serde_json::from_str(batch.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        reference,
        json!({"tenant": "demo", "id": fixture_id().as_str()})
    );
    assert_eq!(p.metric("Queued", &[("Tenant", "demo")]), 1.0);
}

#[tokio::test]
async fn a_replay_answers_200_with_the_stored_message_and_enqueues_nothing_more() {
    let p = pipeline().await;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    p.clock.advance(Duration::from_secs(3));
    // The replay fixture spells the same JSON differently (indented).
    let resp = p.intake(request("intake/replay.json")).await;
    assert_eq!(resp.status_code, 200, "{}", body_text(&resp));
    assert_eq!(header(&resp, "idempotent-replayed"), Some("true"));
    let b = body(&resp);
    assert_eq!(b["id"], fixture_id().as_str());
    assert_eq!(b["status"], "queued");
    assert_eq!(b["created_at"], "2026-06-03T10:15:30.000Z");
    assert_eq!(b["template"]["name"], "order_shipped");
    assert_eq!(b["metadata"]["order"], "1234");
    assert_eq!(queue_len(&p).await, 1);
    assert_eq!(p.metric("Queued", &[]), 1.0);
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_409_and_changes_nothing() {
    let p = pipeline().await;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    let before = p.stored(&fixture_id()).await;
    let resp = p.intake(request("intake/conflict.json")).await;
    assert_eq!(resp.status_code, 409);
    assert_eq!(body(&resp)["error"]["code"], "idempotency_key_reused");
    assert_eq!(body(&resp)["error"]["request_id"], "req-conflict");
    assert_eq!(p.stored(&fixture_id()).await, before);
    assert_eq!(queue_len(&p).await, 1);
}

/// Every error answer: status, code, and nothing stored or enqueued.
#[tokio::test]
async fn every_refused_request_gets_its_status_and_the_common_error_body() {
    let p = pipeline().await;
    let big = json!({"to": "+14155550123", "text": {"body": "x".repeat(70_000)}});
    let unknown_id = "/v1/messages/msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3";
    let mut get_unknown = request("intake/get.json");
    get_unknown.raw_path = Some(unknown_id.into());
    get_unknown.path_parameters.clear();
    let mut put = request("intake/send-text.json");
    put.request_context.http.method = "PUT".parse().unwrap();
    let mut elsewhere = request("intake/send-text.json");
    elsewhere.raw_path = Some("/v2/things".into());
    let cases = vec![
        (
            "unknown key",
            request("intake/unauthorized.json"),
            401,
            "invalid_api_key",
        ),
        (
            "no key",
            with_header(request("intake/send-text.json"), "authorization", None),
            401,
            "missing_api_key",
        ),
        (
            "not bearer",
            with_header(
                request("intake/send-text.json"),
                "authorization",
                Some("Basic eDp5"),
            ),
            401,
            "missing_api_key",
        ),
        (
            "malformed JSON",
            request("intake/bad-body.json"),
            400,
            "malformed_json",
        ),
        (
            "bad idempotency key",
            with_header(
                request("intake/send-text.json"),
                "idempotency-key",
                Some("tab\there"),
            ),
            400,
            "invalid_idempotency_key",
        ),
        (
            "too long idempotency key",
            with_header(
                request("intake/send-text.json"),
                "idempotency-key",
                Some(&"k".repeat(256)),
            ),
            400,
            "invalid_idempotency_key",
        ),
        (
            "over 64 KiB",
            with_body(request("intake/send-text.json"), &big),
            413,
            "payload_too_large",
        ),
        (
            "invalid request",
            request("intake/invalid.json"),
            422,
            "validation_failed",
        ),
        ("unknown message", get_unknown, 404, "not_found"),
        ("wrong method", put, 405, "method_not_allowed"),
        ("unknown route", elsewhere, 404, "not_found"),
    ];
    for (name, req, status, code) in cases {
        let request_id = req.request_context.request_id.clone().unwrap();
        let resp = p.intake(req).await;
        assert_eq!(resp.status_code, status, "{name}: {}", body_text(&resp));
        let b = body(&resp);
        assert_eq!(b["error"]["code"], code, "{name}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        assert_eq!(b["error"]["request_id"], request_id.as_str(), "{name}");
    }
    assert_eq!(queue_len(&p).await, 0);
    let listed = p
        .store
        .list_by_tenant(&demo(), None, None, 100, None)
        .await
        .unwrap();
    assert!(listed.items.is_empty());
}

#[tokio::test]
async fn a_422_lists_every_problem_with_its_field() {
    let p = pipeline().await;
    let resp = p.intake(request("intake/invalid.json")).await;
    assert_eq!(resp.status_code, 422);
    let details = body(&resp)["error"]["details"].as_array().unwrap().clone();
    let problems: Vec<(String, String)> = details
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap().to_owned(),
                d["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("to", "invalid_phone_number"),
        ("template.body[0]", "newline_or_tab"),
        ("template.buttons[0].index", "button_index_mismatch"),
    ] {
        assert!(
            problems
                .iter()
                .any(|(f, c)| (f.as_str(), c.as_str()) == expected),
            "{expected:?} missing from {problems:?}"
        );
    }
    assert!(problems.len() >= 4, "{problems:?}");
}

/// Policy refusals are stored as `suppressed` and answered 202 with their reason.
#[tokio::test]
async fn policy_refusals_are_suppressed_messages_not_errors() {
    let template = |name: &str| {
        json!({"to": "+14155550123", "template": {"name": name, "language": "en_US",
               "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}})
    };
    let text = json!({"to": "+14155550123", "text": {"body": "hello"}});
    let winter = json!({"to": "+14155550123", "template": {"name": "winter_clearance", "language": "en_US",
        "body": ["30%"], "buttons": [{"index": 0, "type": "quick_reply", "payload": "STOP"}]}});
    type Setup = fn(&Pipeline) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>;
    let no_setup: Setup = |_| Box::pin(async {});
    let opt_out: Setup = |p| {
        Box::pin(async move {
            let who = PhoneNumber::parse("+14155550123").unwrap();
            p.directory
                .set_opt_out(&demo(), &who, true, START)
                .await
                .unwrap();
        })
    };
    let disable: Setup = |p| {
        Box::pin(async move {
            p.directory
                .update_template_status(
                    &demo(),
                    "order_shipped",
                    "en_US",
                    &TemplateStatus::Disabled,
                    START,
                )
                .await
                .unwrap();
        })
    };
    let suspend: Setup = |p| {
        Box::pin(async move {
            let mut profile = p.directory.tenant(&demo()).await.unwrap().unwrap();
            profile.status = TenantStatus::Suspended;
            p.directory.put_tenant(&profile).await.unwrap();
        })
    };
    let cases: Vec<(&str, Setup, Value, &str)> = vec![
        ("opted out", opt_out, template("order_shipped"), "opted_out"),
        ("window closed", no_setup, text, "window_closed"),
        ("template paused", no_setup, winter, "template_paused"),
        (
            "template disabled",
            disable,
            template("order_shipped"),
            "template_disabled",
        ),
        (
            "tenant suspended",
            suspend,
            template("order_shipped"),
            "tenant_suspended",
        ),
    ];
    for (name, setup, request_body, reason) in cases {
        let p = pipeline().await;
        setup(&p).await;
        let resp = p
            .intake(with_body(request("intake/send-text.json"), &request_body))
            .await;
        assert_eq!(resp.status_code, 202, "{name}: {}", body_text(&resp));
        let b = body(&resp);
        assert_eq!(b["status"], "suppressed", "{name}");
        assert_eq!(b["suppression"]["reason"], reason, "{name}");
        let id = MessageId::parse(b["id"].as_str().unwrap()).unwrap();
        let m = p.stored(&id).await;
        assert_eq!(m.state, MessageState::Suppressed, "{name}");
        assert_eq!(queue_len(&p).await, 0, "{name}");
        assert_eq!(
            p.metric("Suppressed", &[("Tenant", "demo"), ("Reason", reason)]),
            1.0,
            "{name}"
        );
        assert_eq!(p.metric("Queued", &[]), 0.0, "{name}");
    }
}

#[tokio::test]
async fn text_inside_the_window_is_queued_and_a_pending_template_is_a_422() {
    let p = pipeline().await;
    let who = PhoneNumber::parse("+14155550123").unwrap();
    p.directory
        .record_inbound(&demo(), &who, START.plus_millis(-60_000))
        .await
        .unwrap();
    let resp = p.intake(request("intake/send-text.json")).await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    assert_eq!(body(&resp)["status"], "queued");

    p.directory
        .update_template_status(
            &demo(),
            "order_shipped",
            "en_US",
            &TemplateStatus::Pending,
            START,
        )
        .await
        .unwrap();
    let resp = p.intake(request("intake/send-template.json")).await;
    assert_eq!(resp.status_code, 422);
    assert_eq!(
        body(&resp)["error"]["details"][0]["code"],
        "template_not_approved"
    );
}

#[tokio::test]
async fn a_failed_enqueue_after_the_put_still_answers_202() {
    let p = pipeline().await;
    let mut profile = p.directory.tenant(&demo()).await.unwrap().unwrap();
    profile.queue = QueueRef::new("no-such-queue").as_str().to_owned();
    p.directory.put_tenant(&profile).await.unwrap();
    let resp = p.intake(request("intake/send-template.json")).await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    let m = p.stored(&fixture_id()).await;
    assert_eq!(m.state, MessageState::Queued);
    // The sweep deadline is what lets the reconciler enqueue it later.
    assert!(m.sweep_at.is_some());
    assert_eq!(p.metric("EnqueueFailed", &[("Tenant", "demo")]), 1.0);
}

#[tokio::test]
async fn get_returns_the_message_to_its_tenant_and_404_to_another() {
    let p = pipeline().await;
    assert_eq!(
        p.intake(request("intake/send-template.json"))
            .await
            .status_code,
        202
    );
    let resp = p.intake(request("intake/get.json")).await;
    assert_eq!(resp.status_code, 200, "{}", body_text(&resp));
    let b = body(&resp);
    assert_eq!(b["id"], fixture_id().as_str());
    assert_eq!(b["status"], "queued");
    assert_eq!(b["to"], "+14155550123");
    assert_eq!(
        b["template"],
        json!({"name": "order_shipped", "language": "en_US"})
    );
    assert_eq!(b["attempts"], 0);
    assert_eq!(b["timestamps"]["queued_at"], "2026-06-03T10:15:30.000Z");
    assert_eq!(b["history"][0]["event"], "intake.queued");
    assert_eq!(b["metadata"], json!({"order": "1234"}));

    let other = with_header(
        request("intake/get.json"),
        "authorization",
        Some(&format!("Bearer {OTHER_KEY}")),
    );
    let resp = p.intake(other).await;
    assert_eq!(resp.status_code, 404);
    assert_eq!(body(&resp)["error"]["code"], "not_found");
}

#[tokio::test]
async fn fifty_concurrent_identical_requests_with_one_key_create_one_message() {
    let p = Arc::new(pipeline().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let p = Arc::clone(&p);
        tasks.spawn(async move { p.intake(request("intake/send-template.json")).await });
    }
    let mut statuses = Vec::new();
    while let Some(resp) = tasks.join_next().await {
        let resp = resp.unwrap();
        assert_eq!(body(&resp)["id"], fixture_id().as_str());
        statuses.push(resp.status_code);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        49,
        "{statuses:?}"
    );
    let listed = p
        .store
        .list_by_tenant(&demo(), None, None, 100, None)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(queue_len(&p).await, 1);
}

#[tokio::test]
async fn tenant_lookups_are_cached_for_the_ttl_only() {
    let p = pipeline().await;
    assert_eq!(
        p.intake(request("intake/send-text.json")).await.status_code,
        202
    );
    let mut profile = p.directory.tenant(&demo()).await.unwrap().unwrap();
    profile.status = TenantStatus::Suspended;
    p.directory.put_tenant(&profile).await.unwrap();

    // Within the 5-second TTL the warm container still sees the active profile.
    p.clock.advance(Duration::from_secs(4));
    let who = PhoneNumber::parse("+14155550123").unwrap();
    p.directory
        .record_inbound(&demo(), &who, p.clock_now())
        .await
        .unwrap();
    let resp = p.intake(request("intake/send-text.json")).await;
    assert_eq!(body(&resp)["status"], "queued");

    p.clock.advance(Duration::from_secs(2));
    let resp = p.intake(request("intake/send-text.json")).await;
    assert_eq!(body(&resp)["suppression"]["reason"], "tenant_suspended");
}

#[tokio::test]
async fn a_sanitizing_tenant_gets_its_values_cleaned_instead_of_a_422() {
    let p = pipeline().await;
    let mut profile = p.directory.tenant(&demo()).await.unwrap().unwrap();
    profile.formatting = wa_shared::domain::validation::FormattingPolicy::Sanitize;
    p.directory.put_tenant(&profile).await.unwrap();
    let body_json = json!({"to": "+14155550123", "template": {"name": "order_shipped", "language": "en_US",
        "body": ["Ana\nSilva", "#1234     X"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
    let resp = p
        .intake(with_body(request("intake/send-text.json"), &body_json))
        .await;
    assert_eq!(resp.status_code, 202, "{}", body_text(&resp));
    let id = MessageId::parse(body(&resp)["id"].as_str().unwrap()).unwrap();
    let m = p.stored(&id).await;
    // Meta allows 4 spaces in a row: the run of 5 loses one.
    assert_eq!(
        m.request["template"]["body"],
        json!(["Ana Silva", "#1234    X"])
    );
}

#[test]
fn every_event_file_parses_as_its_function_input() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut seen = 0;
    for (folder, parse) in [
        (
            "intake",
            (|v| {
                serde_json::from_value::<wa_shared::app::http::ApiGatewayV2httpRequest>(v)
                    .map(|_| ())
            }) as fn(Value) -> serde_json::Result<()>,
        ),
        ("sender", |v| {
            serde_json::from_value::<wa_shared::app::sender::SqsEvent>(v).map(|_| ())
        }),
    ] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let value: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            parse(value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 10, "{seen}");
    // The GET fixture names the message the send-template fixture creates.
    assert_eq!(
        event("intake/get.json")["pathParameters"]["id"],
        fixture_id().as_str()
    );
}

/// Sanitize mode: the 202 lists every change it made (field and what changed); strict
/// mode refuses an invisible character with its field path.
#[tokio::test]
async fn sanitize_mode_lists_its_changes_and_strict_refuses_invisible_characters() {
    let p = Pipeline::new(Arc::new(ScriptedProvider::default())).await;
    let body = json!({"to": "+14155550123", "template": {"name": "order_shipped",
        "language": "en_US", "body": ["Ana\u{202E}\nMaria", "#1234"],
        "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}});
    let strict = p
        .intake(with_header(
            with_body(request("intake/send-template.json"), &body),
            "idempotency-key",
            Some("strict-1"),
        ))
        .await;
    assert_eq!(strict.status_code, 422, "{}", body_text(&strict));
    let codes: Vec<(String, String)> = crate::send_path::support::body(&strict)["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap().to_owned(),
                d["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        codes.contains(&("template.body[0]".into(), "invisible_character".into())),
        "{codes:?}"
    );

    let mut profile = p.directory.tenant(&demo()).await.unwrap().unwrap();
    profile.formatting = wa_shared::domain::validation::FormattingPolicy::Sanitize;
    p.directory.put_tenant(&profile).await.unwrap();
    // Past intake's lookup cache, so the new profile is read.
    p.clock.advance(Duration::from_secs(6));
    let sanitized = p
        .intake(with_header(
            with_body(request("intake/send-template.json"), &body),
            "idempotency-key",
            Some("sanitize-1"),
        ))
        .await;
    assert_eq!(sanitized.status_code, 202, "{}", body_text(&sanitized));
    let answer = crate::send_path::support::body(&sanitized);
    assert_eq!(answer["sanitized"][0]["field"], "template.body[0]");
    let change = answer["sanitized"][0]["change"].as_str().unwrap();
    assert!(
        change.contains("newline") && change.contains("invisible"),
        "{change}"
    );
}
