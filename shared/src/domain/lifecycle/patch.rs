//! What a store writes: a [`Transition`] = one condition + one update, in one write.
//!
//! The condition is `guard AND history slot condition`; the update is the [`Patch`]
//! plus the history write. [`Transition::holds`] and [`Transition::apply_to`] are the
//! exact in-memory semantics: the SQLite store runs them inside a transaction, the
//! DynamoDB store translates them to a `ConditionExpression` and an
//! `UpdateExpression` (suggested translations are given on each item), and one
//! conformance suite proves both agree with these functions.

use crate::domain::failure::Failure;
use crate::domain::ids::Wamid;
use crate::domain::message::{HistoryEntry, Message, Suppression, TimestampField};
use crate::domain::state::MessageState;
use crate::domain::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The state-dependent part of a write's condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "guard", rename_all = "snake_case")]
pub enum Guard {
    /// Forward-only write: `#rank < :rank`.
    RankBelow(u8),
    /// The rank has not dropped below what the decision saw (late fills, anomalies):
    /// `#rank >= :rank`.
    RankAtLeast(u8),
    /// Explicit internal move: `#state = :state` and, when given,
    /// `AND attempt = :attempt` (the attempt is the fencing token of a claim).
    StateIs {
        /// Required state.
        state: MessageState,
        /// Required attempt, if any.
        attempt: Option<u32>,
    },
    /// The sender still holds the claim of `attempt` (its lease may have run out, but
    /// nobody re-claimed it and it was not given up as ambiguous):
    /// `#state = :sending AND attempt = :attempt AND attribute_exists(lease_until)`.
    ClaimHeld {
        /// The claim's attempt.
        attempt: u32,
    },
    /// A claim: `#state = :queued OR (#state = :sending AND lease_until < :now AND
    /// attribute_not_exists(dispatched_at))`. An ambiguous send has no lease and a
    /// dispatched one may have reached Meta, so neither is ever claimable (never
    /// blind-retried): only a claim that died before its Graph call is taken over.
    Claimable {
        /// The claim's instant.
        now: Timestamp,
    },
    /// The reconciler acts on an expired claim:
    /// `#state = :sending AND attempt = :attempt AND lease_until < :now AND
    /// attribute_[not_]exists(dispatched_at)`: whether the attempt had reached its
    /// Graph call decides between a requeue and an ambiguous mark.
    LeaseExpired {
        /// The attempt whose lease expired.
        attempt: u32,
        /// The reconciler's instant.
        now: Timestamp,
        /// Whether the attempt was dispatched (`dispatched_at` present).
        dispatched: bool,
    },
}

fn lease_expired(m: &Message, now: Timestamp) -> bool {
    // A missing lease is not expired: comparisons with a missing attribute are false
    // in DynamoDB, and `NULL < x` is not true in SQLite.
    m.lease_until.is_some_and(|l| l < now)
}

impl Guard {
    /// Whether `m` satisfies the guard.
    pub fn holds(&self, m: &Message) -> bool {
        match *self {
            Guard::RankBelow(rank) => m.rank < rank,
            Guard::RankAtLeast(rank) => m.rank >= rank,
            Guard::StateIs { state, attempt } => {
                m.state == state && attempt.is_none_or(|a| m.attempt == a)
            }
            Guard::ClaimHeld { attempt } => {
                m.state == MessageState::Sending && m.attempt == attempt && m.lease_until.is_some()
            }
            Guard::Claimable { now } => {
                m.state == MessageState::Queued
                    || (m.state == MessageState::Sending
                        && lease_expired(m, now)
                        && m.dispatched_at.is_none())
            }
            Guard::LeaseExpired {
                attempt,
                now,
                dispatched,
            } => {
                m.state == MessageState::Sending
                    && m.attempt == attempt
                    && lease_expired(m, now)
                    && m.dispatched_at.is_some() == dispatched
            }
        }
    }
}

/// Set or remove an optional attribute (`SET a = :v` / `REMOVE a`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change<T> {
    /// `SET`
    Set(T),
    /// `REMOVE`
    Clear,
}

impl<T: Clone> Change<T> {
    fn apply(&self, slot: &mut Option<T>) {
        *slot = match self {
            Change::Set(v) => Some(v.clone()),
            Change::Clear => None,
        };
    }
}

/// How one timestamp field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampWrite {
    /// Set only if absent: `SET f = if_not_exists(f, :v)` (first-time semantics).
    Fill(Timestamp),
    /// Overwrite: `SET f = :v` (only `failed_at`, which goes with the failure).
    Set(Timestamp),
    /// `REMOVE f` (only `failed_at`, when provider evidence clears a failure).
    Clear,
}

/// The new sweep index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// `"{state}#{shard}"`
    pub key: String,
    /// Deadline.
    pub at: Timestamp,
}

/// The new state and its rank (always written together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// New state.
    pub state: MessageState,
    /// `state.rank(failure after the write)`.
    pub rank: u8,
}

/// The fields a transition changes; `None`/empty means "leave as is".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patch {
    /// New state and rank.
    pub state: Option<StateChange>,
    /// `SET attempt = attempt + :one` (only a claim does this).
    pub increment_attempt: bool,
    /// Set only if absent: `SET wamid = if_not_exists(wamid, :w)`.
    pub wamid: Option<Wamid>,
    /// `SET message_status = :s`.
    pub message_status: Option<String>,
    /// Timestamp writes, at most one per field.
    pub timestamps: BTreeMap<TimestampField, TimestampWrite>,
    /// Failure set or removed.
    pub failure: Option<Change<Failure>>,
    /// Lease set or removed.
    pub lease_until: Option<Change<Timestamp>>,
    /// `ambiguous_at` set or removed.
    pub ambiguous_at: Option<Change<Timestamp>>,
    /// `dispatched_at` set or removed.
    pub dispatched_at: Option<Change<Timestamp>>,
    /// `SET suppression = :s`.
    pub suppression: Option<Suppression>,
    /// Sweep key + deadline set, or both removed (the state is no longer swept).
    pub sweep: Option<Change<Sweep>>,
    /// `SET updated_at = :at` (always written).
    pub updated_at: Timestamp,
    /// `ADD flags :set` (string set).
    pub add_flags: BTreeSet<String>,
}

impl Patch {
    /// A patch that only stamps `updated_at`.
    pub fn touch(at: Timestamp) -> Self {
        Self {
            state: None,
            increment_attempt: false,
            wamid: None,
            message_status: None,
            timestamps: BTreeMap::new(),
            failure: None,
            lease_until: None,
            ambiguous_at: None,
            dispatched_at: None,
            suppression: None,
            sweep: None,
            updated_at: at,
            add_flags: BTreeSet::new(),
        }
    }

    /// Apply the patch (not the history write) to `m`.
    pub fn apply_to(&self, m: &mut Message) {
        if let Some(change) = self.state {
            m.state = change.state;
            m.rank = change.rank;
        }
        if self.increment_attempt {
            m.attempt = m.attempt.saturating_add(1);
        }
        if m.wamid.is_none() {
            m.wamid.clone_from(&self.wamid);
        }
        if let Some(status) = &self.message_status {
            m.message_status = Some(status.clone());
        }
        for (field, write) in &self.timestamps {
            let slot = m.timestamps.get_mut(*field);
            match *write {
                TimestampWrite::Fill(at) => {
                    slot.get_or_insert(at);
                }
                TimestampWrite::Set(at) => *slot = Some(at),
                TimestampWrite::Clear => *slot = None,
            }
        }
        if let Some(c) = &self.failure {
            c.apply(&mut m.failure);
        }
        if let Some(c) = &self.lease_until {
            c.apply(&mut m.lease_until);
        }
        if let Some(c) = &self.ambiguous_at {
            c.apply(&mut m.ambiguous_at);
        }
        if let Some(c) = &self.dispatched_at {
            c.apply(&mut m.dispatched_at);
        }
        if let Some(s) = &self.suppression {
            m.suppression = Some(s.clone());
        }
        match &self.sweep {
            Some(Change::Set(s)) => {
                m.sweep_key = Some(s.key.clone());
                m.sweep_at = Some(s.at);
            }
            Some(Change::Clear) => {
                m.sweep_key = None;
                m.sweep_at = None;
            }
            None => {}
        }
        m.updated_at = self.updated_at;
        m.flags.extend(self.add_flags.iter().cloned());
    }
}

/// Where the transition's history entry goes, given the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "slot", rename_all = "snake_case")]
pub enum HistorySlot {
    /// Room left: condition `attribute_not_exists(history.#fp) AND size(history) < :cap`,
    /// update `SET history.#fp = :entry`.
    Append {
        /// The history cap.
        cap: u32,
    },
    /// History full: condition `size(history) >= :cap`, update `ADD history_dropped :one`.
    /// The entry is not stored (the state still moves); dedupe then relies on the
    /// decision rules alone.
    Full {
        /// The history cap.
        cap: u32,
    },
}

/// One conditional write: `guard AND slot condition`, then `patch` and the history write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The state-dependent condition.
    pub guard: Guard,
    /// The field updates.
    pub patch: Patch,
    /// The event's fingerprint: the history key.
    pub fingerprint: String,
    /// The history entry to store under `fingerprint`.
    pub entry: HistoryEntry,
    /// Append or count as dropped.
    pub slot: HistorySlot,
    /// A fingerprint that must not be in the history either: a status of a wamid Meta
    /// refused with its marketing limit is stale once the message went back to
    /// `queued` (`webhook.marketing_limited:<wamid>`), even for a blind write.
    pub unseen: Option<String>,
}

fn history_len(m: &Message) -> usize {
    m.history.len()
}

impl Transition {
    /// The whole write condition: the guard and the history slot's condition.
    pub fn holds(&self, m: &Message) -> bool {
        let slot_ok = match self.slot {
            HistorySlot::Append { cap } => {
                !m.history.contains_key(&self.fingerprint) && history_len(m) < cap as usize
            }
            HistorySlot::Full { cap } => history_len(m) >= cap as usize,
        };
        let unseen_ok = self
            .unseen
            .as_ref()
            .is_none_or(|fp| !m.history.contains_key(fp));
        slot_ok && unseen_ok && self.guard.holds(m)
    }

    /// Apply the update to `m`, without checking the condition.
    pub fn apply_to(&self, m: &mut Message) {
        self.patch.apply_to(m);
        match self.slot {
            HistorySlot::Append { .. } => {
                m.history
                    .insert(self.fingerprint.clone(), self.entry.clone());
            }
            HistorySlot::Full { .. } => m.history_dropped = m.history_dropped.saturating_add(1),
        }
    }

    /// Check the condition and apply when it holds: what one conditional write does.
    /// Returns whether it was applied.
    pub fn apply_if_holds(&self, m: &mut Message) -> bool {
        let ok = self.holds(m);
        if ok {
            self.apply_to(m);
        }
        ok
    }
}

/// What [`decide`](super::decide) concluded about an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "transition", rename_all = "snake_case")]
pub enum Decision {
    /// The event moves the message: write the transition.
    Advance(Transition),
    /// A late lower-rank event: write only its timestamp (and wamid) and its history.
    FillTimestamp(Transition),
    /// Already recorded, stale, or nothing new: write nothing.
    Duplicate,
    /// The event contradicts what we know: record it and flag the message, keep the state.
    Anomaly(Transition),
}

impl Decision {
    /// The transition to write, if any.
    pub fn transition(&self) -> Option<&Transition> {
        match self {
            Decision::Advance(t) | Decision::FillTimestamp(t) | Decision::Anomaly(t) => Some(t),
            Decision::Duplicate => None,
        }
    }

    /// The transition to write, if any, by value.
    pub fn into_transition(self) -> Option<Transition> {
        match self {
            Decision::Advance(t) | Decision::FillTimestamp(t) | Decision::Anomaly(t) => Some(t),
            Decision::Duplicate => None,
        }
    }

    /// A metric-friendly name: `advanced`, `timestamp_filled`, `duplicate`, `anomaly`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Decision::Advance(_) => "advanced",
            Decision::FillTimestamp(_) => "timestamp_filled",
            Decision::Duplicate => "duplicate",
            Decision::Anomaly(_) => "anomaly",
        }
    }
}
