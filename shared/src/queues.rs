//! The pipeline's queues, defined once: each tenant's send queue (with its DLQ) and
//! the webhook inbox (with its DLQ), their settings and how Lambda consumes them.
//!
//! This is the one source of those numbers (issue 3, point 2). Every producer uses
//! it: `WorkQueue::ensure_queue` callers (`wa tenants add` on AWS and SQLite, tests
//! on moto and SQLite) pass [`SEND`]`.spec` or [`WEBHOOK_INBOX`]`.spec`, and the
//! CLI's defaults for the `SendQueue*` stack outputs are [`SEND`]'s values.
//! `infra/template.yaml` cannot import Rust, so it is checked instead: a unit test
//! (`queues_tests.rs`) reads the template and fails when `Mappings.Tuning`, the
//! inbox queues or the webhook function's SQS event disagree with these definitions.

use crate::domain::{Message, MessageId, TenantId};
use crate::ports::QueueSpec;
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::time::Duration;

/// The body of a send queue's message, `{"tenant": …, "id": …}`: a wake-up call for
/// one stored message. Intake and the reconciler write it; the sender and `wa dlq`
/// read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendQueueMessage {
    /// The message's tenant.
    pub tenant: TenantId,
    /// The message's id.
    pub id: MessageId,
    /// It carries the next probe of a held tenant (`"probe": true`): while the hold
    /// lasts it is queued again, not dropped like the tenant's other records.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
}

impl SendQueueMessage {
    /// The reference to `message`.
    pub fn of(message: &Message) -> Self {
        Self {
            tenant: message.tenant.clone(),
            id: message.id.clone(),
            probe: false,
        }
    }

    /// The reference to `message` as the carrier of its tenant's next probe.
    pub fn probe_carrier(message: &Message) -> Self {
        Self {
            probe: true,
            ..Self::of(message)
        }
    }

    /// The JSON body put on the queue.
    pub fn to_body(&self) -> String {
        // Two plain strings always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Read a queue body; `None` when it is not such a reference.
    pub fn parse(body: &str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }
}

/// What SQS allows as an event source mapping's `ScalingConfig.MaximumConcurrency`.
pub const MAXIMUM_CONCURRENCY_BOUNDS: RangeInclusive<u32> = 2..=1000;

/// AWS asks for a visibility timeout of at least this many times the consuming
/// function's timeout, so a record is not delivered again while an invocation that
/// was throttled or retried still holds it.
pub const VISIBILITY_TO_TIMEOUT_RATIO: u32 = 6;

/// How many invocations an event source mapping runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// The same for every queue of this kind.
    Fixed(u32),
    /// Each tenant's own limit (its profile's `max_concurrency`), within
    /// [`MAXIMUM_CONCURRENCY_BOUNDS`], so one tenant's campaign cannot starve another.
    PerTenant,
}

/// The Lambda function that drains a queue through an event source mapping (always
/// with `FunctionResponseTypes = [ReportBatchItemFailures]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumer {
    /// The template's logical id of the consuming function.
    pub function: &'static str,
    /// Records per invocation (`BatchSize`).
    pub batch_size: u32,
    /// `ScalingConfig.MaximumConcurrency`.
    pub max_concurrency: Concurrency,
    /// The consuming function's timeout; the visibility timeout is at least
    /// [`VISIBILITY_TO_TIMEOUT_RATIO`] times this.
    pub function_timeout: Duration,
}

/// One queue (and its dead-letter queue) of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDefinition {
    /// What the queue is for, for messages and docs.
    pub purpose: &'static str,
    /// Settings of the queue pair, as `WorkQueue::ensure_queue` applies them.
    pub spec: QueueSpec,
    /// Who consumes it.
    pub consumer: Consumer,
}

const DAY: u64 = 24 * 60 * 60;

/// A tenant's send queue `{stage}-{prefix}-send-{tenant}` and its `-dlq`, created by
/// `wa tenants add` (not by the template), consumed by the sender.
///
/// - Visibility 180 s: 6x the sender's 30 s timeout (AWS's rule for Lambda
///   consumers). The sender sets each retry's delay itself (ChangeMessageVisibility).
/// - 5 receives before the DLQ: a record comes back only on a retry or an
///   infrastructure error; the store's attempt budget ends a message's retries, the
///   DLQ catches records that keep failing before anything could be recorded.
/// - Retention 4 days (SQS's default): the queue is only a wake-up call, the
///   reconciler enqueues a stale `queued` message again; dead letters are kept the
///   maximum 14 days for an operator to look at (`wa dlq list`).
pub const SEND: QueueDefinition = QueueDefinition {
    purpose: "a tenant's send queue",
    spec: QueueSpec {
        max_receive_count: 5,
        visibility_timeout: Duration::from_secs(180),
        message_retention: Duration::from_secs(4 * DAY),
        dead_letter_retention: Duration::from_secs(14 * DAY),
        encrypted: true,
    },
    consumer: Consumer {
        function: "SenderFunction",
        batch_size: 10,
        max_concurrency: Concurrency::PerTenant,
        function_timeout: Duration::from_secs(30),
    },
};

/// The webhook inbox `{stage}-{prefix}-webhook-inbox` and its `-dlq`, in the template:
/// where the webhook parks signed bodies it could not store, replayed by the same
/// function.
///
/// Those bodies are the only copy of the statuses they carry, so both queues keep
/// messages the maximum 14 days. Visibility 60 s is 6x the webhook's 10 s timeout;
/// replays run at concurrency 2 (the smallest SQS allows) so they stay gentle on a
/// store that may still be struggling.
pub const WEBHOOK_INBOX: QueueDefinition = QueueDefinition {
    purpose: "the webhook inbox",
    spec: QueueSpec {
        max_receive_count: 5,
        visibility_timeout: Duration::from_secs(60),
        message_retention: Duration::from_secs(14 * DAY),
        dead_letter_retention: Duration::from_secs(14 * DAY),
        encrypted: true,
    },
    consumer: Consumer {
        function: "WebhookFunction",
        batch_size: 10,
        max_concurrency: Concurrency::Fixed(2),
        function_timeout: Duration::from_secs(10),
    },
};

/// Every queue definition.
pub const ALL: [&QueueDefinition; 2] = [&SEND, &WEBHOOK_INBOX];

/// Whole seconds of `d` as a `u32`, the unit of SQS attributes, the template and the
/// CLI's settings (every SQS duration fits).
pub fn seconds_u32(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "queues_tests.rs"]
mod tests;
