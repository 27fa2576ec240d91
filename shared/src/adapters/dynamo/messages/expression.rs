//! A [`Transition`] as one `UpdateItem`: `ConditionExpression` = item exists AND guard
//! AND history slot condition; `UpdateExpression` = the patch and the history write.
//!
//! Every attribute goes through an `ExpressionAttributeNames` placeholder (`state`,
//! `rank` and others are reserved words), and a name or value is registered only
//! when it is written into an expression: DynamoDB rejects unused placeholders.

use crate::domain::lifecycle::{Change, Guard, HistorySlot, Patch, TimestampWrite, Transition};
use crate::domain::{MessageState, Timestamp};
use crate::ports::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use std::collections::HashMap;

/// The expression parts of one `UpdateItem`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UpdateExpressions {
    /// `ConditionExpression`.
    pub condition: String,
    /// `UpdateExpression`.
    pub update: String,
    /// `ExpressionAttributeNames`.
    pub names: HashMap<String, String>,
    /// `ExpressionAttributeValues`.
    pub values: HashMap<String, AttributeValue>,
}

/// Placeholders, registered on use.
#[derive(Debug, Default)]
pub(crate) struct Placeholders {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    /// `#attribute`, for a top-level attribute or a map key that is an identifier.
    pub fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// `#placeholder` standing for an arbitrary `attribute` (e.g. a fingerprint).
    pub fn name_as(&mut self, placeholder: &str, attribute: &str) -> String {
        let placeholder = format!("#{placeholder}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// `:key` for `value`. A key names one value per request, by construction.
    pub fn value(&mut self, key: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{key}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn number(&mut self, key: &str, n: impl ToString) -> String {
        self.value(key, AttributeValue::N(n.to_string()))
    }

    fn state(&mut self, key: &str, state: MessageState) -> String {
        self.value(key, AttributeValue::S(state.as_str().to_owned()))
    }

    fn timestamp(&mut self, key: &str, at: Timestamp) -> String {
        self.number(key, at.as_millis())
    }

    fn encoded(&mut self, key: &str, value: &impl Serialize) -> Result<String, StoreError> {
        let value = serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::Backend {
            operation: "encode_update",
            source: e.into(),
        })?;
        Ok(self.value(key, value))
    }

    /// The collected maps.
    pub fn into_maps(self) -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
        (self.names, self.values)
    }
}

/// The guard's condition. Comparisons with a missing attribute are false in
/// DynamoDB, which is what [`Guard::holds`] assumes for a missing lease.
pub(crate) fn guard_condition(guard: &Guard, p: &mut Placeholders) -> String {
    match *guard {
        // Forward-only: the decision moves to a higher rank than the item has.
        Guard::RankBelow(rank) => format!("{} < {}", p.name("rank"), p.number("guard_rank", rank)),
        // Late fills and anomalies: the rank has not dropped below what was decided on
        // (it only drops by the explicit requeue/unconfirmed moves).
        Guard::RankAtLeast(rank) => {
            format!("{} >= {}", p.name("rank"), p.number("guard_rank", rank))
        }
        // Explicit internal move; the attempt, when given, fences against a newer claim.
        Guard::StateIs { state, attempt } => {
            let mut c = format!("{} = {}", p.name("state"), p.state("guard_state", state));
            if let Some(attempt) = attempt {
                c.push_str(&format!(
                    " AND {} = {}",
                    p.name("attempt"),
                    p.number("guard_attempt", attempt)
                ));
            }
            c
        }
        // The sender still holds claim `attempt`: sending, same attempt, and a lease
        // present (an ambiguous send has none: the sender gave the claim up).
        Guard::ClaimHeld { attempt } => format!(
            "{} = {} AND {} = {} AND attribute_exists({})",
            p.name("state"),
            p.state("sending", MessageState::Sending),
            p.name("attempt"),
            p.number("guard_attempt", attempt),
            p.name("lease_until"),
        ),
        // A claim: queued, or sending whose lease ran out before its Graph call. No
        // lease (ambiguous) makes `lease_until < :now` false, and a dispatched attempt
        // may have reached Meta: neither is ever re-claimed (no blind resend).
        Guard::Claimable { now } => format!(
            "{state} = {queued} OR ({state} = {sending} AND {lease} < {now} \
             AND attribute_not_exists({dispatched}))",
            state = p.name("state"),
            queued = p.state("queued", MessageState::Queued),
            sending = p.state("sending", MessageState::Sending),
            lease = p.name("lease_until"),
            now = p.timestamp("now", now),
            dispatched = p.name("dispatched_at"),
        ),
        // The reconciler acts on claim `attempt` only once its lease ran out, and
        // only on the branch (dispatched or not) it decided on.
        Guard::LeaseExpired {
            attempt,
            now,
            dispatched,
        } => format!(
            "{} = {} AND {} = {} AND {} < {} AND {}({})",
            p.name("state"),
            p.state("sending", MessageState::Sending),
            p.name("attempt"),
            p.number("guard_attempt", attempt),
            p.name("lease_until"),
            p.timestamp("now", now),
            if dispatched {
                "attribute_exists"
            } else {
                "attribute_not_exists"
            },
            p.name("dispatched_at"),
        ),
    }
}

/// The history slot's condition and its update clause (`SET` or `ADD`).
fn history(t: &Transition, p: &mut Placeholders, u: &mut Clauses) -> Result<String, StoreError> {
    let history = p.name("history");
    match t.slot {
        // Room left and not seen: the fingerprint is the map key, so a repeated event
        // fails here instead of writing twice. `#fp` carries the fingerprint, which
        // may hold characters an expression path cannot.
        HistorySlot::Append { cap } => {
            let fp = p.name_as("fp", &t.fingerprint);
            let cap = p.number("cap", cap);
            let entry = p.encoded("entry", &t.entry)?;
            u.set.push(format!("{history}.{fp} = {entry}"));
            Ok(format!(
                "attribute_not_exists({history}.{fp}) AND size({history}) < {cap}"
            ))
        }
        // Full: the state still moves; the entry is only counted.
        HistorySlot::Full { cap } => {
            let cap = p.number("cap", cap);
            u.add.push(format!(
                "{} {}",
                p.name("history_dropped"),
                p.number("one", 1)
            ));
            Ok(format!("size({history}) >= {cap}"))
        }
    }
}

#[derive(Debug, Default)]
struct Clauses {
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
}

impl Clauses {
    fn change<T>(
        &mut self,
        p: &mut Placeholders,
        attribute: &str,
        change: Option<&Change<T>>,
        encode: impl FnOnce(&mut Placeholders, &T) -> Result<String, StoreError>,
    ) -> Result<(), StoreError> {
        match change {
            Some(Change::Set(v)) => {
                let value = encode(p, v)?;
                self.set.push(format!("{} = {value}", p.name(attribute)));
            }
            Some(Change::Clear) => self.remove.push(p.name(attribute)),
            None => {}
        }
        Ok(())
    }

    fn render(self) -> String {
        let mut parts = Vec::new();
        for (keyword, clauses, sep) in [
            ("SET", self.set, ", "),
            ("REMOVE", self.remove, ", "),
            ("ADD", self.add, ", "),
        ] {
            if !clauses.is_empty() {
                parts.push(format!("{keyword} {}", clauses.join(sep)));
            }
        }
        parts.join(" ")
    }
}

fn patch_clauses(patch: &Patch, p: &mut Placeholders, u: &mut Clauses) -> Result<(), StoreError> {
    if let Some(change) = patch.state {
        let state = p.state("state", change.state);
        u.set.push(format!("{} = {state}", p.name("state")));
        let rank = p.number("rank", change.rank);
        u.set.push(format!("{} = {rank}", p.name("rank")));
    }
    if patch.increment_attempt {
        let attempt = p.name("attempt");
        u.set
            .push(format!("{attempt} = {attempt} + {}", p.number("one", 1)));
    }
    if let Some(wamid) = &patch.wamid {
        // Set once: a second (different) wamid never overwrites the first.
        let name = p.name("wamid");
        let value = p.value("wamid", AttributeValue::S(wamid.as_str().to_owned()));
        u.set
            .push(format!("{name} = if_not_exists({name}, {value})"));
    }
    if let Some(status) = &patch.message_status {
        let value = p.value("message_status", AttributeValue::S(status.clone()));
        u.set
            .push(format!("{} = {value}", p.name("message_status")));
    }
    if !patch.timestamps.is_empty() {
        // `timestamps` is always a map on the item (the constructors write it).
        let map = p.name("timestamps");
        for (field, write) in &patch.timestamps {
            let path = format!("{map}.{}", p.name(field.as_str()));
            match *write {
                TimestampWrite::Fill(at) => {
                    let v = p.timestamp(&format!("ts_{}", field.as_str()), at);
                    u.set.push(format!("{path} = if_not_exists({path}, {v})"));
                }
                TimestampWrite::Set(at) => {
                    let v = p.timestamp(&format!("ts_{}", field.as_str()), at);
                    u.set.push(format!("{path} = {v}"));
                }
                TimestampWrite::Clear => u.remove.push(path),
            }
        }
    }
    u.change(p, "failure", patch.failure.as_ref(), |p, f| {
        p.encoded("failure", f)
    })?;
    u.change(p, "lease_until", patch.lease_until.as_ref(), |p, at| {
        Ok(p.timestamp("lease_until", *at))
    })?;
    u.change(p, "dispatched_at", patch.dispatched_at.as_ref(), |p, at| {
        Ok(p.timestamp("dispatched_at", *at))
    })?;
    u.change(p, "ambiguous_at", patch.ambiguous_at.as_ref(), |p, at| {
        Ok(p.timestamp("ambiguous_at", *at))
    })?;
    if let Some(suppression) = &patch.suppression {
        let value = p.encoded("suppression", suppression)?;
        u.set.push(format!("{} = {value}", p.name("suppression")));
    }
    match &patch.sweep {
        Some(Change::Set(sweep)) => {
            let key = p.value("sweep_key", AttributeValue::S(sweep.key.clone()));
            u.set.push(format!("{} = {key}", p.name("sweep_key")));
            let at = p.timestamp("sweep_at", sweep.at);
            u.set.push(format!("{} = {at}", p.name("sweep_at")));
        }
        // Leaving the sparse sweep index: both index attributes go.
        Some(Change::Clear) => {
            u.remove.push(p.name("sweep_key"));
            u.remove.push(p.name("sweep_at"));
        }
        None => {}
    }
    let updated = p.timestamp("updated_at", patch.updated_at);
    u.set.push(format!("{} = {updated}", p.name("updated_at")));
    if !patch.add_flags.is_empty() {
        // A string set: ADD creates it when absent and ignores flags already there.
        let flags = AttributeValue::Ss(patch.add_flags.iter().cloned().collect());
        let value = p.value("flags", flags);
        u.add.push(format!("{} {value}", p.name("flags")));
    }
    Ok(())
}

/// The `UpdateItem` expressions of `transition`.
pub(crate) fn update_expressions(transition: &Transition) -> Result<UpdateExpressions, StoreError> {
    let mut p = Placeholders::default();
    let mut u = Clauses::default();
    // `attribute_exists(pk)` first: without it an update of a missing key would
    // create a fragment item. Its failure is told apart from a failed guard by
    // whether ALL_OLD returns an item.
    let exists = format!("attribute_exists({})", p.name("pk"));
    let guard = guard_condition(&transition.guard, &mut p);
    let mut slot = history(transition, &mut p, &mut u)?;
    if let Some(unseen) = &transition.unseen {
        let history = p.name("history");
        let fp = p.name_as("unseen", unseen);
        slot = format!("{slot} AND attribute_not_exists({history}.{fp})");
    }
    patch_clauses(&transition.patch, &mut p, &mut u)?;
    let (names, values) = p.into_maps();
    // Parentheses only where precedence needs them: DynamoDB rejects redundant ones
    // (`((a OR b))`), and AND binds tighter than OR.
    let condition = [exists, guard, slot]
        .into_iter()
        .map(|part| {
            if part.contains(" OR ") {
                format!("({part})")
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    Ok(UpdateExpressions {
        condition,
        update: u.render(),
        names,
        values,
    })
}

#[cfg(test)]
#[path = "expression_tests.rs"]
mod tests;
