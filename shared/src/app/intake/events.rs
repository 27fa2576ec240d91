//! `GET /v1/events?after=<position>&limit=<n>`: the caller's events in log order, for
//! products that cannot receive webhooks. A reader pages with the `next` position of
//! the previous page and never misses or repeats an event (the log's order is fixed).

use super::internal;
use crate::app::IntakeDeps;
use crate::app::http::{
    ApiError, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse, json_response,
};
use crate::domain::tenant::TenantProfile;
use crate::ports::{EventLogError, MAX_EVENT_PAGE};
use serde_json::json;

/// Events per page when the caller gives no `limit`.
pub const DEFAULT_EVENT_PAGE: usize = 100;

/// Answer one page of the tenant's event log.
pub(super) async fn list_events(
    deps: &IntakeDeps,
    request: &ApiGatewayV2httpRequest,
    tenant: &TenantProfile,
    request_id: &str,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let query = &request.query_string_parameters;
    let limit = match query.first("limit") {
        None => DEFAULT_EVENT_PAGE,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_EVENT_PAGE).contains(n))
            .ok_or_else(|| ApiError::BadRequest {
                code: "invalid_limit",
                message: format!("limit must be a whole number from 1 to {MAX_EVENT_PAGE}"),
            })?,
    };
    let after = query.first("after").filter(|a| !a.is_empty());
    let page = deps
        .ports
        .events
        .list(&tenant.id, after, limit)
        .await
        .map_err(|e| match e {
            EventLogError::InvalidPosition => ApiError::BadRequest {
                code: "invalid_cursor",
                message: "`after` is not a position this API handed out".into(),
            },
            other => internal("list_events", &other),
        })?;
    let next = page
        .events
        .last()
        .map(|e| e.position.clone())
        .or_else(|| after.map(str::to_owned));
    let events: Vec<_> = page.events.into_iter().map(|e| e.event).collect();
    Ok(json_response(
        200,
        &json!({"events": events, "next": next, "more": page.more}),
        &[("x-request-id", request_id)],
    ))
}
