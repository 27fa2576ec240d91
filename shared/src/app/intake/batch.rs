//! `POST /v1/messages/batch`: up to [`MAX_BATCH_MESSAGES`] send requests in one call,
//! each with its own idempotency key, answered item by item.
//!
//! ```json
//! {"messages": [
//!   {"idempotency_key": "order-1234", "to": "+14155550123", "template": {...}},
//!   {"idempotency_key": "order-1235", "to": "+14155550124", "text": {"body": "..."}}]}
//! ```
//!
//! Each item is a send request (the body of `POST /v1/messages`) plus its required
//! `idempotency_key`, and goes through exactly the same validation, policy, day quota
//! and idempotent store. The answer is `200` with one result per item, in order:
//! `{"index", "status", "message"}` for a new message (202) or a replay (200), or
//! `{"index", "status", "error"}` (409, 422 with every field path under
//! `messages[index]`, 429 when the day is full, 500). One item's failure never blocks
//! the others. The new messages' queue wake-ups are sent together at the end, with
//! batched queue calls. The whole batch takes one request from the tenant's rate.

use super::submit::{Submitted, enqueue_many, submit_value};
use crate::app::IntakeDeps;
use crate::app::http::{
    self, ApiError, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse, json_response,
};
use crate::domain::IdempotencyKey;
use crate::domain::tenant::TenantProfile;
use crate::domain::validation::{Problem, code};
use serde_json::{Value, json};
use tracing::{Instrument, info, info_span};

/// Most messages in one batch.
pub const MAX_BATCH_MESSAGES: usize = 100;

/// Largest batch body (1 MiB: 100 messages of about 10 KiB).
pub const MAX_BATCH_BODY_BYTES: usize = 1024 * 1024;

/// Answer one batch.
pub(super) async fn submit_batch(
    deps: &IntakeDeps,
    request: &ApiGatewayV2httpRequest,
    request_id: &str,
    tenant: &TenantProfile,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let body = http::body_bytes(request)?;
    if body.len() > MAX_BATCH_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            size: body.len(),
            limit: MAX_BATCH_BODY_BYTES,
        });
    }
    let raw: Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "malformed_json",
        message: format!("the body is not valid JSON: {e}"),
    })?;
    let items = batch_items(&raw).map_err(ApiError::Validation)?;

    let mut results = Vec::with_capacity(items.len());
    let mut wake_ups = Vec::new();
    let (mut new, mut replayed, mut refused) = (0usize, 0usize, 0usize);
    for (index, item) in items.iter().enumerate() {
        let span = info_span!(
            "batch_item",
            index,
            message_id = tracing::field::Empty,
            to = tracing::field::Empty
        );
        let outcome = match item_request(index, item) {
            Ok((key, send)) => submit_value(deps, tenant, &send, Some(key))
                .instrument(span)
                .await
                .map_err(|e| within_item(index, e)),
            Err(problems) => Err(ApiError::Validation(problems)),
        };
        match outcome {
            Ok(Submitted {
                status,
                body,
                to_enqueue,
            }) => {
                if status == 200 {
                    replayed += 1;
                } else {
                    new += 1;
                }
                wake_ups.extend(to_enqueue);
                results.push(json!({"index": index, "status": status, "message": body}));
            }
            Err(e) => {
                refused += 1;
                results.push(json!({
                    "index": index,
                    "status": e.status(),
                    "error": e.to_error_body(request_id),
                }));
            }
        }
    }
    enqueue_many(deps, tenant, &wake_ups).await;
    info!(
        items = items.len(),
        new, replayed, refused, "batch answered"
    );
    Ok(json_response(
        200,
        &json!({
            "results": results,
            "accepted": new,
            "replayed": replayed,
            "refused": refused,
        }),
        &[("x-request-id", request_id)],
    ))
}

/// The batch's items: `{"messages": [object, ...]}` with 1 to [`MAX_BATCH_MESSAGES`]
/// items and no other field.
fn batch_items(raw: &Value) -> Result<&Vec<Value>, Vec<Problem>> {
    let Some(object) = raw.as_object() else {
        return Err(vec![Problem::new(
            "",
            code::INVALID_TYPE,
            "the body must be an object: {\"messages\": [...]}",
        )]);
    };
    let mut problems: Vec<Problem> = object
        .keys()
        .filter(|k| k.as_str() != "messages")
        .map(|k| {
            Problem::new(
                k.as_str(),
                code::UNKNOWN_FIELD,
                "a batch has only `messages`",
            )
        })
        .collect();
    let items = match object.get("messages") {
        None => {
            problems.push(Problem::new(
                "messages",
                code::MISSING_FIELD,
                "`messages` is required: an array of send requests",
            ));
            None
        }
        Some(Value::Array(items)) if (1..=MAX_BATCH_MESSAGES).contains(&items.len()) => Some(items),
        Some(Value::Array(items)) => {
            problems.push(Problem::new(
                "messages",
                code::INVALID_VALUE,
                format!(
                    "a batch has 1 to {MAX_BATCH_MESSAGES} messages, not {}",
                    items.len()
                ),
            ));
            None
        }
        Some(_) => {
            problems.push(Problem::new(
                "messages",
                code::INVALID_TYPE,
                "`messages` must be an array of send requests",
            ));
            None
        }
    };
    match items {
        Some(items) if problems.is_empty() => Ok(items),
        _ => Err(problems),
    }
}

/// One item: its idempotency key and its send request (the item without the key).
fn item_request(index: usize, item: &Value) -> Result<(IdempotencyKey, Value), Vec<Problem>> {
    let at = |field: &str| format!("messages[{index}]{field}");
    let Some(object) = item.as_object() else {
        return Err(vec![Problem::new(
            at(""),
            code::INVALID_TYPE,
            "each message must be an object: a send request with its `idempotency_key`",
        )]);
    };
    let key = match object.get("idempotency_key") {
        None => Err(Problem::new(
            at(".idempotency_key"),
            code::MISSING_FIELD,
            "each message of a batch needs its own `idempotency_key`",
        )),
        Some(Value::String(text)) => IdempotencyKey::parse(text).map_err(|_| {
            Problem::new(
                at(".idempotency_key"),
                code::INVALID_VALUE,
                "an idempotency key is 1-255 printable ASCII characters",
            )
        }),
        Some(_) => Err(Problem::new(
            at(".idempotency_key"),
            code::INVALID_TYPE,
            "`idempotency_key` must be a string",
        )),
    };
    let key = key.map_err(|p| vec![p])?;
    let mut send = object.clone();
    send.remove("idempotency_key");
    Ok((key, Value::Object(send)))
}

/// An item's error with its field paths under `messages[index]`.
fn within_item(index: usize, error: ApiError) -> ApiError {
    match error {
        ApiError::Validation(problems) => ApiError::Validation(
            problems
                .into_iter()
                .map(|mut p| {
                    p.field = if p.field.is_empty() {
                        format!("messages[{index}]")
                    } else if p.field.starts_with('[') {
                        format!("messages[{index}]{}", p.field)
                    } else {
                        format!("messages[{index}].{}", p.field)
                    };
                    p
                })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_an_object_of_1_to_100_messages() {
        assert!(batch_items(&json!({"messages": [{}]})).is_ok());
        let fields = |v: Value| -> Vec<(String, &'static str)> {
            batch_items(&v)
                .unwrap_err()
                .into_iter()
                .map(|p| (p.field, p.code))
                .collect()
        };
        assert_eq!(
            fields(json!({"messages": []})),
            [("messages".to_owned(), code::INVALID_VALUE)]
        );
        let many: Vec<Value> = (0..101).map(|_| json!({})).collect();
        assert_eq!(
            fields(json!({ "messages": many })),
            [("messages".to_owned(), code::INVALID_VALUE)]
        );
        assert_eq!(
            fields(json!({"message": []})),
            [
                ("message".to_owned(), code::UNKNOWN_FIELD),
                ("messages".to_owned(), code::MISSING_FIELD)
            ]
        );
        assert_eq!(fields(json!([])), [(String::new(), code::INVALID_TYPE)]);
    }

    #[test]
    fn an_item_needs_its_key_and_loses_it_before_validation() {
        let (key, send) =
            item_request(3, &json!({"idempotency_key": "k-1", "to": "+14155550123"})).unwrap();
        assert_eq!(key.as_str(), "k-1");
        assert_eq!(send, json!({"to": "+14155550123"}));
        let problem = |v: Value| item_request(7, &v).unwrap_err().remove(0);
        let p = problem(json!({"to": "+14155550123"}));
        assert_eq!(
            (p.field.as_str(), p.code),
            ("messages[7].idempotency_key", code::MISSING_FIELD)
        );
        let p = problem(json!({"idempotency_key": 5}));
        assert_eq!(p.code, code::INVALID_TYPE);
        let p = problem(json!({"idempotency_key": ""}));
        assert_eq!(p.code, code::INVALID_VALUE);
        let p = problem(json!("x"));
        assert_eq!(
            (p.field.as_str(), p.code),
            ("messages[7]", code::INVALID_TYPE)
        );
    }

    #[test]
    fn an_items_field_paths_are_under_its_index() {
        let e = within_item(
            2,
            ApiError::Validation(vec![
                Problem::new("template.body[0]", code::TOO_LONG, "x"),
                Problem::new("", code::INVALID_TYPE, "x"),
            ]),
        );
        let ApiError::Validation(problems) = e else {
            panic!("still a validation error");
        };
        assert_eq!(problems[0].field, "messages[2].template.body[0]");
        assert_eq!(problems[1].field, "messages[2]");
    }
}
