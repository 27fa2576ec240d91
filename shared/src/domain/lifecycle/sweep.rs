//! The lifecycle's tunables and the sparse, sharded sweep index (DESIGN §7).
//!
//! Every message the reconciler still watches carries `sweep_key = "{state}#{shard}"`
//! and a `sweep_at` deadline. The reconciler queries each key of a state
//! ([`LifecyclePolicy::sweep_keys`]) for `sweep_at <= now`; the shard spreads one
//! state over several index partitions so a large backlog never lands on one.

use crate::domain::ids::MessageId;
use crate::domain::state::MessageState;
use std::time::Duration;

/// Timings and limits of the lifecycle. Plain data: the config layer builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicy {
    /// How long a claim holds a message in `sending` (default 120 s). Must exceed the
    /// sender's Lambda timeout, or a slow but live sender loses its claim.
    pub lease: Duration,
    /// How long a `queued` message may wait before the reconciler enqueues it again
    /// (default 15 min; after a retry, counted from the retry's `not_before`).
    pub queued_grace: Duration,
    /// How long an ambiguous send waits for a webhook before the tenant's ambiguous
    /// policy applies (default 15 min).
    pub ambiguous_grace: Duration,
    /// How long `accepted`/`sent` may go without a further webhook before the message
    /// becomes `failed` (unconfirmed) (default 72 h). A late webhook still corrects it.
    pub webhook_horizon: Duration,
    /// Number of shards per state in the sweep index (default 8).
    pub sweep_shards: u32,
    /// How long an item lives before the store's TTL deletes it (default 90 days).
    pub message_ttl: Duration,
    /// Most history entries kept per message (default 64); later ones are only counted.
    pub history_cap: u32,
    /// Attempts (claims) a message may take (default 5): a retryable failure of the
    /// last one, or a lease expiring on it, ends the message `exhausted`.
    pub max_attempts: u32,
    /// Age past which a message is not sent any more (default 24 h; exhausted).
    pub max_age: Duration,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            queued_grace: Duration::from_secs(15 * 60),
            ambiguous_grace: Duration::from_secs(15 * 60),
            webhook_horizon: Duration::from_secs(72 * 3600),
            sweep_shards: 8,
            message_ttl: Duration::from_secs(90 * 86_400),
            history_cap: 64,
            max_attempts: 5,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl LifecyclePolicy {
    /// [`Self::lease`] in milliseconds.
    pub fn lease_ms(&self) -> i64 {
        millis(self.lease)
    }

    /// [`Self::queued_grace`] in milliseconds.
    pub fn queued_grace_ms(&self) -> i64 {
        millis(self.queued_grace)
    }

    /// [`Self::ambiguous_grace`] in milliseconds.
    pub fn ambiguous_grace_ms(&self) -> i64 {
        millis(self.ambiguous_grace)
    }

    /// [`Self::webhook_horizon`] in milliseconds.
    pub fn webhook_horizon_ms(&self) -> i64 {
        millis(self.webhook_horizon)
    }

    /// [`Self::message_ttl`] in milliseconds.
    pub fn message_ttl_ms(&self) -> i64 {
        millis(self.message_ttl)
    }

    /// The sweep key of message `id` while in `state`.
    pub fn sweep_key(&self, state: MessageState, id: &MessageId) -> String {
        sweep_key(state, sweep_shard(id, self.sweep_shards))
    }

    /// Every sweep key of `state`, one per shard: what the reconciler queries.
    pub fn sweep_keys(&self, state: MessageState) -> Vec<String> {
        (0..self.sweep_shards.max(1))
            .map(|shard| sweep_key(state, shard))
            .collect()
    }
}

/// The sweep key `"{state}#{shard}"`, e.g. `queued#3`.
pub fn sweep_key(state: MessageState, shard: u32) -> String {
    format!("{}#{shard}", state.as_str())
}

/// The shard of a message: FNV-1a (64-bit) of the id's bytes modulo `shards`
/// (`0` is treated as `1`). Stored keys depend on it, so it must never change.
pub fn sweep_shard(id: &MessageId, shards: u32) -> u32 {
    // The remainder is below `shards`, which is a u32.
    (fnv1a64(id.as_str().as_bytes()) % u64::from(shards.max(1))) as u32
}

/// FNV-1a, 64-bit: tiny, stable across platforms and releases (unlike `DefaultHasher`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_of_an_id_is_stable_and_within_range() {
        let id = MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3").unwrap();
        // Pinned (FNV-1a 64 = 14069463228030017094): changing the hash would orphan
        // every stored sweep key.
        assert_eq!(sweep_shard(&id, 8), 6);
        assert_eq!(
            sweep_shard(&id, 5),
            (14_069_463_228_030_017_094u64 % 5) as u32
        );
        assert_eq!(sweep_shard(&id, 1), 0);
        assert_eq!(sweep_shard(&id, 0), 0);
        for _ in 0..50 {
            assert!(sweep_shard(&MessageId::generate(), 8) < 8);
        }
    }

    #[test]
    fn fnv1a_matches_its_published_test_vector() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn ids_spread_over_every_shard() {
        let mut seen = [false; 8];
        for _ in 0..400 {
            seen[sweep_shard(&MessageId::generate(), 8) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
    }

    #[test]
    fn sweep_keys_name_the_state_and_cover_every_shard() {
        let p = LifecyclePolicy::default();
        let keys = p.sweep_keys(MessageState::Queued);
        assert_eq!(keys.len(), 8);
        assert_eq!(keys[0], "queued#0");
        assert_eq!(keys[7], "queued#7");
        let id = MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3").unwrap();
        assert!(keys.contains(&p.sweep_key(MessageState::Queued, &id)));
    }

    #[test]
    fn default_policy_matches_its_documented_values() {
        let p = LifecyclePolicy::default();
        assert_eq!(p.lease_ms(), 120_000);
        assert_eq!(p.webhook_horizon_ms(), 72 * 3_600_000);
        assert_eq!(p.history_cap, 64);
        assert_eq!(p.sweep_shards, 8);
    }
}
