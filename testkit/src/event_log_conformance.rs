//! The one `EventLog` conformance suite every adapter must pass (DESIGN §2
//! invariant). Use [`event_log_conformance_tests!`](crate::event_log_conformance_tests)
//! with an expression giving a future of `Option<Arc<dyn EventLog>>` (`None`: skip).

use std::collections::HashSet;
use std::sync::Arc;
use wa_shared::domain::events::{Event, EventType};
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::ports::{EventLog, EventLogError, MAX_EVENT_PAGE};

/// A tenant no other case of this run uses (logs are shared on moto).
fn fresh_tenant() -> TenantId {
    TenantId::parse(&crate::unique_name("t")).unwrap()
}

/// An event of `tenant` with id `id`.
pub fn event(tenant: &TenantId, id: &str) -> Event {
    Event {
        id: id.to_owned(),
        event_type: EventType::MessageDelivered,
        timestamp: Timestamp::from_millis(1_750_000_000_000).to_rfc3339(),
        tenant: tenant.clone(),
        data: serde_json::json!({"message_id": id}),
    }
}

async fn all(log: &dyn EventLog, tenant: &TenantId, page: usize) -> Vec<Event> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let p = log.list(tenant, after.as_deref(), page).await.unwrap();
        let last = p.events.last().map(|e| e.position.clone());
        out.extend(p.events.into_iter().map(|e| e.event));
        match (p.more, last) {
            (true, Some(pos)) => after = Some(pos),
            _ => return out,
        }
    }
}

/// Events come back in the order they were appended, and paging with the last
/// position neither misses nor repeats one.
pub async fn events_page_in_append_order(log: &Arc<dyn EventLog>) {
    let t = fresh_tenant();
    for i in 0..7 {
        log.append(&[event(&t, &format!("evt_{i}"))]).await.unwrap();
    }
    let ids: Vec<String> = all(&**log, &t, 3).await.into_iter().map(|e| e.id).collect();
    let expected: Vec<String> = (0..7).map(|i| format!("evt_{i}")).collect();
    assert_eq!(ids, expected);
}

/// Appending an id already logged (a redelivery, a replay) logs nothing new.
pub async fn appending_twice_logs_once(log: &Arc<dyn EventLog>) {
    let t = fresh_tenant();
    log.append(&[event(&t, "evt_a"), event(&t, "evt_b")])
        .await
        .unwrap();
    log.append(&[event(&t, "evt_b"), event(&t, "evt_a"), event(&t, "evt_c")])
        .await
        .unwrap();
    let ids: Vec<String> = all(&**log, &t, 10)
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["evt_a", "evt_b", "evt_c"]);
}

/// A tenant sees only its own events, with their content intact.
pub async fn tenants_see_only_their_own_events(log: &Arc<dyn EventLog>) {
    let (a, b) = (fresh_tenant(), fresh_tenant());
    let mine = event(&a, "evt_mine");
    log.append(&[mine.clone(), event(&b, "evt_theirs")])
        .await
        .unwrap();
    assert_eq!(all(&**log, &a, 10).await, vec![mine]);
    let theirs: HashSet<String> = all(&**log, &b, 10)
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(theirs, HashSet::from(["evt_theirs".to_owned()]));
}

/// Paging after the last event gives an empty page; a limit past the maximum is
/// clamped; a position this log never handed out is refused.
pub async fn positions_and_limits_are_checked(log: &Arc<dyn EventLog>) {
    let t = fresh_tenant();
    log.append(&[event(&t, "evt_only")]).await.unwrap();
    let first = log.list(&t, None, MAX_EVENT_PAGE * 10).await.unwrap();
    assert_eq!(first.events.len(), 1);
    assert!(!first.more);
    let after = first.events[0].position.clone();
    let next = log.list(&t, Some(&after), 10).await.unwrap();
    assert!(next.events.is_empty() && !next.more);
    assert!(matches!(
        log.list(&t, Some("not a position"), 10).await,
        Err(EventLogError::InvalidPosition)
    ));
}

/// One `#[tokio::test]` per conformance case.
#[macro_export]
macro_rules! event_log_conformance_tests {
    ($log:expr) => {
        $crate::event_log_conformance_tests!(@cases $log;
            events_page_in_append_order,
            appending_twice_logs_once,
            tenants_see_only_their_own_events,
            positions_and_limits_are_checked,
        );
    };
    (@cases $log:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(log) = $log.await else { return };
                $crate::event_log_conformance::$case(&log).await;
            }
        )*
    };
}
