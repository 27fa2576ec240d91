//! `POST /v1/messages`: validate, apply policy, count against the day's quota,
//! persist, enqueue (DESIGN §4).

use super::quota;
use super::{internal, view};
use crate::app::IntakeDeps;
use crate::app::errors::ErrorChain;
use crate::app::http::{
    self, ApiError, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse, json_response,
};
use crate::domain::canonical::canonical_request_hash;
use crate::domain::message::NewMessage;
use crate::domain::policy;
use crate::domain::quota::QuotaRefusal;
use crate::domain::template::{TemplateCatalog, TemplateStatus};
use crate::domain::tenant::TenantProfile;
use crate::domain::validation::{Problem, code, requested_template, validate};
use crate::domain::{
    IdempotencyKey, Message, MessageId, MessageState, PhoneNumberId, Suppression, Timestamp,
};
use crate::ports::{CreateOutcome, QueueError, QueueRef};
use crate::queues::SendQueueMessage;
use serde_json::Value;
use std::time::Duration;
use tracing::{Span, info, warn};

pub(super) async fn submit(
    deps: &IntakeDeps,
    request: &ApiGatewayV2httpRequest,
    request_id: &str,
    tenant: &TenantProfile,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let body = http::body_bytes(request)?;
    let limit = deps.settings.max_body_bytes;
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge {
            size: body.len(),
            limit,
        });
    }
    let key = idempotency_key(request)?;
    let raw: Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "malformed_json",
        message: format!("the body is not valid JSON: {e}"),
    })?;
    let mut submitted = submit_value(deps, tenant, &raw, key).await?;
    if let Some(body) = submitted.to_enqueue.take() {
        enqueue(deps, tenant, &body).await;
    }
    Ok(submitted.into_response(request_id))
}

/// What one send request came to: its answer, and the queue message to send when it
/// stored a new queued message.
pub(super) struct Submitted {
    /// 202 (new), 200 (a replay of the stored message).
    pub status: u16,
    /// The message view answered.
    pub body: Value,
    /// The wake-up for the tenant's queue (a new `queued` message), not yet sent.
    pub to_enqueue: Option<String>,
}

impl Submitted {
    fn into_response(self, request_id: &str) -> ApiGatewayV2httpResponse {
        let mut headers = vec![("x-request-id", request_id)];
        if self.status == 200 {
            headers.push(("idempotent-replayed", "true"));
        }
        json_response(self.status, &self.body, &headers)
    }
}

/// Validate, apply policy, count and store one send request (its JSON body and its
/// idempotency key); the queue message is left to the caller, so a batch can send
/// them together.
pub(super) async fn submit_value(
    deps: &IntakeDeps,
    tenant: &TenantProfile,
    raw: &Value,
    key: Option<IdempotencyKey>,
) -> Result<Submitted, ApiError> {
    let now = deps.ports.clock.now();

    // Paused and disabled templates are policy, not caller mistakes: validate against
    // an approved copy so a well-formed request becomes a suppression, not a 422.
    let (catalog, template_refusal) = catalog_for(deps, tenant, raw).await?;
    let validated = validate(raw, &catalog, tenant.formatting).map_err(ApiError::Validation)?;
    if let Some(problem) = sending_number_problem(tenant, validated.request().from.as_deref()) {
        return Err(ApiError::Validation(vec![problem]));
    }
    let stored_request = validated.to_json();
    let request_hash = canonical_request_hash(&stored_request);
    let id = key.as_ref().map_or_else(MessageId::generate, |k| {
        MessageId::for_idempotency_key(&tenant.id, k)
    });
    let span = Span::current();
    span.record("message_id", tracing::field::display(&id));
    span.record("to", validated.to().masked());
    let send_at = match scheduled_send(validated.request().send_at.as_deref(), now) {
        Ok(send_at) => send_at,
        // A replay keeps its answer even once its `send_at` has passed.
        Err(problem) => {
            return replay_or_refuse(deps, tenant, &id, &key, &request_hash, problem).await;
        }
    };

    let is_text = validated.template_name().is_none();
    let (template_name, template_language) = match requested_template(&stored_request) {
        Some((n, l)) if !is_text => (Some(n.to_owned()), Some(l.to_owned())),
        _ => (None, None),
    };
    let is_marketing = match (&template_name, &template_language) {
        (Some(n), Some(l)) => policy::is_marketing(catalog.get(n, l)),
        _ => false,
    };
    let new = NewMessage {
        tenant: tenant.id.clone(),
        id,
        to: validated.to().clone(),
        template_name,
        template_language,
        metadata: validated.request().metadata.clone(),
        request: stored_request,
        request_hash: request_hash.clone(),
    };
    let refusal = match policy::tenant_refusal(tenant)
        .or(template_refusal)
        .or_else(|| policy::marketing_refusal(tenant, is_marketing))
    {
        Some(s) => Some(s),
        None => {
            let contact = deps
                .ports
                .directory
                .contact(&tenant.id, validated.to())
                .await
                .map_err(|e| internal("contact", &e))?;
            policy::recipient_refusal(&contact, is_text, is_marketing, now)
        }
    };
    let lifecycle = &deps.ports.lifecycle;
    let mut message = match (refusal, send_at) {
        (Some(s), _) => Message::new_suppressed(new, s, now, lifecycle),
        (None, Some(at)) => Message::new_scheduled(new, at, now, lifecycle),
        (None, None) => Message::new_queued(new, now, lifecycle),
    };
    message.idempotency_key = key.as_ref().map(|k| k.as_str().to_owned());

    let counted = match quota::count_message(deps, tenant, now).await {
        Ok(counted) => counted,
        // A full day still answers a replay of a message it stored.
        Err(refusal) => return stored_answer(deps, tenant, &message, refusal).await,
    };
    // A backend error leaves the count as it is: the put may have been stored.
    match deps
        .ports
        .store
        .create_if_absent(&message)
        .await
        .map_err(|e| internal("create_if_absent", &e))?
    {
        CreateOutcome::Created => {}
        CreateOutcome::Exists(existing) => {
            quota::give_back(deps, tenant, counted).await;
            return existing_answer(&existing, &request_hash);
        }
    }

    let tenant_dim = [("Tenant", tenant.id.as_str())];
    let mut to_enqueue = None;
    if let Some(s) = &message.suppression {
        info!(reason = %s.reason, "suppressed by policy");
        count_suppressed(deps, tenant, s).await;
    } else if message.state == MessageState::Queued {
        to_enqueue = Some(SendQueueMessage::of(&message).to_body());
        deps.ports.metrics.count("Queued", &tenant_dim);
    } else if message.state == MessageState::Scheduled {
        info!(send_at = ?message.send_at(), "scheduled");
        deps.ports.metrics.count("Scheduled", &tenant_dim);
    }
    let mut answer = view::accepted_view(&message);
    // Sanitize mode rewrote values: the caller sees each change (field, what changed).
    if !validated.sanitized().is_empty() {
        answer["sanitized"] = serde_json::to_value(validated.sanitized()).unwrap_or_default();
    }
    Ok(Submitted {
        status: 202,
        body: answer,
        to_enqueue,
    })
}

/// How far ahead a send may be scheduled (30 days).
pub const MAX_SCHEDULE_AHEAD_MS: i64 = 30 * 86_400_000;

/// How far in the past a `send_at` may be and still mean "now" (clock skew between
/// the caller and us): one minute.
pub const SEND_AT_PAST_TOLERANCE_MS: i64 = 60_000;

/// The instant a request is scheduled for: `None` to send now (no `send_at`, or one
/// not in the future but within [`SEND_AT_PAST_TOLERANCE_MS`]), else the future
/// instant, at most [`MAX_SCHEDULE_AHEAD_MS`] ahead. `send_at` is canonical here
/// (validation parsed it).
fn scheduled_send(send_at: Option<&str>, now: Timestamp) -> Result<Option<Timestamp>, Problem> {
    let Some(raw) = send_at else {
        return Ok(None);
    };
    let at = chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| Timestamp::from_millis(t.timestamp_millis()))
        .map_err(|_| {
            Problem::new(
                "send_at",
                code::INVALID_VALUE,
                "`send_at` must be an RFC 3339 date-time",
            )
        })?;
    let ahead = at.millis_since(now);
    if ahead < -SEND_AT_PAST_TOLERANCE_MS {
        return Err(Problem::new(
            "send_at",
            code::SEND_AT_IN_PAST,
            format!(
                "`send_at` {raw} is in the past (now is {now}); omit it to send now",
                now = now.to_rfc3339()
            ),
        ));
    }
    if ahead > MAX_SCHEDULE_AHEAD_MS {
        return Err(Problem::new(
            "send_at",
            code::SEND_AT_TOO_FAR,
            format!(
                "`send_at` {raw} is more than 30 days ahead (latest: {})",
                now.plus_millis(MAX_SCHEDULE_AHEAD_MS).to_rfc3339()
            ),
        ));
    }
    Ok((ahead > 0).then_some(at))
}

/// A request refused by `problem`: the stored message's answer when its idempotency
/// key was used already (a replay), else the 422.
async fn replay_or_refuse(
    deps: &IntakeDeps,
    tenant: &TenantProfile,
    id: &MessageId,
    key: &Option<IdempotencyKey>,
    request_hash: &str,
    problem: Problem,
) -> Result<Submitted, ApiError> {
    if key.is_some()
        && let Some(existing) = deps
            .ports
            .store
            .get(&tenant.id, id)
            .await
            .map_err(|e| internal("get", &e))?
    {
        return existing_answer(&existing, request_hash);
    }
    Err(ApiError::Validation(vec![problem]))
}

/// A `from` that is not one of the tenant's numbers (its format was checked by
/// validation): the caller named a number it cannot send from.
fn sending_number_problem(tenant: &TenantProfile, from: Option<&str>) -> Option<Problem> {
    let from = PhoneNumberId::parse(from?).ok()?;
    if tenant.owns_phone_number(&from) {
        return None;
    }
    Some(Problem::new(
        "from",
        code::UNKNOWN_SENDER_NUMBER,
        format!(
            "phone number id {from} is not one of this tenant's numbers ({})",
            tenant
                .phone_number_ids()
                .map(PhoneNumberId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// The answer for a key already used: the stored message (a replay, 200), or a 409
/// when the body differs.
fn existing_answer(existing: &Message, request_hash: &str) -> Result<Submitted, ApiError> {
    if existing.request_hash != request_hash {
        return Err(ApiError::Conflict {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was used with a different request body".into(),
        });
    }
    info!("idempotent replay");
    Ok(Submitted {
        status: 200,
        body: view::message_view(existing),
        to_enqueue: None,
    })
}

/// When the day is full: the answer for a key already used, else the refusal.
async fn stored_answer(
    deps: &IntakeDeps,
    tenant: &TenantProfile,
    message: &Message,
    refusal: QuotaRefusal,
) -> Result<Submitted, ApiError> {
    let stored = match message.idempotency_key {
        Some(_) => deps
            .ports
            .store
            .get(&tenant.id, &message.id)
            .await
            .map_err(|e| internal("get", &e))?,
        None => None,
    };
    match stored {
        Some(existing) => existing_answer(&existing, &message.request_hash),
        None => Err(quota::refuse(deps, tenant, refusal)),
    }
}

/// The metric and the status page's series (`suppressed.<reason>`) of a suppression.
async fn count_suppressed(deps: &IntakeDeps, tenant: &TenantProfile, s: &Suppression) {
    deps.ports.metrics.count(
        "Suppressed",
        &[
            ("Tenant", tenant.id.as_str()),
            ("Reason", s.reason.as_str()),
        ],
    );
    let metric = crate::domain::series::SeriesMetric::Suppressed(s.reason.as_str().into());
    let point = crate::domain::series::SeriesPoint::one(&tenant.id, deps.ports.clock.now(), metric);
    crate::app::series::record(&deps.ports, &[point]).await;
}

/// The queue is only a wake-up call: a failed enqueue after the put is logged and
/// counted, and the reconciler enqueues the message when its sweep deadline passes.
async fn enqueue(deps: &IntakeDeps, tenant: &TenantProfile, body: &str) {
    let queue = QueueRef::new(tenant.queue.clone());
    if let Err(e) = deps.ports.queue.send(&queue, body, Duration::ZERO).await {
        enqueue_failed(deps, tenant, &e, 1);
    }
}

/// The wake-ups of a batch's new messages, sent with batched queue calls (SQS takes 10
/// a call); failures as for [`enqueue`].
pub(super) async fn enqueue_many(deps: &IntakeDeps, tenant: &TenantProfile, bodies: &[String]) {
    if bodies.is_empty() {
        return;
    }
    let queue = QueueRef::new(tenant.queue.clone());
    match deps.ports.queue.send_many(&queue, bodies).await {
        Ok(outcome) => {
            for f in &outcome.failed {
                warn!(index = f.index, code = %f.code, error = %f.message, "batch entry not enqueued after the message was stored; the reconciler will enqueue it");
                deps.ports
                    .metrics
                    .count("EnqueueFailed", &[("Tenant", tenant.id.as_str())]);
            }
        }
        Err(e) => enqueue_failed(deps, tenant, &e, bodies.len()),
    }
}

fn enqueue_failed(deps: &IntakeDeps, tenant: &TenantProfile, e: &QueueError, n: usize) {
    warn!(
        error = %ErrorChain(e),
        messages = n,
        "enqueue failed after the message was stored; the reconciler will enqueue it"
    );
    deps.ports
        .metrics
        .count_n("EnqueueFailed", n as u64, &[("Tenant", tenant.id.as_str())]);
}

/// `Idempotency-Key`, if present: 1–255 printable ASCII characters, else 400.
pub(super) fn idempotency_key(
    request: &ApiGatewayV2httpRequest,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = request.headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || ApiError::BadRequest {
        code: "invalid_idempotency_key",
        message: "Idempotency-Key must be 1-255 printable ASCII characters".into(),
    };
    let text = raw.to_str().map_err(|_| bad())?;
    IdempotencyKey::parse(text).map(Some).map_err(|_| bad())
}

/// The language versions of the requested template, with a paused or disabled one
/// replaced by an approved copy, and the refusal that status means.
async fn catalog_for(
    deps: &IntakeDeps,
    tenant: &TenantProfile,
    raw: &Value,
) -> Result<(TemplateCatalog, Option<Suppression>), ApiError> {
    let Some((name, language)) = requested_template(raw) else {
        return Ok((TemplateCatalog::default(), None));
    };
    let stored = deps
        .ports
        .directory
        .templates_named(&tenant.id, name)
        .await
        .map_err(|e| internal("templates_named", &e))?;
    let mut catalog = TemplateCatalog::new(stored.into_iter().map(|s| s.template));
    let refusal = catalog
        .get(name, language)
        .and_then(policy::paused_or_disabled);
    if refusal.is_some()
        && let Some(mut template) = catalog.remove(name, language)
    {
        template.status = Some(TemplateStatus::Approved);
        catalog.insert(template);
    }
    Ok((catalog, refusal))
}
