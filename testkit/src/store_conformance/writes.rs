//! Conformance cases about writes: the conditional put, claims, transitions.

use super::*;
use wa_shared::domain::MessageState;
use wa_shared::domain::failure::{Failure, FailureClass, FailureSource};
use wa_shared::domain::lifecycle::{Decision, claim_transition, decide};
use wa_shared::domain::message::{Suppression, SuppressionReason};
use wa_shared::domain::state::RANK_TERMINAL;
use wa_shared::ports::ApplyOutcome;

/// The conditional put is the idempotency check: a second put of the same tenant and
/// id writes nothing and returns the stored item, exactly as it was written.
pub async fn create_if_absent_conflict_returns_the_existing_item(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    assert_eq!(
        fetch(h, &m).await,
        m,
        "a stored message reads back unchanged"
    );
    let mut other = queued_with_id("acme", m.id.clone(), at(5));
    other.request_hash = "sha256:other".into();
    let outcome = h.store().create_if_absent(&other).await.unwrap();
    assert_eq!(outcome, CreateOutcome::Exists(Box::new(m.clone())));
    assert_eq!(fetch(h, &m).await, m);
}

/// Sixteen senders claim one message at once: exactly one wins, with attempt 1.
pub async fn concurrent_claims_of_one_message_have_exactly_one_winner(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    let claims: Vec<_> = (0..16)
        .map(|i| {
            let store = h.store();
            let (tenant, id) = (m.tenant.clone(), m.id.clone());
            tokio::spawn(async move {
                store
                    .claim_for_send(&tenant, &id, at(1_000 + i), &policy())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for claim in claims {
        winners.extend(claim.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = fetch(h, &m).await;
    assert_eq!(stored, winners[0]);
    assert_eq!((stored.state, stored.attempt), (MessageState::Sending, 1));
    let claims = stored
        .history
        .keys()
        .filter(|k| k.starts_with("sender.claimed"));
    assert_eq!(claims.count(), 1);
}

/// A claim holds until its lease has passed (strictly), then another sender may take
/// the message with the next attempt; the first `sending_at` is kept.
pub async fn an_expired_lease_is_reclaimed_but_a_live_one_is_not(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    let first = claim(h, &m, 10).await;
    let lease_until = first.lease_until.unwrap();
    assert_eq!(lease_until, at(10 + policy().lease_ms()));
    let end = lease_until.millis_since(at(0));
    for ms in [11, end - 1, end] {
        let again = try_claim(h, &m, ms).await;
        assert_eq!(again, None, "claimed with a live lease at +{ms}");
    }
    // The failed condition hands back the current item, not a guess.
    let blind = claim_transition(&m.id, at(end), &policy());
    let rejected = h.store().apply(&m.tenant, &m.id, &blind).await.unwrap();
    assert_eq!(rejected, ApplyOutcome::Rejected(Box::new(first.clone())));

    let second = claim(h, &m, end + 1).await;
    assert_eq!(second.attempt, 2);
    assert_eq!(second.lease_until, Some(at(end + 1 + policy().lease_ms())));
    assert_eq!(second.timestamps.sending_at, first.timestamps.sending_at);
}

/// A message whose history reached its cap is still claimed (the entry is counted in
/// `history_dropped` instead): the blind claim assumes room, fails, and the claim is
/// decided again on the returned item.
pub async fn a_message_with_a_full_history_is_still_claimable(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    let full = LifecyclePolicy {
        history_cap: 1,
        ..policy()
    };
    let store = h.store();
    let claimed = store.claim_for_send(&m.tenant, &m.id, at(10), &full).await;
    let claimed = claimed.unwrap().expect("claimed despite a full history");
    assert_eq!((claimed.state, claimed.attempt), (MessageState::Sending, 1));
    assert_eq!((claimed.history.len(), claimed.history_dropped), (1, 1));
}

/// A send whose answer was lost gives up its lease: no later claim takes it.
pub async fn an_ambiguous_send_is_never_reclaimed(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    claim(h, &m, 10).await;
    let lost = LifecycleEvent::new(at(20), EventKind::MarkedAmbiguous { attempt: 1 });
    assert!(matches!(
        record(h, &m, &lost).await,
        Recorded::Written { .. }
    ));
    assert_eq!(try_claim(h, &m, 10 * policy().lease_ms()).await, None);
    let stored = fetch(h, &m).await;
    assert_eq!((stored.state, stored.attempt), (MessageState::Sending, 1));
    assert_eq!(
        (stored.lease_until, stored.ambiguous_at),
        (None, Some(at(20)))
    );
}

/// Property: the sender's `Accepted` and Meta's statuses (with duplicates), applied
/// concurrently in random order through `record_event`, always end in `read` with
/// every timestamp, one history entry per distinct event, and no flag.
pub async fn provider_statuses_in_any_order_end_in_the_highest_rank_with_every_timestamp(
    h: &dyn StoreHarness,
) {
    for case in 0..h.property_cases() {
        let seed = 0x5EED_0000 + u64::from(case);
        let mut rng = SplitMix64::new(seed);
        let m = queued("acme", at(0));
        create(h, &m).await;
        claim(h, &m, 10).await;
        let w = wamid(&format!("wamid.case{case}"));
        let distinct = vec![
            accepted(1, &w, 100),
            status(ProviderStatusKind::Sent, &w, 200),
            status(ProviderStatusKind::Delivered, &w, 300),
            status(ProviderStatusKind::Read, &w, 400),
        ];
        let mut events = distinct.clone();
        for _ in 0..rng.below(3) {
            events.push(distinct[rng.below(4) as usize].clone());
        }
        rng.shuffle(&mut events);
        let tasks: Vec<_> = events
            .iter()
            .cloned()
            .map(|event| {
                let store = h.store();
                let (tenant, id) = (m.tenant.clone(), m.id.clone());
                let pause = std::time::Duration::from_micros(rng.below(3_000));
                tokio::spawn(async move {
                    tokio::time::sleep(pause).await;
                    record_event(store.as_ref(), &tenant, &id, &event, &policy()).await
                })
            })
            .collect();
        for task in tasks {
            let recorded = task.await.unwrap();
            assert!(recorded.is_ok(), "seed {seed:#x}: {recorded:?}");
        }
        let s = fetch(h, &m).await;
        let order: Vec<_> = events.iter().map(|e| e.kind.name()).collect();
        let why = format!("seed {seed:#x}, order {order:?}: {s:#?}");
        assert_eq!((s.state, s.rank), (MessageState::Read, 50), "{why}");
        assert_eq!(s.wamid.as_ref(), Some(&w), "{why}");
        assert_eq!(s.message_status.as_deref(), Some("accepted"), "{why}");
        let t = &s.timestamps;
        let expected = [Some(at(100)), Some(at(199)), Some(at(299)), Some(at(399))];
        assert_eq!(
            [t.accepted_at, t.sent_at, t.delivered_at, t.read_at],
            expected,
            "{why}"
        );
        for event in &distinct {
            assert!(s.has_seen(&event.fingerprint()), "{why}");
        }
        // Creation, the claim and the four distinct events.
        assert_eq!(s.history.len(), 6, "{why}");
        assert!(s.flags.is_empty() && s.failure.is_none(), "{why}");
        assert!(s.sweep_key.is_none() && s.lease_until.is_none(), "{why}");
    }
}

/// `delivered` after `read` fills `delivered_at` and keeps the state.
pub async fn a_late_lower_rank_status_fills_its_timestamp_only(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    claim(h, &m, 10).await;
    let w = wamid("wamid.late");
    record(h, &m, &accepted(1, &w, 20)).await;
    record(h, &m, &status(ProviderStatusKind::Read, &w, 40)).await;
    let late = record(h, &m, &status(ProviderStatusKind::Delivered, &w, 50)).await;
    let Recorded::Written { decision, message } = late else {
        panic!("late status not written: {late:?}");
    };
    assert!(
        matches!(*decision, Decision::FillTimestamp(_)),
        "{decision:?}"
    );
    assert_eq!((message.state, message.rank), (MessageState::Read, 50));
    assert_eq!(message.timestamps.delivered_at, Some(at(49)));
    assert_eq!(message.timestamps.read_at, Some(at(39)));
    assert_eq!(*message, fetch(h, &m).await);
}

/// The same webhook twice: the second changes nothing and is reported as a duplicate.
pub async fn the_same_event_twice_is_recorded_once(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    claim(h, &m, 10).await;
    let w = wamid("wamid.twice");
    record(h, &m, &accepted(1, &w, 20)).await;
    let delivered = status(ProviderStatusKind::Delivered, &w, 30);
    assert!(matches!(
        record(h, &m, &delivered).await,
        Recorded::Written { .. }
    ));
    let before = fetch(h, &m).await;
    let again = record(h, &m, &delivered).await;
    assert_eq!(again, Recorded::Duplicate(Box::new(before.clone())));
    assert_eq!(fetch(h, &m).await, before);
    let key = delivered.fingerprint();
    assert_eq!(before.history.keys().filter(|k| **k == key).count(), 1);
}

fn failure(class: FailureClass, source: FailureSource) -> Failure {
    Failure {
        class,
        code: Some(131_026),
        title: "Message undeliverable".into(),
        detail: Some("details".into()),
        source,
    }
}

/// Apply each decided transition directly and compare the store's `ALL_NEW` item with
/// `Transition::apply_to` on the in-memory item: the adapters implement exactly the
/// lifecycle's semantics for every kind of patch, including a full history.
pub async fn every_applied_write_matches_the_in_memory_lifecycle(h: &dyn StoreHarness) {
    let policy = LifecyclePolicy {
        history_cap: 6,
        ..policy()
    };
    let lease = policy.lease_ms();
    let grace = policy.ambiguous_grace_ms();
    let w = wamid("wamid.script");
    let ev = |ms, kind| LifecycleEvent::new(at(ms), kind);
    let suppressed = Suppression {
        reason: SuppressionReason::TemplatePaused,
        detail: Some("FIRST_PAUSE".into()),
    };
    let scripts = [
        vec![
            ev(1, EventKind::Claimed),
            ev(
                2,
                EventKind::RetryScheduled {
                    attempt: 1,
                    failure: failure(FailureClass::Transient, FailureSource::Graph),
                    not_before: at(100),
                },
            ),
            ev(200, EventKind::Claimed),
            ev(200 + lease + 1, EventKind::Requeued { attempt: 2 }),
            ev(200 + lease + 2, EventKind::Claimed),
            ev(200 + lease + 3, EventKind::MarkedAmbiguous { attempt: 3 }),
            ev(
                200 + lease + 4 + grace,
                EventKind::AmbiguousFailed { attempt: 3 },
            ),
            status(ProviderStatusKind::Read, &w, 10_000_000),
            status(ProviderStatusKind::Delivered, &w, 10_000_001),
            LifecycleEvent::new(
                at(10_000_002),
                EventKind::Provider(ProviderStatus {
                    wamid: w.clone(),
                    status: ProviderStatusKind::Failed,
                    occurred_at: at(10_000_001),
                    failure: Some(failure(FailureClass::Recipient, FailureSource::Webhook)),
                    detail: None,
                }),
            ),
            accepted(3, &w, 10_000_003),
        ],
        vec![
            ev(1, EventKind::Claimed),
            ev(
                2,
                EventKind::Suppressed {
                    attempt: 1,
                    suppression: suppressed,
                },
            ),
            status(ProviderStatusKind::Sent, &w, 3),
        ],
    ];
    for script in scripts {
        let m = Message::new_queued(new_message("acme", MessageId::generate()), at(0), &policy);
        create(h, &m).await;
        let mut expected = m.clone();
        for event in &script {
            let t = decide(&expected, event, &policy)
                .into_transition()
                .unwrap_or_else(|| panic!("{} decided nothing", event.kind.name()));
            assert!(t.apply_if_holds(&mut expected));
            let outcome = h.store().apply(&m.tenant, &m.id, &t).await.unwrap();
            let name = event.kind.name();
            assert_eq!(
                outcome,
                ApplyOutcome::Applied(Box::new(expected.clone())),
                "{name}"
            );
            // The same transition again no longer holds (its fingerprint is recorded,
            // or the history is full and the guard moved on): the current item returns.
            if !t.holds(&expected) {
                let again = h.store().apply(&m.tenant, &m.id, &t).await.unwrap();
                let current = ApplyOutcome::Rejected(Box::new(expected.clone()));
                assert_eq!(again, current, "{name} twice");
            }
        }
        assert_eq!(fetch(h, &m).await, expected);
        assert!(expected.history_dropped > 0 || expected.rank == RANK_TERMINAL);
    }
}

/// Writes to a message that does not exist create nothing.
pub async fn missing_messages_are_not_found(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    let claim = claim_transition(&m.id, at(1), &policy());
    let outcome = h.store().apply(&m.tenant, &m.id, &claim).await.unwrap();
    assert_eq!(outcome, ApplyOutcome::NotFound);
    let w = wamid("wamid.none");
    assert_eq!(
        record(h, &m, &status(ProviderStatusKind::Read, &w, 5)).await,
        Recorded::NotFound
    );
    assert_eq!(try_claim(h, &m, 1).await, None);
    assert_eq!(h.store().get(&m.tenant, &m.id).await.unwrap(), None);
}
