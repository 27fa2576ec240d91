//! The queue tables and the statements that several operations share.

use super::super::{Migration, SqliteError};
use crate::adapters::sqlite::CachedSql;
use crate::ports::{QueueError, QueueMessageId};
use rusqlite::{OptionalExtension, Transaction, params};
use std::time::Duration;

/// The queue tables, in the database file shared with the other embedded adapters.
pub(super) static MIGRATIONS: &[Migration] = &[Migration {
    id: "queue/0001_tables",
    sql: "
        CREATE TABLE queue_queues (
            name TEXT PRIMARY KEY,
            max_receive_count INTEGER NOT NULL,
            visibility_timeout_ms INTEGER NOT NULL,
            retention_ms INTEGER NOT NULL,
            dead_letter_retention_ms INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE queue_messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            queue TEXT NOT NULL REFERENCES queue_queues (name),
            id TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL,
            sent_at_ms INTEGER NOT NULL,
            visible_at_ms INTEGER NOT NULL,
            receive_count INTEGER NOT NULL DEFAULT 0,
            receipt TEXT UNIQUE
        ) STRICT;
        CREATE INDEX queue_messages_by_visibility ON queue_messages (queue, visible_at_ms, seq);
        CREATE INDEX queue_messages_by_age ON queue_messages (queue, sent_at_ms);
        CREATE TABLE queue_dead_letters (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            queue TEXT NOT NULL REFERENCES queue_queues (name),
            id TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL,
            sent_at_ms INTEGER NOT NULL,
            dead_at_ms INTEGER NOT NULL,
            receive_count INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX queue_dead_letters_by_queue ON queue_dead_letters (queue, seq);
    ",
}];

impl From<rusqlite::Error> for QueueError {
    fn from(error: rusqlite::Error) -> Self {
        SqliteError::from(error).into()
    }
}

impl From<SqliteError> for QueueError {
    fn from(error: SqliteError) -> Self {
        QueueError::Backend {
            operation: "embedded queue",
            source: Box::new(error),
        }
    }
}

/// A queue's settings as stored.
pub(super) struct Settings {
    pub(super) max_receive_count: i64,
    pub(super) retention_ms: i64,
    pub(super) dead_letter_retention_ms: i64,
}

/// A `count(*)` as the port's unsigned count (SQLite counts are never negative).
pub(super) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(super) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn settings(tx: &Transaction<'_>, name: &str) -> Result<Settings, QueueError> {
    tx.row(
        "SELECT max_receive_count, retention_ms, dead_letter_retention_ms
         FROM queue_queues WHERE name = ?1",
        [name],
        |row| {
            Ok(Settings {
                max_receive_count: row.get(0)?,
                retention_ms: row.get(1)?,
                dead_letter_retention_ms: row.get(2)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| QueueError::QueueNotFound(name.to_owned()))
}

/// Drop messages past their retention, as SQS does (counted from the original send).
pub(super) fn purge_expired(
    tx: &Transaction<'_>,
    name: &str,
    settings: &Settings,
    now: i64,
) -> Result<(), QueueError> {
    tx.exec(
        "DELETE FROM queue_messages WHERE queue = ?1 AND sent_at_ms <= ?2",
        params![name, now.saturating_sub(settings.retention_ms)],
    )?;
    tx.exec(
        "DELETE FROM queue_dead_letters WHERE queue = ?1 AND sent_at_ms <= ?2",
        params![name, now.saturating_sub(settings.dead_letter_retention_ms)],
    )?;
    Ok(())
}

pub(super) type Candidate = (i64, String, String, i64);

pub(super) fn visible_messages(
    tx: &Transaction<'_>,
    name: &str,
    now: i64,
    limit: usize,
) -> Result<Vec<Candidate>, QueueError> {
    let mut stmt = tx.prepare_cached(
        "SELECT seq, id, body, receive_count FROM queue_messages
         WHERE queue = ?1 AND visible_at_ms <= ?2
         ORDER BY visible_at_ms, seq LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(
            params![name, now, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn dead_letter(tx: &Transaction<'_>, seq: i64, now: i64) -> Result<(), QueueError> {
    tx.exec(
        "INSERT INTO queue_dead_letters (queue, id, body, sent_at_ms, dead_at_ms, receive_count)
         SELECT queue, id, body, sent_at_ms, ?2, receive_count FROM queue_messages WHERE seq = ?1",
        params![seq, now],
    )?;
    tx.exec("DELETE FROM queue_messages WHERE seq = ?1", [seq])?;
    Ok(())
}

pub(super) fn insert_message(
    tx: &Transaction<'_>,
    name: &str,
    body: &str,
    now: i64,
    delay_ms: i64,
) -> Result<QueueMessageId, QueueError> {
    let id = ulid::Ulid::generate().to_string();
    tx.prepare_cached(
        "INSERT INTO queue_messages (queue, id, body, sent_at_ms, visible_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![name, id, body, now, now.saturating_add(delay_ms)])?;
    Ok(QueueMessageId::new(id))
}
