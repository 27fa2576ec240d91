//! Building transitions: the history entry, the cap, and the common patch shapes.

use super::event::LifecycleEvent;
use super::patch::{Change, Guard, HistorySlot, Patch, StateChange, Sweep, Transition};
use super::sweep::LifecyclePolicy;
use crate::domain::ids::MessageId;
use crate::domain::message::{HistoryEntry, HistoryOutcome, Message};
use crate::domain::state::MessageState;
use crate::domain::time::Timestamp;
use serde_json::{Value, json};

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

/// Most bytes of one history entry's `detail` as JSON. The cap bounds how many entries
/// a message keeps; this bounds each one, since Meta's error texts and conversation
/// objects have no documented limit. Together they bound the stored item
/// (`docs/performance.md`, "Item size").
pub const MAX_DETAIL_BYTES: usize = 2048;

/// Longest text kept of a string in a clipped detail.
const CLIPPED_TEXT_BYTES: usize = 256;

/// Most elements kept of a list in a clipped detail.
const CLIPPED_LIST_LEN: usize = 4;

/// `detail` as stored: unchanged when it fits in [`MAX_DETAIL_BYTES`]; else with long
/// texts and lists clipped; else (a wide object) only how big it was.
pub(crate) fn bounded_detail(detail: Value) -> Value {
    let bytes = json_len(&detail);
    if bytes <= MAX_DETAIL_BYTES {
        return detail;
    }
    let clipped = clip(detail);
    if json_len(&clipped) <= MAX_DETAIL_BYTES {
        clipped
    } else {
        json!({ "clipped": true, "bytes": bytes })
    }
}

/// The length of `value` as JSON, counted as it is written rather than built as a
/// string: it runs on every transition, and nearly every detail fits.
fn json_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

fn clip(value: Value) -> Value {
    match value {
        Value::String(mut text) if text.len() > CLIPPED_TEXT_BYTES => {
            let mut end = CLIPPED_TEXT_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
            Value::String(text)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().take(CLIPPED_LIST_LEN).map(clip).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key, clip(value)))
                .collect(),
        ),
        other => other,
    }
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
            detail: event.detail().map(bounded_detail),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_detail_that_fits_is_kept_as_it_is() {
        let detail = json!({
            "wamid": "wamid.HBgLMTU1NTA3ODM4ODEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
            "occurred_at": 1_780_000_000_000_i64,
            "provider": {"pricing": {"billable": true, "pricing_model": "PMP",
                                     "type": "regular", "category": "utility"}},
        });
        assert_eq!(bounded_detail(detail.clone()), detail);
    }

    #[test]
    fn a_long_error_text_is_clipped_and_the_rest_kept() {
        let details = "é".repeat(5000);
        let detail = json!({
            "wamid": "wamid.A",
            "failure": {"class": "permanent", "code": 131026, "title": "Message undeliverable",
                        "detail": details, "source": "webhook"},
        });
        let bounded = bounded_detail(detail);
        assert!(json_len(&bounded) <= MAX_DETAIL_BYTES, "{bounded}");
        assert_eq!(bounded["failure"]["code"], 131026);
        assert_eq!(bounded["failure"]["title"], "Message undeliverable");
        let kept = bounded["failure"]["detail"].as_str().unwrap();
        assert!(kept.starts_with("éé") && kept.ends_with('…'), "{kept}");
        assert!(kept.len() <= CLIPPED_TEXT_BYTES + '…'.len_utf8());
    }

    #[test]
    fn a_detail_too_wide_to_clip_keeps_only_its_size() {
        let wide: serde_json::Map<String, Value> =
            (0..500).map(|i| (format!("field_{i}"), json!(i))).collect();
        let bytes = json_len(&Value::Object(wide.clone()));
        let bounded = bounded_detail(Value::Object(wide));
        assert_eq!(bounded, json!({"clipped": true, "bytes": bytes}));
    }

    fn arb_detail() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            ".{0,40}".prop_map(Value::from),
            (1usize..3000).prop_map(|n| Value::from("x".repeat(n))),
        ];
        leaf.prop_recursive(4, 64, 40, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..40).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,12}", inner, 0..40)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn every_stored_detail_fits_the_bound(detail in arb_detail()) {
            let small = json_len(&detail) <= MAX_DETAIL_BYTES;
            let bounded = bounded_detail(detail.clone());
            prop_assert!(json_len(&bounded) <= MAX_DETAIL_BYTES);
            if small {
                prop_assert_eq!(bounded, detail);
            }
        }
    }
}
