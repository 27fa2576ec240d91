//! The entry points under test, each reached from raw bytes the way production
//! reaches it, each `fn(&[u8]) -> u64` (the outcome's fingerprint). Each asserts the
//! properties that are cheap and must hold, besides not panicking.
//!
//! - [`intake_body`]: `POST /v1/messages` body → `serde_json::Value` →
//!   `SendRequest::from_json` and `validate` (both formatting policies) against the
//!   fixture and demo template catalogs.
//! - [`webhook_envelope`]: `parse_envelope`, and the callback data of every status.
//! - [`callback_data`]: `CallbackData::decode` / `encode`.
//! - [`lambda_events`]: a Lambda payload as the runtime decodes it — `SqsEvent`,
//!   `ApiGatewayV2httpRequest`, the webhook's `WebhookInvocation` — then the records'
//!   bodies (`SendQueueMessage::parse`, `ParkedBody`) and the request's body, headers
//!   and query (into the intake and webhook targets).

use aws_lambda_events::sqs::SqsEvent;
use serde_json::Value;
use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::mem::discriminant;
use std::path::Path;
use std::sync::OnceLock;
use wa_shared::app::http::{self, ApiGatewayV2httpRequest};
use wa_shared::app::webhook::{ParkedBody, WebhookInvocation};
use wa_shared::domain::graph::callback::MAX_CALLBACK_DATA_CHARS;
use wa_shared::domain::graph::{CallbackData, CallbackDataError};
use wa_shared::domain::request::SendRequest;
use wa_shared::domain::template::TemplateCatalog;
use wa_shared::domain::validation::{FormattingPolicy, requested_template, validate};
use wa_shared::domain::webhook::{
    HandshakeQuery, SIGNATURE_HEADER, answer_handshake, parse_envelope, verify_signature,
};
use wa_shared::domain::{IdempotencyKey, MessageId, TenantId};
use wa_shared::queues::SendQueueMessage;

/// Template catalogs the intake target validates against (repo-relative): the test
/// fixtures and the `wa dev` demo, so the seeds' templates are found.
const CATALOGS: &[&str] = &[
    "shared/tests/fixtures/templates/catalog.json",
    "local/src/demo/templates.json",
];

/// The catalog of every template in [`CATALOGS`] (a missing file is skipped).
pub fn catalog() -> &'static TemplateCatalog {
    static CATALOG: OnceLock<TemplateCatalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut catalog = TemplateCatalog::new([]);
        for file in CATALOGS {
            let Ok(json) = std::fs::read_to_string(repo.join(file)) else {
                continue;
            };
            match TemplateCatalog::from_json(&json) {
                Ok(loaded) => loaded.iter().cloned().for_each(|t| catalog.insert(t)),
                Err(e) => panic!("template catalog {file} does not load: {e}"),
            }
        }
        catalog
    })
}

/// Intake's body parser and validator. Properties: a parsed request's canonical JSON
/// parses back to the same request; a validated request's canonical JSON validates
/// again under `Strict`, unchanged; a refusal lists at least one problem.
pub fn intake_body(data: &[u8]) -> u64 {
    let Ok(raw) = serde_json::from_slice::<Value>(data) else {
        return 1;
    };
    let mut hasher = DefaultHasher::new();
    requested_template(&raw).is_some().hash(&mut hasher);
    match SendRequest::from_json(&raw) {
        Ok(request) => {
            let canonical = request.to_json();
            let again = SendRequest::from_json(&canonical);
            match again {
                Ok(again) => assert_eq!(
                    again, request,
                    "canonical JSON {canonical} of a parsed request parses to another request"
                ),
                Err(problems) => panic!(
                    "canonical JSON {canonical} of a parsed request is refused: {problems:?}"
                ),
            }
            "parsed".hash(&mut hasher);
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "a refused request lists no problem");
            problem_codes(&problems).hash(&mut hasher);
        }
    }
    for policy in [FormattingPolicy::Strict, FormattingPolicy::Sanitize] {
        match validate(&raw, catalog(), policy) {
            Ok(validated) => {
                let canonical = validated.to_json();
                match validate(&canonical, catalog(), FormattingPolicy::Strict) {
                    Ok(again) => assert_eq!(
                        again.to_json(),
                        canonical,
                        "a validated request's canonical JSON changes when validated again"
                    ),
                    Err(problems) => panic!(
                        "the canonical JSON {canonical} of a request validated under \
                         {policy:?} is refused under Strict: {problems:?}"
                    ),
                }
                ("valid", validated.sanitized().is_empty()).hash(&mut hasher);
            }
            Err(problems) => {
                assert!(!problems.is_empty(), "an invalid request lists no problem");
                problem_codes(&problems).hash(&mut hasher);
            }
        }
    }
    hasher.finish()
}

fn problem_codes(problems: &[wa_shared::domain::validation::Problem]) -> BTreeSet<&'static str> {
    problems.iter().map(|p| p.code).collect()
}

/// The webhook envelope parser (it promises never to panic, whatever the bytes), its
/// errors' and warnings' messages, and the callback data of every status.
pub fn webhook_envelope(data: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    match parse_envelope(data) {
        Ok(batch) => {
            let kinds: BTreeSet<String> = batch
                .events
                .iter()
                .map(|e| format!("{:?}", discriminant(e)))
                .collect();
            kinds.hash(&mut hasher);
            let mut problems = BTreeSet::new();
            for warning in &batch.warnings {
                let _ = warning.to_string();
                problems.insert(format!("{:?}", discriminant(&warning.problem)));
            }
            problems.hash(&mut hasher);
            for status in batch.statuses() {
                if let Some(data) = status.biz_opaque_callback_data.as_deref() {
                    callback_data(data.as_bytes()).hash(&mut hasher);
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            format!("{:?}", discriminant(&e)).hash(&mut hasher);
            assert!(
                message.chars().count() < 200,
                "webhook parse error message is not bounded: {} characters",
                message.chars().count()
            );
        }
    }
    hasher.finish()
}

/// The `biz_opaque_callback_data` codec. Properties: whatever decodes is exactly what
/// it encodes to; any valid tenant and message id found in the input round-trip.
pub fn callback_data(data: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(data);
    let outcome = match CallbackData::decode(&text) {
        Ok(decoded) => {
            assert_eq!(
                decoded.encode(),
                text,
                "decode accepted a non-canonical string"
            );
            assert_eq!(decoded.to_string(), text);
            assert!(decoded.encode().chars().count() <= MAX_CALLBACK_DATA_CHARS);
            0
        }
        Err(e) => {
            let _ = e.to_string();
            match e {
                CallbackDataError::Foreign => 1,
                CallbackDataError::Malformed => 2,
                CallbackDataError::InvalidTenant(_) => 3,
                CallbackDataError::InvalidMessageId(_) => 4,
            }
        }
    };
    let fields: Vec<&str> = text.split(':').collect();
    for pair in fields.windows(2) {
        if let (Ok(tenant), Ok(id)) = (TenantId::parse(pair[0]), MessageId::parse(pair[1])) {
            let data = CallbackData::new(tenant, id);
            let encoded = data.encode();
            assert!(encoded.chars().count() <= MAX_CALLBACK_DATA_CHARS);
            assert_eq!(CallbackData::decode(&encoded), Ok(data));
        }
    }
    outcome
}

/// A Lambda payload, decoded the way the runtime decodes it, and everything the
/// functions then read from it.
pub fn lambda_events(data: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    if let Ok(event) = serde_json::from_slice::<SqsEvent>(data) {
        "sqs".hash(&mut hasher);
        sqs_records(&event, &mut hasher);
    }
    if let Ok(request) = serde_json::from_slice::<ApiGatewayV2httpRequest>(data) {
        "apigw".hash(&mut hasher);
        api_request(&request, &mut hasher);
    }
    match serde_json::from_slice::<WebhookInvocation>(data) {
        Ok(WebhookInvocation::Http(request)) => {
            "invocation-http".hash(&mut hasher);
            api_request(&request, &mut hasher);
        }
        Ok(WebhookInvocation::Inbox(event)) => {
            "invocation-inbox".hash(&mut hasher);
            sqs_records(&event, &mut hasher);
        }
        Err(_) => "invocation-error".hash(&mut hasher),
    }
    hasher.finish()
}

/// Each record's body as the sender (a [`SendQueueMessage`]) and the webhook inbox
/// (a [`ParkedBody`]) read it. Properties: both round-trip.
fn sqs_records(event: &SqsEvent, hasher: &mut DefaultHasher) {
    for record in &event.records {
        let Some(body) = record.body.as_deref() else {
            "no-body".hash(hasher);
            continue;
        };
        if let Some(message) = SendQueueMessage::parse(body) {
            assert_eq!(
                SendQueueMessage::parse(&message.to_body()).as_ref(),
                Some(&message),
                "a send queue message does not round-trip through its body"
            );
            ("send", message.probe).hash(hasher);
        }
        if let Ok(parked) = serde_json::from_str::<ParkedBody>(body) {
            match parked.raw() {
                Ok(raw) => {
                    let again = ParkedBody::new(&raw, &parked.signature, parked.received_at);
                    assert_eq!(again.raw().ok().as_deref(), Some(raw.as_slice()));
                    let checked = verify_signature(b"fuzz-secret", &raw, Some(&parked.signature));
                    format!("{:?}", checked.err().map(|e| discriminant(&e))).hash(hasher);
                    webhook_envelope(&raw).hash(hasher);
                }
                Err(e) => e.to_string().hash(hasher),
            }
        }
    }
}

/// What intake and the webhook read of an API Gateway request: method, path, headers,
/// the handshake query and the (base64-decoded) body, which goes on to the intake and
/// webhook targets.
fn api_request(request: &ApiGatewayV2httpRequest, hasher: &mut DefaultHasher) {
    (http::method(request), http::path(request)).hash(hasher);
    for name in ["authorization", "content-type", SIGNATURE_HEADER] {
        http::header(request, name).is_some().hash(hasher);
    }
    if let Some(key) = http::header(request, "idempotency-key") {
        IdempotencyKey::parse(key).is_ok().hash(hasher);
    }
    let params = &request.query_string_parameters;
    let query = HandshakeQuery {
        mode: params.first("hub.mode"),
        verify_token: params.first("hub.verify_token"),
        challenge: params.first("hub.challenge"),
    };
    answer_handshake(&query, "fuzz-token").is_ok().hash(hasher);
    match http::body_bytes(request) {
        Ok(body) => {
            let signature = http::header(request, SIGNATURE_HEADER);
            verify_signature(b"fuzz-secret", &body, signature)
                .is_ok()
                .hash(hasher);
            intake_body(&body).hash(hasher);
            webhook_envelope(&body).hash(hasher);
        }
        Err(e) => (e.status(), e.code()).hash(hasher),
    }
}

/// The seeds of [`callback_data`]: every `biz_opaque_callback_data` of the corpus, and
/// our format built from the corpus' tenant and message ids.
pub fn callback_seeds(corpus: &crate::corpus::Corpus) -> Vec<Vec<u8>> {
    let mut seeds: BTreeSet<String> = corpus
        .strings_under("biz_opaque_callback_data")
        .into_iter()
        .collect();
    let tenants: Vec<String> = corpus
        .dictionary
        .iter()
        .filter(|s| TenantId::parse(s).is_ok())
        .take(16)
        .cloned()
        .collect();
    let ids: Vec<String> = corpus
        .dictionary
        .iter()
        .filter(|s| MessageId::parse(s).is_ok())
        .cloned()
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let tenant = tenants
            .get(i % tenants.len().max(1))
            .map_or("acme", String::as_str);
        seeds.insert(format!("wa1:{tenant}:{id}"));
    }
    seeds.insert("wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3".to_owned());
    seeds.insert(format!(
        "wa1:{}:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3",
        "t".repeat(64)
    ));
    seeds.into_iter().map(String::into_bytes).collect()
}
