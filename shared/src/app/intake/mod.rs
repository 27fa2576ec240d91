//! Intake (DESIGN §4): `POST /v1/messages`, `GET` and `DELETE /v1/messages/{id}` and
//! `GET /v1/events` (the pull API of DESIGN §10) behind
//! API Gateway's HTTP API (payload v2).
//!
//! [`handle`] always answers with a response: every failure goes through
//! [`ApiError`], which decides the status and body in one place; a 500 says
//! nothing and its cause goes to the log.
//!
//! - [`submit`](mod@submit): authenticate, validate, apply policy, persist, enqueue.
//! - [`batch`]: `POST /v1/messages/batch`, up to 100 of those answered item by item.
//! - [`listing`]: `GET /v1/messages`, the caller's messages with filters and a cursor.
//! - [`cancel`](mod@cancel): `DELETE /v1/messages/{id}`, a `scheduled` or `queued`
//!   message to `cancelled`.
//! - [`quota`](mod@quota): the tenant's intake quota (rate, messages per day): 429.
//! - [`view`]: what callers see of a message.
//!
//! The refusals that become `suppressed` messages are the domain's
//! ([`crate::domain::policy`]); the directory reads go through the cache its wiring
//! puts around the directory ([`crate::app::DirectoryCache`]).

pub mod batch;
mod cancel;
pub mod events;
pub mod listing;
mod quota;
mod submit;
pub mod view;

use crate::app::IntakeDeps;
use crate::app::errors::ErrorChain;
use crate::app::http::{
    self, ApiError, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse, json_response,
};
use crate::domain::MessageId;
use crate::domain::tenant::{ApiKeyHash, TenantProfile};
use std::time::Duration;
use tracing::{Instrument, Span, error, info_span, warn};

/// Largest request body intake reads (64 KiB); larger ones are a 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Default life of a cached tenant or template lookup.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// Intake's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeSettings {
    /// Largest accepted body in bytes.
    pub max_body_bytes: usize,
}

impl Default for IntakeSettings {
    /// 64 KiB bodies.
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// Answer one API Gateway v2 request. Never fails: errors are responses.
pub async fn handle(
    deps: &IntakeDeps,
    request: ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let request_id = http::request_id(&request);
    let span = info_span!(
        "intake",
        request_id = %request_id,
        tenant = tracing::field::Empty,
        message_id = tracing::field::Empty,
        to = tracing::field::Empty,
    );
    async {
        match route(deps, &request, &request_id).await {
            Ok(response) => response,
            Err(e) => e.to_response(&request_id),
        }
    }
    .instrument(span)
    .await
}

async fn route(
    deps: &IntakeDeps,
    request: &ApiGatewayV2httpRequest,
    request_id: &str,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let path = http::path(request).trim_end_matches('/');
    let method = http::method(request);
    if path == "/v1/messages" {
        if method == "GET" {
            let tenant = authenticate(deps, request).await?;
            return listing::list_messages(deps, request, &tenant, request_id).await;
        }
        if method != "POST" {
            return Err(ApiError::MethodNotAllowed);
        }
        let tenant = authenticate(deps, request).await?;
        quota::take_request(deps, &tenant, deps.ports.clock.now()).await?;
        return submit::submit(deps, request, request_id, &tenant).await;
    }
    if path == "/v1/messages/batch" {
        if method != "POST" {
            return Err(ApiError::MethodNotAllowed);
        }
        let tenant = authenticate(deps, request).await?;
        quota::take_request(deps, &tenant, deps.ports.clock.now()).await?;
        return batch::submit_batch(deps, request, request_id, &tenant).await;
    }
    if path == "/v1/events" {
        if method != "GET" {
            return Err(ApiError::MethodNotAllowed);
        }
        let tenant = authenticate(deps, request).await?;
        return events::list_events(deps, request, &tenant, request_id).await;
    }
    if let Some(id) = path.strip_prefix("/v1/messages/") {
        if method != "GET" && method != "DELETE" {
            return Err(ApiError::MethodNotAllowed);
        }
        let tenant = authenticate(deps, request).await?;
        let id = request.path_parameters.get("id").map_or(id, String::as_str);
        if method == "DELETE" {
            return cancel::cancel_message(deps, &tenant, id, request_id).await;
        }
        return get_message(deps, &tenant, id, request_id).await;
    }
    Err(ApiError::NotFound {
        message: "no such route".into(),
    })
}

/// The tenant whose API key is in `Authorization: Bearer <key>`.
async fn authenticate(
    deps: &IntakeDeps,
    request: &ApiGatewayV2httpRequest,
) -> Result<TenantProfile, ApiError> {
    let key = http::header(request, "authorization")
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::Unauthorized {
            code: "missing_api_key",
            message: "send the API key as 'Authorization: Bearer <key>'".into(),
        })?;
    let invalid = || ApiError::Unauthorized {
        code: "invalid_api_key",
        message: "the API key is not valid: it is unknown or was revoked".into(),
    };
    let directory = &deps.ports.directory;
    let tenant = directory
        .tenant_by_api_key(&ApiKeyHash::of_key(key))
        .await
        .map_err(|e| internal("tenant_by_api_key", &e))?
        .ok_or_else(invalid)?;
    let profile = directory
        .tenant(&tenant)
        .await
        .map_err(|e| internal("tenant", &e))?;
    let Some(profile) = profile else {
        warn!(tenant = %tenant, "API key maps to a tenant without a profile");
        return Err(invalid());
    };
    Span::current().record("tenant", tracing::field::display(&profile.id));
    Ok(profile)
}

async fn get_message(
    deps: &IntakeDeps,
    tenant: &TenantProfile,
    raw_id: &str,
    request_id: &str,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let not_found = || ApiError::NotFound {
        message: "no such message".into(),
    };
    let id = MessageId::parse(raw_id).map_err(|_| not_found())?;
    Span::current().record("message_id", tracing::field::display(&id));
    let message = deps
        .ports
        .store
        .get(&tenant.id, &id)
        .await
        .map_err(|e| internal("get", &e))?
        .ok_or_else(not_found)?;
    Ok(json_response(
        200,
        &view::message_view(&message),
        &[("x-request-id", request_id)],
    ))
}

/// Log a backend failure with its cause chain; the caller only learns "internal error".
pub(crate) fn internal(operation: &'static str, e: &(dyn std::error::Error + 'static)) -> ApiError {
    error!(operation, error = %ErrorChain(e), "backend call failed");
    ApiError::Internal
}
