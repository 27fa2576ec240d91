//! The local API Gateway: plain HTTP requests become API Gateway HTTP API (payload
//! v2) events for the very intake and webhook handlers the Lambdas run, and their
//! responses become HTTP responses again.
//!
//! Routes, as in `infra/template.yaml`: `POST /v1/messages`, `GET /v1/messages/{id}`
//! (intake), `GET`/`POST /webhook` (webhook).

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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wa_shared::app::Deps;
use wa_shared::app::http::{ApiError, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};

/// Largest body read from a connection. API Gateway refuses bodies over 10 MB; the
/// handlers' own limits (64 KiB intake, 1 MiB webhook) are far lower and answer 413
/// themselves, so this only bounds memory.
pub const MAX_READ_BYTES: usize = 2 * 1024 * 1024;

/// What the routes share.
#[derive(Clone)]
pub struct Gateway {
    deps: Deps,
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
    /// Routes of the API, invoking handlers over `deps`.
    pub fn router(deps: Deps, local_addr: SocketAddr) -> Router {
        let gateway = Gateway {
            deps,
            local_addr,
            requests: Arc::new(AtomicU64::new(0)),
        };
        Router::new()
            .route("/v1/messages", post(post_message))
            .route("/v1/messages/{id}", get(get_message))
            .route("/webhook", get(webhook).post(webhook))
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
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.deps.clock.now();
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
        ctx.request_id = Some(format!("dev-{}-{n}", now.as_millis()));
        ctx.time_epoch = now.as_millis();
        ctx.domain_name = Some(self.local_addr.to_string());
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

    async fn invoke(&self, function: Function, event: ApiGatewayV2httpRequest) -> Response {
        let response = match function {
            Function::Intake => wa_shared::app::intake::handle(&self.deps, event).await,
            Function::Webhook => wa_shared::app::webhook::handle_http(&self.deps, &event).await,
        };
        into_http(response)
    }
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
