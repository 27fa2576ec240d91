//! Message states and their ranks: the order in which a message may move.
//!
//! The rank is stored beside the state and every store write is conditional on it,
//! so "never move backwards" is enforced by the database, not by a read-then-write.
//! Ranks are spaced out (0, 10, 20 …) so failures can sit between the states they
//! may and may not override:
//!
//! | state | rank | why |
//! | --- | --- | --- |
//! | scheduled | 0 | leaves only by explicit, state-guarded moves (released, cancelled) |
//! | queued | 0 | |
//! | sending | 10 | |
//! | accepted | 20 | |
//! | failed (ambiguous, unconfirmed) | 25 | our guess: any provider webhook overrides it |
//! | sent | 30 | |
//! | failed (from a webhook) | 35 | Meta's word: beats sent, loses to delivered/read |
//! | delivered | 40 | |
//! | read | 50 | |
//! | failed (other), suppressed, cancelled | 100 | terminal: nothing overrides it |

use super::failure::{Failure, FailureSource};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a message is in its lifecycle (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Accepted by intake with a future `send_at`: kept, not enqueued, until the
    /// reconciler's sweep releases it to `queued` when it is due.
    Scheduled,
    /// Accepted by intake, persisted, waiting in the tenant's queue.
    Queued,
    /// Claimed by a sender (lease); the Graph call is in flight or its answer was lost.
    Sending,
    /// The Graph API returned a wamid; Meta has taken the request (not yet delivered).
    Accepted,
    /// Webhook: Meta sent it.
    Sent,
    /// Webhook: it reached the recipient's device.
    Delivered,
    /// Webhook: the recipient read (or played) it.
    Read,
    /// Terminal (or correctable, see ranks): carries a failure.
    Failed,
    /// Terminal: our policy refused it; never sent.
    Suppressed,
    /// Terminal: the caller cancelled it (`DELETE /v1/messages/{id}`) while it was
    /// `scheduled` or `queued`; never sent.
    Cancelled,
}

/// Rank of a failure established by our own guess (ambiguous, unconfirmed).
pub const RANK_FAILED_CORRECTABLE: u8 = 25;
/// Rank of a failure reported by Meta's `failed` webhook.
pub const RANK_FAILED_BY_PROVIDER: u8 = 35;
/// Rank of every terminal state nothing may override.
pub const RANK_TERMINAL: u8 = 100;

impl MessageState {
    /// Every state, for tables and tests.
    pub const ALL: [MessageState; 10] = [
        MessageState::Scheduled,
        MessageState::Queued,
        MessageState::Sending,
        MessageState::Accepted,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Read,
        MessageState::Failed,
        MessageState::Suppressed,
        MessageState::Cancelled,
    ];

    /// The snake_case name used in storage, APIs, sweep keys and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageState::Scheduled => "scheduled",
            MessageState::Queued => "queued",
            MessageState::Sending => "sending",
            MessageState::Accepted => "accepted",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Read => "read",
            MessageState::Failed => "failed",
            MessageState::Suppressed => "suppressed",
            MessageState::Cancelled => "cancelled",
        }
    }

    /// Parse the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The rank of this state; for `Failed` it depends on the failure (see module docs).
    pub fn rank(self, failure: Option<&Failure>) -> u8 {
        match self {
            MessageState::Scheduled | MessageState::Queued => 0,
            MessageState::Sending => 10,
            MessageState::Accepted => 20,
            MessageState::Sent => 30,
            MessageState::Delivered => 40,
            MessageState::Read => 50,
            MessageState::Suppressed | MessageState::Cancelled => RANK_TERMINAL,
            MessageState::Failed => match failure {
                Some(f) if f.class.is_correctable_by_provider() => RANK_FAILED_CORRECTABLE,
                Some(f) if f.source == FailureSource::Webhook => RANK_FAILED_BY_PROVIDER,
                _ => RANK_TERMINAL,
            },
        }
    }

    /// Whether the state is final for our workers: no sender or reconciler acts on it
    /// any more (a correctable failure can still be moved by a webhook).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            MessageState::Delivered
                | MessageState::Read
                | MessageState::Failed
                | MessageState::Suppressed
                | MessageState::Cancelled
        )
    }

    /// Whether the reconciler still watches a message in this state (it sits in the
    /// sparse sweep index). `delivered`/`read` need nothing more; `failed`,
    /// `suppressed` and `cancelled` are final. A `scheduled` message is swept at its
    /// `send_at`, when the reconciler releases it.
    pub const fn is_swept(self) -> bool {
        matches!(
            self,
            MessageState::Scheduled
                | MessageState::Queued
                | MessageState::Sending
                | MessageState::Accepted
                | MessageState::Sent
        )
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::failure::FailureClass;

    fn failed(class: FailureClass, source: FailureSource) -> Failure {
        Failure {
            class,
            code: None,
            title: "t".into(),
            detail: None,
            source,
        }
    }

    #[test]
    fn happy_path_ranks_strictly_increase() {
        let path = [
            MessageState::Queued,
            MessageState::Sending,
            MessageState::Accepted,
            MessageState::Sent,
            MessageState::Delivered,
            MessageState::Read,
        ];
        for w in path.windows(2) {
            assert!(w[0].rank(None) < w[1].rank(None), "{:?}", w);
        }
    }

    #[test]
    fn failure_ranks_sit_where_their_evidence_places_them() {
        use FailureClass::*;
        let sent = MessageState::Sent.rank(None);
        let delivered = MessageState::Delivered.rank(None);
        let ambiguous =
            MessageState::Failed.rank(Some(&failed(Ambiguous, FailureSource::Reconciler)));
        let by_meta = MessageState::Failed.rank(Some(&failed(Recipient, FailureSource::Webhook)));
        let rejected = MessageState::Failed.rank(Some(&failed(Rejected, FailureSource::Graph)));
        assert!(
            ambiguous < sent,
            "a sent webhook corrects an ambiguous failure"
        );
        assert!(
            sent < by_meta && by_meta < delivered,
            "Meta's failure beats sent, not delivered"
        );
        assert_eq!(rejected, RANK_TERMINAL);
        assert_eq!(MessageState::Suppressed.rank(None), RANK_TERMINAL);
    }

    #[test]
    fn names_round_trip() {
        for s in MessageState::ALL {
            assert_eq!(MessageState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(MessageState::parse("bogus"), None);
    }
}
