//! The HTTP edge shared by intake and webhook: API Gateway HTTP API (payload v2)
//! requests in, responses out, and the one place errors become status codes.
//!
//! Every error body has the same shape: `{"error": {"code", "message",
//! "request_id", "details"?}}` (a 429 adds `limit` and `retry_after_seconds`, and a
//! `Retry-After` header). A 500 says nothing about its cause; the cause goes to the log.

use crate::domain::quota::QuotaRefusal;
use crate::domain::validation::Problem;
pub use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use serde_json::{Value, json};

/// An error answered to an HTTP caller; its status and code are decided here only.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (not JSON, bad header value).
    #[error("{message}")]
    BadRequest {
        /// Stable code, e.g. `malformed_json`.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// 401: no or unknown credentials (API key, webhook signature).
    #[error("{message}")]
    Unauthorized {
        /// Stable code, e.g. `invalid_api_key`.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// 403: refused (e.g. a wrong webhook verify token).
    #[error("{message}")]
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// 404: nothing there for this caller.
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
    },
    /// 405: the route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: conflicts with what is stored (idempotency key reused with another body).
    #[error("{message}")]
    Conflict {
        /// Stable code, e.g. `idempotency_key_reused`.
        code: &'static str,
        /// What conflicts.
        message: String,
    },
    /// 413: the body is over the limit.
    #[error("request body is {size} bytes; the limit is {limit}")]
    PayloadTooLarge {
        /// Size received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// 422: well-formed but invalid; every problem with its field path.
    #[error("the request has {} problem(s)", .0.len())]
    Validation(Vec<Problem>),
    /// 429: over the tenant's intake quota; answered with `Retry-After` and the limit.
    #[error("{0}")]
    QuotaExceeded(QuotaRefusal),
    /// 500: our fault; the cause is logged, never answered.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest { .. } => 400,
            ApiError::Unauthorized { .. } => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Conflict { .. } => 409,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::Validation(_) => 422,
            ApiError::QuotaExceeded(_) => 429,
            ApiError::Internal => 500,
        }
    }

    /// The stable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. } => code,
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Validation(_) => "validation_failed",
            ApiError::QuotaExceeded(refusal) => refusal.code(),
            ApiError::Internal => "internal_error",
        }
    }

    /// The response for this error, tagged with the request id.
    pub fn to_response(&self, request_id: &str) -> ApiGatewayV2httpResponse {
        let error = self.to_error_body(request_id);
        let mut headers = vec![("x-request-id", request_id.to_owned())];
        if let ApiError::QuotaExceeded(refusal) = self {
            headers.push(("retry-after", refusal.retry_after_secs().to_string()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        json_response(self.status(), &json!({ "error": error }), &headers)
    }

    /// The `error` object of this error's body (also one batch item's error).
    pub fn to_error_body(&self, request_id: &str) -> Value {
        let mut error = json!({
            "code": self.code(),
            "message": self.to_string(),
            "request_id": request_id,
        });
        if let ApiError::Validation(problems) = self {
            error["details"] = serde_json::to_value(problems).unwrap_or(Value::Null);
        }
        if let ApiError::QuotaExceeded(refusal) = self {
            error["limit"] = quota_limit(refusal);
            error["retry_after_seconds"] = json!(refusal.retry_after_secs());
        }
        error
    }
}

/// The limit a 429 names: the rate and burst, or the daily cap.
fn quota_limit(refusal: &QuotaRefusal) -> Value {
    match refusal {
        QuotaRefusal::RateLimited {
            requests_per_second,
            burst,
            ..
        } => json!({"requests_per_second": requests_per_second, "burst": burst}),
        QuotaRefusal::DailyQuotaExceeded {
            messages_per_day, ..
        } => json!({"messages_per_day": messages_per_day}),
    }
}

/// The raw body bytes, base64-decoded when API Gateway says so (signatures are
/// computed over these exact bytes).
pub fn body_bytes(req: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, ApiError> {
    let Some(body) = req.body.as_deref() else {
        return Ok(Vec::new());
    };
    if req.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| ApiError::BadRequest {
                code: "invalid_body_encoding",
                message: "body is marked base64-encoded but is not valid base64".into(),
            })
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

/// A header's value as text (names are case-insensitive); `None` if absent or not text.
pub fn header<'a>(req: &'a ApiGatewayV2httpRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// API Gateway's request id, or a fresh one when the event has none (local runs).
pub fn request_id(req: &ApiGatewayV2httpRequest) -> String {
    req.request_context
        .request_id
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ulid::Ulid::generate().to_string())
}

/// The request method (from the v2 request context).
pub fn method(req: &ApiGatewayV2httpRequest) -> &str {
    req.request_context.http.method.as_str()
}

/// The request path (raw path, or the context's path).
pub fn path(req: &ApiGatewayV2httpRequest) -> &str {
    req.raw_path
        .as_deref()
        .or(req.request_context.http.path.as_deref())
        .unwrap_or("/")
}

/// A JSON response with extra headers.
pub fn json_response(
    status: u16,
    body: &Value,
    headers: &[(&str, &str)],
) -> ApiGatewayV2httpResponse {
    response(status, "application/json", body.to_string(), headers)
}

/// A plain-text response (the webhook handshake answers the bare challenge).
pub fn text_response(
    status: u16,
    body: &str,
    headers: &[(&str, &str)],
) -> ApiGatewayV2httpResponse {
    response(
        status,
        "text/plain; charset=utf-8",
        body.to_owned(),
        headers,
    )
}

fn response(
    status: u16,
    content_type: &str,
    body: String,
    headers: &[(&str, &str)],
) -> ApiGatewayV2httpResponse {
    let mut map = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        map.insert("content-type", v);
    }
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(*k), HeaderValue::from_str(v)) {
            map.insert(k, v);
        }
    }
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(status);
    resp.headers = map;
    resp.body = Some(Body::Text(body));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Option<&str>, base64: bool) -> ApiGatewayV2httpRequest {
        let mut req = ApiGatewayV2httpRequest::default();
        req.body = body.map(str::to_owned);
        req.is_base64_encoded = base64;
        req
    }

    fn body_json(resp: &ApiGatewayV2httpResponse) -> Value {
        match &resp.body {
            Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn every_error_has_the_same_body_shape_and_its_own_status() {
        let cases = [
            (
                ApiError::BadRequest {
                    code: "malformed_json",
                    message: "x".into(),
                },
                400,
            ),
            (
                ApiError::Unauthorized {
                    code: "invalid_api_key",
                    message: "x".into(),
                },
                401,
            ),
            (
                ApiError::Forbidden {
                    code: "verify_token_mismatch",
                    message: "x".into(),
                },
                403,
            ),
            (
                ApiError::NotFound {
                    message: "x".into(),
                },
                404,
            ),
            (ApiError::MethodNotAllowed, 405),
            (
                ApiError::Conflict {
                    code: "idempotency_key_reused",
                    message: "x".into(),
                },
                409,
            ),
            (
                ApiError::PayloadTooLarge {
                    size: 70_000,
                    limit: 65_536,
                },
                413,
            ),
            (ApiError::Validation(vec![]), 422),
            (
                ApiError::QuotaExceeded(QuotaRefusal::RateLimited {
                    requests_per_second: 50,
                    burst: 100,
                    retry_after: std::time::Duration::from_millis(20),
                }),
                429,
            ),
            (ApiError::Internal, 500),
        ];
        for (err, status) in cases {
            let resp = err.to_response("req-1");
            assert_eq!(resp.status_code, status);
            let body = body_json(&resp);
            assert_eq!(body["error"]["code"], err.code());
            assert!(body["error"]["message"].is_string());
            assert_eq!(body["error"]["request_id"], "req-1");
            assert_eq!(header_of(&resp, "x-request-id"), Some("req-1"));
        }
    }

    fn header_of<'a>(resp: &'a ApiGatewayV2httpResponse, name: &str) -> Option<&'a str> {
        resp.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn validation_errors_list_every_problem() {
        let problems = vec![Problem {
            field: "template.body[1]".into(),
            code: "newline_or_tab",
            message: "no newlines".into(),
        }];
        let body = body_json(&ApiError::Validation(problems).to_response("r"));
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(body["error"]["details"][0]["field"], "template.body[1]");
        assert_eq!(body["error"]["details"][0]["code"], "newline_or_tab");
    }

    #[test]
    fn quota_refusals_name_their_limit_and_when_to_retry() {
        let rate = ApiError::QuotaExceeded(QuotaRefusal::RateLimited {
            requests_per_second: 50,
            burst: 100,
            retry_after: std::time::Duration::from_millis(1_200),
        })
        .to_response("r");
        assert_eq!(rate.status_code, 429);
        assert_eq!(header_of(&rate, "retry-after"), Some("2"));
        let body = body_json(&rate);
        assert_eq!(body["error"]["code"], "rate_limited");
        assert_eq!(body["error"]["limit"]["requests_per_second"], 50);
        assert_eq!(body["error"]["limit"]["burst"], 100);
        assert_eq!(body["error"]["retry_after_seconds"], 2);
        let day = ApiError::QuotaExceeded(QuotaRefusal::DailyQuotaExceeded {
            messages_per_day: 1000,
            retry_after: std::time::Duration::from_secs(3600),
        })
        .to_response("r");
        assert_eq!(header_of(&day, "retry-after"), Some("3600"));
        let body = body_json(&day);
        assert_eq!(body["error"]["code"], "daily_quota_exceeded");
        assert_eq!(body["error"]["limit"]["messages_per_day"], 1000);
        assert_eq!(header_of(&day, "x-request-id"), Some("r"));
    }

    #[test]
    fn internal_errors_say_nothing_about_their_cause() {
        let body = body_json(&ApiError::Internal.to_response("r"));
        assert_eq!(body["error"]["message"], "internal error");
    }

    #[test]
    fn base64_bodies_are_decoded_to_their_exact_bytes() {
        assert_eq!(body_bytes(&request(Some("aGk="), true)).unwrap(), b"hi");
        assert_eq!(body_bytes(&request(Some("aGk="), false)).unwrap(), b"aGk=");
        assert_eq!(body_bytes(&request(None, false)).unwrap(), b"");
        assert_eq!(
            body_bytes(&request(Some("%%%"), true))
                .unwrap_err()
                .status(),
            400
        );
    }
}
