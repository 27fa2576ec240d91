//! The checks a soak ends with, on data: a message's history (as
//! `GET /v1/messages/{id}` shows it) must never move down in rank except by the moves
//! the lifecycle allows, and the sandbox must have accepted each `on_ambiguous =
//! "fail"` message at most once.
//!
//! The ranks are those of `wa_shared::domain::state` (`queued` 0 … `read` 50, a failure
//! 25, 35 or 100 by its kind); the allowed drops are those of the lifecycle's property
//! test (`allowed_drop`): `sending -> queued` by a retry or requeue, `sent -> failed`
//! when unconfirmed, `accepted|sent -> queued` when Meta's marketing limit (131049)
//! sends a message back.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// One history entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Epoch milliseconds.
    pub at_ms: i64,
    /// `sender.accepted`, `webhook.delivered`, ...
    pub event: String,
    /// The state right after the event.
    pub state: String,
    /// `advanced`, `timestamp_filled` or `anomaly`.
    pub outcome: String,
}

/// A move down in rank that the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Regression {
    /// The state before.
    pub from: String,
    /// The state after.
    pub to: String,
    /// The event that moved it.
    pub event: String,
    /// When (RFC 3339 as shown, or epoch ms).
    pub at_ms: i64,
}

/// The entries of a message view's `history`, or `None` if it has none readable.
pub fn entries(view: &Value) -> Option<Vec<Entry>> {
    let history = view.get("history")?.as_array()?;
    let mut out = Vec::with_capacity(history.len());
    for h in history {
        let at = h.get("at")?.as_str()?;
        let at_ms = chrono::DateTime::parse_from_rfc3339(at)
            .ok()?
            .timestamp_millis();
        out.push(Entry {
            at_ms,
            event: h.get("event")?.as_str()?.to_owned(),
            state: h.get("state")?.as_str()?.to_owned(),
            outcome: h
                .get("outcome")
                .and_then(Value::as_str)
                .unwrap_or("advanced")
                .to_owned(),
        });
    }
    Some(out)
}

/// The rank of `state` entered by `event` (a failure's rank depends on its kind, which
/// the event names: our own guesses are 25, Meta's `failed` webhook 35, others final).
pub fn rank(state: &str, event: &str) -> Option<u8> {
    Some(match state {
        "queued" => 0,
        "sending" => 10,
        "accepted" => 20,
        "sent" => 30,
        "delivered" => 40,
        "read" => 50,
        "suppressed" => 100,
        "failed" => match event {
            "reconciler.ambiguous_failed" | "reconciler.unconfirmed" => 25,
            "webhook.failed" => 35,
            _ => 100,
        },
        _ => return None,
    })
}

/// Whether the lifecycle allows `event` to move a message from `from` down to `to`.
pub fn allowed_drop(event: &str, from: &str, to: &str) -> bool {
    let requeue = matches!(
        event,
        "sender.retry_scheduled" | "reconciler.requeued" | "reconciler.ambiguous_retry"
    );
    (requeue && from == "sending" && to == "queued")
        || (event == "reconciler.unconfirmed" && from == "sent" && to == "failed")
        || (event == "webhook.marketing_limited"
            && matches!(from, "accepted" | "sent")
            && to == "queued")
}

/// Two writes this close in time may have committed in the other order: an entry's
/// time is when its event was observed (a webhook: received), and two webhooks of one
/// message received together race to the store.
pub const CONCURRENT_MS: i64 = 1_000;

/// Every move down in rank that is not allowed, walking the entries in time order;
/// `final_state` (the stored state) must not be below where the history ended.
///
/// Entries recorded in the same millisecond have no observable order between them, so
/// they are taken lowest rank first (the order that moves up). Only entries that
/// moved the message (`advanced`) are walked: a late timestamp or an anomaly keeps
/// the state by definition. A drop to an entry less than [`CONCURRENT_MS`] after the
/// one before is taken as the two having committed in the other order (the stored
/// state must then end at the higher one, which `final_state` checks).
pub fn regressions(entries: &[Entry], final_state: Option<&str>) -> Vec<Regression> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_key(|e| (e.at_ms, rank(&e.state, &e.event).unwrap_or(0)));
    let mut found = Vec::new();
    // (state, rank, at, event)
    let mut current: Option<(String, u8, i64, String)> = None;
    for e in sorted {
        // A late status that only filled a timestamp, or an anomaly, kept the state:
        // its `state` is what the decision saw, which a concurrent write may have
        // moved past since (a late `sent` filled while `read` was being written).
        if current.is_some() && e.outcome != "advanced" {
            continue;
        }
        let same_state = current.as_ref().is_some_and(|c| c.0 == e.state);
        let entered = if same_state && e.state == "failed" {
            // A failure moved by another failure event: the higher of the two ranks.
            let prev = current.as_ref().map_or(0, |c| c.1);
            rank(&e.state, &e.event).unwrap_or(prev).max(prev)
        } else {
            match rank(&e.state, &e.event) {
                Some(r) => r,
                None => {
                    found.push(Regression {
                        from: current.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
                        to: e.state.clone(),
                        event: e.event.clone(),
                        at_ms: e.at_ms,
                    });
                    continue;
                }
            }
        };
        if let Some((from, from_rank, from_at, _)) = &current
            && entered < *from_rank
            && !allowed_drop(&e.event, from, &e.state)
        {
            if e.at_ms - from_at < CONCURRENT_MS {
                // Committed before the entry above it, most likely: skip it.
                continue;
            }
            found.push(Regression {
                from: from.clone(),
                to: e.state.clone(),
                event: e.event.clone(),
                at_ms: e.at_ms,
            });
        }
        current = Some((e.state.clone(), entered, e.at_ms, e.event.clone()));
    }
    if let (Some(last), Some((state, r, at, event))) = (final_state, &current)
        && last != state
        && rank(last, event).is_some_and(|f| f < *r)
        && !allowed_drop(event, state, last)
    {
        found.push(Regression {
            from: state.clone(),
            to: last.to_owned(),
            event: "(stored state)".into(),
            at_ms: *at,
        });
    }
    found
}

/// The `data.status` of each outbound event the entries call for: every entry that
/// moved the message (`advanced`) into `accepted`, `sent`, `delivered`, `read`,
/// `suppressed` or `failed` (`unconfirmed` when the reconciler's horizon failed it)
/// emits one event of that status (docs/events/README.md), so each must be in the
/// tenant's event log. A set: a status entered twice (a 131049 requeue accepted
/// again) needs its event at least once.
pub fn expected_event_statuses(entries: &[Entry]) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for e in entries.iter().filter(|e| e.outcome == "advanced") {
        let status = match e.state.as_str() {
            "accepted" => "accepted",
            "sent" => "sent",
            "delivered" => "delivered",
            "read" => "read",
            "suppressed" => "suppressed",
            "failed" if e.event == "reconciler.unconfirmed" => "unconfirmed",
            "failed" => "failed",
            _ => continue,
        };
        out.insert(status);
    }
    out
}

/// Whether a state is final for the workers (`delivered`, `read`, `failed`, `suppressed`).
pub fn is_terminal(state: &str) -> bool {
    matches!(state, "delivered" | "read" | "failed" | "suppressed")
}

/// Whether a message in `state` must have been accepted by the Graph API at least once.
pub fn needs_a_send(state: &str) -> bool {
    matches!(state, "accepted" | "sent" | "delivered" | "read")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(at_ms: i64, event: &str, state: &str) -> Entry {
        Entry {
            at_ms,
            event: event.into(),
            state: state.into(),
            outcome: "advanced".into(),
        }
    }

    #[test]
    fn a_normal_life_with_a_retry_and_a_late_status_has_no_regression() {
        let h = vec![
            entry(0, "intake.queued", "queued"),
            entry(5, "sender.claimed", "sending"),
            entry(9, "sender.retry_scheduled", "queued"),
            entry(20, "sender.claimed", "sending"),
            entry(20, "sender.accepted", "accepted"),
            entry(30, "webhook.delivered", "delivered"),
            Entry {
                outcome: "timestamp_filled".into(),
                ..entry(31, "webhook.sent", "delivered")
            },
            entry(40, "webhook.read", "read"),
        ];
        assert_eq!(regressions(&h, Some("read")), vec![]);
        let unconfirmed = vec![
            entry(0, "intake.queued", "queued"),
            entry(1, "sender.claimed", "sending"),
            entry(2, "sender.accepted", "accepted"),
            entry(3, "webhook.sent", "sent"),
            entry(9, "reconciler.unconfirmed", "failed"),
            entry(12, "webhook.delivered", "delivered"),
        ];
        assert_eq!(regressions(&unconfirmed, Some("delivered")), vec![]);
        // Two webhooks received together commit in either order: `read` then `sent`
        // 14 ms later is no regression, as long as the stored state is `read`.
        let raced = vec![
            entry(0, "intake.queued", "queued"),
            entry(1, "sender.claimed", "sending"),
            entry(2, "sender.accepted", "accepted"),
            entry(3_000, "webhook.read", "read"),
            entry(3_014, "webhook.sent", "sent"),
        ];
        assert_eq!(regressions(&raced, Some("read")), vec![]);
        assert_eq!(
            regressions(&raced, Some("sent")).len(),
            1,
            "but the store must not end below it"
        );
    }

    /// The checker must be able to fail: a crafted history that goes back fails it.
    #[test]
    fn a_history_that_moves_back_fails_the_check() {
        let delivered_then_sent = vec![
            entry(0, "intake.queued", "queued"),
            entry(1, "sender.claimed", "sending"),
            entry(2, "sender.accepted", "accepted"),
            entry(3, "webhook.delivered", "delivered"),
            entry(5_000, "webhook.sent", "sent"),
        ];
        let found = regressions(&delivered_then_sent, None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].from.as_str(), found[0].to.as_str()),
            ("delivered", "sent")
        );

        let accepted_requeued = vec![
            entry(0, "intake.queued", "queued"),
            entry(1, "sender.claimed", "sending"),
            entry(2, "sender.accepted", "accepted"),
            entry(3_000, "reconciler.requeued", "queued"),
        ];
        assert_eq!(
            regressions(&accepted_requeued, None).len(),
            1,
            "requeue only from sending"
        );

        let failed_then_sending = vec![
            entry(0, "intake.queued", "queued"),
            entry(1, "sender.send_failed", "failed"),
            entry(2_000, "sender.claimed", "sending"),
        ];
        assert_eq!(
            regressions(&failed_then_sending, Some("sending")).len(),
            1,
            "a terminal state moved"
        );
        // Too close in time to tell the order, but the store ended below: caught.
        let close = vec![
            entry(0, "intake.queued", "queued"),
            entry(1, "sender.send_failed", "failed"),
            entry(2, "sender.claimed", "sending"),
        ];
        assert_eq!(regressions(&close, Some("sending")).len(), 1);

        let unknown = vec![entry(0, "intake.queued", "teleported")];
        assert_eq!(
            regressions(&unknown, None).len(),
            1,
            "an unknown state is reported"
        );
    }

    #[test]
    fn entries_are_read_from_the_api_view() {
        let view = json!({"history": [
            {"at": "2026-01-01T00:00:00.005Z", "event": "webhook.sent", "state": "sent", "outcome": "advanced"},
            {"at": "2026-01-01T00:00:00.001Z", "event": "intake.queued", "state": "queued", "outcome": "advanced"}
        ]});
        let e = entries(&view).unwrap_or_default();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].at_ms, 1_767_225_600_001);
        assert!(entries(&json!({})).is_none());
        assert!(is_terminal("read") && !is_terminal("sent"));
        assert!(needs_a_send("delivered") && !needs_a_send("failed"));
    }

    #[test]
    fn each_advancing_entry_into_an_event_state_calls_for_its_event() {
        let mut late = entry(9, "webhook.sent", "read");
        late.outcome = "timestamp_filled".into();
        let life = vec![
            entry(1, "intake.queued", "queued"),
            entry(2, "sender.claimed", "sending"),
            entry(3, "sender.accepted", "accepted"),
            entry(5, "webhook.read", "read"),
            late,
        ];
        let want: BTreeSet<&str> = ["accepted", "read"].into();
        assert_eq!(expected_event_statuses(&life), want);
        let guessed = vec![
            entry(1, "sender.accepted", "accepted"),
            entry(2, "reconciler.unconfirmed", "failed"),
            entry(3, "webhook.delivered", "delivered"),
        ];
        let want: BTreeSet<&str> = ["accepted", "unconfirmed", "delivered"].into();
        assert_eq!(expected_event_statuses(&guessed), want);
        assert!(expected_event_statuses(&[entry(1, "intake.queued", "queued")]).is_empty());
    }
}
