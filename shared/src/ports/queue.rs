//! The `WorkQueue` port: per-tenant queues with visibility timeouts, delays and
//! a dead-letter queue (DESIGN §4 step 5, §5).
//!
//! The queue is only a wake-up call: the store is the source of truth and the
//! sender's claim makes duplicate deliveries harmless, so the port promises
//! at-least-once delivery and nothing stronger.

use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// Most messages one `receive` returns (SQS's limit, kept by every adapter).
pub const MAX_RECEIVE_BATCH: usize = 10;
/// Longest delay on send (SQS `DelaySeconds` maximum: 15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Longest visibility timeout (SQS maximum: 12 hours).
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// Longest long-poll wait of a `receive` (SQS maximum: 20 seconds).
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// Longest queue name accepted by `ensure_queue`: SQS allows 80 characters and
/// the dead-letter queue appends [`DEAD_LETTER_SUFFIX`].
pub const MAX_QUEUE_NAME_LEN: usize = 76;
/// Suffix of the dead-letter queue's name that `ensure_queue` creates.
pub const DEAD_LETTER_SUFFIX: &str = "-dlq";

/// An opaque address of a queue: the queue URL on SQS, the queue name on SQLite.
///
/// Obtain one from [`WorkQueue::ensure_queue`] or from configuration (the
/// tenant's stored queue URL); never build one by string formatting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueRef(String);

impl QueueRef {
    /// Wrap an adapter-specific address (a queue URL or a queue name).
    pub fn new(address: impl Into<String>) -> Self {
        Self(address.into())
    }

    /// The adapter-specific address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The queue's own id of a message (not our `MessageId`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueMessageId(String);

impl QueueMessageId {
    /// Wrap an id given by the queue backend.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as the backend gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The handle of one receipt of a message: needed to delete it or change its
/// visibility. Each receive of the same message gives a new handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptHandle(String);

impl ReceiptHandle {
    /// Wrap a handle given by the queue backend (or by an SQS event record).
    pub fn new(handle: impl Into<String>) -> Self {
        Self(handle.into())
    }

    /// The handle as the backend gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a queue (and its dead-letter queue) is set up by [`WorkQueue::ensure_queue`].
///
/// The pipeline's queues are defined once in [`crate::queues`] (`SEND`,
/// `WEBHOOK_INBOX`); pass one of those (or one with a field overridden) rather than
/// writing numbers here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// Receives after which a message moves to the dead-letter queue (1..=1000).
    pub max_receive_count: u32,
    /// Default visibility timeout of a received message (at most 12 hours).
    pub visibility_timeout: Duration,
    /// How long an undeleted message is kept in the queue (60 s ..= 14 days).
    pub message_retention: Duration,
    /// How long a dead letter is kept (60 s ..= 14 days).
    pub dead_letter_retention: Duration,
    /// Server-side encryption with SQS-managed keys (`SqsManagedSseEnabled`) on both
    /// queues. SQS only: the embedded SQLite queues live in the local file as is.
    pub encrypted: bool,
}

impl Default for QueueSpec {
    /// A tenant's send queue: [`crate::queues::SEND`]'s settings (visibility 180 s,
    /// 5 receives, 4-day retention, 14-day dead letters, SSE). The webhook inbox is
    /// [`crate::queues::WEBHOOK_INBOX`]`.spec`.
    fn default() -> Self {
        crate::queues::SEND.spec
    }
}

/// One message handed out by [`WorkQueue::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The queue's id of the message (stable across receives).
    pub id: QueueMessageId,
    /// The handle of this receipt.
    pub receipt: ReceiptHandle,
    /// The body as sent.
    pub body: String,
    /// How many times the message has been received, this time included (1 on first receipt).
    pub receive_count: u32,
}

/// A message waiting in a dead-letter queue, as listed by [`WorkQueue::dead_letters`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter queue's id of the message.
    pub id: QueueMessageId,
    /// The body as originally sent.
    pub body: String,
}

/// Approximate message counts of a queue (exact on SQLite, approximate on SQS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Messages that a receive could return now.
    pub visible: u64,
    /// Messages received and not yet deleted whose visibility timeout runs.
    pub in_flight: u64,
    /// Messages sent with a delay that has not passed yet.
    pub delayed: u64,
}

/// One accepted entry of [`WorkQueue::send_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEntry {
    /// Position of the body in the slice given to `send_many`.
    pub index: usize,
    /// The queue's id of the new message.
    pub id: QueueMessageId,
}

/// One refused entry of [`WorkQueue::send_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFailure {
    /// Position of the body in the slice given to `send_many`.
    pub index: usize,
    /// The backend's error code (SQS's per-entry code, or the failed call's code).
    pub code: String,
    /// The backend's message, with the cause chain of a failed call.
    pub message: String,
    /// True when the request itself was wrong (retrying it unchanged will fail again).
    pub sender_fault: bool,
}

/// What [`WorkQueue::send_many`] did with each body: every index appears exactly
/// once, in `sent` or in `failed`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchSendOutcome {
    /// Entries now in the queue, by ascending index.
    pub sent: Vec<SentEntry>,
    /// Entries not sent, by ascending index.
    pub failed: Vec<EntryFailure>,
}

impl BatchSendOutcome {
    /// True when every entry was sent.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Everything that can go wrong with a queue operation.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The arguments break a limit of the port (checked before any call).
    #[error("invalid queue request: {0}")]
    InvalidArgument(String),
    /// The queue (or its dead-letter queue) does not exist.
    #[error("queue {0} does not exist")]
    QueueNotFound(String),
    /// The receipt handle is stale or unknown: the message is no longer in flight
    /// under that receipt (deleted, or received again by someone else).
    #[error("receipt handle is not in flight")]
    ReceiptNotInFlight,
    /// The backend failed or could not be reached; the call may be retried.
    #[error("queue backend failed during {operation}")]
    Backend {
        /// The operation that failed (SQS's name, e.g. `SendMessage`, or the port's).
        operation: &'static str,
        /// The backend's error, with its cause chain.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Per-tenant work queues: send, batch send, receive, delay, delete, dead letters.
///
/// Delivery is at least once. Every adapter passes `testkit::queue_conformance`.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Create `name` and its dead-letter queue `name-dlq` wired by a redrive policy
    /// of `spec.max_receive_count`; if they exist, bring their settings to `spec`.
    /// Idempotent. Returns the queue's address.
    async fn ensure_queue(&self, name: &str, spec: &QueueSpec) -> Result<QueueRef, QueueError>;

    /// Send one message that becomes visible after `delay` (at most 15 minutes;
    /// SQS rounds up to whole seconds).
    async fn send(
        &self,
        queue: &QueueRef,
        body: &str,
        delay: Duration,
    ) -> Result<QueueMessageId, QueueError>;

    /// Send any number of messages (chunked to SQS's 10 per batch call). Per-entry
    /// failures, and entries of a batch call that failed as a whole, are reported
    /// in the outcome; `Err` means nothing was attempted.
    async fn send_many(
        &self,
        queue: &QueueRef,
        bodies: &[String],
    ) -> Result<BatchSendOutcome, QueueError>;

    /// Receive up to `max` (1..=10) visible messages, hiding them for
    /// `visibility_timeout`; wait up to `wait` (at most 20 s) for the first one.
    /// A message received more than the queue's `max_receive_count` times moves
    /// to the dead-letter queue instead of being returned.
    async fn receive(
        &self,
        queue: &QueueRef,
        max: usize,
        visibility_timeout: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Make an in-flight message visible again after `timeout` from now (0: at
    /// once). The sender's retry delay.
    async fn change_visibility(
        &self,
        queue: &QueueRef,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), QueueError>;

    /// Delete a received message. A stale receipt is not an error.
    async fn delete(&self, queue: &QueueRef, receipt: &ReceiptHandle) -> Result<(), QueueError>;

    /// Counts of visible, in-flight and delayed messages.
    async fn approximate_depth(&self, queue: &QueueRef) -> Result<QueueDepth, QueueError>;

    /// Up to `max` messages of the queue's dead-letter queue, left in place.
    async fn dead_letters(
        &self,
        queue: &QueueRef,
        max: usize,
    ) -> Result<Vec<DeadLetter>, QueueError>;

    /// Move up to `max` dead letters back to `queue` (by receive, send, delete,
    /// since moto lacks `StartMessageMoveTask`). Returns how many were moved.
    /// At least once: a crash between send and delete leaves a duplicate.
    async fn redrive_dead_letters(&self, queue: &QueueRef, max: usize)
    -> Result<usize, QueueError>;
}

/// Whether `name` is a valid queue name (SQS's rules: 1-80 of `[A-Za-z0-9_-]`).
pub fn check_queue_name(name: &str) -> Result<(), QueueError> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.is_empty() || name.len() > MAX_QUEUE_NAME_LEN || !valid_chars {
        return Err(QueueError::InvalidArgument(format!(
            "queue name must be 1..={MAX_QUEUE_NAME_LEN} characters of A-Z a-z 0-9 - _"
        )));
    }
    Ok(())
}

/// Whether a queue spec is within SQS's limits (receive count, visibility, retention).
pub fn check_spec(spec: &QueueSpec) -> Result<(), QueueError> {
    let retention = Duration::from_secs(60)..=Duration::from_secs(14 * 24 * 60 * 60);
    if !(1..=1000).contains(&spec.max_receive_count) {
        return Err(QueueError::InvalidArgument(
            "max_receive_count must be 1..=1000".into(),
        ));
    }
    check_visibility(spec.visibility_timeout)?;
    if !retention.contains(&spec.message_retention)
        || !retention.contains(&spec.dead_letter_retention)
    {
        return Err(QueueError::InvalidArgument(
            "retention must be 60 s..=14 days".into(),
        ));
    }
    Ok(())
}

/// Whether a send delay is within SQS's 15 minutes.
pub fn check_delay(delay: Duration) -> Result<(), QueueError> {
    if delay > MAX_DELAY {
        return Err(QueueError::InvalidArgument(
            "delay must be at most 15 minutes".into(),
        ));
    }
    Ok(())
}

/// Whether a visibility timeout is within SQS's 12 hours.
pub fn check_visibility(timeout: Duration) -> Result<(), QueueError> {
    if timeout > MAX_VISIBILITY_TIMEOUT {
        return Err(QueueError::InvalidArgument(
            "visibility timeout must be at most 12 hours".into(),
        ));
    }
    Ok(())
}

/// Whether a receive's batch size, visibility and long-poll wait are within SQS's limits.
pub fn check_receive(max: usize, visibility: Duration, wait: Duration) -> Result<(), QueueError> {
    if !(1..=MAX_RECEIVE_BATCH).contains(&max) {
        return Err(QueueError::InvalidArgument(
            "receive max must be 1..=10".into(),
        ));
    }
    if wait > MAX_WAIT {
        return Err(QueueError::InvalidArgument(
            "receive wait must be at most 20 seconds".into(),
        ));
    }
    check_visibility(visibility)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_sqs_rules_and_leave_room_for_the_dlq_suffix() {
        assert!(check_queue_name("tenant_acme-1").is_ok());
        assert!(check_queue_name(&"a".repeat(76)).is_ok());
        for bad in ["", "has space", "dot.fifo", &"a".repeat(77)] {
            assert!(check_queue_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn limits_are_checked_before_any_call() {
        assert!(check_receive(0, Duration::ZERO, Duration::ZERO).is_err());
        assert!(check_receive(11, Duration::ZERO, Duration::ZERO).is_err());
        assert!(check_receive(10, MAX_VISIBILITY_TIMEOUT, MAX_WAIT).is_ok());
        assert!(check_receive(1, Duration::ZERO, Duration::from_secs(21)).is_err());
        assert!(check_delay(MAX_DELAY).is_ok());
        assert!(check_delay(MAX_DELAY + Duration::from_secs(1)).is_err());
        assert!(check_spec(&QueueSpec::default()).is_ok());
        let zero_receives = QueueSpec {
            max_receive_count: 0,
            ..QueueSpec::default()
        };
        assert!(check_spec(&zero_receives).is_err());
        let short_retention = QueueSpec {
            message_retention: Duration::from_secs(59),
            ..QueueSpec::default()
        };
        assert!(check_spec(&short_retention).is_err());
    }
}
