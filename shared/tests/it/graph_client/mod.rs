//! `GraphProvider` against real HTTP servers on 127.0.0.1.
//!
//! The servers are raw tokio sockets rather than axum: the cases that matter most
//! (never answering, resetting after reading, breaking off mid-body) need control
//! over the connection that a framework hides.

// A test crate: helpers outside `#[test]` fns panic on setup failures on purpose.

mod server;

use secrecy::SecretString;
use serde_json::{Value, json};
use server::{Behaviour, TestServer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use wa_shared::adapters::graph::{GraphConfig, GraphConfigError, GraphProvider, MAX_REPLY_BYTES};
use wa_shared::domain::graph::{Classification, SendEndpoint, SendOutcome};
use wa_shared::domain::{FailureClass, PhoneNumberId};
use wa_shared::ports::provider::{Provider, ProviderRequest};

const TOKEN: &str = "EAAGsecret-token-never-printed-7f3a";
const PHONE_NUMBER_ID: &str = "106540352242922";
const TIMEOUT: Duration = Duration::from_millis(300);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

fn config(base_url: String) -> GraphConfig {
    GraphConfig {
        base_url,
        connect_timeout: CONNECT_TIMEOUT,
        timeout: TIMEOUT,
        ..GraphConfig::default()
    }
}

fn template_body() -> Value {
    json!({
        "messaging_product": "whatsapp",
        "to": "+15551234567",
        "type": "template",
        "biz_opaque_callback_data": "wa1:acme:msg_01HZX3Y8Q2W9K7T5R4P6N8M0VB",
        "template": {"name": "order_update", "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]}
    })
}

/// Send `body` through a provider for `base_url`; also return what was printed
/// about the provider, the request and the outcome, to look for the token.
async fn send_to(base_url: String, body: &Value) -> (SendOutcome, String) {
    let provider = GraphProvider::new(&config(base_url)).unwrap();
    let token = SecretString::from(TOKEN);
    let id = PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap();
    let request = ProviderRequest {
        phone_number_id: &id,
        endpoint: SendEndpoint::Messages,
        token: &token,
        body,
    };
    let outcome = provider.send(request).await;
    let printed = format!("{provider:?} {request:?} {outcome:?} {token:?}");
    assert!(!printed.contains(TOKEN), "token leaked: {printed}");
    let shown_request = format!("{request:?}");
    assert!(
        !shown_request.contains("+15551234567"),
        "recipient shown: {shown_request}"
    );
    (outcome, printed)
}

async fn send_against(behaviour: Behaviour) -> (SendOutcome, TestServer) {
    let server = TestServer::start(behaviour).await;
    let (outcome, _) = send_to(server.base_url(), &template_body()).await;
    (outcome, server)
}

fn failed(outcome: SendOutcome) -> Classification {
    match outcome {
        SendOutcome::Failed(c) => c,
        SendOutcome::Accepted(a) => panic!("unexpectedly accepted: {a:?}"),
    }
}

fn json_reply(status: u16, body: &str) -> Behaviour {
    Behaviour::Reply(status, "application/json", body.as_bytes().to_vec())
}

#[tokio::test]
async fn a_meta_success_is_accepted_with_its_wamid() {
    let body = include_bytes!("../../../src/domain/graph/testdata/success-template-accepted.json");
    let (outcome, _) = send_against(Behaviour::Reply(200, "application/json", body.to_vec())).await;
    match outcome {
        SendOutcome::Accepted(a) => assert_eq!(
            a.wamid.as_str(),
            "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
        ),
        SendOutcome::Failed(c) => panic!("expected accepted, got {c:?}"),
    }
}

#[tokio::test]
async fn the_request_carries_version_phone_number_id_bearer_and_the_body_unchanged() {
    let body = include_bytes!("../../../src/domain/graph/testdata/success-template-accepted.json");
    let (_, server) = send_against(Behaviour::Reply(200, "application/json", body.to_vec())).await;
    let request = server.only_request();
    assert_eq!(
        request.request_line,
        format!("POST /v25.0/{PHONE_NUMBER_ID}/messages HTTP/1.1")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    // Byte for byte: serde_json keeps key order, so nothing was re-ordered or re-encoded.
    assert_eq!(request.body, serde_json::to_vec(&template_body()).unwrap());
}

#[tokio::test]
async fn a_marketing_messages_api_send_posts_the_same_body_to_marketing_messages() {
    let body = include_bytes!("../../../src/domain/graph/testdata/success-template-accepted.json");
    let server = TestServer::start(Behaviour::Reply(200, "application/json", body.to_vec())).await;
    let provider = GraphProvider::new(&config(server.base_url())).unwrap();
    let token = SecretString::from(TOKEN);
    let id = PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap();
    let outcome = provider
        .send(ProviderRequest {
            phone_number_id: &id,
            endpoint: SendEndpoint::MarketingMessages,
            token: &token,
            body: &template_body(),
        })
        .await;
    assert!(matches!(outcome, SendOutcome::Accepted(_)), "{outcome:?}");
    let request = server.only_request();
    assert_eq!(
        request.request_line,
        format!("POST /v25.0/{PHONE_NUMBER_ID}/marketing_messages HTTP/1.1")
    );
    assert_eq!(request.body, serde_json::to_vec(&template_body()).unwrap());
}

#[tokio::test]
async fn a_base_url_path_prefix_is_kept_in_the_request_path() {
    let server =
        TestServer::start(json_reply(200, r#"{"messages":[{"id":"wamid.PREFIX"}]}"#)).await;
    let (outcome, _) = send_to(format!("{}/graph/", server.base_url()), &json!({})).await;
    assert!(matches!(outcome, SendOutcome::Accepted(_)));
    assert_eq!(
        server.only_request().request_line,
        format!("POST /graph/v25.0/{PHONE_NUMBER_ID}/messages HTTP/1.1")
    );
}

#[tokio::test]
async fn meta_error_envelopes_are_classified_by_their_code() {
    let cases: &[(u16, &str, FailureClass, Option<i64>)] = &[
        (
            400,
            include_str!("../../../src/domain/graph/testdata/error-130429-throughput.json"),
            FailureClass::Throttled,
            Some(130429),
        ),
        (
            404,
            include_str!("../../../src/domain/graph/testdata/error-132001-template-missing.json"),
            FailureClass::Rejected,
            Some(132001),
        ),
        (
            401,
            include_str!("../../../src/domain/graph/testdata/error-190-token-expired.json"),
            FailureClass::Tenant,
            Some(190),
        ),
        (
            400,
            r#"{"error":{"message":"(#131026) Message undeliverable","type":"OAuthException","code":131026,"fbtrace_id":"A1"}}"#,
            FailureClass::Recipient,
            Some(131026),
        ),
        (
            500,
            r#"{"error":{"message":"(#131000) Something went wrong","type":"OAuthException","code":131000,"fbtrace_id":"A2"}}"#,
            FailureClass::Transient,
            Some(131000),
        ),
    ];
    for &(status, body, class, code) in cases {
        let c = failed(send_against(json_reply(status, body)).await.0);
        assert_eq!((c.class, c.code), (class, code), "HTTP {status}: {body}");
    }
}

#[tokio::test]
async fn a_bare_503_html_page_is_transient() {
    let page = b"<html><body><h1>503 Service Unavailable</h1></body></html>".to_vec();
    let c = failed(
        send_against(Behaviour::Reply(503, "text/html", page))
            .await
            .0,
    );
    assert_eq!((c.class, c.code), (FailureClass::Transient, None));
    assert!(c.detail.unwrap().contains("not JSON"));
}

#[tokio::test]
async fn a_server_that_never_answers_is_ambiguous_after_the_total_timeout() {
    let started = Instant::now();
    let (outcome, server) = send_against(Behaviour::Silent).await;
    let elapsed = started.elapsed();
    let c = failed(outcome);
    assert_eq!(c.class, FailureClass::Ambiguous, "{c:?}");
    assert!(c.title.contains("timeout"), "{}", c.title);
    assert!(elapsed >= TIMEOUT, "gave up after {elapsed:?}");
    assert!(elapsed < TIMEOUT * 10, "took {elapsed:?}");
    // The request really was written: this is why the class is ambiguous.
    assert!(!server.only_request().body.is_empty());
}

#[tokio::test]
async fn a_reset_after_the_request_was_read_is_ambiguous() {
    let (outcome, server) = send_against(Behaviour::Reset).await;
    let c = failed(outcome);
    assert_eq!(c.class, FailureClass::Ambiguous, "{c:?}");
    assert_eq!(c.code, None);
    assert!(c.detail.is_some());
    server.only_request();
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (outcome, _) = send_to(format!("http://{addr}"), &template_body()).await;
    let c = failed(outcome);
    assert_eq!(c.class, FailureClass::Transient, "{c:?}");
    assert!(c.title.contains("nothing was sent"), "{}", c.title);
    assert!(c.detail.unwrap().to_lowercase().contains("refused"));
}

#[tokio::test]
async fn a_connect_timeout_is_transient() {
    // A listener whose accept queue is full drops new SYNs, so connecting hangs
    // until our connect timeout (shorter than the total one); nothing can have been
    // sent, which the title, distinct from the total timeout's, shows.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await
        {
            fillers.push(stream);
        }
    }
    let (outcome, _) = send_to(format!("http://{addr}"), &template_body()).await;
    let c = failed(outcome);
    assert_eq!(c.class, FailureClass::Transient, "{c:?}");
    assert!(c.title.contains("nothing was sent"), "{}", c.title);
    let detail = c.detail.unwrap();
    assert!(
        detail.contains("timed out") || detail.contains("deadline has elapsed"),
        "{detail}"
    );
}

#[tokio::test]
async fn an_unresolvable_host_is_transient() {
    // `.invalid` never resolves (RFC 6761); whether the resolver says so at once or
    // the connect timeout fires first, nothing was sent.
    let (outcome, _) = send_to("http://graph.example.invalid".into(), &template_body()).await;
    let c = failed(outcome);
    assert_eq!(c.class, FailureClass::Transient, "{c:?}");
}

#[tokio::test]
async fn a_2xx_whose_body_stops_arriving_is_ambiguous() {
    let (outcome, _) = send_against(Behaviour::PartialBody {
        status: 200,
        announced: 200,
        sent: br#"{"messages":[{"id":"wamid."#.to_vec(),
        reset: false,
    })
    .await;
    let c = failed(outcome);
    assert_eq!(c.class, FailureClass::Ambiguous, "{c:?}");
    assert!(
        c.detail
            .unwrap()
            .starts_with("response body could not be read"),
        "the detail says what broke"
    );
}

#[tokio::test]
async fn a_5xx_whose_body_breaks_off_is_transient() {
    let (outcome, _) = send_against(Behaviour::PartialBody {
        status: 503,
        announced: 500,
        sent: br#"{"error":{"#.to_vec(),
        reset: true,
    })
    .await;
    let c = failed(outcome);
    assert_eq!(c.class, FailureClass::Transient, "{c:?}");
}

#[tokio::test]
async fn an_oversized_2xx_body_is_ambiguous_not_read_whole() {
    let huge = vec![b' '; MAX_REPLY_BYTES + 1];
    let c = failed(
        send_against(Behaviour::Reply(200, "application/json", huge))
            .await
            .0,
    );
    assert_eq!(c.class, FailureClass::Ambiguous);
    assert!(c.detail.unwrap().contains("exceeds"));
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    // Followed, it would come back to this server as a second request.
    let server = TestServer::start(Behaviour::Redirect("/elsewhere")).await;
    let (outcome, _) = send_to(server.base_url(), &template_body()).await;
    assert_eq!(failed(outcome).class, FailureClass::Transient);
    assert_eq!(server.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unusable_token_fails_the_tenant_without_a_request() {
    let server = TestServer::start(json_reply(200, "{}")).await;
    let provider = GraphProvider::new(&config(server.base_url())).unwrap();
    let id = PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap();
    let token = SecretString::from(format!("{TOKEN}\r\nX-Injected: 1"));
    let outcome = provider
        .send(ProviderRequest {
            phone_number_id: &id,
            endpoint: SendEndpoint::Messages,
            token: &token,
            body: &template_body(),
        })
        .await;
    let shown = format!("{outcome:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert_eq!(failed(outcome).class, FailureClass::Tenant);
    assert!(server.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_provider_works_behind_an_arc_dyn_port() {
    let server = TestServer::start(json_reply(200, r#"{"messages":[{"id":"wamid.DYN"}]}"#)).await;
    let provider: Arc<dyn Provider> =
        Arc::new(GraphProvider::new(&config(server.base_url())).unwrap());
    let id = PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap();
    let token = SecretString::from(TOKEN);
    let body = template_body();
    // Sends run on other tasks in the sender, so the future must be Send.
    let outcome = tokio::spawn(async move {
        provider
            .send(ProviderRequest {
                phone_number_id: &id,
                endpoint: SendEndpoint::Messages,
                token: &token,
                body: &body,
            })
            .await
    })
    .await
    .unwrap();
    assert!(matches!(outcome, SendOutcome::Accepted(a) if a.wamid.as_str() == "wamid.DYN"));
}

#[test]
fn no_debug_or_display_output_contains_the_token() {
    let config = GraphConfig::default();
    let provider = GraphProvider::new(&config).unwrap();
    let token = SecretString::from(TOKEN);
    let id = PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap();
    let body = template_body();
    let request = ProviderRequest {
        phone_number_id: &id,
        endpoint: SendEndpoint::Messages,
        token: &token,
        body: &body,
    };
    let errors = [
        GraphConfigError::InvalidBaseUrl("no credentials allowed"),
        GraphConfigError::InvalidApiVersion("v1".into()),
    ];
    let mut printed = format!("{config:?} {provider:?} {request:?} {token:?}");
    for e in &errors {
        printed.push_str(&format!("{e} {e:?}"));
    }
    assert!(!printed.contains(TOKEN), "{printed}");
    assert!(
        printed.contains(PHONE_NUMBER_ID),
        "the id is still shown: {printed}"
    );
}

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The token must never reach the logs: capture every tracing event (TRACE and up, in
/// Lambda's JSON format, with span fields) around a failing send (an OAuth error), a
/// transport failure and a successful one, and look for it.
#[tokio::test]
async fn the_token_never_appears_in_log_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .finish();
    // A current-thread runtime: the thread-local default covers every await below.
    let _guard = tracing::subscriber::set_default(subscriber);
    let span = tracing::info_span!("send", tenant = "acme", token_ref = "acme/token");
    let _entered = span.enter();

    let oauth = r#"{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"AbCdEf"}}"#;
    let (outcome, _) = send_against(json_reply(401, oauth)).await;
    assert_eq!(failed(outcome).class, FailureClass::Tenant);
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}")
    };
    let (outcome, _) = send_to(refused, &template_body()).await;
    assert_eq!(failed(outcome).class, FailureClass::Transient);
    let body = include_bytes!("../../../src/domain/graph/testdata/success-template-accepted.json");
    let (outcome, _) = send_against(Behaviour::Reply(200, "application/json", body.to_vec())).await;
    assert!(matches!(outcome, SendOutcome::Accepted(_)));
    tracing::info!("sends done");

    let logs = captured.text();
    // The capture works: the failed sends were logged, with the span's fields.
    assert!(logs.contains("graph send failed"), "{logs}");
    assert!(logs.contains("\"tenant\":\"acme\""), "{logs}");
    assert!(logs.contains("sends done"), "{logs}");
    assert!(!logs.contains(TOKEN), "token in the logs:\n{logs}");
    assert!(
        !logs.contains("EAAGsecret"),
        "part of the token in the logs:\n{logs}"
    );
}
