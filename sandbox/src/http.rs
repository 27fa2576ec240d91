//! The HTTP surface: Meta's two endpoints and the `/_sandbox` control and inspection
//! endpoints.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /{version}/{phone_number_id}/messages` | a send, answered like Meta |
//! | `POST /{version}/{phone_number_id}/marketing_messages` | a send through the Marketing Messages API: the same body, answered and recorded exactly like `/messages` (the recorded path tells them apart) |
//! | `GET /{version}/{waba_id}/message_templates` | the catalog, cursor-paged |
//! | `GET /{version}/{phone_number_id}` | the number's fields (`?fields=display_phone_number,quality_rating,verified_name`), [`graph_reads`](super::graph_reads) |
//! | `GET /{version}/{waba_id}/subscribed_apps` | the apps subscribed to the WABA's webhooks (the sandbox's own) |
//! | `GET /_sandbox/stats` | [`SandboxStats`](super::SandboxStats) |
//! | `GET /_sandbox/requests` | recorded requests (`?limit=N`: the newest N) |
//! | `GET /_sandbox/deliveries` | recorded webhook attempts (`?limit=N`) |
//! | `POST /_sandbox/inbound` | [`InboundText`] |
//! | `POST /_sandbox/template_status` | [`TemplateStatusChange`] |
//! | `POST /_sandbox/template_quality` | [`TemplateQualityChange`] |
//! | `POST /_sandbox/phone_quality` | [`PhoneQualityChange`] |
//! | `POST /_sandbox/token_expiry` | [`TokenExpiry`] (sends answer 190 for a while) |
//! | `POST /_sandbox/user_preferences` | [`UserPreference`] (`user_preferences`; later MARKETING sends fail with 131050) |
//! | `POST /_sandbox/marketing_cap` | [`MarketingCap`] (MARKETING sends to the user fail with 131049) |
//! | `POST /_sandbox/template_category` | [`TemplateCategoryChange`] (completed `template_category_update`) |

use super::SandboxError;
use super::control::{
    InboundText, MarketingCap, PhoneQualityChange, TemplateCategoryChange, TemplateQualityChange,
    TemplateStatusChange, TokenExpiry, UserPreference,
};
use super::graph_reads;
use super::meta_error::MetaError;
use super::process::process_send;
use super::recording::{RecordedRequest, RequestOutcome};
use super::state::Shared;
use super::templates_api::list_templates;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The sandbox.
    pub shared: Arc<Shared>,
    /// Flips to `true` at shutdown (releases held answers).
    pub shutdown: watch::Receiver<bool>,
}

/// The router of one sandbox.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/{version}/{id}/messages", post(send))
        .route("/{version}/{id}/marketing_messages", post(send_marketing))
        .route("/{version}/{id}/message_templates", get(templates))
        .route("/{version}/{id}/subscribed_apps", get(subscribed_apps))
        .route("/{version}/{id}", get(phone_number))
        .route("/_sandbox/stats", get(stats))
        .route("/_sandbox/requests", get(requests))
        .route("/_sandbox/deliveries", get(deliveries))
        .route("/_sandbox/inbound", post(inbound))
        .route("/_sandbox/template_status", post(template_status))
        .route("/_sandbox/template_quality", post(template_quality))
        .route("/_sandbox/phone_quality", post(phone_quality))
        .route("/_sandbox/token_expiry", post(token_expiry))
        .route("/_sandbox/user_preferences", post(user_preferences))
        .route("/_sandbox/marketing_cap", post(marketing_cap))
        .route("/_sandbox/template_category", post(template_category))
        .fallback(unknown_path)
        .with_state(state)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn meta(error: &MetaError, trace: &str) -> Response {
    let status = StatusCode::from_u16(error.http_status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(error.to_json(trace))).into_response()
}

fn is_version(v: &str) -> bool {
    v.strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

async fn send(
    State(app): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    send_at(app, &version, &id, "messages", &headers, &body).await
}

/// The Marketing Messages API: Meta takes the `/messages` body here, and so do we.
async fn send_marketing(
    State(app): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    send_at(app, &version, &id, "marketing_messages", &headers, &body).await
}

/// A send posted to `/{version}/{id}/{endpoint}`.
async fn send_at(
    app: AppState,
    version: &str,
    id: &str,
    endpoint: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    if !is_version(version) {
        return unknown_path().await;
    }
    let path = format!("/{version}/{id}/{endpoint}");
    let answer = process_send(&app.shared, &path, id, bearer(headers), body);
    if !answer.latency.is_zero() {
        tokio::time::sleep(answer.latency).await;
    }
    if answer.withhold {
        // Accepted and recorded; the client gives up before this ends. At shutdown the
        // held answer is released so the server can stop.
        let mut shutdown = app.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(app.shared.config.faults.hold()) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }
    let status = StatusCode::from_u16(answer.http_status).unwrap_or(StatusCode::OK);
    (status, Json(answer.body)).into_response()
}

async fn templates(
    State(app): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !is_version(&version) {
        return unknown_path().await;
    }
    let path = format!("/{version}/{id}/message_templates");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base_url = format!("http://{host}{path}");
    let result = list_templates(&app.shared, &base_url, &id, bearer(&headers), &query);
    let trace = app.shared.core().next_trace();
    let (http_status, outcome, response) = match result {
        Ok(body) => (200, RequestOutcome::Served, Json(body).into_response()),
        Err(e) => (
            e.http_status,
            RequestOutcome::Rejected {
                code: e.code,
                injected: false,
            },
            meta(&e, &trace),
        ),
    };
    app.shared.with_recorder(|r| {
        r.request(
            RecordedRequest {
                seq: 0,
                at_ms: app.shared.elapsed_ms(),
                method: "GET".into(),
                path,
                http_status,
                outcome,
                callback_data: None,
                body: None,
            },
            false,
        );
    });
    response
}

/// A Graph read (`wa doctor`'s): answered from `result`, recorded like the listing.
fn graph_read(app: &AppState, path: String, result: Result<Value, MetaError>) -> Response {
    let trace = app.shared.core().next_trace();
    let (http_status, outcome, response) = match result {
        Ok(body) => (200, RequestOutcome::Served, Json(body).into_response()),
        Err(e) => (
            e.http_status,
            RequestOutcome::Rejected {
                code: e.code,
                injected: false,
            },
            meta(&e, &trace),
        ),
    };
    app.shared.with_recorder(|r| {
        r.request(
            RecordedRequest {
                seq: 0,
                at_ms: app.shared.elapsed_ms(),
                method: "GET".into(),
                path,
                http_status,
                outcome,
                callback_data: None,
                body: None,
            },
            false,
        );
    });
    response
}

async fn phone_number(
    State(app): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !is_version(&version) {
        return unknown_path().await;
    }
    let result = graph_reads::phone_number(&app.shared, &id, bearer(&headers), &query);
    graph_read(&app, format!("/{version}/{id}"), result)
}

async fn subscribed_apps(
    State(app): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !is_version(&version) {
        return unknown_path().await;
    }
    let result = graph_reads::subscribed_apps(&app.shared, &id, bearer(&headers));
    graph_read(&app, format!("/{version}/{id}/subscribed_apps"), result)
}

async fn unknown_path() -> Response {
    meta(
        &MetaError::new(100, "Unknown path components").with_status(404),
        "Sbx",
    )
}

async fn stats(State(app): State<AppState>) -> Response {
    Json(app.shared.with_recorder(|r| r.stats.clone())).into_response()
}

fn newest<T>(mut items: Vec<T>, query: &HashMap<String, String>) -> Vec<T> {
    if let Some(n) = query.get("limit").and_then(|l| l.parse::<usize>().ok()) {
        let skip = items.len().saturating_sub(n);
        items.drain(..skip);
    }
    items
}

async fn requests(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    Json(newest(app.shared.with_recorder(|r| r.requests()), &q)).into_response()
}

async fn deliveries(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    Json(newest(app.shared.with_recorder(|r| r.deliveries()), &q)).into_response()
}

fn control(result: Result<Value, SandboxError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => {
            let status = match e {
                SandboxError::NotFound(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            (status, Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}

async fn inbound(State(app): State<AppState>, Json(m): Json<InboundText>) -> Response {
    control(
        app.shared
            .inbound_text(&m)
            .map(|wamid| json!({"wamid": wamid})),
    )
}

async fn template_status(
    State(app): State<AppState>,
    Json(c): Json<TemplateStatusChange>,
) -> Response {
    control(app.shared.template_status(&c).map(|()| json!({"ok": true})))
}

async fn template_quality(
    State(app): State<AppState>,
    Json(c): Json<TemplateQualityChange>,
) -> Response {
    control(
        app.shared
            .template_quality(&c)
            .map(|()| json!({"ok": true})),
    )
}

async fn user_preferences(State(app): State<AppState>, Json(u): Json<UserPreference>) -> Response {
    control(app.shared.user_preference(&u).map(|()| json!({"ok": true})))
}

async fn marketing_cap(State(app): State<AppState>, Json(c): Json<MarketingCap>) -> Response {
    app.shared.marketing_cap(&c);
    control(Ok(json!({"ok": true})))
}

async fn template_category(
    State(app): State<AppState>,
    Json(c): Json<TemplateCategoryChange>,
) -> Response {
    control(
        app.shared
            .template_category(&c)
            .map(|()| json!({"ok": true})),
    )
}

async fn token_expiry(State(app): State<AppState>, Json(e): Json<TokenExpiry>) -> Response {
    control(app.shared.expire_token(&e).map(|()| json!({"ok": true})))
}

async fn phone_quality(State(app): State<AppState>, Json(c): Json<PhoneQualityChange>) -> Response {
    control(app.shared.phone_quality(&c).map(|()| json!({"ok": true})))
}
