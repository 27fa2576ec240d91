//! Sends: Meta's success shape and every synchronous error with Meta's envelope.

use crate::support::*;
use serde_json::{Value, json};
use wa_sandbox::{InboundText, TemplateStatusChange, WindowFailure};
use wa_shared::domain::graph::{GraphError, SendOutcome, read_send_reply};

#[tokio::test]
async fn an_accepted_template_send_has_metas_success_shape() {
    let sandbox = start(config()).await;
    let (status, body) = send(
        &client(),
        &sandbox,
        &order_shipped("+1 (415) 555-0123", Some(&callback(1))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(
        body["contacts"],
        json!([{"input": "+1 (415) 555-0123", "wa_id": "14155550123"}])
    );
    let message = &body["messages"][0];
    assert!(message["id"].as_str().unwrap().starts_with("wamid."));
    assert_eq!(message["message_status"], "accepted");
    match read_send_reply(status, &serde_json::to_vec(&body).unwrap()) {
        SendOutcome::Accepted(a) => assert_eq!(a.contacts[0].wa_id.as_deref(), Some("14155550123")),
        SendOutcome::Failed(c) => panic!("the domain reader refused the sandbox's answer: {c:?}"),
    }
}

#[tokio::test]
async fn wamids_are_unique() {
    let sandbox = start(config()).await;
    let client = client();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let (_, body) = send(&client, &sandbox, &order_shipped("+14155550123", None)).await;
        assert!(ids.insert(body["messages"][0]["id"].as_str().unwrap().to_owned()));
    }
}

#[tokio::test]
async fn every_golden_payload_of_the_builder_is_accepted() {
    let sandbox = start(config()).await;
    let client = client();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".payload.json") {
            continue;
        }
        let payload: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // Every free-form type needs the customer service window open.
        if payload["type"] != "template" {
            let from = payload["to"].as_str().unwrap().to_owned();
            sandbox
                .sandbox
                .inbound_text(&InboundText {
                    phone_number_id: PHONE.into(),
                    from,
                    text: "hi".into(),
                    name: None,
                })
                .unwrap();
        }
        let (status, body) = send(&client, &sandbox, &payload).await;
        assert_eq!(status, 200, "{}: {body}", path.display());
        let has_status = body["messages"][0].get("message_status").is_some();
        assert_eq!(
            has_status,
            payload["type"] == "template",
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} golden payloads found");
}

/// (what, body, token, expected HTTP status, expected code)
fn error_cases() -> Vec<(&'static str, Value, Option<&'static str>, u16, i64)> {
    let to = "+14155550123";
    let mut named_wrong = json!({"messaging_product": "whatsapp", "to": to, "type": "template",
        "template": {"name": "appointment_reminder", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.example/a.jpg"}}]},
            {"type": "body", "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                {"type": "text", "parameter_name": "doctor", "text": "Dr. Silva"},
                {"type": "text", "parameter_name": "when", "text": "June 3"}]}]}});
    let positional_in_named = {
        let mut b = named_wrong.clone();
        for p in b["template"]["components"][1]["parameters"]
            .as_array_mut()
            .unwrap()
        {
            p.as_object_mut().unwrap().remove("parameter_name");
        }
        b
    };
    let mut missing_media = named_wrong.clone();
    missing_media["template"]["components"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let mut one_param = order_shipped(to, None);
    one_param["template"]["components"][0]["parameters"]
        .as_array_mut()
        .unwrap()
        .pop();
    let mut no_button = order_shipped(to, None);
    no_button["template"]["components"]
        .as_array_mut()
        .unwrap()
        .pop();
    let with_text = |t: &str| {
        let mut b = order_shipped(to, None);
        b["template"]["components"][0]["parameters"][0]["text"] = json!(t);
        b
    };
    let mut other_locale = order_shipped(to, None);
    other_locale["template"]["language"]["code"] = json!("en");
    let mut unknown = order_shipped(to, None);
    unknown["template"]["name"] = json!("no_such_template");
    let paused = json!({"messaging_product": "whatsapp", "to": to, "type": "template",
        "template": {"name": "winter_clearance", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]}});
    named_wrong["template"]["components"][1]["parameters"][2]["parameter_name"] = json!("when");
    vec![
        (
            "wrong token",
            order_shipped(to, None),
            Some("nope"),
            401,
            190,
        ),
        ("missing token", order_shipped(to, None), None, 401, 190),
        ("unknown template", unknown, Some(TOKEN), 404, 132001),
        ("other locale", other_locale, Some(TOKEN), 404, 132001),
        ("paused template", paused, Some(TOKEN), 400, 132015),
        ("too few body values", one_param, Some(TOKEN), 400, 132000),
        ("missing url suffix", no_button, Some(TOKEN), 400, 132000),
        (
            "unknown parameter name",
            named_wrong,
            Some(TOKEN),
            400,
            132012,
        ),
        (
            "positional values in a named template",
            positional_in_named,
            Some(TOKEN),
            400,
            132012,
        ),
        (
            "missing media header",
            missing_media,
            Some(TOKEN),
            400,
            132012,
        ),
        (
            "newline in a value",
            with_text("Ana\nSouza"),
            Some(TOKEN),
            400,
            132018,
        ),
        (
            "tab in a value",
            with_text("Ana\tSouza"),
            Some(TOKEN),
            400,
            132018,
        ),
        (
            "five spaces in a value",
            with_text("Ana     Souza"),
            Some(TOKEN),
            400,
            132018,
        ),
        (
            "not a phone number",
            order_shipped("call me", None),
            Some(TOKEN),
            400,
            100,
        ),
        (
            "no messaging_product",
            json!({"to": to, "text": {"body": "x"}}),
            Some(TOKEN),
            400,
            100,
        ),
    ]
}

#[tokio::test]
async fn every_refusal_answers_metas_envelope_and_code() {
    let sandbox = start(config()).await;
    let client = client();
    for (what, body, token, http, code) in error_cases() {
        let (status, answer) = send_with_token(&client, &sandbox, &body, token).await;
        let error = GraphError::parse(&serde_json::to_vec(&answer).unwrap()).unwrap();
        assert_eq!((status, error.code), (http, Some(code)), "{what}: {answer}");
        assert!(error.fbtrace_id.is_some(), "{what}");
        assert!(error.message.is_some(), "{what}");
    }
    let stats = sandbox.sandbox.stats();
    assert_eq!(stats.sends_accepted, 0);
    assert_eq!(stats.sends_rejected, error_cases().len() as u64);
    assert_eq!(stats.rejected(132018), 3);
}

#[tokio::test]
async fn an_unknown_phone_number_id_is_metas_object_does_not_exist() {
    let sandbox = start(config()).await;
    let url = format!("{}/{VERSION}/999/messages", sandbox.base_url());
    let response = client()
        .post(url)
        .bearer_auth(TOKEN)
        .json(&text("+14155550123", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
}

#[tokio::test]
async fn a_disabled_template_fails_with_132016() {
    let sandbox = start(config()).await;
    let change = TemplateStatusChange {
        waba_id: None,
        name: "order_shipped".into(),
        language: "en_US".into(),
        event: "DISABLED".into(),
        reason: None,
    };
    sandbox.sandbox.template_status(&change).unwrap();
    let (status, body) = send(&client(), &sandbox, &order_shipped("+14155550123", None)).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(132016)),
        "{body}"
    );
}

#[tokio::test]
async fn free_form_text_outside_the_window_fails_synchronously_when_so_configured() {
    let mut config = config();
    config.limits.window_failure = WindowFailure::Sync;
    let sandbox = start(config).await;
    let (status, body) = send(&client(), &sandbox, &text("+14155550123", "hello")).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131047)),
        "{body}"
    );
}

#[tokio::test]
async fn every_free_form_type_outside_the_window_fails_like_text() {
    let mut config = config();
    config.limits.window_failure = WindowFailure::Sync;
    let sandbox = start(config).await;
    let client = client();
    let to = "+14155550123";
    let wamid = "wamid.HBgLMTQxNTU1NTAxMjMVAgASGBQzQTdCNTg5RjY1MEMyRjlGMjRGNgA=";
    for (kind, object) in [
        ("image", json!({"link": "https://cdn.example/a.jpg"})),
        ("document", json!({"id": "1013859600285441"})),
        ("audio", json!({"id": "1"})),
        ("sticker", json!({"id": "1"})),
        ("video", json!({"id": "1"})),
        (
            "interactive",
            json!({"type": "button", "body": {"text": "Hi"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}}),
        ),
        ("location", json!({"latitude": 1.0, "longitude": 2.0})),
        ("reaction", json!({"message_id": wamid, "emoji": "👍"})),
    ] {
        let body = json!({"messaging_product": "whatsapp", "to": to, "type": kind, kind: object});
        let (status, answer) = send(&client, &sandbox, &body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_i64()),
            (400, Some(131047)),
            "{kind}: {answer}"
        );
    }
}

#[tokio::test]
async fn a_free_form_object_out_of_metas_limits_is_refused_with_its_envelope() {
    let sandbox = start(config()).await;
    let buttons: Vec<Value> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| json!({"type": "reply", "reply": {"id": id, "title": id}}))
        .collect();
    let body = json!({"messaging_product": "whatsapp", "to": "+14155550123", "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": buttons}}});
    let (status, answer) = send(&client(), &sandbox, &body).await;
    assert_eq!(status, 400, "{answer}");
    let error = GraphError::parse(&serde_json::to_vec(&answer).unwrap()).unwrap();
    assert_eq!(error.code, Some(131009));
    assert_eq!(error.title(), Some("Parameter value is not valid"));
    assert!(
        error
            .details()
            .unwrap()
            .contains("interactive['action']['buttons']"),
        "{answer}"
    );
}

#[tokio::test]
async fn an_accepted_text_carries_no_message_status() {
    let sandbox = start(config()).await;
    sandbox
        .sandbox
        .inbound_text(&InboundText {
            phone_number_id: PHONE.into(),
            from: "+14155550123".into(),
            text: "hi".into(),
            name: None,
        })
        .unwrap();
    let (status, body) = send(&client(), &sandbox, &text("+14155550123", "hello")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["messages"][0].get("message_status").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn mark_as_read_answers_success() {
    let sandbox = start(config()).await;
    let body = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"});
    let (status, answer) = send(&client(), &sandbox, &body).await;
    assert_eq!((status, answer), (200, json!({"success": true})));
}

#[tokio::test]
async fn a_phone_number_added_while_serving_takes_sends_with_the_configured_templates() {
    let sandbox = start(config()).await;
    let client = client();
    let url = format!("{}/{VERSION}/106540352249999/messages", sandbox.base_url());
    let send_from_new_number = || {
        client
            .post(&url)
            .bearer_auth("new-number-token")
            .json(&order_shipped("+14155550123", Some(&callback(7))))
            .send()
    };
    let unknown = send_from_new_number().await.unwrap();
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);

    let number = wa_sandbox::PhoneNumberConfig {
        id: "106540352249999".into(),
        display_phone_number: "15550789999".into(),
        waba_id: "102290129349999".into(),
        access_token: wa_sandbox::Secret("new-number-token".into()),
        throughput_mps: None,
    };
    assert!(sandbox.sandbox.add_phone_number(number.clone()).unwrap());
    assert!(
        !sandbox.sandbox.add_phone_number(number).unwrap(),
        "added twice"
    );
    let accepted = send_from_new_number().await.unwrap();
    let status = accepted.status();
    let body: Value = accepted.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["message_status"], "accepted");
}

#[tokio::test]
async fn the_marketing_messages_api_takes_the_same_body_and_records_its_path() {
    let sandbox = start(config()).await;
    let url = format!(
        "{}/{VERSION}/{PHONE}/marketing_messages",
        sandbox.base_url()
    );
    let response = client()
        .post(url)
        .bearer_auth(TOKEN)
        .json(&order_shipped("+14155550123", Some(&callback(1))))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["message_status"], "accepted");
    let (status, body) = send(&client(), &sandbox, &order_shipped("+14155550123", None)).await;
    assert_eq!(status, 200, "{body}");
    let paths: Vec<String> = sandbox
        .sandbox
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(
        paths,
        [
            format!("/{VERSION}/{PHONE}/marketing_messages"),
            format!("/{VERSION}/{PHONE}/messages"),
        ]
    );
}
