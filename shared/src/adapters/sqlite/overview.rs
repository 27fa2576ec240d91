//! The embedded store at a glance, for `wa dev`'s status page: how many messages
//! each tenant has in each state, and the newest messages across tenants.
//!
//! These are not part of the [`MessageStore`](crate::ports::MessageStore) port: on
//! AWS the same questions are answered by metrics and the dashboard, never by
//! scanning the table. Here both queries run on indexes of their own ([`INDEXES`],
//! applied with the store's migrations): the counts read only the `(tenant, state)`
//! index, the newest messages walk `(created_at, pk)` backwards and stop after the
//! limit, so a page refresh costs the same with ten messages or a million.

use super::Migration;
use super::messages::{RowError, SqliteMessageStore, decode, limit_of};
use crate::domain::{Message, MessageState, TenantId};
use crate::ports::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// The indexes behind the overview queries (a store migration; see `messages.rs`).
pub(super) const INDEXES: Migration = Migration {
    id: "store/0002_overview_indexes",
    sql: "
        CREATE INDEX store_messages_by_tenant_state ON store_messages (tenant, state);
        CREATE INDEX store_messages_by_created ON store_messages (created_at, pk);
    ",
};

/// Covered by `store_messages_by_tenant_state`: the table itself is never read.
const COUNT_SQL: &str = "SELECT tenant, state, count(*) FROM store_messages
                         GROUP BY tenant, state ORDER BY tenant, state";

/// Walks `store_messages_by_created` from its end; `pk` breaks ties of the same millisecond.
const LATEST_SQL: &str = "SELECT pk, body FROM store_messages
                          ORDER BY created_at DESC, pk DESC LIMIT ?1";

/// How many messages one tenant has in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    /// The tenant.
    pub tenant: TenantId,
    /// The state.
    pub state: MessageState,
    /// Messages of `tenant` currently in `state` (never 0: empty pairs are left out).
    pub count: u64,
}

/// Counts and newest messages read from one snapshot of the database, so the two agree.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overview {
    /// Non-zero counts, ordered by tenant, then state in lifecycle order.
    pub counts: Vec<StateCount>,
    /// The newest messages of every tenant, newest first.
    pub latest: Vec<Message>,
}

/// A state name in the `state` column that this build does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown message state {0:?}")]
struct UnknownState(String);

type CountRow = (String, String, i64);
type BodyRow = (String, String);

fn count_rows(conn: &Connection) -> Result<Vec<CountRow>, RowError> {
    let mut stmt = conn.prepare_cached(COUNT_SQL)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn latest_rows(conn: &Connection, limit: i64) -> Result<Vec<BodyRow>, RowError> {
    let mut stmt = conn.prepare_cached(LATEST_SQL)?;
    let rows = stmt
        .query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn counts_of(rows: Vec<CountRow>) -> Result<Vec<StateCount>, StoreError> {
    let mut counts = rows
        .into_iter()
        .map(|(tenant, state, count)| {
            let corrupt = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Corrupt {
                key: tenant.clone(),
                source,
            };
            Ok(StateCount {
                tenant: TenantId::parse(&tenant).map_err(|e| corrupt(e.into()))?,
                state: MessageState::parse(&state)
                    .ok_or_else(|| corrupt(UnknownState(state.clone()).into()))?,
                // count(*) is never negative.
                count: u64::try_from(count).unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    counts.sort_by(|a, b| a.tenant.cmp(&b.tenant).then(a.state.cmp(&b.state)));
    Ok(counts)
}

fn messages_of(rows: Vec<BodyRow>) -> Result<Vec<Message>, StoreError> {
    rows.into_iter()
        .map(|(key, body)| decode(&key, &body).map_err(|e| e.during("latest_messages")))
        .collect()
}

impl SqliteMessageStore {
    /// How many messages each tenant has in each state; pairs with no message are left out.
    pub async fn count_by_tenant_and_state(&self) -> Result<Vec<StateCount>, StoreError> {
        let rows = self
            .db
            .call(|conn| count_rows(conn))
            .await
            .map_err(|e| e.during("count_by_tenant_and_state"))?;
        counts_of(rows)
    }

    /// The newest `limit` messages across every tenant (clamped to 1..=1000), newest first.
    pub async fn latest_messages(&self, limit: usize) -> Result<Vec<Message>, StoreError> {
        let limit = limit_of(limit);
        let rows = self
            .db
            .call(move |conn| latest_rows(conn, limit))
            .await
            .map_err(|e| e.during("latest_messages"))?;
        messages_of(rows)
    }

    /// [`count_by_tenant_and_state`](Self::count_by_tenant_and_state) and
    /// [`latest_messages`](Self::latest_messages) in one read transaction: under WAL
    /// both see the same snapshot, so a message moving between the two reads is not
    /// counted in one state and listed in another.
    pub async fn overview(&self, latest: usize) -> Result<Overview, StoreError> {
        let limit = limit_of(latest);
        let (counts, latest) = self
            .db
            .call(move |conn| -> Result<_, RowError> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
                let counts = count_rows(&tx)?;
                let latest = latest_rows(&tx, limit)?;
                tx.commit()?;
                Ok((counts, latest))
            })
            .await
            .map_err(|e| e.during("overview"))?;
        Ok(Overview {
            counts: counts_of(counts)?,
            latest: messages_of(latest)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::{SqliteDb, SqliteError};
    use crate::domain::lifecycle::{EventKind, LifecycleEvent};
    use crate::domain::{
        LifecyclePolicy, MessageId, NewMessage, PhoneNumber, Suppression, SuppressionReason,
        Timestamp, Wamid,
    };
    use crate::ports::{MessageStore, Recorded, record_event};

    async fn store() -> (SqliteMessageStore, SqliteDb) {
        let db = SqliteDb::open_in_memory().await.unwrap();
        (SqliteMessageStore::new(db.clone()).await.unwrap(), db)
    }

    fn new_message(tenant: &str, id: MessageId) -> NewMessage {
        NewMessage {
            tenant: TenantId::parse(tenant).unwrap(),
            id,
            to: PhoneNumber::parse("+14155550123").unwrap(),
            template_name: None,
            template_language: None,
            request: serde_json::json!({"to": "+14155550123", "text": {"body": "hi"}}),
            request_hash: "h".into(),
            metadata: None,
        }
    }

    /// A queued message of `tenant` created at `secs`, stored.
    async fn queued(store: &SqliteMessageStore, tenant: &str, secs: i64) -> Message {
        let m = Message::new_queued(
            new_message(tenant, MessageId::generate()),
            Timestamp::from_secs(secs),
            &LifecyclePolicy::default(),
        );
        store.create_if_absent(&m).await.unwrap();
        m
    }

    /// Claim `m` and let the Graph API accept it: `accepted`.
    async fn accept(store: &SqliteMessageStore, m: &Message, secs: i64) {
        let policy = LifecyclePolicy::default();
        let now = Timestamp::from_secs(secs);
        store
            .claim_for_send(&m.tenant, &m.id, now, &policy)
            .await
            .unwrap()
            .unwrap();
        let accepted = LifecycleEvent::new(
            now,
            EventKind::Accepted {
                attempt: 1,
                wamid: Wamid::parse(&format!("wamid.{}", m.id)).unwrap(),
                message_status: None,
            },
        );
        let recorded = record_event(store, &m.tenant, &m.id, &accepted, &policy)
            .await
            .unwrap();
        assert!(matches!(recorded, Recorded::Written { .. }), "{recorded:?}");
    }

    fn count(tenant: &str, state: MessageState, count: u64) -> StateCount {
        StateCount {
            tenant: TenantId::parse(tenant).unwrap(),
            state,
            count,
        }
    }

    #[tokio::test]
    async fn an_empty_store_has_no_counts_and_no_messages() {
        let (store, _db) = store().await;
        assert_eq!(store.overview(50).await.unwrap(), Overview::default());
    }

    #[tokio::test]
    async fn counts_follow_each_tenants_messages_through_their_states() {
        let (store, _db) = store().await;
        let a1 = queued(&store, "acme", 1).await;
        queued(&store, "acme", 2).await;
        queued(&store, "acme", 3).await;
        let b1 = queued(&store, "beta", 4).await;
        accept(&store, &a1, 10).await;
        accept(&store, &b1, 11).await;
        let refused = Message::new_suppressed(
            new_message("beta", MessageId::generate()),
            Suppression {
                reason: SuppressionReason::OptedOut,
                detail: None,
            },
            Timestamp::from_secs(5),
            &LifecyclePolicy::default(),
        );
        store.create_if_absent(&refused).await.unwrap();

        let expected = vec![
            count("acme", MessageState::Queued, 2),
            count("acme", MessageState::Accepted, 1),
            count("beta", MessageState::Accepted, 1),
            count("beta", MessageState::Suppressed, 1),
        ];
        assert_eq!(store.count_by_tenant_and_state().await.unwrap(), expected);
        assert_eq!(store.overview(50).await.unwrap().counts, expected);
    }

    #[tokio::test]
    async fn the_newest_messages_of_all_tenants_come_first_up_to_the_limit() {
        let (store, _db) = store().await;
        let mut created = Vec::new();
        for (i, tenant) in ["acme", "beta", "acme", "gamma", "beta"].iter().enumerate() {
            created.push(queued(&store, tenant, 100 + i as i64).await);
        }
        // Two in the same millisecond: the larger key first, as the index orders them.
        let same_a = queued(&store, "acme", 200).await;
        let same_b = queued(&store, "beta", 200).await;
        let mut tie = [same_a, same_b];
        tie.sort_by_key(|m| std::cmp::Reverse(crate::adapters::keys::pk(&m.tenant, &m.id)));

        let latest = store.latest_messages(4).await.unwrap();
        let ids: Vec<_> = latest.iter().map(|m| m.id.clone()).collect();
        assert_eq!(
            ids,
            [
                tie[0].id.clone(),
                tie[1].id.clone(),
                created[4].id.clone(),
                created[3].id.clone()
            ]
        );
        assert_eq!(latest[2], created[4], "bodies decode to the stored message");
        assert_eq!(store.overview(100).await.unwrap().latest.len(), 7);
    }

    #[tokio::test]
    async fn both_queries_run_on_their_indexes() {
        let (_store, db) = store().await;
        let plan = |sql: &'static str| {
            db.call(move |c| -> Result<String, SqliteError> {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let args = vec![50_i64; stmt.parameter_count()];
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows.join("; "))
            })
        };
        let counts = plan(COUNT_SQL).await.unwrap();
        assert!(
            counts.contains("COVERING INDEX store_messages_by_tenant_state")
                && !counts.contains("TEMP B-TREE"),
            "{counts}"
        );
        let latest = plan(LATEST_SQL).await.unwrap();
        assert!(
            latest.contains("INDEX store_messages_by_created") && !latest.contains("TEMP B-TREE"),
            "{latest}"
        );
    }

    #[tokio::test]
    async fn a_corrupt_body_or_state_is_reported_with_its_key() {
        let (store, db) = store().await;
        let m = queued(&store, "acme", 1).await;
        db.call(|c| {
            c.execute("UPDATE store_messages SET body = '{not json'", [])
                .map_err(SqliteError::from)
        })
        .await
        .unwrap();
        let err = store.latest_messages(10).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, .. } if key.ends_with(m.id.as_str())),
            "{err:?}"
        );
        db.call(|c| {
            c.execute("UPDATE store_messages SET state = 'teleported'", [])
                .map_err(SqliteError::from)
        })
        .await
        .unwrap();
        let err = store.count_by_tenant_and_state().await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, .. } if key == "acme"),
            "{err:?}"
        );
    }
}
