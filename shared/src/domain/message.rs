//! The stored message: the one item every store adapter persists (DESIGN §8).
//!
//! A [`Message`] is created by intake ([`Message::new_queued`] or
//! [`Message::new_suppressed`]) and afterwards changed only by the
//! [`Transition`](super::lifecycle::Transition)s that
//! [`lifecycle::decide`](super::lifecycle::decide) returns, each written in one
//! conditional write. The field names below are the attribute names the stores use.
//!
//! Invariants kept by the constructors and every transition:
//! - `rank == state.rank(failure.as_ref())`;
//! - `sweep_key`/`sweep_at` are set exactly when `state.is_swept()`;
//! - `history.len() <= policy.history_cap`: once the cap is reached new entries are
//!   only counted in `history_dropped`, while the state still moves.

use super::failure::Failure;
use super::ids::{MessageId, PhoneNumber, PhoneNumberId, TenantId, Wamid};
use super::lifecycle::LifecyclePolicy;
use super::state::MessageState;
use super::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

mod timestamps;
pub use timestamps::{TimestampField, Timestamps};

/// One outbound message as stored (keyed by `tenant` + `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Owner of the message; every read is scoped by it.
    pub tenant: TenantId,
    /// Our id of the message.
    pub id: MessageId,
    /// Where the message is in its lifecycle.
    pub state: MessageState,
    /// Always `state.rank(failure)`: the number every forward-only write compares.
    pub rank: u8,
    /// Recipient in E.164 form.
    pub to: PhoneNumber,
    /// Template name, or `None` for free-form text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// Template language code, or `None` for free-form text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_language: Option<String>,
    /// The validated request JSON as received; the sender re-parses it to build the payload.
    pub request: Value,
    /// Hash of the canonical request: same idempotency key + other hash is a 409.
    pub request_hash: String,
    /// Caller-supplied metadata, returned as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// The caller's `Idempotency-Key`, when it sent one (echoed in its events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Number of claims so far; the fencing token of the current claim.
    pub attempt: u32,
    /// While `sending` and not ambiguous: when the current claim expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
    /// Meta's id once known (set once, never overwritten).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<Wamid>,
    /// Meta's `message_status` from the send answer (`accepted`, `held_for_quality_assessment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
    /// When the message first reached each state.
    pub timestamps: Timestamps,
    /// When the sender lost the Graph answer (the send may or may not have happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambiguous_at: Option<Timestamp>,
    /// When the current attempt's sender was about to call the Graph API (the
    /// write-ahead mark of `EventKind::Dispatched`): from then on the request may
    /// have reached Meta, so the claim is never taken over and an expired lease is
    /// resolved as ambiguous, never by a blind resend. Cleared when the message goes
    /// back to `queued`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched_at: Option<Timestamp>,
    /// Why it failed (when `failed`), or the last retryable failure (when `queued` again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Why our policy refused it (when `suppressed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppression>,
    /// Every recorded event, keyed by its fingerprint (see `lifecycle::LifecycleEvent::fingerprint`).
    #[serde(default)]
    pub history: BTreeMap<String, HistoryEntry>,
    /// Events not kept in `history` because it reached the cap.
    #[serde(default)]
    pub history_dropped: u32,
    /// Anomalies seen, e.g. `failed_after_delivered` (see `lifecycle::flags`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub flags: BTreeSet<String>,
    /// Sparse sharded sweep key `"{state}#{shard}"`, present while the reconciler watches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_key: Option<String>,
    /// When the reconciler should look at it next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_at: Option<Timestamp>,
    /// When intake stored it.
    pub created_at: Timestamp,
    /// When it was last written.
    pub updated_at: Timestamp,
    /// TTL attribute: epoch **seconds** after which the store may delete the item.
    pub expires_at: i64,
}

/// What intake knows about a new message; the lifecycle fields are filled by the constructors.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Owner.
    pub tenant: TenantId,
    /// Id (derived from the idempotency key, or generated).
    pub id: MessageId,
    /// Recipient.
    pub to: PhoneNumber,
    /// Template name, `None` for free-form text.
    pub template_name: Option<String>,
    /// Template language, `None` for free-form text.
    pub template_language: Option<String>,
    /// The validated request JSON.
    pub request: Value,
    /// Hash of the canonical request.
    pub request_hash: String,
    /// Caller metadata.
    pub metadata: Option<Map<String, Value>>,
}

impl Message {
    /// The business number the caller chose (`from` of the stored request); `None`:
    /// the tenant's default number.
    pub fn requested_from(&self) -> Option<PhoneNumberId> {
        self.request
            .get("from")
            .and_then(Value::as_str)
            .and_then(|s| PhoneNumberId::parse(s).ok())
    }

    /// A message accepted by intake: `queued`, attempt 0, in the sweep index with the
    /// queued grace as deadline (so a lost enqueue is repaired by the reconciler).
    pub fn new_queued(new: NewMessage, now: Timestamp, policy: &LifecyclePolicy) -> Self {
        let sweep_key = Some(policy.sweep_key(MessageState::Queued, &new.id));
        let mut m = Self::base(new, MessageState::Queued, None, now, policy);
        m.timestamps.queued_at = Some(now);
        m.sweep_key = sweep_key;
        m.sweep_at = Some(now.plus_millis(policy.queued_grace_ms()));
        m.record_creation("intake.queued", None);
        m
    }

    /// A message accepted by intake with a future `send_at`: `scheduled`, not enqueued,
    /// in the sweep index with `send_at` as deadline, when the reconciler releases it to
    /// `queued`. Its TTL counts from `send_at`, so a far schedule never expires unsent.
    pub fn new_scheduled(
        new: NewMessage,
        send_at: Timestamp,
        now: Timestamp,
        policy: &LifecyclePolicy,
    ) -> Self {
        let sweep_key = Some(policy.sweep_key(MessageState::Scheduled, &new.id));
        let mut m = Self::base(new, MessageState::Scheduled, None, now, policy);
        m.timestamps.scheduled_at = Some(now);
        m.sweep_key = sweep_key;
        m.sweep_at = Some(send_at);
        m.expires_at = send_at.plus_millis(policy.message_ttl_ms()).as_secs();
        m.record_creation("intake.scheduled", Some(json!({ "send_at": send_at })));
        m
    }

    /// A valid request our policy refused: `suppressed` with its reason, never swept.
    pub fn new_suppressed(
        new: NewMessage,
        suppression: Suppression,
        now: Timestamp,
        policy: &LifecyclePolicy,
    ) -> Self {
        let detail = json!({ "suppression": suppression });
        let mut m = Self::base(new, MessageState::Suppressed, None, now, policy);
        m.timestamps.suppressed_at = Some(now);
        m.suppression = Some(suppression);
        m.record_creation("intake.suppressed", Some(detail));
        m
    }

    fn base(
        new: NewMessage,
        state: MessageState,
        failure: Option<Failure>,
        now: Timestamp,
        policy: &LifecyclePolicy,
    ) -> Self {
        Self {
            tenant: new.tenant,
            id: new.id,
            state,
            rank: state.rank(failure.as_ref()),
            to: new.to,
            template_name: new.template_name,
            template_language: new.template_language,
            request: new.request,
            request_hash: new.request_hash,
            metadata: new.metadata,
            idempotency_key: None,
            attempt: 0,
            lease_until: None,
            wamid: None,
            message_status: None,
            timestamps: Timestamps::default(),
            ambiguous_at: None,
            dispatched_at: None,
            failure,
            suppression: None,
            history: BTreeMap::new(),
            history_dropped: 0,
            flags: BTreeSet::new(),
            sweep_key: None,
            sweep_at: None,
            created_at: now,
            updated_at: now,
            expires_at: now.plus_millis(policy.message_ttl_ms()).as_secs(),
        }
    }

    /// The creation event is the first history entry; its fingerprint is its event name
    /// because a message is created once.
    fn record_creation(&mut self, event: &str, detail: Option<Value>) {
        self.history.insert(
            event.to_owned(),
            HistoryEntry {
                at: self.created_at,
                event: event.to_owned(),
                state_after: self.state,
                outcome: HistoryOutcome::Advanced,
                detail,
            },
        );
    }

    /// When the message became sendable: its release from `scheduled`, else its
    /// creation. The maximum age counts from here, so a schedule does not age a message.
    pub fn sendable_since(&self) -> Timestamp {
        match self.timestamps.scheduled_at {
            Some(_) => self.timestamps.queued_at.unwrap_or(self.created_at),
            None => self.created_at,
        }
    }

    /// The caller's `send_at`, as stored in its request.
    pub fn send_at(&self) -> Option<&str> {
        self.request.get("send_at").and_then(Value::as_str)
    }

    /// Whether the caller may still cancel the message: `scheduled`, or `queued` with no
    /// earlier attempt whose outcome is unknown (an ambiguous attempt sent back to
    /// `queued` by the tenant's `retry` policy may have reached Meta).
    pub fn cancellable(&self) -> Result<(), NotCancellable> {
        match self.state {
            MessageState::Scheduled => Ok(()),
            MessageState::Queued if self.maybe_sent_before() => Err(NotCancellable::MaybeSent),
            MessageState::Queued => Ok(()),
            MessageState::Cancelled => Err(NotCancellable::AlreadyCancelled),
            state => Err(NotCancellable::SendingBegan(state)),
        }
    }

    /// An earlier attempt was dispatched and its answer lost (ambiguous): Meta may
    /// have it.
    fn maybe_sent_before(&self) -> bool {
        self.history.values().any(|e| {
            e.event == "sender.marked_ambiguous" || e.event == "reconciler.dispatch_lapsed"
        })
    }

    /// Whether an event with this fingerprint is already recorded.
    pub fn has_seen(&self, fingerprint: &str) -> bool {
        self.history.contains_key(fingerprint)
    }

    /// Attempts that count toward the retry budget: every attempt but those that ended
    /// in a retry because of the tenant (a `tenant`-class failure: its hold) or of
    /// Meta's per-user marketing limit (131049, synchronous or by webhook), which are
    /// not the message's fault.
    pub fn counted_attempts(&self) -> u32 {
        let uncounted = self
            .history
            .values()
            .filter(|e| {
                e.event == "sender.retry_scheduled" || e.event == "webhook.marketing_limited"
            })
            .filter_map(|e| e.detail.as_ref()?.get("failure"))
            .filter(|f| {
                f.get("class").and_then(|c| c.as_str()) == Some("tenant")
                    || f.get("code").and_then(serde_json::Value::as_i64) == Some(131_049)
            })
            .count();
        self.attempt
            .saturating_sub(u32::try_from(uncounted).unwrap_or(u32::MAX))
    }
}

/// Why a message cannot be cancelled ([`Message::cancellable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotCancellable {
    /// A sender claimed it: sending has begun (or it is already done).
    #[error("the message is {0}: sending has begun")]
    SendingBegan(MessageState),
    /// Queued again after an attempt whose answer was lost: Meta may have it.
    #[error("an earlier attempt may have reached Meta (its answer was lost)")]
    MaybeSent,
    /// Already cancelled.
    #[error("the message is already cancelled")]
    AlreadyCancelled,
}

/// Why our policy refused a message, with an optional human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// The stable reason.
    pub reason: SuppressionReason,
    /// Extra context (e.g. the template's pause reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The policy that refused a message (DESIGN §4 step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The recipient opted out.
    OptedOut,
    /// Free-form text outside the 24-hour customer service window.
    WindowClosed,
    /// The template is paused by Meta.
    TemplatePaused,
    /// The template is disabled by Meta.
    TemplateDisabled,
    /// The template is not (or no longer) approved.
    TemplateNotApproved,
    /// The tenant is suspended by an operator.
    TenantSuspended,
    /// A MARKETING template to a contact who stopped marketing messages from us
    /// (Meta's `user_preferences` webhook, or an earlier 131050).
    MarketingOptedOut,
    /// A MARKETING template while the sending number's quality is low (`FLAGGED`
    /// or `RED`): marketing is held until Meta reports a better quality.
    NumberQualityLow,
}

impl SuppressionReason {
    /// Every reason, for tables and tests.
    pub const ALL: [SuppressionReason; 8] = [
        Self::OptedOut,
        Self::WindowClosed,
        Self::TemplatePaused,
        Self::TemplateDisabled,
        Self::TemplateNotApproved,
        Self::TenantSuspended,
        Self::MarketingOptedOut,
        Self::NumberQualityLow,
    ];

    /// The snake_case name used in storage, APIs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OptedOut => "opted_out",
            Self::WindowClosed => "window_closed",
            Self::TemplatePaused => "template_paused",
            Self::TemplateDisabled => "template_disabled",
            Self::TemplateNotApproved => "template_not_approved",
            Self::TenantSuspended => "tenant_suspended",
            Self::MarketingOptedOut => "marketing_opted_out",
            Self::NumberQualityLow => "number_quality_low",
        }
    }
}

impl fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded event in a message's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When we recorded it (for webhooks: when received; Meta's time is in `detail`).
    pub at: Timestamp,
    /// What happened, e.g. `webhook.delivered`, `sender.accepted`, `reconciler.requeued`.
    pub event: String,
    /// The state right after the event was applied.
    pub state_after: MessageState,
    /// What the event did.
    pub outcome: HistoryOutcome,
    /// Event data worth keeping: attempt, failure, pricing/conversation, error payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// What a recorded event did to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryOutcome {
    /// It moved the message (state, or lease/deadline of the same state).
    Advanced,
    /// It came late: only its timestamp (and wamid) was filled.
    TimestampFilled,
    /// It contradicted what we know: recorded and flagged, state kept.
    Anomaly,
}

impl HistoryOutcome {
    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Advanced => "advanced",
            Self::TimestampFilled => "timestamp_filled",
            Self::Anomaly => "anomaly",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_message() -> NewMessage {
        NewMessage {
            tenant: TenantId::parse("acme").unwrap(),
            id: MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3").unwrap(),
            to: PhoneNumber::parse("+14155550123").unwrap(),
            template_name: Some("order_update".into()),
            template_language: Some("en_US".into()),
            request: json!({"to": "+14155550123", "template": {"name": "order_update"}}),
            request_hash: "abc123".into(),
            metadata: None,
        }
    }

    #[test]
    fn a_queued_message_is_swept_expires_after_the_ttl_and_records_its_creation() {
        let policy = LifecyclePolicy::default();
        let now = Timestamp::from_secs(1_750_000_000);
        let m = Message::new_queued(new_message(), now, &policy);
        assert_eq!(m.state, MessageState::Queued);
        assert_eq!(m.rank, 0);
        assert_eq!(m.timestamps.queued_at, Some(now));
        assert_eq!(
            m.sweep_key.as_deref(),
            Some(policy.sweep_key(MessageState::Queued, &m.id).as_str())
        );
        assert_eq!(m.sweep_at, Some(now.plus_millis(policy.queued_grace_ms())));
        assert_eq!(m.expires_at, 1_750_000_000 + 90 * 86_400);
        assert_eq!(m.history["intake.queued"].outcome, HistoryOutcome::Advanced);
    }

    #[test]
    fn attempts_sent_back_by_a_hold_or_the_marketing_limit_do_not_count() {
        let policy = LifecyclePolicy::default();
        let now = Timestamp::from_secs(1_750_000_000);
        let mut m = Message::new_queued(new_message(), now, &policy);
        m.attempt = 5;
        let retry = |n: u32, failure: Value| HistoryEntry {
            at: now,
            event: "sender.retry_scheduled".into(),
            state_after: MessageState::Queued,
            outcome: HistoryOutcome::Advanced,
            detail: Some(json!({"attempt": n, "failure": failure})),
        };
        m.history.insert(
            "sender.retry_scheduled#1".into(),
            retry(
                1,
                json!({"class": "tenant", "code": 190, "title": "t", "source": "graph"}),
            ),
        );
        m.history.insert(
            "sender.retry_scheduled#2".into(),
            retry(
                2,
                json!({"class": "throttled", "code": 131049, "title": "t", "source": "graph"}),
            ),
        );
        m.history.insert(
            "sender.retry_scheduled#3".into(),
            retry(
                3,
                json!({"class": "transient", "code": 131000, "title": "t", "source": "graph"}),
            ),
        );
        assert_eq!(m.counted_attempts(), 3);
        m.attempt = 1;
        assert_eq!(m.counted_attempts(), 0, "never below zero");
    }

    #[test]
    fn a_suppressed_message_is_terminal_unswept_and_keeps_its_reason() {
        let policy = LifecyclePolicy::default();
        let now = Timestamp::from_secs(1_750_000_000);
        let s = Suppression {
            reason: SuppressionReason::OptedOut,
            detail: None,
        };
        let m = Message::new_suppressed(new_message(), s.clone(), now, &policy);
        assert_eq!(m.state, MessageState::Suppressed);
        assert_eq!(m.rank, 100);
        assert_eq!(m.suppression, Some(s));
        assert_eq!(m.timestamps.suppressed_at, Some(now));
        assert!(m.sweep_key.is_none() && m.sweep_at.is_none());
        assert!(m.has_seen("intake.suppressed"));
    }

    #[test]
    fn a_message_round_trips_through_json_with_snake_case_names() {
        let policy = LifecyclePolicy::default();
        let s = Suppression {
            reason: SuppressionReason::TemplatePaused,
            detail: Some("FIRST_PAUSE".into()),
        };
        let m = Message::new_suppressed(new_message(), s, Timestamp::from_secs(1), &policy);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["suppression"]["reason"], "template_paused");
        assert_eq!(json["timestamps"]["suppressed_at"], 1000);
        assert_eq!(json["history"]["intake.suppressed"]["outcome"], "advanced");
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn suppression_reasons_and_timestamp_fields_serialise_as_their_names() {
        for r in SuppressionReason::ALL {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        for s in MessageState::ALL {
            let f = TimestampField::for_state(s);
            assert_eq!(f.as_str(), format!("{}_at", s.as_str()));
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
    }
}
