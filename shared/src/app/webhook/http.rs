//! `GET /webhook` (handshake) and `POST /webhook` (signed events) over API Gateway v2.
//!
//! Order on POST: size limit, signature on the exact raw bytes (base64-decoded when API
//! Gateway encoded them), then parse, then apply. 200 only when every event is stored;
//! otherwise the body and its signature are parked on the inbox (200), or 500 when even
//! that fails, so that Meta retries.

use super::apply::{ApplyError, apply_batch_until};
use super::inbox::{park, parked_parts};
use crate::app::WebhookDeps;
use crate::app::http::{
    ApiError, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse, body_bytes, header, method,
    request_id, text_response,
};
use crate::domain::webhook::{
    HandshakeQuery, SIGNATURE_HEADER, answer_handshake, parse_envelope, verify_signature_with_any,
};
use secrecy::ExposeSecret;
use serde_json::json;
use tracing::{error, info, warn};

/// Answer one API Gateway request to `/webhook`.
#[tracing::instrument(skip_all, fields(request_id))]
pub async fn handle_http(
    deps: &WebhookDeps,
    req: &ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let request_id = request_id(req);
    tracing::Span::current().record("request_id", request_id.as_str());
    let result = match method(req) {
        "GET" => handshake(deps, req),
        "POST" => receive(deps, req).await,
        _ => Err(ApiError::MethodNotAllowed),
    };
    result.unwrap_or_else(|e| e.to_response(&request_id))
}

fn handshake(
    deps: &WebhookDeps,
    req: &ApiGatewayV2httpRequest,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let params = &req.query_string_parameters;
    let query = HandshakeQuery {
        mode: params.first("hub.mode"),
        verify_token: params.first("hub.verify_token"),
        challenge: params.first("hub.challenge"),
    };
    match answer_handshake(&query, deps.settings.verify_token.expose_secret()) {
        Ok(challenge) => {
            info!("webhook subscription verified");
            Ok(text_response(200, challenge, &[]))
        }
        Err(refusal) => {
            warn!(reason = refusal.as_str(), "webhook handshake refused");
            Err(ApiError::Forbidden {
                code: "handshake_refused",
                message: refusal.to_string(),
            })
        }
    }
}

async fn receive(
    deps: &WebhookDeps,
    req: &ApiGatewayV2httpRequest,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let started = std::time::Instant::now();
    let limit = deps.settings.max_body_bytes;
    // The encoded length bounds the decoded one: refuse a huge body before decoding it.
    let encoded_len = req.body.as_deref().map_or(0, str::len);
    let decoded_bound = if req.is_base64_encoded {
        encoded_len / 4 * 3
    } else {
        encoded_len
    };
    if decoded_bound > limit.saturating_add(3) {
        return Err(ApiError::PayloadTooLarge {
            size: decoded_bound,
            limit,
        });
    }
    let raw = body_bytes(req)?;
    if raw.len() > limit {
        return Err(ApiError::PayloadTooLarge {
            size: raw.len(),
            limit,
        });
    }
    let signature = header(req, SIGNATURE_HEADER);
    let secrets = deps
        .settings
        .app_secrets
        .iter()
        .map(|s| s.expose_secret().as_bytes());
    if let Err(e) = verify_signature_with_any(secrets, &raw, signature) {
        // Never log the expected MAC or the body: only why it was refused.
        warn!(reason = e.as_str(), "webhook signature rejected");
        deps.ports.metrics.count("SignatureRejected", &[]);
        return Err(ApiError::Unauthorized {
            code: "invalid_signature",
            message: e.to_string(),
        });
    }
    let batch = parse_envelope(&raw).map_err(|e| {
        warn!(error = %e, "signed webhook body is not a webhook envelope");
        ApiError::BadRequest {
            code: "invalid_webhook_body",
            message: e.to_string(),
        }
    })?;
    let deadline = deps.settings.apply_budget.map(|b| started + b);
    match apply_batch_until(deps, &batch, 0, deadline).await {
        Ok(report) => {
            info!(%report, "webhook applied");
            Ok(ok())
        }
        Err(apply_error) => {
            if let ApplyError::OutOfTime { applied, total } = apply_error {
                // Not a failure: the rest waits on the inbox, Meta gets its 200 in time.
                warn!(
                    applied,
                    total, "webhook body not applied within the budget; parking it on the inbox"
                );
                deps.ports.metrics.count("WebhookParkedOutOfTime", &[]);
            } else {
                error!(error = %apply_error, source = ?std::error::Error::source(&apply_error), "webhook not stored; parking it on the inbox");
            }
            // The secret that signs the parts of a body too large for one inbox message:
            // the current one, which the replay accepts like Meta's own signature.
            let secret = deps
                .settings
                .app_secrets
                .first()
                .map_or(&[][..], |s| s.expose_secret().as_bytes());
            let parts = parked_parts(
                &raw,
                signature.unwrap_or_default(),
                secret,
                deps.ports.clock.now(),
            );
            if parts.len() > 1 {
                info!(
                    parts = parts.len(),
                    bytes = raw.len(),
                    "webhook body split to fit the inbox"
                );
            }
            for parked in &parts {
                // A part that cannot be parked: Meta retries the whole body, and the
                // parts parked already replay as duplicates.
                if let Err(park_error) = park(deps, parked).await {
                    error!(error = %park_error, source = ?std::error::Error::source(&park_error), "webhook could not be parked either; Meta will retry");
                    return Err(ApiError::Internal);
                }
            }
            Ok(ok())
        }
    }
}

fn ok() -> ApiGatewayV2httpResponse {
    crate::app::http::json_response(200, &json!({"ok": true}), &[])
}
