//! Scheduled sends and cancellation on a real store: the release by the sweep, and
//! the race between a caller's cancellation and a sender's claim.

use super::*;
use wa_shared::domain::MessageState;
use wa_shared::domain::message::NotCancellable;

/// A message scheduled at `created` for `send_at`.
pub fn scheduled_at(tenant_name: &str, created: Timestamp, send_at: Timestamp) -> Message {
    Message::new_scheduled(
        new_message(tenant_name, MessageId::generate()),
        send_at,
        created,
        &policy(),
    )
}

/// A scheduled message sits in its `scheduled#shard` sweep key until `send_at`, is
/// never claimed before, and the release moves it to `queued` (swept again after the
/// queued grace) where a sender claims it.
pub async fn a_scheduled_message_is_released_at_its_send_at_then_claimed(h: &dyn StoreHarness) {
    let send_at = at(3_600_000);
    let m = scheduled_at("acme", at(0), send_at);
    create(h, &m).await;
    let store = h.store();
    let key = m.sweep_key.clone().expect("sweep key");
    assert!(key.starts_with("scheduled#"), "{key}");
    let early = store.sweep(&key, at(3_599_999), 10, None).await.unwrap();
    assert!(early.items.is_empty(), "not due yet: {early:?}");
    let due = store.sweep(&key, send_at, 10, None).await.unwrap();
    assert_eq!(due.items, vec![m.clone()]);
    assert_eq!(
        store
            .claim_for_send(&m.tenant, &m.id, at(10), &policy())
            .await
            .unwrap(),
        None,
        "a scheduled message is not claimable"
    );
    let release = LifecycleEvent::new(send_at, EventKind::Released);
    let recorded = record_event(&*store, &m.tenant, &m.id, &release, &policy())
        .await
        .unwrap();
    assert!(matches!(recorded, Recorded::Written { .. }), "{recorded:?}");
    let again = record_event(&*store, &m.tenant, &m.id, &release, &policy())
        .await
        .unwrap();
    assert!(matches!(again, Recorded::Duplicate(_)), "{again:?}");
    let stored = fetch(h, &m).await;
    assert_eq!(stored.state, MessageState::Queued);
    assert_eq!(stored.timestamps.queued_at, Some(send_at));
    let queued_key = stored.sweep_key.clone().expect("queued sweep key");
    assert!(queued_key.starts_with("queued#"));
    assert!(
        store
            .sweep(&key, send_at, 10, None)
            .await
            .unwrap()
            .items
            .is_empty(),
        "released: gone from the scheduled key"
    );
    let claimed = store
        .claim_for_send(&m.tenant, &m.id, at(3_600_100), &policy())
        .await
        .unwrap()
        .expect("claimed after release");
    assert_eq!((claimed.state, claimed.attempt), (MessageState::Sending, 1));
}

/// A cancellation and a sender's claim race on one queued message, many times over:
/// exactly one wins each race. When the claim wins, the cancellation is refused
/// (`sending` has begun); when the cancellation wins, the claim finds nothing to send
/// and the message stays `cancelled`, out of the sweep index.
pub async fn a_cancellation_racing_a_claim_has_exactly_one_winner(h: &dyn StoreHarness) {
    let (mut cancelled, mut claimed) = (0, 0);
    for round in 0..12i64 {
        let m = queued("acme", at(round));
        create(h, &m).await;
        let now = at(1_000 + round);
        let claim = {
            let store = h.store();
            let (tenant, id) = (m.tenant.clone(), m.id.clone());
            tokio::spawn(async move { store.claim_for_send(&tenant, &id, now, &policy()).await })
        };
        let cancel = {
            let store = h.store();
            let (tenant, id) = (m.tenant.clone(), m.id.clone());
            tokio::spawn(async move {
                let event = LifecycleEvent::new(now, EventKind::Cancelled);
                record_event(&*store, &tenant, &id, &event, &policy()).await
            })
        };
        let claim = claim.await.unwrap().unwrap();
        let cancel = cancel.await.unwrap().unwrap();
        let stored = fetch(h, &m).await;
        match (claim, cancel) {
            (Some(sending), Recorded::Duplicate(seen)) => {
                claimed += 1;
                assert_eq!(stored, sending);
                assert_eq!(stored.state, MessageState::Sending);
                assert_eq!(
                    seen.cancellable(),
                    Err(NotCancellable::SendingBegan(MessageState::Sending))
                );
            }
            (None, Recorded::Written { message, .. }) => {
                cancelled += 1;
                assert_eq!(stored, *message);
                assert_eq!(stored.state, MessageState::Cancelled);
                assert_eq!(stored.attempt, 0, "never claimed");
                assert_eq!((stored.sweep_key.as_deref(), stored.sweep_at), (None, None));
            }
            (claim, cancel) => panic!("both or neither won: {claim:?} / {cancel:?}"),
        }
    }
    assert_eq!(cancelled + claimed, 12);
}

/// A cancelled message is never claimed, released or moved again, and a scheduled
/// one cancels too.
pub async fn a_cancelled_message_is_never_claimed_again(h: &dyn StoreHarness) {
    let m = scheduled_at("acme", at(0), at(60_000));
    create(h, &m).await;
    let store = h.store();
    let cancel = LifecycleEvent::new(at(10), EventKind::Cancelled);
    let recorded = record_event(&*store, &m.tenant, &m.id, &cancel, &policy())
        .await
        .unwrap();
    assert!(matches!(recorded, Recorded::Written { .. }));
    let release = LifecycleEvent::new(at(60_000), EventKind::Released);
    let released = record_event(&*store, &m.tenant, &m.id, &release, &policy())
        .await
        .unwrap();
    assert!(matches!(released, Recorded::Duplicate(_)));
    for i in 0..3 {
        assert_eq!(
            store
                .claim_for_send(&m.tenant, &m.id, at(70_000 + i), &policy())
                .await
                .unwrap(),
            None
        );
    }
    let stored = fetch(h, &m).await;
    assert_eq!(stored.state, MessageState::Cancelled);
    assert_eq!(stored.timestamps.cancelled_at, Some(at(10)));
    assert_eq!(stored.attempt, 0);
}
