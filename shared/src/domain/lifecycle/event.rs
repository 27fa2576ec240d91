//! Lifecycle events: everything any actor can report about a message.
//!
//! Each event has a deterministic fingerprint, the key of its history entry, so a
//! repeated event is recognised (DESIGN §3):
//! - provider statuses dedupe on (status, wamid): `webhook.delivered:wamid.HBgL…`
//!   (Meta retries webhooks for days and sends them to every subscribed app);
//! - sender events carry the attempt they belong to: `sender.accepted#2`;
//! - a claim is keyed by its instant, `sender.claimed@<ms>`: its attempt is only
//!   known after the write (the claim increments it), and each claim is a distinct
//!   occurrence fenced by its guard, not a message to dedupe;
//! - reconciler events are keyed by the attempt they act on (`reconciler.requeued#1`)
//!   or by their instant when no attempt applies.

use crate::domain::failure::Failure;
use crate::domain::ids::Wamid;
use crate::domain::message::Suppression;
use crate::domain::state::MessageState;
use crate::domain::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Something that happened to a message, at `at` (when we observed it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// When we observed it: `now` for our own events, receive time for webhooks.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// What happened, by actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// Sender: claimed the message (queued, or sending with an expired lease) for a new
    /// attempt; the lease lasts `policy.lease` from the event's instant.
    Claimed,
    /// Sender: the Graph API accepted attempt `attempt` and returned a wamid.
    Accepted {
        /// The attempt that was accepted (the claim's attempt).
        attempt: u32,
        /// Meta's id of the message.
        wamid: Wamid,
        /// Meta's `message_status`, when given.
        message_status: Option<String>,
    },
    /// Sender: a retryable failure; the message goes back to `queued` until `not_before`.
    RetryScheduled {
        /// The attempt that failed.
        attempt: u32,
        /// Why (transient, throttled, tenant).
        failure: Failure,
        /// When the queue will deliver it again.
        not_before: Timestamp,
    },
    /// Sender: a permanent failure (rejected, recipient, exhausted budget …).
    SendFailed {
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        failure: Failure,
    },
    /// Sender: about to call the Graph API for attempt `attempt` (the write-ahead
    /// mark, see `Message::dispatched_at`). Written before the request, so that if
    /// the outcome cannot be recorded afterwards, nobody resends blindly.
    Dispatched {
        /// The claim's attempt.
        attempt: u32,
    },
    /// Sender: the request was written but no answer came; wait for a webhook.
    MarkedAmbiguous {
        /// The attempt whose answer was lost.
        attempt: u32,
    },
    /// Sender: the policy re-check refused the message before sending.
    Suppressed {
        /// The attempt that re-checked.
        attempt: u32,
        /// Why.
        suppression: Suppression,
    },
    /// Webhook: a status from Meta.
    Provider(ProviderStatus),
    /// Webhook: Meta failed the accepted send with its per-user marketing limit
    /// (131049, `status` is that `failed` status). The message goes back to `queued`
    /// until `not_before` (Meta asks for at least 24 h), or fails `exhausted` when that
    /// wait passes its max age. Any other situation is an ordinary `failed` status.
    MarketingLimited {
        /// The `failed` status with its 131049 error.
        status: ProviderStatus,
        /// When the message may be sent again.
        not_before: Timestamp,
    },
    /// Reconciler: `sending` attempt `attempt` whose lease expired goes back to `queued`.
    Requeued {
        /// The attempt whose lease expired.
        attempt: u32,
    },
    /// Reconciler: `sending` attempt `attempt` was dispatched (its Graph call may have
    /// reached Meta) and its lease expired with no outcome recorded: marked ambiguous,
    /// exactly as the sender would have, and resolved by webhook or by the tenant's
    /// policy after the grace.
    DispatchLapsed {
        /// The dispatched attempt.
        attempt: u32,
    },
    /// Reconciler: `sending` attempt `attempt` whose lease expired, and no attempt is left.
    Exhausted {
        /// The attempt whose lease expired.
        attempt: u32,
        /// The exhaustion failure to store.
        failure: Failure,
    },
    /// Reconciler: ambiguous attempt `attempt` past the grace, tenant policy `fail`:
    /// `failed` with class `ambiguous` (a late webhook still corrects it).
    AmbiguousFailed {
        /// The ambiguous attempt.
        attempt: u32,
    },
    /// Reconciler: ambiguous attempt `attempt` past the grace, tenant policy `retry`:
    /// back to `queued` (at-least-once).
    AmbiguousRetry {
        /// The ambiguous attempt.
        attempt: u32,
    },
    /// Reconciler: `accepted`/`sent` past the webhook horizon: `failed` (unconfirmed).
    Unconfirmed,
    /// Reconciler: a stale `queued` message was enqueued again; next look at `next`.
    SweepPushed {
        /// The new sweep deadline.
        next: Timestamp,
    },
    /// Reconciler: a `scheduled` message reached its `send_at`: `queued`, then enqueued.
    Released,
    /// The caller cancelled a `scheduled` or `queued` message (`DELETE
    /// /v1/messages/{id}`): terminal `cancelled`, never sent.
    Cancelled,
}

/// One entry of a status webhook, already matched to our message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStatus {
    /// The wamid the status is about.
    pub wamid: Wamid,
    /// The status.
    pub status: ProviderStatusKind,
    /// Meta's `timestamp` of the status (fills the state's timestamp).
    pub occurred_at: Timestamp,
    /// For `failed`: the classified error (its source is forced to `webhook`).
    pub failure: Option<Failure>,
    /// Payload worth keeping in history (pricing, conversation, raw errors).
    pub detail: Option<Value>,
}

/// The statuses Meta reports for an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatusKind {
    /// Meta sent it.
    Sent,
    /// It reached the device.
    Delivered,
    /// The recipient read it.
    Read,
    /// A voice message was first played: counts as `read`.
    Played,
    /// Meta could not deliver it.
    Failed,
}

impl ProviderStatusKind {
    /// Meta's name of the status.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
        }
    }

    /// The state the status moves a message to.
    pub const fn target_state(self) -> MessageState {
        match self {
            Self::Sent => MessageState::Sent,
            Self::Delivered => MessageState::Delivered,
            Self::Read | Self::Played => MessageState::Read,
            Self::Failed => MessageState::Failed,
        }
    }
}

impl EventKind {
    /// The event's name in history and logs, e.g. `webhook.delivered`, `sender.accepted`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Claimed => "sender.claimed",
            Self::Accepted { .. } => "sender.accepted",
            Self::RetryScheduled { .. } => "sender.retry_scheduled",
            Self::SendFailed { .. } => "sender.send_failed",
            Self::Dispatched { .. } => "sender.dispatched",
            Self::MarkedAmbiguous { .. } => "sender.marked_ambiguous",
            Self::Suppressed { .. } => "sender.suppressed",
            Self::Provider(p) => match p.status {
                ProviderStatusKind::Sent => "webhook.sent",
                ProviderStatusKind::Delivered => "webhook.delivered",
                ProviderStatusKind::Read => "webhook.read",
                ProviderStatusKind::Played => "webhook.played",
                ProviderStatusKind::Failed => "webhook.failed",
            },
            Self::MarketingLimited { .. } => "webhook.marketing_limited",
            Self::Requeued { .. } => "reconciler.requeued",
            Self::DispatchLapsed { .. } => "reconciler.dispatch_lapsed",
            Self::Exhausted { .. } => "reconciler.exhausted",
            Self::AmbiguousFailed { .. } => "reconciler.ambiguous_failed",
            Self::AmbiguousRetry { .. } => "reconciler.ambiguous_retry",
            Self::Unconfirmed => "reconciler.unconfirmed",
            Self::SweepPushed { .. } => "reconciler.sweep_pushed",
            Self::Released => "reconciler.released",
            Self::Cancelled => "api.cancelled",
        }
    }

    /// The attempt a sender or reconciler event belongs to, if it names one.
    pub fn attempt(&self) -> Option<u32> {
        match self {
            Self::Accepted { attempt, .. }
            | Self::RetryScheduled { attempt, .. }
            | Self::SendFailed { attempt, .. }
            | Self::Dispatched { attempt }
            | Self::MarkedAmbiguous { attempt }
            | Self::Suppressed { attempt, .. }
            | Self::Requeued { attempt }
            | Self::DispatchLapsed { attempt }
            | Self::Exhausted { attempt, .. }
            | Self::AmbiguousFailed { attempt }
            | Self::AmbiguousRetry { attempt } => Some(*attempt),
            Self::Claimed
            | Self::Provider(_)
            | Self::MarketingLimited { .. }
            | Self::Unconfirmed
            | Self::SweepPushed { .. }
            | Self::Released
            | Self::Cancelled => None,
        }
    }
}

impl LifecycleEvent {
    /// An event observed at `at`.
    pub fn new(at: Timestamp, kind: EventKind) -> Self {
        Self { at, kind }
    }

    /// The deterministic history key of the event (see the module docs).
    pub fn fingerprint(&self) -> String {
        let name = self.kind.name();
        match &self.kind {
            EventKind::Provider(p) => format!("{name}:{}", p.wamid),
            EventKind::MarketingLimited { status, .. } => format!("{name}:{}", status.wamid),
            EventKind::SweepPushed { next } => format!("{name}@{}", next.as_millis()),
            EventKind::Claimed | EventKind::Unconfirmed => {
                format!("{name}@{}", self.at.as_millis())
            }
            kind => match kind.attempt() {
                Some(attempt) => format!("{name}#{attempt}"),
                None => name.to_owned(),
            },
        }
    }

    /// What the history entry keeps about the event.
    pub(crate) fn detail(&self) -> Option<Value> {
        let detail = match &self.kind {
            EventKind::Claimed
            | EventKind::Unconfirmed
            | EventKind::Released
            | EventKind::Cancelled => return None,
            EventKind::Accepted {
                attempt,
                wamid,
                message_status,
            } => json!({"attempt": attempt, "wamid": wamid, "message_status": message_status}),
            EventKind::RetryScheduled {
                attempt,
                failure,
                not_before,
            } => json!({"attempt": attempt, "failure": failure, "not_before": not_before}),
            EventKind::SendFailed { attempt, failure }
            | EventKind::Exhausted { attempt, failure } => {
                json!({"attempt": attempt, "failure": failure})
            }
            EventKind::Suppressed {
                attempt,
                suppression,
            } => json!({"attempt": attempt, "suppression": suppression}),
            EventKind::Dispatched { attempt }
            | EventKind::DispatchLapsed { attempt }
            | EventKind::MarkedAmbiguous { attempt }
            | EventKind::Requeued { attempt }
            | EventKind::AmbiguousFailed { attempt }
            | EventKind::AmbiguousRetry { attempt } => json!({ "attempt": attempt }),
            EventKind::Provider(p) => provider_detail(p),
            EventKind::MarketingLimited { status, not_before } => {
                let mut d = provider_detail(status);
                d["not_before"] = json!(not_before);
                d
            }
            EventKind::SweepPushed { next } => json!({ "next": next }),
        };
        Some(detail)
    }
}

/// What a provider status records in its history entry.
fn provider_detail(p: &ProviderStatus) -> Value {
    let mut d = json!({"wamid": p.wamid, "occurred_at": p.occurred_at});
    if let Some(f) = &p.failure {
        d["failure"] = json!(f);
    }
    if let Some(extra) = &p.detail {
        d["provider"] = extra.clone();
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::failure::{FailureClass, FailureSource};

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn status(kind: ProviderStatusKind, wamid: &str) -> EventKind {
        EventKind::Provider(ProviderStatus {
            wamid: Wamid::parse(wamid).unwrap(),
            status: kind,
            occurred_at: at(5),
            failure: None,
            detail: None,
        })
    }

    #[test]
    fn provider_fingerprints_dedupe_on_status_and_wamid_only() {
        let a = LifecycleEvent::new(at(1), status(ProviderStatusKind::Delivered, "wamid.A"));
        let again_later =
            LifecycleEvent::new(at(99), status(ProviderStatusKind::Delivered, "wamid.A"));
        let other_wamid =
            LifecycleEvent::new(at(1), status(ProviderStatusKind::Delivered, "wamid.B"));
        let played = LifecycleEvent::new(at(1), status(ProviderStatusKind::Played, "wamid.A"));
        assert_eq!(a.fingerprint(), "webhook.delivered:wamid.A");
        assert_eq!(a.fingerprint(), again_later.fingerprint());
        assert_ne!(a.fingerprint(), other_wamid.fingerprint());
        assert_eq!(played.fingerprint(), "webhook.played:wamid.A");
    }

    #[test]
    fn sender_and_reconciler_fingerprints_name_their_attempt_or_instant() {
        let failure = Failure {
            class: FailureClass::Transient,
            code: Some(131000),
            title: "Something went wrong".into(),
            detail: None,
            source: FailureSource::Graph,
        };
        let cases = [
            (EventKind::Claimed, "sender.claimed@7"),
            (
                EventKind::RetryScheduled {
                    attempt: 2,
                    failure,
                    not_before: at(9),
                },
                "sender.retry_scheduled#2",
            ),
            (
                EventKind::MarkedAmbiguous { attempt: 1 },
                "sender.marked_ambiguous#1",
            ),
            (EventKind::Requeued { attempt: 3 }, "reconciler.requeued#3"),
            (EventKind::Unconfirmed, "reconciler.unconfirmed@7"),
            (
                EventKind::SweepPushed { next: at(42) },
                "reconciler.sweep_pushed@42",
            ),
        ];
        for (kind, expected) in cases {
            assert_eq!(LifecycleEvent::new(at(7), kind).fingerprint(), expected);
        }
    }

    #[test]
    fn played_counts_as_read() {
        assert_eq!(
            ProviderStatusKind::Played.target_state(),
            MessageState::Read
        );
        assert_eq!(
            ProviderStatusKind::Failed.target_state(),
            MessageState::Failed
        );
    }

    #[test]
    fn provider_detail_keeps_meta_time_failure_and_payload() {
        let mut p = match status(ProviderStatusKind::Sent, "wamid.A") {
            EventKind::Provider(p) => p,
            _ => unreachable!(),
        };
        p.detail = Some(json!({"pricing": {"category": "utility"}}));
        let d = LifecycleEvent::new(at(1), EventKind::Provider(p))
            .detail()
            .unwrap();
        assert_eq!(d["occurred_at"], 5);
        assert_eq!(d["provider"]["pricing"]["category"], "utility");
        assert!(d.get("failure").is_none());
    }
}
