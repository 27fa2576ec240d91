//! `DELETE /v1/messages/{id}`: cancel a `scheduled` or `queued` message.
//!
//! The cancellation is one lifecycle event written through
//! [`record_event`](crate::ports::record_event): a conditional write guarded by the
//! state and attempt it was decided on, so it races a sender's claim safely: whichever
//! conditional write lands first wins, and the loser sees the other's item (a
//! cancelled message is never claimable; a claimed one is no longer cancellable).
//!
//! Answers: 200 with the message (now `cancelled`, or already `cancelled`: the call
//! is idempotent), 404 when the caller's tenant has no such message, 409
//! `not_cancellable` once sending has begun (or an earlier attempt whose answer was
//! lost may have reached Meta).

use super::{internal, view};
use crate::app::IntakeDeps;
use crate::app::http::{ApiError, ApiGatewayV2httpResponse, json_response};
use crate::domain::lifecycle::{EventKind, LifecycleEvent};
use crate::domain::message::NotCancellable;
use crate::domain::tenant::TenantProfile;
use crate::domain::{Message, MessageId};
use crate::ports::{Recorded, record_event};
use tracing::{Span, info};

/// Cancel message `raw_id` of `tenant`.
pub(super) async fn cancel_message(
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
    let event = LifecycleEvent::new(deps.ports.clock.now(), EventKind::Cancelled);
    let recorded = record_event(
        &*deps.ports.store,
        &tenant.id,
        &id,
        &event,
        &deps.ports.lifecycle,
    )
    .await
    .map_err(|e| internal("cancel", &e))?;
    let message = match recorded {
        Recorded::Written { message, .. } => {
            info!("message cancelled");
            deps.ports
                .metrics
                .count("Cancelled", &[("Tenant", tenant.id.as_str())]);
            *message
        }
        Recorded::Duplicate(message) => refusal(*message)?,
        Recorded::NotFound => return Err(not_found()),
    };
    Ok(json_response(
        200,
        &view::message_view(&message),
        &[("x-request-id", request_id)],
    ))
}

/// Nothing was written: an already cancelled message answers as it is (the call is
/// idempotent); any other is a 409 that says why.
fn refusal(message: Message) -> Result<Message, ApiError> {
    match message.cancellable() {
        Err(NotCancellable::AlreadyCancelled) => Ok(message),
        Err(why) => {
            info!(state = %message.state, reason = %why, "cancellation refused");
            Err(ApiError::Conflict {
                code: "not_cancellable",
                message: format!("message {} cannot be cancelled: {why}", message.id),
            })
        }
        // Cancellable but nothing written: the history is full and the decision kept
        // losing, which `record_event` reports as an error; never reached in practice.
        Ok(()) => Err(ApiError::Conflict {
            code: "not_cancellable",
            message: format!(
                "message {} changed while it was being cancelled; try again",
                message.id
            ),
        }),
    }
}
