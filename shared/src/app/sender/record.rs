//! One SQS record: claim, re-check policy, re-validate, build, send, classify, record
//! (DESIGN §5 steps 1–4).

use super::hold::{self, Gate};
use super::marketing_limit;
use super::outcome::sender_failure;
use super::pacing;
use crate::app::SenderDeps;
use crate::app::errors::ErrorChain;
use crate::domain::graph::{CallbackData, Classification, SendEndpoint, SendOutcome};
use crate::domain::lifecycle::{EventKind, Guard, LifecycleEvent};
use crate::domain::payload::build_payload;
use crate::domain::policy;
use crate::domain::template::TemplateCatalog;
use crate::domain::tenant::TenantProfile;
use crate::domain::validation::{FormattingPolicy, ValidatedRequest, validate};
use crate::domain::{
    FailureClass, FailureSource, Message, PhoneNumberId, Suppression, TenantId, Timestamp,
};
use crate::ports::{ProviderRequest, ReceiptHandle, Recorded};
use crate::queues::SendQueueMessage;
use aws_lambda_events::sqs::SqsMessage;
use tracing::{Span, error, info, warn};

/// Whether SQS should deliver the record again (report it as a batch item failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Again {
    /// Yes: a scheduled retry, or an error before anything was decided.
    Yes,
    /// No: the record is done with (delete it).
    No,
}

pub(super) async fn process(deps: &SenderDeps, record: &SqsMessage) -> Again {
    let Some(reference) = record.body.as_deref().and_then(SendQueueMessage::parse) else {
        // Nothing we could ever send: redelivering it would only reach the DLQ later.
        error!("record body is not a {{tenant, id}} reference; dropped");
        return Again::No;
    };
    let span = Span::current();
    span.record("tenant", tracing::field::display(&reference.tenant));
    span.record("message_id", tracing::field::display(&reference.id));

    let now = deps.ports.clock.now();
    let gate = match hold::gate(deps, &reference.tenant, now).await {
        Ok(g) => g,
        Err(e) => {
            error!(error = %ErrorChain(&e), "reading the tenant's hold failed");
            return Again::Yes;
        }
    };
    if gate == Gate::Held {
        // No claim, no attempt spent: the message stays `queued` in the store, and is
        // enqueued again when the hold ends (or by the reconciler's sweep). The probe's
        // carrier, early or beaten to the probe, is queued again for the next one.
        deps.ports
            .metrics
            .count("TenantOnHold", &[("Tenant", reference.tenant.as_str())]);
        if reference.probe {
            return hold::requeue_carrier(deps, &reference, now).await;
        }
        info!("tenant on hold: record dropped, the message waits in the store");
        return Again::No;
    }
    if let pacing::BeforeClaim::Skip(again) = pacing::before_claim(deps, record, &reference).await {
        if gate == Gate::Probe {
            // The probe waits for pacing: give it back, so the deferred copy (or any
            // other record) can probe as soon as it is due.
            hold::give_back_probe(deps, &reference.tenant, now).await;
        }
        return again;
    }
    let now = deps.ports.clock.now();
    let claimed = deps
        .ports
        .store
        .claim_for_send(&reference.tenant, &reference.id, now, &deps.ports.lifecycle)
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
        probe: gate == Gate::Probe,
    };
    if let Some(until) = marketing_limit::waiting_until(&message, now) {
        // Still within Meta's 24 h after a 131049: no Graph call (a retry now would
        // extend the block); the attempt is not counted.
        if gate == Gate::Probe {
            hold::give_back_probe(deps, &reference.tenant, now).await;
        }
        return send.wait_out_limit(until).await;
    }
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

/// One claimed message on its way to Graph.
pub(super) struct Send<'a> {
    pub(super) deps: &'a SenderDeps,
    pub(super) message: &'a Message,
    pub(super) receipt: Option<ReceiptHandle>,
    /// This send probes a held tenant (its outcome releases or keeps the hold).
    pub(super) probe: bool,
}

impl Send<'_> {
    pub(super) fn attempt(&self) -> u32 {
        self.message.attempt
    }

    pub(super) fn tenant(&self) -> &TenantId {
        &self.message.tenant
    }

    async fn run(&mut self, now: Timestamp) -> Result<Again, Aborted> {
        let deps = self.deps;
        if let Some(failure) = self.exhausted(now, None) {
            return Ok(self.fail(failure).await);
        }
        let directory = &deps.ports.directory;
        let Some(profile) = directory
            .tenant(self.tenant())
            .await
            .map_err(|e| aborted("tenant", &e))?
        else {
            let failure = sender_failure(FailureClass::Rejected, "the tenant no longer exists");
            return Ok(self.fail(failure).await);
        };
        let from = self.message.requested_from();
        let Some(number) = profile.sending_number(from.as_ref()).cloned() else {
            // Intake checked `from`; the number has left the tenant's profile since.
            let mut failure = sender_failure(
                FailureClass::Rejected,
                "the tenant no longer owns the number the message was to be sent from",
            );
            failure.detail = from.map(|f| format!("from {f}"));
            return Ok(self.fail(failure).await);
        };
        let catalog = match &self.message.template_name {
            Some(name) => TemplateCatalog::new(
                directory
                    .templates_named(self.tenant(), name)
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
        let is_marketing = match (&self.message.template_name, &self.message.template_language) {
            (Some(name), Some(language)) => policy::is_marketing(catalog.get(name, language)),
            _ => false,
        };
        if is_marketing
            && let Some(until) = self
                .recipient_limited_until(now)
                .await
                .map_err(|e| aborted("contact", &e))?
        {
            // Meta's per-user marketing limit (131049) holds this recipient.
            return Ok(self.wait_for_recipient(until).await);
        }
        let endpoint = SendEndpoint::for_send(&profile, is_marketing);
        self.send(&profile, &number, &validated, endpoint).await
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
        let mut is_marketing = false;
        if let (Some(name), Some(language)) =
            (&self.message.template_name, &self.message.template_language)
        {
            is_marketing = policy::is_marketing(catalog.get(name, language));
            if let Some(s) = policy::marketing_refusal(profile, is_marketing) {
                return Ok(Some(s));
            }
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
            .ports
            .directory
            .contact(self.tenant(), &self.message.to)
            .await
            .map_err(|e| aborted("contact", &e))?;
        let is_text = self.message.template_name.is_none();
        Ok(policy::recipient_refusal(
            &contact,
            is_text,
            is_marketing,
            now,
        ))
    }

    async fn send(
        &mut self,
        profile: &TenantProfile,
        number: &PhoneNumberId,
        validated: &ValidatedRequest,
        endpoint: SendEndpoint,
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
                self.hold_tenant(&failure).await;
                return Ok(self.retry(profile, failure, None).await);
            }
        };
        // The number's and the recipient's slots were taken before the claim.
        if !self.dispatch().await? {
            info!("claim lost before the Graph call; not sending");
            return Ok(Again::No);
        }
        let outcome = deps
            .provider
            .send(ProviderRequest {
                phone_number_id: number,
                endpoint,
                token: &token,
                body: &payload,
            })
            .await;
        let tenant_failure =
            matches!(&outcome, SendOutcome::Failed(c) if c.class == FailureClass::Tenant);
        if self.probe && !tenant_failure {
            // Graph answered something that is not the tenant's fault: the hold is over.
            self.release_after_probe(profile).await;
        }
        Ok(match outcome {
            SendOutcome::Accepted(accepted) => {
                let now = deps.ports.clock.now();
                info!(wamid = %accepted.wamid, "accepted by Graph");
                let event = EventKind::Accepted {
                    attempt: self.attempt(),
                    wamid: accepted.wamid,
                    message_status: accepted.message_status,
                };
                if self.record(event, now).await {
                    let dims = [("Tenant", self.tenant().as_str())];
                    deps.ports.metrics.count("Accepted", &dims);
                    deps.ports.metrics.millis(
                        "QueueToAcceptedMs",
                        now.millis_since(self.message.created_at),
                        &dims,
                    );
                    let points = crate::domain::series::accepted(self.message, now);
                    crate::app::series::record(&deps.ports, &points).await;
                }
                // Even if recording failed, never let SQS bring back a send Meta took:
                // the status webhook carries our ids and records it.
                Again::No
            }
            SendOutcome::Failed(c) => self.failed(profile, &c).await,
        })
    }

    /// Write the dispatch mark (`EventKind::Dispatched`) right before the Graph call.
    ///
    /// Why here, and not a special case on the ambiguous path: once the request may
    /// have reached Meta, every way the message can come back must know it, or it is
    /// resent blindly (DESIGN §3: `ambiguous` is never blind-retried). Without the
    /// mark, a lost outcome write (the `MarkedAmbiguous`, or even the `Accepted` one)
    /// leaves `sending` with a lease, which expires; then a redelivered record claims
    /// it again, or the reconciler requeues it, and both resend. With the mark in the
    /// store, a dispatched claim is never claimable and the reconciler marks its
    /// expired lease ambiguous (`DispatchLapsed`), which the webhook or the tenant's
    /// `on_ambiguous` policy resolves. It costs one blind conditional write per
    /// attempt. `Ok(false)`: the claim is no longer ours, do not call Graph.
    /// `Err`: the mark could not be written, so nothing was sent and the claim is
    /// left to expire (then taken over like any claim that died before its call).
    async fn dispatch(&self) -> Result<bool, Aborted> {
        let attempt = self.attempt();
        let event = LifecycleEvent::new(
            self.deps.ports.clock.now(),
            EventKind::Dispatched { attempt },
        );
        let ours = |m: &Message| Guard::ClaimHeld { attempt }.holds(m) && m.dispatched_at.is_some();
        match self.write(&event).await {
            Ok(Recorded::Written { message, .. } | Recorded::Duplicate(message)) => {
                Ok(ours(&message))
            }
            Ok(Recorded::NotFound) => Ok(false),
            Err(e) => Err(aborted("dispatch", &e)),
        }
    }

    async fn failed(&mut self, profile: &TenantProfile, c: &Classification) -> Again {
        let source = if c.code.is_some() {
            FailureSource::Graph
        } else {
            FailureSource::Transport
        };
        let failure = c.to_failure(source);
        // Every failed Graph call, by class (its error-rate alarms read Stage x Class).
        self.deps
            .ports
            .metrics
            .count("GraphError", &[("Class", c.class.as_str())]);
        match c.class {
            FailureClass::Ambiguous => {
                warn!(title = %c.title, "Graph answer lost: ambiguous, waiting for a webhook");
                let event = EventKind::MarkedAmbiguous {
                    attempt: self.attempt(),
                };
                if self.record(event, self.deps.ports.clock.now()).await {
                    self.deps
                        .ports
                        .metrics
                        .count("Ambiguous", &[("Tenant", self.tenant().as_str())]);
                } else {
                    // Still failing after the retries. The message is not lost and is
                    // not resent: it is `sending`, dispatched, in the sweep index at its
                    // lease's end, where the reconciler marks it ambiguous. Keeping the
                    // record would add nothing (its redelivery cannot claim a
                    // dispatched message), so it is deleted like any ambiguous one.
                    error!(
                        "ambiguous mark not recorded; the reconciler marks it when the lease expires"
                    );
                }
                Again::No
            }
            class if class.is_retryable() => {
                if class == FailureClass::Tenant {
                    self.hold_tenant(&failure).await;
                }
                if class == FailureClass::Throttled {
                    let number = self
                        .message
                        .requested_from()
                        .unwrap_or_else(|| profile.phone_number_id.clone());
                    pacing::throttled(self.deps, profile, &number, &self.message.to, c.code).await;
                }
                self.retry(profile, failure, Some(c)).await
            }
            _ => {
                if c.code == Some(MARKETING_STOPPED) {
                    self.record_marketing_stop().await;
                }
                self.fail(failure).await
            }
        }
    }

    /// Meta refused a marketing message because the user stopped marketing from us
    /// (131050): remember it, so the next MARKETING template to them is suppressed
    /// before anything is sent. A failure to remember is logged; the send's own
    /// failure is recorded either way.
    async fn record_marketing_stop(&self) {
        let now = self.deps.ports.clock.now();
        if let Err(e) = self
            .deps
            .ports
            .directory
            .set_marketing_opt_out(self.tenant(), &self.message.to, true, now)
            .await
        {
            warn!(error = %ErrorChain(&e), "could not record the marketing opt-out of a 131050");
        }
    }
}

/// Meta's "user stopped marketing messages from you" (reference §3).
pub(crate) const MARKETING_STOPPED: i64 = 131050;
