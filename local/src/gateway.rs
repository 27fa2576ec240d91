//! The local API Gateway: plain HTTP requests become API Gateway HTTP API (payload
//! v2) events for the very intake and webhook handlers the Lambdas run, and their
//! responses become HTTP responses again.
//!
//! Routes, as in `infra/template.yaml`: the intake routes (`/v1/...`) and `GET`/`POST
//! /webhook` (webhook); and `GET /openapi.json`, the contract of them all
//! (`docs/openapi.yaml`, served as JSON; local/tests/it/openapi.rs keeps the router and
//! that document in step).

use aws_lambda_events::encodings::Body as LambdaBody;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use wa_shared::app::http::{ApiError, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use wa_shared::wiring::local::Functions;

/// Largest body read from a connection: API Gateway's own limit (10 MB). The handlers'
/// limits (64 KiB intake, 3 MiB webhook) are lower and answer 413 themselves, naming
/// the size they saw; this only bounds memory.
pub const MAX_READ_BYTES: usize = 10 * 1024 * 1024;

/// `docs/openapi.yaml`: the OpenAPI 3.1 contract of these routes, the source of truth
/// of what `GET /openapi.json` serves.
pub const OPENAPI_YAML: &str = include_str!("../../docs/openapi.yaml");

/// [`OPENAPI_YAML`] as JSON, converted once (a test keeps it convertible).
static OPENAPI_JSON: LazyLock<Result<String, String>> = LazyLock::new(|| {
    openapi_json()
        .map(|v| v.to_string())
        .map_err(|e| e.to_string())
});

/// The OpenAPI document as JSON: [`OPENAPI_YAML`] converted.
pub fn openapi_json() -> Result<serde_json::Value, serde_yaml_ng::Error> {
    serde_yaml_ng::from_str(OPENAPI_YAML)
}

/// What the routes share.
#[derive(Clone)]
pub struct Gateway {
    functions: Functions,
    local_addr: SocketAddr,
    requests: Arc<AtomicU64>,
}

/// Which function a route invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Intake,
    Webhook,
}

impl Gateway {
    /// Routes of the API, invoking intake's and the webhook's handlers.
    pub fn router(functions: Functions, local_addr: SocketAddr) -> Router {
        let gateway = Gateway {
            functions,
            local_addr,
            requests: Arc::new(AtomicU64::new(0)),
        };
        Router::new()
            .route("/v1/messages", post(post_message).get(list_messages))
            .route("/v1/messages/batch", post(post_batch))
            .route("/v1/messages/{id}", get(get_message).delete(cancel_message))
            .route("/v1/events", get(get_events))
            .route("/webhook", get(webhook).post(webhook))
            .route("/openapi.json", get(openapi))
            .with_state(gateway)
    }

    /// The event API Gateway would hand the function for this request.
    fn event(
        &self,
        route_key: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        path_parameters: HashMap<String, String>,
        body: &Bytes,
    ) -> ApiGatewayV2httpRequest {
        let request = Incoming {
            route_key,
            method,
            uri,
            headers,
            path_parameters,
            body,
        };
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        to_event(
            request,
            self.functions.intake.ports.clock.now().as_millis(),
            n,
            self.local_addr,
        )
    }

    async fn invoke(&self, function: Function, event: ApiGatewayV2httpRequest) -> Response {
        let response = match function {
            Function::Intake => wa_shared::app::intake::handle(&self.functions.intake, event).await,
            Function::Webhook => {
                wa_shared::app::webhook::handle_http(&self.functions.webhook, &event).await
            }
        };
        into_http(response)
    }
}

/// One HTTP request as the routes see it.
struct Incoming<'a> {
    route_key: &'a str,
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    path_parameters: HashMap<String, String>,
    body: &'a Bytes,
}

/// The API Gateway v2 event of `request`, received at `now_ms` as the `n`th request.
fn to_event(
    request: Incoming<'_>,
    now_ms: i64,
    n: u64,
    local_addr: SocketAddr,
) -> ApiGatewayV2httpRequest {
    let Incoming {
        route_key,
        method,
        uri,
        headers,
        path_parameters,
        body,
    } = request;
    let mut req = ApiGatewayV2httpRequest::default();
    req.version = Some("2.0".into());
    req.route_key = Some(route_key.into());
    req.raw_path = Some(uri.path().to_owned());
    let raw_query = uri.query().unwrap_or_default();
    req.raw_query_string = Some(raw_query.to_owned());
    req.query_string_parameters = raw_query.parse().unwrap_or_default();
    req.headers = headers.clone();
    req.path_parameters = path_parameters;
    // API Gateway passes text bodies as they are and anything else base64-encoded;
    // the handlers must read both (the webhook signs the raw bytes).
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => req.body = Some(text.to_owned()),
            Err(_) => {
                req.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
                req.is_base64_encoded = true;
            }
        }
    }
    let ctx = &mut req.request_context;
    ctx.route_key = Some(route_key.into());
    ctx.stage = Some("$default".into());
    ctx.request_id = Some(format!("dev-{now_ms}-{n}"));
    ctx.time_epoch = now_ms;
    ctx.domain_name = Some(local_addr.to_string());
    ctx.http.method = method.clone();
    ctx.http.path = Some(uri.path().to_owned());
    ctx.http.protocol = Some("HTTP/1.1".into());
    ctx.http.source_ip = Some("127.0.0.1".into());
    ctx.http.user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    req
}

async fn post_message(
    State(gw): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(body) = read_body(body).await else {
        return too_large();
    };
    let event = gw.event(
        "POST /v1/messages",
        &method,
        &uri,
        &headers,
        HashMap::new(),
        &body,
    );
    gw.invoke(Function::Intake, event).await
}

/// `GET /v1/messages`: the caller's messages, filtered and paged.
async fn list_messages(
    State(gw): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let event = gw.event(
        "GET /v1/messages",
        &method,
        &uri,
        &headers,
        HashMap::new(),
        &Bytes::new(),
    );
    gw.invoke(Function::Intake, event).await
}

/// `POST /v1/messages/batch`: up to 100 send requests, answered item by item.
async fn post_batch(
    State(gw): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(body) = read_body(body).await else {
        return too_large();
    };
    let event = gw.event(
        "POST /v1/messages/batch",
        &method,
        &uri,
        &headers,
        HashMap::new(),
        &body,
    );
    gw.invoke(Function::Intake, event).await
}

async fn get_message(
    State(gw): State<Gateway>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let params = HashMap::from([("id".to_owned(), id)]);
    let event = gw.event(
        "GET /v1/messages/{id}",
        &method,
        &uri,
        &headers,
        params,
        &Bytes::new(),
    );
    gw.invoke(Function::Intake, event).await
}

/// `DELETE /v1/messages/{id}`: cancel a scheduled or queued message.
async fn cancel_message(
    State(gw): State<Gateway>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let params = HashMap::from([("id".to_owned(), id)]);
    let event = gw.event(
        "DELETE /v1/messages/{id}",
        &method,
        &uri,
        &headers,
        params,
        &Bytes::new(),
    );
    gw.invoke(Function::Intake, event).await
}

/// `GET /v1/events`: the caller's event log (the pull API), as on API Gateway.
async fn get_events(
    State(gw): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let event = gw.event(
        "GET /v1/events",
        &method,
        &uri,
        &headers,
        HashMap::new(),
        &Bytes::new(),
    );
    gw.invoke(Function::Intake, event).await
}

async fn webhook(
    State(gw): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(body) = read_body(body).await else {
        return too_large();
    };
    let route_key = format!("{method} /webhook");
    let event = gw.event(&route_key, &method, &uri, &headers, HashMap::new(), &body);
    gw.invoke(Function::Webhook, event).await
}

/// `GET /openapi.json`: the API's contract, `docs/openapi.yaml` as JSON.
async fn openapi() -> Response {
    match &*OPENAPI_JSON {
        Ok(json) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json.clone(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "docs/openapi.yaml is not valid YAML");
            into_http(ApiError::Internal.to_response("dev-gateway"))
        }
    }
}

/// The body, or `None` past [`MAX_READ_BYTES`].
async fn read_body(body: Body) -> Option<Bytes> {
    axum::body::to_bytes(body, MAX_READ_BYTES).await.ok()
}

/// A body over what the gateway reads: the same error shape as the handlers' 413.
fn too_large() -> Response {
    let error = ApiError::PayloadTooLarge {
        size: MAX_READ_BYTES + 1,
        limit: MAX_READ_BYTES,
    };
    into_http(error.to_response("dev-gateway"))
}

/// Any other path: 404 in the API's error shape.
pub async fn not_found() -> Response {
    let error = ApiError::NotFound {
        message: "no such route".into(),
    };
    into_http(error.to_response("dev-gateway"))
}

/// An API Gateway v2 response as an HTTP response (what API Gateway does with it).
pub fn into_http(response: ApiGatewayV2httpResponse) -> Response {
    let status = u16::try_from(response.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match response.body {
        Some(LambdaBody::Text(text)) if response.is_base64_encoded => {
            match base64::engine::general_purpose::STANDARD.decode(text) {
                Ok(bytes) => Body::from(bytes),
                Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
            }
        }
        Some(LambdaBody::Text(text)) => Body::from(text),
        Some(LambdaBody::Binary(bytes)) => Body::from(bytes),
        Some(LambdaBody::Empty) | None => Body::empty(),
        Some(_) => Body::empty(),
    };
    let mut http = Response::new(body);
    *http.status_mut() = status;
    let headers = http.headers_mut();
    for (name, value) in response.multi_value_headers.iter() {
        headers.append(name.clone(), value.clone());
    }
    for (name, value) in response.headers.iter() {
        headers.insert(name.clone(), value.clone());
    }
    http
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::app::http;

    fn event_of(method: Method, uri: &str, body: &[u8]) -> ApiGatewayV2httpRequest {
        let uri: Uri = uri.parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", "billing/1.0".parse().unwrap());
        headers.insert("x-hub-signature-256", "sha256=00".parse().unwrap());
        to_event(
            Incoming {
                route_key: "POST /webhook",
                method: &method,
                uri: &uri,
                headers: &headers,
                path_parameters: HashMap::from([("id".into(), "msg_1".into())]),
                body: &Bytes::copy_from_slice(body),
            },
            1_780_481_730_000,
            7,
            "127.0.0.1:8080".parse().unwrap(),
        )
    }

    #[test]
    fn a_request_becomes_the_event_api_gateway_would_send() {
        let event = event_of(
            Method::GET,
            "/webhook?hub.mode=subscribe&hub.challenge=42",
            b"",
        );
        assert_eq!(http::method(&event), "GET");
        assert_eq!(http::path(&event), "/webhook");
        assert_eq!(
            event.query_string_parameters.first("hub.challenge"),
            Some("42")
        );
        assert_eq!(http::header(&event, "user-agent"), Some("billing/1.0"));
        assert_eq!(http::request_id(&event), "dev-1780481730000-7");
        assert_eq!(event.path_parameters["id"], "msg_1");
        assert_eq!(event.body, None);
        // The handlers' own parser accepts what we built (it round-trips through JSON).
        let json = serde_json::to_value(&event).unwrap();
        let back: ApiGatewayV2httpRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back.raw_path.as_deref(), Some("/webhook"));
    }

    #[test]
    fn bodies_keep_their_exact_bytes() {
        let text = event_of(Method::POST, "/webhook", b"{\"a\": 1}");
        assert!(!text.is_base64_encoded);
        assert_eq!(http::body_bytes(&text).unwrap(), b"{\"a\": 1}");
        let binary = event_of(Method::POST, "/webhook", &[0xff, 0x00, 0x7b]);
        assert!(binary.is_base64_encoded);
        assert_eq!(http::body_bytes(&binary).unwrap(), vec![0xff, 0x00, 0x7b]);
    }

    #[test]
    fn a_response_keeps_status_headers_and_body() {
        let response = http::json_response(
            202,
            &serde_json::json!({"id": "msg_1"}),
            &[("idempotent-replayed", "true")],
        );
        let http_response = into_http(response);
        assert_eq!(http_response.status(), StatusCode::ACCEPTED);
        assert_eq!(http_response.headers()["idempotent-replayed"], "true");
    }
}
