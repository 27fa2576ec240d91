//! `SqliteMessageStore`: the [`MessageStore`] port in the embedded database.
//!
//! One row per message: the message as JSON plus the columns the queries need
//! (`pk`, `wamid`, `sweep_key`/`sweep_at`, `tenant`/`created_at`, `state`). A
//! transition runs [`Transition::holds`] and [`Transition::apply_to`] inside one
//! `BEGIN IMMEDIATE` transaction, so it has the semantics the DynamoDB store
//! expresses as a conditional update, by construction. Unlike DynamoDB's indexes,
//! every query here is strongly consistent.
//!
//! The same transaction writes the events the change emits into the outbox
//! ([`super::events`]): the SQLite counterpart of the DynamoDB stream that feeds the
//! `events` function, so an event exists if and only if its transition was stored.

use super::{Migration, SqliteDb, SqliteError};
use crate::adapters::keys::pk;
use crate::adapters::sqlite::CachedSql;
use crate::domain::events::message_events;
use crate::domain::lifecycle::Transition;
use crate::domain::{Message, MessageId, TenantId, Timestamp, Wamid};
use crate::ports::{ApplyOutcome, CreateOutcome, MessageQuery, MessageStore, Page, StoreError};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{OptionalExtension, params};

static MIGRATIONS: &[Migration] = &[
    Migration {
        id: "store/0001_messages",
        sql: "
        CREATE TABLE store_messages (
            pk TEXT PRIMARY KEY NOT NULL,
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            state TEXT NOT NULL,
            wamid TEXT,
            sweep_key TEXT,
            sweep_at INTEGER,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            body TEXT NOT NULL
        ) STRICT;
        CREATE INDEX store_messages_by_wamid ON store_messages (wamid) WHERE wamid IS NOT NULL;
        CREATE INDEX store_messages_by_sweep ON store_messages (sweep_key, sweep_at, pk)
            WHERE sweep_key IS NOT NULL;
        CREATE INDEX store_messages_by_tenant ON store_messages (tenant, created_at, pk);
        CREATE INDEX store_messages_by_expiry ON store_messages (expires_at);
    ",
    },
    super::overview::INDEXES,
    Migration {
        id: "store/0003_recipient_index",
        sql: "
        ALTER TABLE store_messages ADD COLUMN recipient TEXT
            GENERATED ALWAYS AS (
                CASE WHEN json_valid(body) THEN json_extract(body, '$.to') END
            ) VIRTUAL;
        CREATE INDEX store_messages_by_recipient
            ON store_messages (tenant, recipient, created_at, pk);
    ",
    },
    // 0003's generated column made SQLite parse the whole JSON body again on every
    // write of a row, to see whether the index entry moved (about 2% of wa dev's CPU
    // under load, issue 15). A recipient never changes: a plain column, written once
    // by the insert, keeps the index without it.
    Migration {
        id: "store/0004_recipient_column",
        sql: "
        DROP INDEX store_messages_by_recipient;
        ALTER TABLE store_messages DROP COLUMN recipient;
        ALTER TABLE store_messages ADD COLUMN recipient TEXT;
        UPDATE store_messages
            SET recipient = CASE WHEN json_valid(body) THEN json_extract(body, '$.to') END;
        CREATE INDEX store_messages_by_recipient
            ON store_messages (tenant, recipient, created_at, pk);
    ",
    },
];

/// Largest page a caller may ask for.
const MAX_PAGE: usize = 1000;

/// The embedded [`MessageStore`].
#[derive(Debug, Clone)]
pub struct SqliteMessageStore {
    pub(super) db: SqliteDb,
}

/// Errors inside a database closure, given their operation name outside it.
#[derive(Debug)]
pub(super) enum RowError {
    Sqlite(SqliteError),
    Corrupt(String, serde_json::Error),
    Encode(serde_json::Error),
}

impl From<SqliteError> for RowError {
    fn from(e: SqliteError) -> Self {
        RowError::Sqlite(e)
    }
}

impl From<rusqlite::Error> for RowError {
    fn from(e: rusqlite::Error) -> Self {
        RowError::Sqlite(e.into())
    }
}

impl From<super::events::OutboxError> for RowError {
    fn from(e: super::events::OutboxError) -> Self {
        match e {
            super::events::OutboxError::Sqlite(e) => RowError::Sqlite(e.into()),
            super::events::OutboxError::Db(e) => RowError::Sqlite(e),
            super::events::OutboxError::Encode(e) => RowError::Encode(e),
        }
    }
}

impl RowError {
    pub(super) fn during(self, operation: &'static str) -> StoreError {
        match self {
            RowError::Sqlite(e) => StoreError::Backend {
                operation,
                source: e.into(),
            },
            RowError::Encode(e) => StoreError::Backend {
                operation,
                source: e.into(),
            },
            RowError::Corrupt(key, e) => StoreError::Corrupt {
                key,
                source: e.into(),
            },
        }
    }
}

pub(super) fn decode(key: &str, body: &str) -> Result<Message, RowError> {
    serde_json::from_str(body).map_err(|e| RowError::Corrupt(key.to_owned(), e))
}

pub(super) fn limit_of(limit: usize) -> i64 {
    // Clamped to 1..=MAX_PAGE, so the cast cannot truncate.
    limit.clamp(1, MAX_PAGE) as i64
}

/// Write every column of `m` (insert or replace the row of its key; `recipient` is
/// written by the insert only: a message's recipient never changes).
fn upsert(tx: &rusqlite::Transaction<'_>, m: &Message) -> Result<(), RowError> {
    let body = serde_json::to_string(m).map_err(RowError::Encode)?;
    tx.exec(
        "INSERT INTO store_messages
            (pk, tenant, id, state, wamid, sweep_key, sweep_at, created_at, expires_at, body,
             recipient)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (pk) DO UPDATE SET
            state = excluded.state, wamid = excluded.wamid, sweep_key = excluded.sweep_key,
            sweep_at = excluded.sweep_at, expires_at = excluded.expires_at, body = excluded.body",
        params![
            pk(&m.tenant, &m.id),
            m.tenant.as_str(),
            m.id.as_str(),
            m.state.as_str(),
            m.wamid.as_ref().map(Wamid::as_str),
            m.sweep_key,
            m.sweep_at.map(Timestamp::as_millis),
            m.created_at.as_millis(),
            m.expires_at,
            body,
            m.to.as_str(),
        ],
    )?;
    Ok(())
}

/// Write `after` over the stored `before`, setting only the indexed columns whose
/// value changed. SQLite rewrites the entries of every index over a column an UPDATE
/// sets, changed or not, and each entry is a page of the WAL: the wamid index alone,
/// keyed by random wamids, cost a page write per status (issue 15).
fn update_changed(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    before: &Message,
    after: &Message,
) -> Result<(), RowError> {
    let body = serde_json::to_string(after).map_err(RowError::Encode)?;
    let state = (before.state != after.state).then(|| after.state.as_str());
    let wamid = (before.wamid != after.wamid).then(|| after.wamid.as_ref().map(Wamid::as_str));
    let sweep =
        (before.sweep_key != after.sweep_key || before.sweep_at != after.sweep_at).then(|| {
            (
                after.sweep_key.as_deref(),
                after.sweep_at.map(Timestamp::as_millis),
            )
        });
    let expires_at = (before.expires_at != after.expires_at).then_some(after.expires_at);
    let mut sql = String::from("UPDATE store_messages SET body = ?2");
    let mut args: Vec<rusqlite::types::Value> = vec![key.to_owned().into(), body.into()];
    let mut set = |column: &str, value: rusqlite::types::Value| {
        args.push(value);
        sql.push_str(&format!(", {column} = ?{}", args.len()));
    };
    if let Some(state) = state {
        set("state", state.to_owned().into());
    }
    if let Some(wamid) = wamid {
        set("wamid", wamid.map(str::to_owned).into());
    }
    if let Some((sweep_key, sweep_at)) = sweep {
        set("sweep_key", sweep_key.map(str::to_owned).into());
        set("sweep_at", sweep_at.into());
    }
    if let Some(expires_at) = expires_at {
        set("expires_at", expires_at.into());
    }
    sql.push_str(" WHERE pk = ?1");
    tx.exec(&sql, rusqlite::params_from_iter(args))?;
    Ok(())
}

fn read(tx: &rusqlite::Connection, key: &str) -> Result<Option<Message>, RowError> {
    let body: Option<String> = tx
        .row(
            "SELECT body FROM store_messages WHERE pk = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?;
    body.map(|b| decode(key, &b)).transpose()
}

/// A page cursor: the sort key and `pk` of the last item returned.
fn encode_cursor(sort: i64, key: &str) -> Result<String, StoreError> {
    let json = serde_json::to_vec(&(sort, key)).map_err(|e| StoreError::Backend {
        operation: "encode_cursor",
        source: e.into(),
    })?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(cursor: Option<&str>) -> Result<(Option<i64>, Option<String>), StoreError> {
    let Some(cursor) = cursor else {
        return Ok((None, None));
    };
    let json = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let (sort, key): (i64, String) =
        serde_json::from_slice(&json).map_err(|_| StoreError::InvalidCursor)?;
    Ok((Some(sort), Some(key)))
}

/// Rows of a paged query: `(body, sort key, pk)`, one more than the page.
fn page_of(rows: Vec<(String, i64, String)>, limit: i64) -> Result<Page, StoreError> {
    let limit = usize::try_from(limit).unwrap_or(MAX_PAGE);
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(limit);
    let mut last = None;
    for (body, sort, key) in rows.into_iter().take(limit) {
        items.push(decode(&key, &body).map_err(|e| e.during("page"))?);
        last = Some((sort, key));
    }
    let next = match (more, last) {
        (true, Some((sort, key))) => Some(encode_cursor(sort, &key)?),
        _ => None,
    };
    Ok(Page { items, next })
}

impl SqliteMessageStore {
    /// The store on `db`, creating its table on first use.
    pub async fn new(db: SqliteDb) -> Result<Self, StoreError> {
        db.migrate(MIGRATIONS)
            .await
            .map_err(|e| RowError::from(e).during("migrate"))?;
        db.migrate(super::events::MIGRATIONS)
            .await
            .map_err(|e| RowError::from(e).during("migrate"))?;
        Ok(Self { db })
    }

    /// Delete messages whose TTL (`expires_at`, epoch seconds) is before `now`; the
    /// embedded counterpart of DynamoDB's TTL. Returns how many were deleted.
    pub async fn delete_expired(&self, now: Timestamp) -> Result<usize, StoreError> {
        let secs = now.as_secs();
        self.db
            .write(move |tx| -> Result<usize, RowError> {
                Ok(tx.exec("DELETE FROM store_messages WHERE expires_at < ?1", [secs])?)
            })
            .await
            .map_err(|e| e.during("delete_expired"))
    }

    async fn query_page(
        &self,
        operation: &'static str,
        sql: &'static str,
        args: Vec<rusqlite::types::Value>,
        limit: i64,
    ) -> Result<Page, StoreError> {
        let rows = self
            .db
            .call(
                move |conn| -> Result<Vec<(String, i64, String)>, RowError> {
                    let mut stmt = conn.prepare_cached(sql)?;
                    let rows = stmt
                        .query_map(rusqlite::params_from_iter(args), |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(rows)
                },
            )
            .await
            .map_err(|e| e.during(operation))?;
        page_of(rows, limit)
    }
}

#[async_trait]
impl MessageStore for SqliteMessageStore {
    async fn create_if_absent(&self, message: &Message) -> Result<CreateOutcome, StoreError> {
        let message = message.clone();
        self.db
            .write(move |tx| -> Result<CreateOutcome, RowError> {
                let key = pk(&message.tenant, &message.id);
                Ok(match read(tx, &key)? {
                    Some(existing) => CreateOutcome::Exists(Box::new(existing)),
                    None => {
                        upsert(tx, &message)?;
                        super::events::insert(tx, &message_events(None, &message))?;
                        CreateOutcome::Created
                    }
                })
            })
            .await
            .map_err(|e| e.during("create_if_absent"))
    }

    async fn get(&self, tenant: &TenantId, id: &MessageId) -> Result<Option<Message>, StoreError> {
        let key = pk(tenant, id);
        self.db
            .call(move |conn| read(conn, &key))
            .await
            .map_err(|e| e.during("get"))
    }

    async fn find_by_wamid(
        &self,
        wamid: &Wamid,
    ) -> Result<Option<(TenantId, MessageId)>, StoreError> {
        let wamid = wamid.as_str().to_owned();
        let found = self
            .db
            .call(move |conn| -> Result<Option<(String, String)>, RowError> {
                Ok(conn
                    .row(
                        "SELECT tenant, id FROM store_messages WHERE wamid = ?1 LIMIT 1",
                        [wamid],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?)
            })
            .await
            .map_err(|e| e.during("find_by_wamid"))?;
        Ok(found.and_then(|(t, i)| Some((TenantId::parse(&t).ok()?, MessageId::parse(&i).ok()?))))
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        id: &MessageId,
        transition: &Transition,
    ) -> Result<ApplyOutcome, StoreError> {
        let key = pk(tenant, id);
        let transition = transition.clone();
        self.db
            .write(move |tx| -> Result<ApplyOutcome, RowError> {
                let Some(mut message) = read(tx, &key)? else {
                    return Ok(ApplyOutcome::NotFound);
                };
                if !transition.holds(&message) {
                    return Ok(ApplyOutcome::Rejected(Box::new(message)));
                }
                let before = message.clone();
                transition.apply_to(&mut message);
                update_changed(tx, &key, &before, &message)?;
                super::events::insert(tx, &message_events(Some(&before), &message))?;
                Ok(ApplyOutcome::Applied(Box::new(message)))
            })
            .await
            .map_err(|e| e.during("apply"))
    }

    async fn sweep(
        &self,
        sweep_key: &str,
        due: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        let (after_at, after_pk) = decode_cursor(cursor)?;
        let limit = limit_of(limit);
        let args = vec![
            sweep_key.to_owned().into(),
            due.as_millis().into(),
            after_at.into(),
            after_pk.into(),
            (limit + 1).into(),
        ];
        let sql = "SELECT body, sweep_at, pk FROM store_messages
                   WHERE sweep_key = ?1 AND sweep_at <= ?2
                     AND (?3 IS NULL OR (sweep_at, pk) > (?3, ?4))
                   ORDER BY sweep_at, pk LIMIT ?5";
        self.query_page("sweep", sql, args, limit).await
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        query: &MessageQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        let (before_at, before_pk) = decode_cursor(cursor)?;
        let limit = limit_of(limit);
        let args = vec![
            tenant.as_str().to_owned().into(),
            query.state.map(|s| s.as_str().to_owned()).into(),
            query.since.map(Timestamp::as_millis).into(),
            before_at.into(),
            before_pk.into(),
            (limit + 1).into(),
            query.until.map(Timestamp::as_millis).into(),
            query.to.as_ref().map(|t| t.as_str().to_owned()).into(),
        ];
        // Two statements so each has its index: (tenant, created_at, pk), or
        // (tenant, recipient, created_at, pk) when the recipient is given.
        let sql = if query.to.is_some() {
            "SELECT body, created_at, pk FROM store_messages
             WHERE tenant = ?1 AND recipient = ?8 AND (?2 IS NULL OR state = ?2)
               AND (?3 IS NULL OR created_at >= ?3) AND (?7 IS NULL OR created_at < ?7)
               AND (?4 IS NULL OR (created_at, pk) < (?4, ?5))
             ORDER BY created_at DESC, pk DESC LIMIT ?6"
        } else {
            "SELECT body, created_at, pk FROM store_messages
             WHERE tenant = ?1 AND (?8 IS NULL OR recipient = ?8) AND (?2 IS NULL OR state = ?2)
               AND (?3 IS NULL OR created_at >= ?3) AND (?7 IS NULL OR created_at < ?7)
               AND (?4 IS NULL OR (created_at, pk) < (?4, ?5))
             ORDER BY created_at DESC, pk DESC LIMIT ?6"
        };
        self.query_page("list_messages", sql, args, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_migration_is_recorded_under_the_store_prefix() {
        let db = SqliteDb::open_in_memory().await.unwrap();
        SqliteMessageStore::new(db.clone()).await.unwrap();
        SqliteMessageStore::new(db.clone()).await.unwrap();
        assert_eq!(
            db.applied_migrations().await.unwrap(),
            [
                "store/0001_messages",
                "store/0002_overview_indexes",
                "store/0003_recipient_index",
                "store/0004_recipient_column",
                "events/0001_outbox"
            ]
        );
    }

    /// A queued text message of tenant `acme` to `to`, created at `created_secs`.
    fn queued(to: &str, created_secs: i64) -> Message {
        let new = crate::domain::NewMessage {
            tenant: TenantId::parse("acme").unwrap(),
            id: MessageId::generate(),
            to: crate::domain::PhoneNumber::parse(to).unwrap(),
            template_name: None,
            template_language: None,
            request: serde_json::json!({"text": "hi"}),
            request_hash: "h".into(),
            metadata: None,
        };
        let policy = crate::domain::LifecyclePolicy::default();
        Message::new_queued(new, Timestamp::from_secs(created_secs), &policy)
    }

    #[tokio::test]
    async fn a_store_of_the_generated_recipient_column_keeps_its_listing_by_recipient() {
        let db = SqliteDb::open_in_memory().await.unwrap();
        // A file written before 0004: the recipient generated from the body.
        db.migrate(&MIGRATIONS[..3]).await.unwrap();
        let old = queued("+14155550123", 1_750_000_000);
        let row = old.clone();
        db.write(move |tx| -> Result<(), SqliteError> {
            tx.execute(
                "INSERT INTO store_messages
                    (pk, tenant, id, state, created_at, expires_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    pk(&row.tenant, &row.id),
                    row.tenant.as_str(),
                    row.id.as_str(),
                    row.state.as_str(),
                    row.created_at.as_millis(),
                    row.expires_at,
                    serde_json::to_string(&row).unwrap(),
                ],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let store = SqliteMessageStore::new(db).await.unwrap();
        let young = queued("+447911123456", 1_750_000_100);
        store.create_if_absent(&young).await.unwrap();
        for m in [&old, &young] {
            let query = MessageQuery {
                to: Some(m.to.clone()),
                ..MessageQuery::default()
            };
            let page = store
                .list_messages(&m.tenant, &query, 10, None)
                .await
                .unwrap();
            assert_eq!(page.items, vec![m.clone()], "{}", m.to);
        }
    }

    #[tokio::test]
    async fn expired_messages_are_deleted_and_live_ones_kept() {
        let store = SqliteMessageStore::new(SqliteDb::open_in_memory().await.unwrap())
            .await
            .unwrap();
        let old = queued("+14155550123", 1_750_000_000);
        let young = queued("+14155550123", 1_750_000_000 + 86_400);
        for m in [&old, &young] {
            store.create_if_absent(m).await.unwrap();
        }
        let between = Timestamp::from_secs(old.expires_at + 1);
        assert_eq!(store.delete_expired(between).await.unwrap(), 1);
        assert_eq!(store.get(&old.tenant, &old.id).await.unwrap(), None);
        assert_eq!(
            store.get(&young.tenant, &young.id).await.unwrap(),
            Some(young)
        );
    }

    #[tokio::test]
    async fn a_foreign_cursor_is_refused() {
        let store = SqliteMessageStore::new(SqliteDb::open_in_memory().await.unwrap())
            .await
            .unwrap();
        let page = store
            .sweep("queued#0", Timestamp::from_secs(1), 10, Some("garbage!"))
            .await;
        assert!(matches!(page, Err(StoreError::InvalidCursor)), "{page:?}");
    }
}
