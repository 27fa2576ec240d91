//! One send, decided: the order of checks is Meta's as far as it is observable —
//! phone number, token, body structure, (injected fault), template, limits, then
//! acceptance with its status webhooks scheduled.
//!
//! Templates are checked before limits because Meta does not count refused template
//! sends (paused: "not billed, not counted against limits").

use super::config::PhoneNumberConfig;
use super::config::WindowFailure;
use super::faults::SendFault;
use super::limits::LimitHit;
use super::meta_error::{MetaError, details};
use super::recording::{RecordedRequest, RequestOutcome};
use super::send::{OutboundContent, OutboundMessage, SendBody, parse_send};
use super::state::{Core, Shared, unix_seconds};
use super::template_check::check_template;
use super::webhooks::{Outgoing, PricingInfo, Scheduled, StatusEvent, apply_reorder};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// The answer to give, and how.
#[derive(Debug, Clone)]
pub struct SendAnswer {
    /// HTTP status.
    pub http_status: u16,
    /// JSON body.
    pub body: Value,
    /// Latency to add before answering.
    pub latency: Duration,
    /// Accept-then-timeout: hold the answer.
    pub withhold: bool,
}

/// Counters of one acceptance, applied to the recorder after the core lock is released.
#[derive(Debug, Default)]
struct Scheduling {
    scheduled: u64,
    dropped: u64,
    duplicated: u64,
    reordered: u64,
    delayed: u64,
}

enum Decision {
    Accepted {
        body: Value,
        wamid: String,
        scheduling: Scheduling,
    },
    Rejected {
        error: MetaError,
        injected: bool,
    },
    Served(Value),
}

/// Decide, record and answer one `POST /{version}/{phone_number_id}/messages`.
pub fn process_send(
    shared: &Shared,
    path: &str,
    phone_id: &str,
    bearer: Option<&str>,
    raw: &[u8],
) -> SendAnswer {
    let now = Instant::now();
    let parsed: Option<Value> = serde_json::from_slice(raw).ok();
    let mut core = shared.core();
    // Drawn first and for every request, so the sequence depends only on the seed and
    // the order of requests.
    let (fault, latency) = core.faults.next_send();
    let decision = decide(
        shared,
        &mut core,
        phone_id,
        bearer,
        parsed.as_ref(),
        fault,
        now,
    );
    let trace = core.next_trace();
    drop(core);

    let callback_data = parsed
        .as_ref()
        .and_then(|v| v.get("biz_opaque_callback_data"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let withhold =
        fault == SendFault::AcceptThenTimeout && matches!(decision, Decision::Accepted { .. });
    let (http_status, body, outcome) = match decision {
        Decision::Accepted {
            body,
            wamid,
            scheduling,
        } => {
            shared.with_recorder(|r| {
                let w = &mut r.stats.webhooks;
                w.statuses_scheduled += scheduling.scheduled;
                w.statuses_dropped += scheduling.dropped;
                w.statuses_duplicated += scheduling.duplicated;
                w.statuses_reordered += scheduling.reordered;
                w.statuses_delayed += scheduling.delayed;
            });
            (
                200,
                body,
                RequestOutcome::Accepted {
                    wamid,
                    answer_withheld: withhold,
                },
            )
        }
        Decision::Rejected { error, injected } => (
            error.http_status,
            error.to_json(&trace),
            RequestOutcome::Rejected {
                code: error.code,
                injected,
            },
        ),
        Decision::Served(body) => (200, body, RequestOutcome::Served),
    };
    let is_send = !matches!(outcome, RequestOutcome::Served);
    shared.with_recorder(|r| {
        r.request(
            RecordedRequest {
                seq: 0,
                at_ms: shared.elapsed_ms(),
                method: "POST".into(),
                path: path.to_owned(),
                http_status,
                outcome,
                callback_data,
                body: if r.keeps_bodies() { parsed } else { None },
            },
            is_send,
        );
    });
    SendAnswer {
        http_status,
        body,
        latency,
        withhold,
    }
}

fn decide(
    shared: &Shared,
    core: &mut Core,
    phone_id: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
    fault: SendFault,
    now: Instant,
) -> Decision {
    let reject = |error| Decision::Rejected {
        error,
        injected: false,
    };
    let Some(phone) = shared.phone(phone_id) else {
        return reject(MetaError::new(100, format!(
            "Unsupported post request. Object with ID '{phone_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        )).with_status(400));
    };
    if shared.token_expired(phone_id, now) {
        // Meta's answer to a token whose session expired (error_subcode 463).
        return reject(MetaError::new(
            190,
            "Error validating access token: Session has expired on Wednesday, 02-Dec-26 07:00:00 PST.",
        ));
    }
    match bearer {
        Some(token) if token == phone.access_token.expose() => {}
        Some(_) => {
            return reject(MetaError::new(
                190,
                "Invalid OAuth access token - Cannot parse access token",
            ));
        }
        None => {
            return reject(MetaError::new(
                190,
                "An active access token must be used to query information about the current user.",
            ));
        }
    }
    let Some(body) = body else {
        return reject(MetaError::new(100, "The request body is not valid JSON"));
    };
    let message = match parse_send(body) {
        Ok(SendBody::Message(m)) => m,
        Ok(SendBody::MarkRead) => return Decision::Served(json!({"success": true})),
        Err(e) => return reject(e),
    };
    if let SendFault::Error { code, http_status } = fault {
        let error = MetaError::new(code, details::UNKNOWN).with_status(http_status);
        return Decision::Rejected {
            error,
            injected: true,
        };
    }
    let recipient = message.recipient.key().to_owned();
    let mut window_closed = false;
    let category = match &message.content {
        OutboundContent::Template(t) => {
            let catalog = core.catalogs.get(&phone.waba_id);
            let empty = Default::default();
            match check_template(catalog.unwrap_or(&empty), t) {
                Ok(template) => Some(
                    template
                        .category
                        .as_ref()
                        .map_or_else(|| "utility".to_owned(), |c| c.as_str().to_lowercase()),
                ),
                Err(e) => return reject(e),
            }
        }
        OutboundContent::FreeForm { .. } => {
            if !core
                .limits
                .window_open(&phone.id, &recipient, now.into_std())
            {
                if shared.config.limits.window_failure == WindowFailure::Sync {
                    return reject(MetaError::new(131047, details::WINDOW));
                }
                window_closed = true;
            }
            None
        }
    };
    let mps = phone
        .throughput_mps
        .unwrap_or(shared.config.limits.default_throughput_mps);
    match core
        .limits
        .admit(&phone.id, mps, &recipient, now.into_std())
    {
        Ok(()) => {}
        Err(LimitHit::Throughput) => return reject(MetaError::new(130429, details::THROUGHPUT)),
        Err(LimitHit::PairRate) => return reject(MetaError::new(131056, details::PAIR_RATE)),
    }
    let wamid = core.next_wamid(shared.instance(), &recipient);
    let scheduling = schedule_statuses(
        shared,
        core,
        &phone,
        &message,
        &wamid,
        category.as_deref(),
        window_closed,
        now,
    );
    let mut contact = serde_json::Map::new();
    contact.insert("input".into(), json!(message.recipient.input));
    if let Some(wa_id) = &message.recipient.wa_id {
        contact.insert("wa_id".into(), json!(wa_id));
    }
    if let Some(user_id) = &message.recipient.user_id {
        contact.insert("user_id".into(), json!(user_id));
    }
    let mut sent = json!({"id": wamid});
    if category.is_some() {
        // Meta adds message_status to template sends only.
        sent["message_status"] = json!("accepted");
    }
    let body = json!({"messaging_product": "whatsapp", "contacts": [contact], "messages": [sent]});
    Decision::Accepted {
        body,
        wamid,
        scheduling,
    }
}

/// Queue the statuses of an accepted message: `sent`, `delivered`, `read` after their
/// delays, or one `failed` (131026 for failing recipients, 131047 outside the window),
/// each subject to the webhook faults.
#[allow(clippy::too_many_arguments)]
fn schedule_statuses(
    shared: &Shared,
    core: &mut Core,
    phone: &PhoneNumberConfig,
    message: &OutboundMessage<'_>,
    wamid: &str,
    template_category: Option<&str>,
    window_closed: bool,
    now: Instant,
) -> Scheduling {
    let w = &shared.config.webhook;
    let ms = Duration::from_millis;
    let undeliverable = message
        .recipient
        .wa_id
        .as_ref()
        .is_some_and(|d| shared.failing.contains(d));
    let marketing = template_category.is_some_and(|c| c.eq_ignore_ascii_case("marketing"));
    let marketing_failure = if marketing {
        message
            .recipient
            .wa_id
            .as_ref()
            .and_then(|d| shared.marketing_failure(&phone.id, d))
    } else {
        None
    };
    let failure = if undeliverable {
        Some((131026, "Message undeliverable", details::UNDELIVERABLE))
    } else if marketing_failure == Some(131050) {
        Some((
            131050,
            "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business",
            details::MARKETING_STOPPED,
        ))
    } else if marketing_failure == Some(131049) {
        Some((
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            details::MARKETING_CAP,
        ))
    } else if window_closed {
        Some((131047, "Re-engagement message", details::WINDOW))
    } else {
        None
    };
    let pricing = PricingInfo {
        billable: template_category.is_some(),
        pricing_type: if template_category.is_some() {
            "regular"
        } else {
            "free_customer_service"
        },
        category: template_category.unwrap_or("service").to_owned(),
    };
    // Meta reports only `sent` for a reaction: no `delivered` or `read` follows.
    let reaction =
        matches!(&message.content, OutboundContent::FreeForm { kind } if kind == "reaction");
    let mut plan: Vec<(&'static str, Duration, Option<PricingInfo>)> = Vec::new();
    if failure.is_some() {
        plan.push(("failed", ms(w.sent_after_ms), None));
    } else if reaction {
        plan.push(("sent", ms(w.sent_after_ms), Some(pricing)));
    } else {
        plan.push(("sent", ms(w.sent_after_ms), Some(pricing.clone())));
        if let Some(d) = w.delivered_after_ms {
            plan.push(("delivered", ms(d), Some(pricing)));
        }
        if let Some(d) = w.read_after_ms {
            plan.push(("read", ms(d), None));
        }
    }
    let faults: Vec<_> = plan.iter().map(|_| core.faults.next_status()).collect();
    let mut delays: Vec<Duration> = plan.iter().map(|p| p.1).collect();
    let reorder: Vec<bool> = faults.iter().map(|f| f.reorder).collect();
    let mut counts = Scheduling {
        scheduled: plan.len() as u64,
        ..Scheduling::default()
    };
    counts.reordered = apply_reorder(&mut delays, &reorder) as u64;
    let dup_gap = ms(2 * w.batch_window_ms + 10);
    // Handed to the scheduler at once: a scheduler running late could otherwise post a
    // reordered `sent` (now due later) before it has even received the `delivered`
    // due earlier, silently undoing the reorder.
    let mut outgoing = Vec::with_capacity(2 * counts.scheduled as usize);
    for ((status, _, pricing), (fault, delay)) in plan.into_iter().zip(faults.iter().zip(delays)) {
        if fault.drop {
            counts.dropped += 1;
            continue;
        }
        let delay = delay + fault.delay.unwrap_or_default();
        counts.delayed += u64::from(fault.delay.is_some());
        let event = StatusEvent {
            number: shared.number_meta(phone),
            wamid: wamid.to_owned(),
            status,
            timestamp: unix_seconds(delay),
            recipient_id: message.recipient.key().to_owned(),
            callback_data: message.callback_data.clone(),
            pricing,
            error: if status == "failed" { failure } else { None },
        };
        if fault.duplicate {
            counts.duplicated += 1;
            outgoing.push(Scheduled {
                due: now + delay + dup_gap,
                item: Outgoing::Status(event.clone()),
            });
        }
        outgoing.push(Scheduled {
            due: now + delay,
            item: Outgoing::Status(event),
        });
    }
    shared.schedule_all(outgoing);
    counts
}
