//! The `MessageStore` conformance suite: one set of cases run against every adapter
//! (DESIGN §2 invariant). Use [`store_conformance_tests!`](crate::store_conformance_tests)
//! to turn it into one `#[tokio::test]` per case for an adapter.
//!
//! Time never passes for real: every call takes explicit instants (`T0` + offsets),
//! so the same cases run unchanged on SQLite and on DynamoDB (moto). Each harness
//! is a fresh, empty store (a new database file, or a new table).

mod queries;
mod schedule;
mod writes;

pub use queries::*;
pub use schedule::*;
pub use writes::*;

use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;
use wa_shared::domain::lifecycle::{
    EventKind, LifecycleEvent, LifecyclePolicy, ProviderStatus, ProviderStatusKind, sweep_shard,
};
use wa_shared::domain::message::NewMessage;
use wa_shared::domain::{Message, MessageId, PhoneNumber, TenantId, Timestamp, Transition, Wamid};
use wa_shared::ports::{
    ApplyOutcome, CreateOutcome, MessageStore, Page, Recorded, StoreError, record_event,
};

/// What the suite needs from an adapter under test.
#[async_trait]
pub trait StoreHarness: Send + Sync {
    /// The adapter under test, on an empty store.
    fn store(&self) -> Arc<dyn MessageStore>;
    /// How many random cases the property test runs (keep it small on moto).
    fn property_cases(&self) -> u32;
    /// The TTL attribute exactly as stored, when it is stored as a number.
    async fn stored_expires_at(&self, tenant: &TenantId, id: &MessageId) -> Option<i64>;
}

/// The suite's epoch: 2025-06-15, in milliseconds.
pub const T0: i64 = 1_750_000_000_000;

/// `T0 + offset_ms`.
pub fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset_ms)
}

/// The policy every case uses (the defaults: 8 sweep shards, 120 s lease, cap 64).
pub fn policy() -> LifecyclePolicy {
    LifecyclePolicy::default()
}

/// A tenant id.
pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("tenant id")
}

/// A wamid.
pub fn wamid(s: &str) -> Wamid {
    Wamid::parse(s).expect("wamid")
}

/// A fresh message id whose sweep (and tenant) shard is `shard` of 8.
pub fn id_in_shard(shard: u32) -> MessageId {
    loop {
        let id = MessageId::generate();
        if sweep_shard(&id, 8) == shard {
            return id;
        }
    }
}

/// What intake knows about a message of `tenant` with id `id`; the request holds
/// nested JSON (objects, arrays, floats, null) to prove exact round trips.
pub fn new_message(tenant_name: &str, id: MessageId) -> NewMessage {
    NewMessage {
        tenant: tenant(tenant_name),
        id,
        to: PhoneNumber::parse("+14155550123").expect("phone"),
        template_name: Some("order_update".into()),
        template_language: Some("en_US".into()),
        request: json!({
            "to": "+14155550123",
            "template": {"name": "order_update", "language": "en_US",
                         "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-1"}]}]},
            "amount": 12.5,
            "note": null,
            "empty": {}
        }),
        request_hash: "sha256:abc".into(),
        metadata: json!({"order": "A-1", "tags": ["vip"]})
            .as_object()
            .cloned(),
    }
}

/// A queued message of `tenant` with id `id`, created at `created`.
pub fn queued_with_id(tenant_name: &str, id: MessageId, created: Timestamp) -> Message {
    Message::new_queued(new_message(tenant_name, id), created, &policy())
}

/// A queued message of `tenant` with a fresh id.
pub fn queued(tenant_name: &str, created: Timestamp) -> Message {
    queued_with_id(tenant_name, MessageId::generate(), created)
}

/// Store `m`, which must be new.
pub async fn create(h: &dyn StoreHarness, m: &Message) {
    let outcome = h.store().create_if_absent(m).await.expect("create");
    assert_eq!(outcome, CreateOutcome::Created);
}

/// A status webhook for `w`, Meta's time one millisecond before we received it.
pub fn status(kind: ProviderStatusKind, w: &Wamid, received_ms: i64) -> LifecycleEvent {
    LifecycleEvent::new(
        at(received_ms),
        EventKind::Provider(ProviderStatus {
            wamid: w.clone(),
            status: kind,
            occurred_at: at(received_ms - 1),
            failure: None,
            detail: Some(json!({"pricing": {"billable": true}})),
        }),
    )
}

/// The sender's `Accepted` for `attempt`.
pub fn accepted(attempt: u32, w: &Wamid, ms: i64) -> LifecycleEvent {
    LifecycleEvent::new(
        at(ms),
        EventKind::Accepted {
            attempt,
            wamid: w.clone(),
            message_status: Some("accepted".into()),
        },
    )
}

/// Record `event` on `m` and return what happened.
pub async fn record(h: &dyn StoreHarness, m: &Message, event: &LifecycleEvent) -> Recorded {
    record_event(h.store().as_ref(), &m.tenant, &m.id, event, &policy())
        .await
        .expect("record_event")
}

/// Try to claim `m` at `ms`.
pub async fn try_claim(h: &dyn StoreHarness, m: &Message, ms: i64) -> Option<Message> {
    h.store()
        .claim_for_send(&m.tenant, &m.id, at(ms), &policy())
        .await
        .expect("claim")
}

/// Claim `m` at `ms`; it must succeed.
pub async fn claim(h: &dyn StoreHarness, m: &Message, ms: i64) -> Message {
    h.store()
        .claim_for_send(&m.tenant, &m.id, at(ms), &policy())
        .await
        .expect("claim")
        .expect("claim must win")
}

/// The stored message, which must exist.
pub async fn fetch(h: &dyn StoreHarness, m: &Message) -> Message {
    h.store()
        .get(&m.tenant, &m.id)
        .await
        .expect("get")
        .expect("message exists")
}

/// A store whose writes run one at a time, for moto: moto's server is threaded and
/// checks a condition and writes the item without a lock, so two concurrent
/// conditional writes can both succeed (16 concurrent claims produce several
/// winners). DynamoDB applies each write to an item atomically; this wrapper restores
/// that guarantee (more strictly: across items) so the concurrency cases test the
/// adapter's logic, not moto's races. Reads are not serialised, so read-decide-write
/// loops still interleave freely.
#[derive(Debug)]
pub struct OneWriteAtATime<S> {
    inner: S,
    writing: tokio::sync::Mutex<()>,
}

impl<S> OneWriteAtATime<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: MessageStore> MessageStore for OneWriteAtATime<S> {
    async fn create_if_absent(&self, message: &Message) -> Result<CreateOutcome, StoreError> {
        let _one = self.writing.lock().await;
        self.inner.create_if_absent(message).await
    }

    async fn get(&self, tenant: &TenantId, id: &MessageId) -> Result<Option<Message>, StoreError> {
        self.inner.get(tenant, id).await
    }

    async fn find_by_wamid(
        &self,
        wamid: &Wamid,
    ) -> Result<Option<(TenantId, MessageId)>, StoreError> {
        self.inner.find_by_wamid(wamid).await
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        id: &MessageId,
        transition: &Transition,
    ) -> Result<ApplyOutcome, StoreError> {
        let _one = self.writing.lock().await;
        self.inner.apply(tenant, id, transition).await
    }

    async fn sweep(
        &self,
        sweep_key: &str,
        due: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.inner.sweep(sweep_key, due, limit, cursor).await
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        query: &wa_shared::ports::MessageQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.inner.list_messages(tenant, query, limit, cursor).await
    }
}

/// SplitMix64: a tiny seeded generator, so a failing property case is reproducible
/// from its printed seed.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Shuffle `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// One `#[tokio::test]` per conformance case, each on a fresh harness from `$harness`
/// (an expression evaluating to a future of `Option<impl StoreHarness>`; `None` skips).
#[macro_export]
macro_rules! store_conformance_tests {
    ($harness:expr) => {
        $crate::store_conformance_tests!(@cases $harness;
            create_if_absent_conflict_returns_the_existing_item,
            concurrent_claims_of_one_message_have_exactly_one_winner,
            an_expired_lease_is_reclaimed_but_a_live_one_is_not,
            an_ambiguous_send_is_never_reclaimed,
            a_message_with_a_full_history_is_still_claimable,
            provider_statuses_in_any_order_end_in_the_highest_rank_with_every_timestamp,
            a_late_lower_rank_status_fills_its_timestamp_only,
            the_same_event_twice_is_recorded_once,
            every_applied_write_matches_the_in_memory_lifecycle,
            missing_messages_are_not_found,
            sweep_returns_due_items_of_one_key_in_deadline_order_and_pages,
            terminal_messages_leave_the_sweep_index,
            a_message_is_found_by_its_wamid,
            the_ttl_attribute_is_stored_in_epoch_seconds,
            another_tenant_sees_nothing,
            a_tenants_messages_list_newest_first_with_a_state_filter,
            a_foreign_cursor_is_refused,
            a_listing_by_recipient_and_window_pages_stably_under_writes,
            a_scheduled_message_is_released_at_its_send_at_then_claimed,
            a_cancellation_racing_a_claim_has_exactly_one_winner,
            a_cancelled_message_is_never_claimed_again,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness.await else { return };
                $crate::store_conformance::$case(&harness).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_shuffles_into_a_permutation() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut items: Vec<u32> = (0..20).collect();
        a.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        assert_ne!(items, sorted, "a shuffle of 20 left them sorted");
    }

    #[test]
    fn ids_in_a_shard_are_in_that_shard() {
        for shard in 0..8 {
            assert_eq!(sweep_shard(&id_in_shard(shard), 8), shard);
        }
    }
}
