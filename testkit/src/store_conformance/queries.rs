//! Conformance cases about reads: sweep, wamid lookup, TTL, tenant scoping, listing.

use super::*;
use wa_shared::domain::MessageState;
use wa_shared::domain::PhoneNumber;
use wa_shared::domain::lifecycle::claim_transition;
use wa_shared::ports::{ApplyOutcome, MessageQuery, Page, StoreError};

const MAX_PAGES: usize = 100;

/// Every item of a sweep, page by page; each page holds at most `limit` items.
async fn sweep_all(h: &dyn StoreHarness, key: &str, due: Timestamp, limit: usize) -> Vec<Message> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = h
            .store()
            .sweep(key, due, limit, cursor.as_deref())
            .await
            .unwrap();
        assert!(
            page.items.len() <= limit,
            "page over its limit: {}",
            page.items.len()
        );
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
    panic!("sweep of {key} did not end after {MAX_PAGES} pages");
}

/// Every item of a tenant listing, page by page.
async fn list_all(
    h: &dyn StoreHarness,
    tenant_name: &str,
    state: Option<MessageState>,
    since: Option<Timestamp>,
    limit: usize,
) -> Vec<MessageId> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let t = tenant(tenant_name);
    for _ in 0..MAX_PAGES {
        let Page { items, next } = h
            .store()
            .list_by_tenant(&t, state, since, limit, cursor.as_deref())
            .await
            .unwrap();
        assert!(items.len() <= limit, "page over its limit: {}", items.len());
        assert!(items.iter().all(|m| m.tenant == t));
        all.extend(items.into_iter().map(|m| m.id));
        match next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
    panic!("listing did not end after {MAX_PAGES} pages");
}

fn ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id.clone()).collect()
}

/// A sweep returns the due items of exactly one `state#shard` key, earliest deadline
/// first, across pages; not-yet-due items, other shards and other states stay out.
pub async fn sweep_returns_due_items_of_one_key_in_deadline_order_and_pages(h: &dyn StoreHarness) {
    let grace = policy().queued_grace_ms();
    let lease = policy().lease_ms();
    let mut due_in_shard = Vec::new();
    for i in 0..5 {
        let m = queued_with_id("acme", id_in_shard(3), at(i * 1_000));
        create(h, &m).await;
        due_in_shard.push(m);
    }
    for (shard, created) in [(3, 1_000_000), (4, 500), (4, 1_500)] {
        create(h, &queued_with_id("acme", id_in_shard(shard), at(created))).await;
    }
    let sending = queued_with_id("globex", id_in_shard(3), at(2_500));
    create(h, &sending).await;
    claim(h, &sending, 3_000).await;

    let due = at(10_000 + grace);
    let swept = sweep_all(h, "queued#3", due, 2).await;
    assert_eq!(ids(&swept), ids(&due_in_shard));
    assert!(swept.iter().all(|m| m.state == MessageState::Queued));
    assert_eq!(swept, due_in_shard, "sweep items are whole messages");
    assert_eq!(sweep_all(h, "queued#4", due, 10).await.len(), 2);

    let lease_end = at(3_000 + lease);
    let sending_due = sweep_all(h, "sending#3", lease_end, 10).await;
    assert_eq!(ids(&sending_due), vec![sending.id.clone()]);
    assert_eq!(
        sweep_all(h, "sending#3", at(3_000 + lease - 1), 10).await,
        vec![]
    );
}

/// A message leaves the sweep index when it becomes terminal (sparse index).
pub async fn terminal_messages_leave_the_sweep_index(h: &dyn StoreHarness) {
    let far = at(1_000_000_000);
    let m = queued_with_id("acme", id_in_shard(5), at(0));
    create(h, &m).await;
    assert_eq!(
        ids(&sweep_all(h, "queued#5", far, 10).await),
        vec![m.id.clone()]
    );
    claim(h, &m, 10).await;
    assert_eq!(sweep_all(h, "queued#5", far, 10).await, vec![]);
    assert_eq!(
        ids(&sweep_all(h, "sending#5", far, 10).await),
        vec![m.id.clone()]
    );
    let w = wamid("wamid.terminal");
    record(h, &m, &accepted(1, &w, 20)).await;
    assert_eq!(
        ids(&sweep_all(h, "accepted#5", far, 10).await),
        vec![m.id.clone()]
    );
    record(h, &m, &status(ProviderStatusKind::Delivered, &w, 30)).await;
    for state in MessageState::ALL {
        let key = format!("{}#5", state.as_str());
        assert_eq!(sweep_all(h, &key, far, 10).await, vec![], "still in {key}");
    }
    let stored = fetch(h, &m).await;
    assert_eq!((stored.sweep_key, stored.sweep_at), (None, None));
}

/// Once accepted, a message is found by its wamid; before, and for other wamids, not.
pub async fn a_message_is_found_by_its_wamid(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    let w = wamid("wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI");
    assert_eq!(h.store().find_by_wamid(&w).await.unwrap(), None);
    claim(h, &m, 10).await;
    record(h, &m, &accepted(1, &w, 20)).await;
    let found = h.store().find_by_wamid(&w).await.unwrap();
    assert_eq!(found, Some((m.tenant.clone(), m.id.clone())));
    let other = wamid("wamid.unknown");
    assert_eq!(h.store().find_by_wamid(&other).await.unwrap(), None);
}

/// The TTL attribute is stored as a number of epoch seconds (DynamoDB ignores
/// milliseconds: they lie thousands of years ahead).
pub async fn the_ttl_attribute_is_stored_in_epoch_seconds(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    let ttl_secs = policy().message_ttl.as_secs() as i64;
    let stored = h.stored_expires_at(&m.tenant, &m.id).await;
    assert_eq!(stored, Some(at(0).as_secs() + ttl_secs));
    assert!(
        stored.unwrap() < 100_000_000_000,
        "expires_at looks like milliseconds"
    );
}

/// Every read and write is scoped by the tenant: the same id under another tenant
/// is another message, and another tenant's id finds nothing.
pub async fn another_tenant_sees_nothing(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    let globex = tenant("globex");
    assert_eq!(h.store().get(&globex, &m.id).await.unwrap(), None);
    let claim_t = claim_transition(&m.id, at(1), &policy());
    let outcome = h.store().apply(&globex, &m.id, &claim_t).await.unwrap();
    assert_eq!(outcome, ApplyOutcome::NotFound);
    assert_eq!(list_all(h, "globex", None, None, 10).await, vec![]);

    let theirs = queued_with_id("globex", m.id.clone(), at(7));
    create(h, &theirs).await;
    let ours = claim(h, &m, 10).await;
    assert_eq!(ours.attempt, 1);
    assert_eq!(h.store().get(&globex, &m.id).await.unwrap(), Some(theirs));
    assert_eq!(fetch(h, &m).await, ours);
}

/// A tenant's messages list newest first, across pages and shards, optionally of one
/// state and created since a given instant; other tenants' messages never appear.
pub async fn a_tenants_messages_list_newest_first_with_a_state_filter(h: &dyn StoreHarness) {
    let mut acme = Vec::new();
    for i in 0..7 {
        let m = queued("acme", at(i * 1_000));
        create(h, &m).await;
        acme.push(m);
    }
    for created in [500, 3_500] {
        create(h, &queued("globex", at(created))).await;
    }
    for i in [1, 3, 5] {
        claim(h, &acme[i], 10_000).await;
    }
    let newest_first =
        |picks: &[usize]| -> Vec<MessageId> { picks.iter().map(|&i| acme[i].id.clone()).collect() };
    assert_eq!(
        list_all(h, "acme", None, None, 3).await,
        newest_first(&[6, 5, 4, 3, 2, 1, 0])
    );
    assert_eq!(
        list_all(h, "acme", Some(MessageState::Sending), None, 2).await,
        newest_first(&[5, 3, 1])
    );
    assert_eq!(
        list_all(h, "acme", None, Some(at(4_000)), 10).await,
        newest_first(&[6, 5, 4])
    );
    assert_eq!(
        list_all(h, "acme", Some(MessageState::Queued), Some(at(2_000)), 1).await,
        newest_first(&[6, 4, 2])
    );
    assert_eq!(list_all(h, "globex", None, None, 10).await.len(), 2);
}

/// A cursor the store did not hand out is refused, not misread.
pub async fn a_foreign_cursor_is_refused(h: &dyn StoreHarness) {
    let m = queued("acme", at(0));
    create(h, &m).await;
    let sweep = h
        .store()
        .sweep("queued#0", at(0), 10, Some("garbage!"))
        .await;
    assert!(matches!(sweep, Err(StoreError::InvalidCursor)), "{sweep:?}");
    let list = h
        .store()
        .list_by_tenant(&m.tenant, None, None, 10, Some("AAAA"))
        .await;
    assert!(matches!(list, Err(StoreError::InvalidCursor)), "{list:?}");
}

/// Every item of a listing with `query`, page by page, running `between_pages` after
/// the first page (writes that must not shift the pages after it).
async fn query_all(
    h: &dyn StoreHarness,
    tenant_name: &str,
    query: &MessageQuery,
    limit: usize,
    between_pages: Vec<Message>,
) -> Vec<MessageId> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pending = Some(between_pages);
    let t = tenant(tenant_name);
    for _ in 0..MAX_PAGES {
        let Page { items, next } = h
            .store()
            .list_messages(&t, query, limit, cursor.as_deref())
            .await
            .unwrap();
        assert!(items.len() <= limit, "page over its limit: {}", items.len());
        assert!(items.iter().all(|m| m.tenant == t));
        all.extend(items.into_iter().map(|m| m.id));
        if let Some(writes) = pending.take() {
            for m in writes {
                create(h, &m).await;
            }
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
    panic!("listing did not end after {MAX_PAGES} pages");
}

/// The product listing (`GET /v1/messages`): by recipient (its own index), by creation
/// window (`since` inclusive, `until` exclusive), with a state, newest first; and a
/// cursor that stays put while new messages are written between pages.
pub async fn a_listing_by_recipient_and_window_pages_stably_under_writes(h: &dyn StoreHarness) {
    let ana = PhoneNumber::parse("+14155550123").expect("number");
    let bo = PhoneNumber::parse("+14155550999").expect("number");
    let to = |mut m: Message, who: &PhoneNumber| {
        m.to = who.clone();
        m
    };
    let mut to_ana = Vec::new();
    let mut to_bo = Vec::new();
    for i in 0..6 {
        let m = to(queued("acme", at(i * 1_000)), &ana);
        create(h, &m).await;
        to_ana.push(m);
        let m = to(queued("acme", at(i * 1_000 + 500)), &bo);
        create(h, &m).await;
        to_bo.push(m);
    }
    create(h, &to(queued("globex", at(2_000)), &ana)).await;
    let ids = |ms: &[Message], picks: &[usize]| -> Vec<MessageId> {
        picks.iter().map(|&i| ms[i].id.clone()).collect()
    };
    let for_ana = MessageQuery {
        to: Some(ana.clone()),
        ..MessageQuery::default()
    };
    // Two newer messages to Ana written after the first page: later pages are unmoved.
    let newer = vec![
        to(queued("acme", at(50_000)), &ana),
        to(queued("acme", at(60_000)), &ana),
    ];
    assert_eq!(
        query_all(h, "acme", &for_ana, 2, newer.clone()).await,
        ids(&to_ana, &[5, 4, 3, 2, 1, 0])
    );
    assert_eq!(
        query_all(h, "acme", &for_ana, 3, Vec::new()).await,
        [ids(&newer, &[1, 0]), ids(&to_ana, &[5, 4, 3, 2, 1, 0])].concat()
    );
    let window = MessageQuery {
        to: Some(ana.clone()),
        since: Some(at(2_000)),
        until: Some(at(4_000)),
        ..MessageQuery::default()
    };
    assert_eq!(
        query_all(h, "acme", &window, 1, Vec::new()).await,
        ids(&to_ana, &[3, 2])
    );
    let both = MessageQuery {
        since: Some(at(2_000)),
        until: Some(at(4_000)),
        ..MessageQuery::default()
    };
    assert_eq!(
        query_all(h, "acme", &both, 10, Vec::new()).await,
        [
            ids(&to_bo, &[3]),
            ids(&to_ana, &[3]),
            ids(&to_bo, &[2]),
            ids(&to_ana, &[2])
        ]
        .concat()
    );
    let queued_to_bo = MessageQuery {
        to: Some(bo.clone()),
        state: Some(MessageState::Queued),
        until: Some(at(2_000)),
        ..MessageQuery::default()
    };
    assert_eq!(
        query_all(h, "acme", &queued_to_bo, 10, Vec::new()).await,
        ids(&to_bo, &[1, 0])
    );
    let sending = MessageQuery {
        to: Some(bo),
        state: Some(MessageState::Sending),
        ..MessageQuery::default()
    };
    assert!(
        query_all(h, "acme", &sending, 10, Vec::new())
            .await
            .is_empty()
    );
    let empty = MessageQuery {
        since: Some(at(4_000)),
        until: Some(at(4_000)),
        ..MessageQuery::default()
    };
    assert!(
        query_all(h, "acme", &empty, 10, Vec::new())
            .await
            .is_empty()
    );
    assert_eq!(
        query_all(h, "globex", &for_ana, 10, Vec::new()).await.len(),
        1
    );
}
