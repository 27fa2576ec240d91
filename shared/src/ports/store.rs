//! `MessageStore`: message items with conditional writes (DESIGN §2, §8).
//!
//! The store is the source of truth; every change after intake is one
//! [`Transition`] written with one conditional write (see
//! [`crate::domain::lifecycle`] for the contract). [`record_event`] is the
//! read-decide-write loop every function uses on top of it.

use crate::domain::lifecycle::{
    self, Decision, EventKind, LifecycleEvent, LifecyclePolicy, Transition,
};
use crate::domain::{Message, MessageId, MessageState, PhoneNumber, TenantId, Timestamp, Wamid};
use async_trait::async_trait;

/// Why a store call failed (not a failed condition: that is an [`ApplyOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed or could not be reached; the call may be retried.
    #[error("message store backend failed during {operation}")]
    Backend {
        /// The operation that failed (`put_message`, `update_message`, ...).
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored item could not be read back into a [`Message`].
    #[error("stored message {key} is corrupt")]
    Corrupt {
        /// The item's key.
        key: String,
        /// The decoding error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A page cursor that this store did not hand out (or that was altered).
    #[error("invalid page cursor")]
    InvalidCursor,
    /// The read-decide-write loop kept losing races (should not happen in practice).
    #[error("gave up after {attempts} conflicting writes")]
    Contention {
        /// How many conditional writes failed in a row.
        attempts: u32,
    },
}

/// Result of [`MessageStore::create_if_absent`].
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// The item was written.
    Created,
    /// An item with the same tenant and id already exists; here it is.
    Exists(Box<Message>),
}

/// Result of [`MessageStore::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyOutcome {
    /// The condition held; the item after the write.
    Applied(Box<Message>),
    /// The condition failed; the item as it is now (nothing was written).
    Rejected(Box<Message>),
    /// No such message (for this tenant).
    NotFound,
}

/// One page of a sweep or listing query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The items, oldest deadline (or creation) first.
    pub items: Vec<Message>,
    /// Opaque cursor for the next page; `None` when this is the last one.
    pub next: Option<String>,
}

/// The filters of a message listing; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    /// Only messages in this state now.
    pub state: Option<MessageState>,
    /// Only messages to this recipient (E.164, as stored).
    pub to: Option<PhoneNumber>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
}

/// Message items with conditional writes.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Write a new message unless one with the same tenant and id exists (the
    /// idempotency check: one conditional put). On conflict, returns the existing item.
    async fn create_if_absent(&self, message: &Message) -> Result<CreateOutcome, StoreError>;

    /// The message `id` of `tenant`; another tenant's message is `None`.
    async fn get(&self, tenant: &TenantId, id: &MessageId) -> Result<Option<Message>, StoreError>;

    /// The (tenant, id) of the message Meta knows as `wamid`, if any.
    async fn find_by_wamid(
        &self,
        wamid: &Wamid,
    ) -> Result<Option<(TenantId, MessageId)>, StoreError>;

    /// Write `transition` with one conditional write. Returns the new item if the
    /// condition held, else the current one (DynamoDB: ALL_NEW / ALL_OLD on failure).
    async fn apply(
        &self,
        tenant: &TenantId,
        id: &MessageId,
        transition: &Transition,
    ) -> Result<ApplyOutcome, StoreError>;

    /// Non-terminal messages of one sweep key (`state#shard`) whose deadline is at or
    /// before `due`, earliest first, at most `limit`, continuing after `cursor`.
    async fn sweep(
        &self,
        sweep_key: &str,
        due: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError>;

    /// A tenant's messages created at or after `since`, newest first, optionally of one
    /// state (operators' `wa messages list`): [`MessageStore::list_messages`] with
    /// those two filters.
    async fn list_by_tenant(
        &self,
        tenant: &TenantId,
        state: Option<MessageState>,
        since: Option<Timestamp>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        let query = MessageQuery {
            state,
            since,
            ..MessageQuery::default()
        };
        self.list_messages(tenant, &query, limit, cursor).await
    }

    /// A tenant's messages matching `query`, newest first (creation time, then key),
    /// at most `limit`, continuing after `cursor`. Read through an index: the tenant's
    /// creation-time index, or the recipient's when `query.to` is set. A cursor is a
    /// position in that order, so messages created while a caller pages never shift
    /// the pages after it (new ones sort before the first page).
    async fn list_messages(
        &self,
        tenant: &TenantId,
        query: &MessageQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError>;

    /// Claim a message for sending: `queued`, or `sending` with an expired lease, moves
    /// to `sending` with the attempt incremented and a new lease. `None` when someone
    /// else holds it or it is done: the caller drops the record.
    ///
    /// One blind conditional write in the common case. When it is rejected, the claim
    /// is decided on the returned item: a message whose history is full is still
    /// claimable (the blind write assumed room in the history, so it cannot hold).
    async fn claim_for_send(
        &self,
        tenant: &TenantId,
        id: &MessageId,
        now: Timestamp,
        policy: &LifecyclePolicy,
    ) -> Result<Option<Message>, StoreError> {
        let claim = LifecycleEvent::new(now, EventKind::Claimed);
        Ok(
            match record_event(self, tenant, id, &claim, policy).await? {
                Recorded::Written { message, .. } => Some(*message),
                Recorded::Duplicate(_) | Recorded::NotFound => None,
            },
        )
    }
}

/// What [`record_event`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// A write happened; the decision written and the item after it.
    Written {
        /// [`Decision::Advance`], [`Decision::FillTimestamp`] or [`Decision::Anomaly`].
        decision: Box<Decision>,
        /// The item after the write.
        message: Box<Message>,
    },
    /// Nothing to write (a duplicate, or a reconciler action that no longer applies).
    Duplicate(Box<Message>),
    /// No such message.
    NotFound,
}

/// How many times [`record_event`] re-decides after losing a race before giving up.
pub const MAX_RECORD_ATTEMPTS: u32 = 8;

/// Apply one lifecycle event: the blind write first when the event allows it (one
/// write in the common case), else (or when its condition fails) decide on the current
/// item and write that decision conditionally, re-deciding if another writer got there
/// first.
pub async fn record_event<S: MessageStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    id: &MessageId,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
) -> Result<Recorded, StoreError> {
    let mut current = match lifecycle::decide_blind(id, event, policy) {
        Some(blind) => match store.apply(tenant, id, &blind).await? {
            ApplyOutcome::Applied(m) => {
                return Ok(Recorded::Written {
                    decision: Box::new(Decision::Advance(blind)),
                    message: m,
                });
            }
            ApplyOutcome::Rejected(m) => *m,
            ApplyOutcome::NotFound => return Ok(Recorded::NotFound),
        },
        None => match store.get(tenant, id).await? {
            Some(m) => m,
            None => return Ok(Recorded::NotFound),
        },
    };
    for _ in 0..MAX_RECORD_ATTEMPTS {
        let decision = lifecycle::decide(&current, event, policy);
        let Some(transition) = decision.transition() else {
            return Ok(Recorded::Duplicate(Box::new(current)));
        };
        match store.apply(tenant, id, transition).await? {
            ApplyOutcome::Applied(m) => {
                return Ok(Recorded::Written {
                    decision: Box::new(decision),
                    message: m,
                });
            }
            ApplyOutcome::Rejected(m) => current = *m,
            ApplyOutcome::NotFound => return Ok(Recorded::NotFound),
        }
    }
    Err(StoreError::Contention {
        attempts: MAX_RECORD_ATTEMPTS,
    })
}
