//! Status and event webhooks: built in Meta's envelope, signed with the app secret,
//! batched, posted, retried.
//!
//! - [`envelope`]: the JSON Meta posts.
//! - [`delivery`]: the scheduler (a timer heap fed by a channel) and the poster.

pub mod delivery;
pub mod envelope;

pub use envelope::{NumberMeta, PricingInfo, StatusEvent};

use std::time::Duration;
use tokio::time::Instant;

/// Something to post at a time.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// When it is due.
    pub due: Instant,
    /// What it is.
    pub item: Outgoing,
}

/// A status (batched with others due at the same time) or a whole change (posted alone).
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// One `statuses[]` item.
    Status(StatusEvent),
    /// A ready envelope of one change (inbound message, template or quality update).
    Change {
        /// The envelope.
        envelope: serde_json::Value,
        /// Its `changes[].field`.
        field: String,
    },
}

/// Swap the delay of each status marked in `reorder` with the next status's delay, so
/// it arrives after it; returns how many were swapped (the last status has no next).
pub fn apply_reorder(delays: &mut [Duration], reorder: &[bool]) -> usize {
    let mut swapped = 0;
    let mut i = 0;
    while i + 1 < delays.len() {
        if reorder.get(i).copied().unwrap_or(false) {
            delays.swap(i, i + 1);
            swapped += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    swapped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reordered_status_trades_its_time_with_the_next() {
        let ms = Duration::from_millis;
        let mut d = [ms(1), ms(2), ms(3)];
        assert_eq!(apply_reorder(&mut d, &[true, false, false]), 1);
        assert_eq!(d, [ms(2), ms(1), ms(3)]);
        let mut d = [ms(1), ms(2), ms(3)];
        assert_eq!(
            apply_reorder(&mut d, &[false, false, true]),
            0,
            "the last has no next"
        );
    }
}
