//! `SqliteEventLog`: the [`EventLog`] port in the embedded database, and the outbox
//! the message store writes into.
//!
//! One row per event, numbered by an autoincrement `seq` that is the log order and the
//! position. The message store inserts the events of a transition in the transaction
//! that writes it ([`insert`]), so an event row exists if and only if its transition
//! was committed; `INSERT OR IGNORE` on the unique id makes a replay log nothing new.

use super::{Migration, SqliteDb, SqliteError};
use crate::domain::TenantId;
use crate::domain::events::Event;
use crate::ports::{EventLog, EventLogError, EventPage, LoggedEvent, MAX_EVENT_PAGE};
use async_trait::async_trait;
use rusqlite::{Connection, params};

/// The outbox table, applied by the message store and by the log (whichever opens
/// the file first).
pub(crate) static MIGRATIONS: &[Migration] = &[Migration {
    id: "events/0001_outbox",
    sql: "
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            tenant TEXT NOT NULL,
            type TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            body TEXT NOT NULL
        ) STRICT;
        CREATE INDEX events_by_tenant ON events (tenant, seq);
    ",
}];

/// Why an outbox insert failed (inside a transaction).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutboxError {
    /// SQLite refused the insert.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The event could not be encoded.
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    /// The database could not be reached.
    #[error(transparent)]
    Db(#[from] SqliteError),
}

/// Insert `events` on `conn` (the caller's transaction); ids already there are skipped.
pub(crate) fn insert(conn: &Connection, events: &[Event]) -> Result<(), OutboxError> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO events (id, tenant, type, at_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for event in events {
        let body = serde_json::to_string(event)?;
        stmt.execute(params![
            event.id,
            event.tenant.as_str(),
            event.event_type.as_str(),
            super::unix_millis(),
            body
        ])?;
    }
    Ok(())
}

/// The embedded [`EventLog`].
#[derive(Debug, Clone)]
pub struct SqliteEventLog {
    db: SqliteDb,
}

impl SqliteEventLog {
    /// The log over `db` (its table is created now if needed).
    pub async fn new(db: SqliteDb) -> Result<Self, EventLogError> {
        db.migrate(MIGRATIONS)
            .await
            .map_err(|e| backend("migrate", e))?;
        Ok(Self { db })
    }
}

fn backend(
    operation: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> EventLogError {
    EventLogError::Backend {
        operation,
        source: e.into(),
    }
}

#[async_trait]
impl EventLog for SqliteEventLog {
    async fn append(&self, events: &[Event]) -> Result<(), EventLogError> {
        let events = events.to_vec();
        self.db
            .write(move |tx| insert(tx, &events))
            .await
            .map_err(|e| backend("append", e))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EventPage, EventLogError> {
        let after: i64 = match after {
            None => 0,
            Some(p) => p.parse().map_err(|_| EventLogError::InvalidPosition)?,
        };
        let limit = limit.clamp(1, MAX_EVENT_PAGE);
        let tenant = tenant.as_str().to_owned();
        let rows = self
            .db
            .call(move |conn| -> Result<Vec<(i64, String)>, SqliteError> {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, body FROM events WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?;
                let rows = stmt
                    .query_map(params![tenant, after, (limit + 1) as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(|e| backend("list", e))?;
        let more = rows.len() > limit;
        let events = rows
            .into_iter()
            .take(limit)
            .map(|(seq, body)| {
                let event = serde_json::from_str(&body).map_err(|e| EventLogError::Corrupt {
                    key: seq.to_string(),
                    source: e.into(),
                })?;
                Ok(LoggedEvent {
                    position: seq.to_string(),
                    event,
                })
            })
            .collect::<Result<Vec<_>, EventLogError>>()?;
        Ok(EventPage { events, more })
    }
}
