//! One SQS record: claim, re-check policy, re-validate, build, send, classify, record
//! (DESIGN §5 steps 1–4).

use crate::app::Deps;
use crate::app::intake::{ErrorChain, policy};
use crate::domain::graph::{CallbackData, Classification, SendOutcome};
use crate::domain::lifecycle::EventKind;
use crate::domain::payload::build_payload;
use crate::domain::template::TemplateCatalog;
use crate::domain::tenant::TenantProfile;
use crate::domain::validation::{FormattingPolicy, ValidatedRequest, validate};
use crate::domain::{
    Failure, FailureClass, FailureSource, LifecycleEvent, Message, MessageId, Suppression,
    TenantId, Timestamp,
};
use crate::ports::queue::MAX_VISIBILITY_TIMEOUT;
use crate::ports::{QueueRef, ReceiptHandle, Recorded, SendRequest, record_event};
use aws_lambda_events::sqs::SqsMessage;
use serde::Deserialize;
use std::time::Duration;
use tracing::{Span, error, info, warn};

/// Whether SQS should deliver the record again (report it as a batch item failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Again {
    /// Yes: a scheduled retry, or an error before anything was decided.
    Yes,
    /// No: the record is done with (delete it).
    No,
}

/// The queue body intake and the reconciler send.
#[derive(Debug, Deserialize)]
struct Reference {
    tenant: TenantId,
    id: MessageId,
}

pub(super) async fn process(deps: &Deps, record: &SqsMessage) -> Again {
    let Some(reference) = record
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Reference>(b).ok())
    else {
        // Nothing we could ever send: redelivering it would only reach the DLQ later.
        error!("record body is not a {{tenant, id}} reference; dropped");
        return Again::No;
    };
    let span = Span::current();
    span.record("tenant", tracing::field::display(&reference.tenant));
    span.record("message_id", tracing::field::display(&reference.id));

    let now = deps.clock.now();
    let claimed = deps
        .store
        .claim_for_send(&reference.tenant, &reference.id, now, &deps.lifecycle)
        .await;
    let message = match claimed {
        Ok(Some(m)) => m,
        Ok(None) => {
            info!(
                "not claimable (another sender has it, or it is done): duplicate delivery dropped"
            );
            return Again::No;
        }
        Err(e) => {
            error!(error = %ErrorChain(&e), "claim failed");
            return Again::Yes;
        }
    };
    span.record("to", message.to.masked());
    span.record("attempt", message.attempt);
    let mut send = Send {
        deps,
        message: &message,
        receipt: record.receipt_handle.as_deref().map(ReceiptHandle::new),
    };
    match send.run(now).await {
        Ok(again) => again,
        Err(e) => {
            // The claim's lease expires and the record comes back (or the reconciler
            // requeues it): nothing was sent.
            error!(error = %e, "send aborted before calling Graph");
            Again::Yes
        }
    }
}

/// A backend failure before the Graph call; the claim is left to expire.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {cause}")]
struct Aborted {
    operation: &'static str,
    cause: String,
}

fn aborted(operation: &'static str, e: &(dyn std::error::Error + 'static)) -> Aborted {
    Aborted {
        operation,
        cause: ErrorChain(e).to_string(),
    }
}

struct Send<'a> {
    deps: &'a Deps,
    message: &'a Message,
    receipt: Option<ReceiptHandle>,
}

impl Send<'_> {
    fn attempt(&self) -> u32 {
        self.message.attempt
    }

    fn tenant(&self) -> &TenantId {
        &self.message.tenant
    }

    async fn run(&mut self, now: Timestamp) -> Result<Again, Aborted> {
        let deps = self.deps;
        let settings = &deps.sender;
        if let Some(failure) = self.exhausted(now, None) {
            return Ok(self.fail(failure).await);
        }
        let lookups = &settings.lookups;
        let Some(profile) = lookups
            .tenant(&*deps.directory, self.tenant(), now)
            .await
            .map_err(|e| aborted("tenant", &e))?
        else {
            let failure = sender_failure(FailureClass::Rejected, "the tenant no longer exists");
            return Ok(self.fail(failure).await);
        };
        let catalog = match &self.message.template_name {
            Some(name) => TemplateCatalog::new(
                lookups
                    .templates_named(&*deps.directory, self.tenant(), name, now)
                    .await
                    .map_err(|e| aborted("templates_named", &e))?
                    .into_iter()
                    .map(|s| s.template),
            ),
            None => TemplateCatalog::default(),
        };
        if let Some(s) = self.policy_refusal(&profile, &catalog, now).await? {
            return Ok(self.suppress(s).await);
        }
        let validated = match validate(&self.message.request, &catalog, FormattingPolicy::Strict) {
            Ok(v) => v,
            Err(problems) => {
                let detail: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.code))
                    .collect();
                let mut failure = sender_failure(
                    FailureClass::Rejected,
                    "the stored request no longer fits the template",
                );
                failure.detail = Some(crate::domain::graph::excerpt(&detail.join("; ")));
                return Ok(self.fail(failure).await);
            }
        };
        self.send(&profile, &validated).await
    }

    /// Tenant, template, then recipient: the same order as intake.
    async fn policy_refusal(
        &self,
        profile: &TenantProfile,
        catalog: &TemplateCatalog,
        now: Timestamp,
    ) -> Result<Option<Suppression>, Aborted> {
        if let Some(s) = policy::tenant_refusal(profile) {
            return Ok(Some(s));
        }
        if let (Some(name), Some(language)) =
            (&self.message.template_name, &self.message.template_language)
        {
            let refusal = match catalog.get(name, language) {
                Some(template) => policy::not_sendable(template),
                None => Some(Suppression {
                    reason: crate::domain::SuppressionReason::TemplateNotApproved,
                    detail: Some("the template no longer exists".into()),
                }),
            };
            if refusal.is_some() {
                return Ok(refusal);
            }
        }
        let contact = self
            .deps
            .directory
            .contact(self.tenant(), &self.message.to)
            .await
            .map_err(|e| aborted("contact", &e))?;
        let is_text = self.message.template_name.is_none();
        Ok(policy::recipient_refusal(&contact, is_text, now))
    }

    async fn send(
        &mut self,
        profile: &TenantProfile,
        validated: &ValidatedRequest,
    ) -> Result<Again, Aborted> {
        let deps = self.deps;
        let callback = CallbackData::new(self.tenant().clone(), self.message.id.clone()).encode();
        let payload = match build_payload(validated, &callback) {
            Ok(p) => p.to_json(),
            Err(e) => {
                let mut failure =
                    sender_failure(FailureClass::Rejected, "the Graph payload cannot be built");
                failure.detail = Some(e.to_string());
                return Ok(self.fail(failure).await);
            }
        };
        let token = match deps.tokens.graph_token(&profile.token_ref).await {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %ErrorChain(&e), "tenant token unavailable");
                let mut failure = sender_failure(
                    FailureClass::Tenant,
                    "the tenant's Graph token is unavailable",
                );
                failure.detail = Some(e.to_string());
                return Ok(self.retry(profile, failure, None).await);
            }
        };
        deps.sender
            .pacer
            .pace(
                &profile.phone_number_id,
                profile.throughput_mps,
                profile.max_concurrency,
            )
            .await;
        let outcome = deps
            .provider
            .send(SendRequest {
                phone_number_id: &profile.phone_number_id,
                token: &token,
                body: &payload,
            })
            .await;
        Ok(match outcome {
            SendOutcome::Accepted(accepted) => {
                let now = deps.clock.now();
                info!(wamid = %accepted.wamid, "accepted by Graph");
                let event = EventKind::Accepted {
                    attempt: self.attempt(),
                    wamid: accepted.wamid,
                    message_status: accepted.message_status,
                };
                if self.record(event, now).await {
                    let dims = [("Tenant", self.tenant().as_str())];
                    deps.metrics.count("Accepted", &dims);
                    deps.metrics.millis(
                        "QueueToAcceptedMs",
                        now.millis_since(self.message.created_at),
                        &dims,
                    );
                }
                // Even if recording failed, never let SQS bring back a send Meta took:
                // the status webhook carries our ids and records it.
                Again::No
            }
            SendOutcome::Failed(c) => self.failed(profile, &c).await,
        })
    }

    async fn failed(&mut self, profile: &TenantProfile, c: &Classification) -> Again {
        let source = if c.code.is_some() {
            FailureSource::Graph
        } else {
            FailureSource::Transport
        };
        let failure = c.to_failure(source);
        match c.class {
            FailureClass::Ambiguous => {
                warn!(title = %c.title, "Graph answer lost: ambiguous, waiting for a webhook");
                let event = EventKind::MarkedAmbiguous {
                    attempt: self.attempt(),
                };
                if self.record(event, self.deps.clock.now()).await {
                    self.deps
                        .metrics
                        .count("Ambiguous", &[("Tenant", self.tenant().as_str())]);
                }
                Again::No
            }
            class if class.is_retryable() => {
                if class == FailureClass::Throttled {
                    self.deps.sender.pacer.throttled(&profile.phone_number_id);
                }
                self.retry(profile, failure, Some(c)).await
            }
            _ => self.fail(failure).await,
        }
    }

    /// Exhausted when this attempt was the last, or the message is too old to send.
    fn exhausted(&self, now: Timestamp, last: Option<&Failure>) -> Option<Failure> {
        let settings = &self.deps.sender;
        let age_ms = now.millis_since(self.message.created_at);
        let max_age_ms = i64::try_from(settings.max_age.as_millis()).unwrap_or(i64::MAX);
        let (over, title) = match last {
            // Before sending: only an attempt past the budget (a reconciler requeue).
            None => (self.attempt() > settings.max_attempts, "retry budget spent"),
            Some(_) => (
                self.attempt() >= settings.max_attempts,
                "retry budget spent",
            ),
        };
        let title = if age_ms > max_age_ms {
            "message is older than the maximum age"
        } else if over {
            title
        } else {
            return None;
        };
        let mut failure = sender_failure(FailureClass::Exhausted, title);
        if let Some(last) = last {
            failure.code = last.code;
            failure.detail = Some(format!("last failure: {} ({})", last.title, last.class));
        }
        Some(failure)
    }

    /// Back to `queued` with the class's delay, or exhausted.
    async fn retry(
        &mut self,
        profile: &TenantProfile,
        failure: Failure,
        classification: Option<&Classification>,
    ) -> Again {
        let now = self.deps.clock.now();
        if let Some(exhausted) = self.exhausted(now, Some(&failure)) {
            return self.fail(exhausted).await;
        }
        let jitter = jitter();
        let delay = classification
            .and_then(|c| c.retry_delay(self.attempt(), jitter))
            .or_else(|| failure.class.retry_delay(self.attempt(), jitter))
            .unwrap_or(Duration::ZERO)
            .min(MAX_VISIBILITY_TIMEOUT);
        let not_before = now.plus_millis(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        info!(class = %failure.class, delay_ms = delay.as_millis() as u64, "retry scheduled");
        let class = failure.class;
        let event = EventKind::RetryScheduled {
            attempt: self.attempt(),
            failure,
            not_before,
        };
        if !self.record(event, now).await {
            // Not recorded: the claim stays until its lease expires; let SQS bring
            // the record back at its usual visibility.
            return Again::Yes;
        }
        self.deps
            .metrics
            .count("Retried", &[("Tenant", self.tenant().as_str())]);
        if let Some(receipt) = &self.receipt {
            let queue = QueueRef::new(profile.queue.clone());
            if let Err(e) = self
                .deps
                .queue
                .change_visibility(&queue, receipt, delay)
                .await
            {
                // The record comes back at the queue's default visibility instead; the
                // claim (queued, attempt counted) keeps that safe.
                warn!(error = %ErrorChain(&e), %class, "could not delay the record");
            }
        }
        Again::Yes
    }

    async fn fail(&mut self, failure: Failure) -> Again {
        warn!(class = %failure.class, code = ?failure.code, title = %failure.title, "send failed");
        let class = failure.class;
        let event = EventKind::SendFailed {
            attempt: self.attempt(),
            failure,
        };
        if self.record(event, self.deps.clock.now()).await {
            self.deps.metrics.count(
                "Failed",
                &[
                    ("Tenant", self.tenant().as_str()),
                    ("Class", class.as_str()),
                ],
            );
            Again::No
        } else {
            Again::Yes
        }
    }

    async fn suppress(&mut self, suppression: Suppression) -> Again {
        info!(reason = %suppression.reason, "suppressed by the policy re-check");
        let reason = suppression.reason;
        let event = EventKind::Suppressed {
            attempt: self.attempt(),
            suppression,
        };
        if self.record(event, self.deps.clock.now()).await {
            self.deps.metrics.count(
                "Suppressed",
                &[
                    ("Tenant", self.tenant().as_str()),
                    ("Reason", reason.as_str()),
                ],
            );
            Again::No
        } else {
            Again::Yes
        }
    }

    /// Record `kind`; true when the event is now in the message (written, or already
    /// there), false when the store failed.
    async fn record(&self, kind: EventKind, now: Timestamp) -> bool {
        let event = LifecycleEvent::new(now, kind);
        let name = event.kind.name();
        let deps = self.deps;
        match record_event(
            &*deps.store,
            self.tenant(),
            &self.message.id,
            &event,
            &deps.lifecycle,
        )
        .await
        {
            Ok(Recorded::Written { decision, message }) => {
                info!(event = name, decision, state = %message.state.as_str(), "recorded");
                true
            }
            Ok(Recorded::Duplicate(_)) => {
                info!(event = name, "already recorded");
                true
            }
            Ok(Recorded::NotFound) => {
                warn!(
                    event = name,
                    "message vanished before its outcome was recorded"
                );
                true
            }
            Err(e) => {
                error!(event = name, error = %ErrorChain(&e), "recording the outcome failed");
                false
            }
        }
    }
}

fn sender_failure(class: FailureClass, title: &str) -> Failure {
    Failure {
        class,
        code: None,
        title: title.to_owned(),
        detail: None,
        source: FailureSource::Sender,
    }
}

/// A uniform draw from `[0, 1)`, from the OS-seeded generator behind ULIDs.
fn jitter() -> f64 {
    let bits = ulid::Ulid::generate().random() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..200).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        let first = draws[0];
        assert!(draws.iter().any(|j| (*j - first).abs() > 1e-9));
    }
}
