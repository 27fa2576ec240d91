//! The message lifecycle (DESIGN §3): pure decisions about what an event does to a
//! stored [`Message`](crate::domain::message::Message), and the exact conditional
//! writes that carry them out.
//!
//! # The contract with the stores
//!
//! Every change to a message after intake is one [`Transition`]: a condition
//! (`guard` + the history slot's condition) and an update (`patch` + one history
//! entry), written in **one** conditional write. [`Transition::holds`] and
//! [`Transition::apply_to`] define the semantics exactly; the SQLite store runs them
//! in a transaction and the DynamoDB store translates them (each variant documents its
//! expression). Every transition that stores a history entry also requires that its
//! fingerprint is not yet in `history` and that `history` is below the cap; past the
//! cap, the entry is only counted in `history_dropped`.
//!
//! # Read-decide-write, and the blind first try
//!
//! [`decide`] takes the current item and an event and returns one of four outcomes:
//! [`Decision::Advance`], [`Decision::FillTimestamp`], [`Decision::Duplicate`]
//! (nothing to write) or [`Decision::Anomaly`] (recorded and flagged, state kept).
//! If the write's condition fails, someone else wrote in between: decide again on the
//! fresh item.
//!
//! Events that usually advance — a claim, the sender's `Accepted`, and provider
//! statuses — can skip the read. The store:
//! 1. writes [`decide_blind`] (an `Advance` guarded by `RankBelow`, or `Claimable`
//!    for a claim) with `ReturnValuesOnConditionCheckFailure = ALL_OLD`;
//! 2. if the condition fails, calls [`decide`] with the returned old item and writes
//!    that decision (conditionally again; on failure, read and repeat).
//!
//! Both paths end in the same item (property-tested).
//!
//! # Rules in one place
//!
//! - Ranks (see [`crate::domain::state`]) only go up, except two explicit, guarded
//!   moves: back to `queued` from `sending` (retry, expired lease, ambiguous retry),
//!   and `sent` (30) to `failed` unconfirmed (25) past the webhook horizon, which any
//!   later webhook above `sent` corrects.
//! - A provider status above the current rank advances; one at or below fills its
//!   timestamp if still empty (`delivered` after `read`), else is a duplicate.
//!   `played` counts as `read`. Provider evidence clears a failure, including our own
//!   guesses (`ambiguous`, `unconfirmed`, rank 25).
//! - `failed` from Meta after `delivered`/`read` is an anomaly
//!   ([`flags::FAILED_AFTER_DELIVERED`]); any status after a terminal failure or a
//!   suppression is an anomaly.
//! - Right before its Graph call the sender writes the dispatch mark
//!   (`Dispatched`, `dispatched_at`). From then on the request may have reached
//!   Meta, so the claim is never taken over (`Claimable` excludes it) and an
//!   expired lease is not requeued but marked ambiguous (`DispatchLapsed`), exactly
//!   as if the sender had recorded the lost answer itself: whatever happens to the
//!   outcome write, there is no blind resend. Going back to `queued` clears the mark.
//! - The sender's reports apply only while it holds the claim (`sending` with its
//!   attempt); otherwise they are stale anomalies. `Accepted` is the exception: Meta's
//!   answer is evidence, so it advances anything below `accepted` (whatever the
//!   attempt), and only fills `accepted_at`/`wamid` when a webhook or a correctable
//!   failure got there first (a later webhook corrects the latter). A second wamid is
//!   flagged [`flags::DUPLICATE_SEND`].
//! - A report that comes too early or too late for the reconciler (lease not expired,
//!   grace not over, state moved on) is `Duplicate`: nothing to write.
//! - Timestamps record the first time a state was reached (`if_not_exists`), except
//!   `failed_at`, which belongs to the current failure.
//! - Non-terminal messages carry a sweep key + deadline: queued -> now + queued grace
//!   (after a retry: `not_before` + grace); sending -> `lease_until`, or
//!   `ambiguous_at` + ambiguous grace; accepted/sent -> now + webhook horizon.

mod decide;
mod event;
mod history;
mod internal;
mod patch;
mod sweep;

#[cfg(test)]
mod tests;

pub use decide::{claim_transition, decide, decide_blind};
pub use event::{EventKind, LifecycleEvent, ProviderStatus, ProviderStatusKind};
pub use history::{MAX_DETAIL_BYTES, flags};
pub use internal::{ambiguous_failure, unconfirmed_failure};
pub use patch::{
    Change, Decision, Guard, HistorySlot, Patch, StateChange, Sweep, TimestampWrite, Transition,
};
pub use sweep::{LifecyclePolicy, sweep_key, sweep_shard};
