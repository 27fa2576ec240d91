//! `SqliteWorkQueue`: SQS semantics (visibility, delays, receive counts, a
//! dead-letter table) on tables of the embedded SQLite file.
//!
//! Time comes from the injected [`Clock`], so tests move visibility and delays
//! with a `ManualClock`; only the long-poll `wait` of `receive` is real time.

#[cfg(test)]
mod crash_tests;
mod rows;

use super::SqliteDb;
use crate::adapters::sqlite::CachedSql;
use crate::ports::queue::{
    check_delay, check_queue_name, check_receive, check_spec, check_visibility,
};
use crate::ports::{
    BatchSendOutcome, Clock, DeadLetter, QueueDepth, QueueError, QueueMessageId, QueueRef,
    QueueSpec, ReceiptHandle, ReceivedMessage, SentEntry, WorkQueue,
};
use async_trait::async_trait;
use rows::{
    MIGRATIONS, count, dead_letter, insert_message, millis, purge_expired, settings,
    visible_messages,
};
use rusqlite::params;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often a long-polling receive looks again when nothing woke it: bounds the
/// latency of messages that become visible by the passing of time.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The embedded [`WorkQueue`]: queues are rows of `queue_queues`, addressed by name.
#[derive(Debug, Clone)]
pub struct SqliteWorkQueue {
    db: SqliteDb,
    clock: Arc<dyn Clock>,
    /// Wakes long-polling receivers when messages arrive.
    arrivals: Arc<Notify>,
}

impl SqliteWorkQueue {
    /// The queue adapter on `db` (creating its tables if needed), reading time from `clock`.
    pub async fn new(db: SqliteDb, clock: Arc<dyn Clock>) -> Result<Self, QueueError> {
        db.migrate(MIGRATIONS).await?;
        Ok(Self {
            db,
            clock,
            arrivals: Arc::new(Notify::new()),
        })
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().as_millis()
    }

    /// One non-waiting receive attempt.
    async fn receive_now(
        &self,
        queue: &QueueRef,
        max: usize,
        visibility_ms: i64,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let (name, now) = (queue.as_str().to_owned(), self.now_ms());
        self.db
            .write(move |tx| {
                let settings = settings(tx, &name)?;
                purge_expired(tx, &name, &settings, now)?;
                let mut received = Vec::new();
                // Rows over the receive limit move to the dead-letter table instead of
                // being returned, so keep selecting until the batch is full or none are left.
                while received.len() < max {
                    let candidates = visible_messages(tx, &name, now, max - received.len())?;
                    if candidates.is_empty() {
                        break;
                    }
                    for (seq, id, body, count) in candidates {
                        if count >= settings.max_receive_count {
                            dead_letter(tx, seq, now)?;
                            continue;
                        }
                        let receipt = ulid::Ulid::generate().to_string();
                        tx.exec(
                            "UPDATE queue_messages
                             SET receive_count = receive_count + 1, receipt = ?2, visible_at_ms = ?3
                             WHERE seq = ?1",
                            params![seq, receipt, now.saturating_add(visibility_ms)],
                        )?;
                        received.push(ReceivedMessage {
                            id: QueueMessageId::new(id),
                            receipt: ReceiptHandle::new(receipt),
                            body,
                            receive_count: u32::try_from(count + 1).unwrap_or(u32::MAX),
                        });
                    }
                }
                Ok(received)
            })
            .await
    }
}

#[async_trait]
impl WorkQueue for SqliteWorkQueue {
    async fn ensure_queue(&self, name: &str, spec: &QueueSpec) -> Result<QueueRef, QueueError> {
        check_queue_name(name)?;
        check_spec(spec)?;
        let (owned, spec) = (name.to_owned(), *spec);
        self.db
            .write(move |tx| -> Result<(), QueueError> {
                tx.exec(
                    "INSERT INTO queue_queues (name, max_receive_count, visibility_timeout_ms,
                         retention_ms, dead_letter_retention_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (name) DO UPDATE SET
                         max_receive_count = excluded.max_receive_count,
                         visibility_timeout_ms = excluded.visibility_timeout_ms,
                         retention_ms = excluded.retention_ms,
                         dead_letter_retention_ms = excluded.dead_letter_retention_ms",
                    params![
                        owned,
                        spec.max_receive_count,
                        millis(spec.visibility_timeout),
                        millis(spec.message_retention),
                        millis(spec.dead_letter_retention)
                    ],
                )?;
                Ok(())
            })
            .await?;
        Ok(QueueRef::new(name))
    }

    async fn send(
        &self,
        queue: &QueueRef,
        body: &str,
        delay: Duration,
    ) -> Result<QueueMessageId, QueueError> {
        check_delay(delay)?;
        let (name, body, now) = (queue.as_str().to_owned(), body.to_owned(), self.now_ms());
        let id = self
            .db
            .write(move |tx| {
                settings(tx, &name)?;
                insert_message(tx, &name, &body, now, millis(delay))
            })
            .await?;
        self.arrivals.notify_waiters();
        Ok(id)
    }

    async fn send_many(
        &self,
        queue: &QueueRef,
        bodies: &[String],
    ) -> Result<BatchSendOutcome, QueueError> {
        let (name, bodies, now) = (queue.as_str().to_owned(), bodies.to_vec(), self.now_ms());
        // One transaction: the embedded queue has no per-call limit, and either all
        // entries are stored or the error says none were.
        let sent = self
            .db
            .write(move |tx| {
                settings(tx, &name)?;
                bodies
                    .iter()
                    .enumerate()
                    .map(|(index, body)| {
                        insert_message(tx, &name, body, now, 0).map(|id| SentEntry { index, id })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        self.arrivals.notify_waiters();
        Ok(BatchSendOutcome {
            sent,
            failed: Vec::new(),
        })
    }

    async fn receive(
        &self,
        queue: &QueueRef,
        max: usize,
        visibility_timeout: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        check_receive(max, visibility_timeout, wait)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register for wake-ups before looking, so a send between the look and
            // the wait is not missed.
            let arrival = self.arrivals.notified();
            tokio::pin!(arrival);
            arrival.as_mut().enable();
            let received = self
                .receive_now(queue, max, millis(visibility_timeout))
                .await?;
            let now = tokio::time::Instant::now();
            if !received.is_empty() || now >= deadline {
                return Ok(received);
            }
            let nap = (deadline - now).min(POLL_INTERVAL);
            tokio::select! {
                () = &mut arrival => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn change_visibility(
        &self,
        queue: &QueueRef,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        check_visibility(timeout)?;
        let (name, receipt, now) = (
            queue.as_str().to_owned(),
            receipt.as_str().to_owned(),
            self.now_ms(),
        );
        let changed = self
            .db
            .write(move |tx| -> Result<usize, QueueError> {
                settings(tx, &name)?;
                // Only an in-flight receipt can be changed (SQS: MessageNotInflight).
                Ok(tx.exec(
                    "UPDATE queue_messages SET visible_at_ms = ?3
                     WHERE queue = ?1 AND receipt = ?2 AND visible_at_ms > ?4",
                    params![name, receipt, now.saturating_add(millis(timeout)), now],
                )?)
            })
            .await?;
        if changed == 0 {
            return Err(QueueError::ReceiptNotInFlight);
        }
        if timeout.is_zero() {
            self.arrivals.notify_waiters();
        }
        Ok(())
    }

    async fn delete(&self, queue: &QueueRef, receipt: &ReceiptHandle) -> Result<(), QueueError> {
        let (name, receipt) = (queue.as_str().to_owned(), receipt.as_str().to_owned());
        self.db
            .write(move |tx| -> Result<(), QueueError> {
                settings(tx, &name)?;
                // A stale receipt (message re-received by someone else) deletes nothing.
                tx.exec(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                    params![name, receipt],
                )?;
                Ok(())
            })
            .await
    }

    async fn approximate_depth(&self, queue: &QueueRef) -> Result<QueueDepth, QueueError> {
        let (name, now) = (queue.as_str().to_owned(), self.now_ms());
        self.db
            .write(move |tx| {
                settings(tx, &name)?;
                let depth = tx.row(
                    "SELECT
                        count(*) FILTER (WHERE visible_at_ms <= ?2),
                        count(*) FILTER (WHERE visible_at_ms > ?2 AND receive_count > 0),
                        count(*) FILTER (WHERE visible_at_ms > ?2 AND receive_count = 0)
                     FROM queue_messages WHERE queue = ?1",
                    params![name, now],
                    |row| {
                        Ok(QueueDepth {
                            visible: count(row.get(0)?),
                            in_flight: count(row.get(1)?),
                            delayed: count(row.get(2)?),
                        })
                    },
                )?;
                Ok(depth)
            })
            .await
    }

    async fn dead_letters(
        &self,
        queue: &QueueRef,
        max: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let name = queue.as_str().to_owned();
        self.db
            .write(move |tx| {
                settings(tx, &name)?;
                let mut stmt = tx.prepare_cached(
                    "SELECT id, body FROM queue_dead_letters WHERE queue = ?1 ORDER BY seq LIMIT ?2",
                )?;
                let letters = stmt
                    .query_map(params![name, i64::try_from(max).unwrap_or(i64::MAX)], |row| {
                        Ok(DeadLetter {
                            id: QueueMessageId::new(row.get::<_, String>(0)?),
                            body: row.get(1)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(letters)
            })
            .await
    }

    async fn redrive_dead_letters(
        &self,
        queue: &QueueRef,
        max: usize,
    ) -> Result<usize, QueueError> {
        let (name, now) = (queue.as_str().to_owned(), self.now_ms());
        // Atomic here (one transaction), unlike SQS: a redriven message gets a new id,
        // as a message sent again does on SQS.
        let moved = self
            .db
            .write(move |tx| -> Result<usize, QueueError> {
                settings(tx, &name)?;
                let letters: Vec<(i64, String)> = tx
                    .prepare_cached("SELECT seq, body FROM queue_dead_letters WHERE queue = ?1 ORDER BY seq LIMIT ?2")?
                    .query_map(params![name, i64::try_from(max).unwrap_or(i64::MAX)], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?
                    .collect::<Result<_, _>>()?;
                for (seq, body) in &letters {
                    insert_message(tx, &name, body, now, 0)?;
                    tx.exec("DELETE FROM queue_dead_letters WHERE seq = ?1", [seq])?;
                }
                Ok(letters.len())
            })
            .await?;
        if moved > 0 {
            self.arrivals.notify_waiters();
        }
        Ok(moved)
    }
}
