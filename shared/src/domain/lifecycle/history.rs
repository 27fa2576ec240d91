//! Building transitions: the history entry, the cap, and the common patch shapes.

use super::event::LifecycleEvent;
use super::patch::{Change, Guard, HistorySlot, Patch, StateChange, Sweep, Transition};
use super::sweep::LifecyclePolicy;
use crate::domain::ids::MessageId;
use crate::domain::message::{HistoryEntry, HistoryOutcome, Message};
use crate::domain::state::MessageState;
use crate::domain::time::Timestamp;

/// Anomaly flags added to [`Message::flags`](crate::domain::message::Message::flags).
pub mod flags {
    /// Meta reported `failed` after `delivered`/`read`; the state was kept.
    pub const FAILED_AFTER_DELIVERED: &str = "failed_after_delivered";
    /// A provider status arrived for a message our policy suppressed.
    pub const STATUS_AFTER_SUPPRESSED: &str = "status_after_suppressed";
    /// A provider status arrived for a message that failed for good (e.g. rejected).
    pub const STATUS_AFTER_TERMINAL_FAILURE: &str = "status_after_terminal_failure";
    /// The Graph API accepted an attempt after the message became terminal.
    pub const ACCEPTED_AFTER_TERMINAL: &str = "accepted_after_terminal";
    /// Two attempts were accepted with different wamids: the recipient may get it twice.
    pub const DUPLICATE_SEND: &str = "duplicate_send";
    /// A sender reported on an attempt that no longer holds the claim.
    pub const STALE_SENDER_EVENT: &str = "stale_sender_event";
}

/// Where the entry goes given what the decision saw: `None` (blind) means "assume room";
/// if the history is in fact full the blind write fails and `decide` picks `Full`.
pub(crate) fn slot(current: Option<&Message>, policy: &LifecyclePolicy) -> HistorySlot {
    let cap = policy.history_cap;
    match current {
        Some(m) if m.history.len() >= cap as usize => HistorySlot::Full { cap },
        _ => HistorySlot::Append { cap },
    }
}

/// Assemble a transition for `event`; the entry's `state_after` is the patch's state,
/// or `unchanged` when the patch keeps the state.
pub(crate) fn transition(
    current: Option<&Message>,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
    guard: Guard,
    patch: Patch,
    unchanged: MessageState,
    outcome: HistoryOutcome,
) -> Transition {
    let state_after = patch.state.map_or(unchanged, |s| s.state);
    Transition {
        guard,
        entry: HistoryEntry {
            at: event.at,
            event: event.kind.name().to_owned(),
            state_after,
            outcome,
            detail: event.detail(),
        },
        fingerprint: event.fingerprint(),
        slot: slot(current, policy),
        patch,
        unseen: None,
    }
}

/// Record a contradicting event: flag it, keep everything else. The guard only asks that
/// the rank has not dropped below what the decision saw.
pub(crate) fn anomaly(
    current: &Message,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
    flag: &str,
) -> Transition {
    let mut patch = Patch::touch(event.at);
    patch.add_flags.insert(flag.to_owned());
    transition(
        Some(current),
        event,
        policy,
        Guard::RankAtLeast(current.rank),
        patch,
        current.state,
        HistoryOutcome::Anomaly,
    )
}

/// Record a late lower-rank event that only fills fields set-if-absent.
pub(crate) fn fill(
    current: &Message,
    event: &LifecycleEvent,
    policy: &LifecyclePolicy,
    patch: Patch,
) -> Transition {
    transition(
        Some(current),
        event,
        policy,
        Guard::RankAtLeast(current.rank),
        patch,
        current.state,
        HistoryOutcome::TimestampFilled,
    )
}

/// A patch that moves to `state` (with its rank) at `at`.
pub(crate) fn move_to(state: MessageState, rank: u8, at: Timestamp) -> Patch {
    let mut patch = Patch::touch(at);
    patch.state = Some(StateChange { state, rank });
    patch
}

/// The sweep entry of a message entering `state`: set with `deadline` when the state
/// is swept, removed otherwise.
pub(crate) fn sweep_for(
    policy: &LifecyclePolicy,
    id: &MessageId,
    state: MessageState,
    deadline: Timestamp,
) -> Change<Sweep> {
    if state.is_swept() {
        Change::Set(Sweep {
            key: policy.sweep_key(state, id),
            at: deadline,
        })
    } else {
        Change::Clear
    }
}
