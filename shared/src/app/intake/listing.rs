//! `GET /v1/messages?status=&to=&since=&until=&limit=&cursor=`: the caller's messages,
//! newest first, a page at a time.
//!
//! Only the caller's tenant is ever read. `status` is a state (`queued` ... `read`,
//! `failed`, `suppressed`); `to` a recipient (E.164, normalized like a send's `to`);
//! `since` (inclusive) and `until` (exclusive) RFC 3339 times of creation; `limit` 1 to
//! [`MAX_LIST_LIMIT`] (default [`DEFAULT_LIST_LIMIT`]); `cursor` the `next_cursor` of
//! the page before. The store reads one index (the tenant's creation time, or the
//! recipient's), so a cursor is a position in that order: messages created while a
//! caller pages appear before its first page, never inside later ones.

use super::{internal, view};
use crate::app::IntakeDeps;
use crate::app::http::{
    ApiError, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse, json_response,
};
use crate::domain::tenant::TenantProfile;
use crate::domain::{MessageState, PhoneNumber, Timestamp};
use crate::ports::{MessageQuery, StoreError};
use serde_json::{Value, json};

/// Messages per page when the caller gives no `limit`.
pub const DEFAULT_LIST_LIMIT: usize = 50;

/// Most messages in one page.
pub const MAX_LIST_LIMIT: usize = 100;

/// The filters and page size of a listing request.
#[derive(Debug, Clone, PartialEq)]
struct ListRequest {
    query: MessageQuery,
    limit: usize,
    cursor: Option<String>,
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code,
        message: message.into(),
    }
}

/// Read the query string; a 400 naming the parameter at fault.
fn list_request(request: &ApiGatewayV2httpRequest) -> Result<ListRequest, ApiError> {
    let params = &request.query_string_parameters;
    let known = ["status", "to", "since", "until", "limit", "cursor"];
    if let Some((name, _)) = params.iter().find(|(k, _)| !known.contains(k)) {
        return Err(bad(
            "unknown_parameter",
            format!(
                "unknown query parameter `{name}` (known: {})",
                known.join(", ")
            ),
        ));
    }
    let state = params
        .first("status")
        .map(|s| {
            MessageState::parse(s).ok_or_else(|| {
                let all: Vec<&str> = MessageState::ALL.iter().map(|s| s.as_str()).collect();
                bad(
                    "invalid_status",
                    format!("`status` must be one of {}", all.join(", ")),
                )
            })
        })
        .transpose()?;
    let to = params.first("to").map(recipient).transpose()?;
    let since = params
        .first("since")
        .map(|t| time("since", t))
        .transpose()?;
    let until = params
        .first("until")
        .map(|t| time("until", t))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(bad(
            "invalid_time_window",
            "`since` must be before `until` (`since` is inclusive, `until` exclusive)",
        ));
    }
    let limit = match params.first("limit") {
        None => DEFAULT_LIST_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                bad(
                    "invalid_limit",
                    format!("`limit` must be a whole number from 1 to {MAX_LIST_LIMIT}"),
                )
            })?,
    };
    let cursor = params
        .first("cursor")
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    Ok(ListRequest {
        query: MessageQuery {
            state,
            to,
            since,
            until,
        },
        limit,
        cursor,
    })
}

/// A recipient filter. A `+` that reached us as a space (a query string decoded as a
/// form) is read back as the `+` it was.
fn recipient(raw: &str) -> Result<PhoneNumber, ApiError> {
    let text = match raw.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
        _ => raw.to_owned(),
    };
    PhoneNumber::parse(&text).map_err(|e| bad("invalid_recipient", format!("`to`: {e}")))
}

/// An RFC 3339 time (`2026-06-03T10:15:30Z`).
fn time(name: &str, raw: &str) -> Result<Timestamp, ApiError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| Timestamp::from_millis(t.timestamp_millis()))
        .map_err(|_| {
            bad(
                "invalid_time",
                format!("`{name}` must be an RFC 3339 time, like 2026-06-03T10:15:30Z"),
            )
        })
}

/// Answer one page of the tenant's messages.
pub(super) async fn list_messages(
    deps: &IntakeDeps,
    request: &ApiGatewayV2httpRequest,
    tenant: &TenantProfile,
    request_id: &str,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let list = list_request(request)?;
    let page = deps
        .ports
        .store
        .list_messages(&tenant.id, &list.query, list.limit, list.cursor.as_deref())
        .await
        .map_err(|e| match e {
            StoreError::InvalidCursor => bad(
                "invalid_cursor",
                "`cursor` is not a next_cursor this API handed out for this listing",
            ),
            other => internal("list_messages", &other),
        })?;
    let messages: Vec<Value> = page.items.iter().map(view::message_view).collect();
    Ok(json_response(
        200,
        &json!({"messages": messages, "next_cursor": page.next}),
        &[("x-request-id", request_id)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> ApiGatewayV2httpRequest {
        let mut r = ApiGatewayV2httpRequest::default();
        r.query_string_parameters = query.parse().unwrap_or_default();
        r
    }

    fn code(query: &str) -> &'static str {
        match list_request(&request(query)) {
            Err(ApiError::BadRequest { code, .. }) => code,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn every_filter_is_read_and_checked() {
        let list = list_request(&request(
            "status=read&to=%2B14155550123&since=2026-06-03T10:00:00Z&until=2026-06-04T00:00:00%2B02:00&limit=20&cursor=abc",
        ))
        .unwrap();
        assert_eq!(list.query.state, Some(MessageState::Read));
        assert_eq!(list.query.to.unwrap().as_str(), "+14155550123");
        assert_eq!(
            list.query.since,
            Some(Timestamp::from_millis(1_780_480_800_000))
        );
        assert_eq!(
            list.query.until,
            Some(Timestamp::from_millis(1_780_524_000_000))
        );
        assert_eq!((list.limit, list.cursor.as_deref()), (20, Some("abc")));
        let defaults = list_request(&request("")).unwrap();
        assert_eq!(defaults.limit, DEFAULT_LIST_LIMIT);
        assert_eq!(defaults.query, MessageQuery::default());
    }

    #[test]
    fn a_plus_decoded_as_a_space_is_a_plus_again() {
        let list = list_request(&request("to=+14155550123")).unwrap();
        assert_eq!(list.query.to.unwrap().as_str(), "+14155550123");
    }

    #[test]
    fn each_bad_parameter_has_its_code() {
        assert_eq!(code("status=sending_now"), "invalid_status");
        assert_eq!(code("to=14155550123"), "invalid_recipient");
        assert_eq!(code("since=yesterday"), "invalid_time");
        assert_eq!(code("until=1780480800"), "invalid_time");
        assert_eq!(
            code("since=2026-06-03T10:00:00Z&until=2026-06-03T10:00:00Z"),
            "invalid_time_window"
        );
        assert_eq!(code("limit=0"), "invalid_limit");
        assert_eq!(code("limit=101"), "invalid_limit");
        assert_eq!(code("page=2"), "unknown_parameter");
    }
}
