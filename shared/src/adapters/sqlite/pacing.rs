//! `SqlitePacingLedger`: the [`PacingLedger`] port in the embedded database.
//!
//! One row per key holds its schedule. A reservation or a hold reads the row, applies
//! the domain's rule ([`crate::domain::pacing::PaceRule`]) and writes the row back in
//! one `BEGIN IMMEDIATE` transaction, so every sender sharing the file (`wa dev`'s
//! workers, or several processes) takes slots from the same schedule. Rows idle for an
//! hour mean no more than absent ones and are removed as new ones are written.

use super::{Migration, SqliteDb, SqliteError};
use crate::adapters::sqlite::CachedSql;
use crate::domain::Timestamp;
use crate::domain::pacing::{
    PaceDecision, PaceKey, PaceRule, PaceState, micros_of, timestamp_at_or_after,
};
use crate::ports::{PacingError, PacingLedger, Reservation};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a row is kept after it went idle (µs).
const IDLE_KEEP_US: i64 = 3_600_000_000;
/// Idle rows are swept once every this many writes.
const SWEEP_EVERY: u64 = 512;

/// Schema of the embedded pacing ledger.
static MIGRATIONS: &[Migration] = &[Migration {
    id: "pacing/0001_schedules",
    sql: "
        CREATE TABLE pacing_schedules (
            key TEXT PRIMARY KEY,
            rested_at_us INTEGER NOT NULL,
            burst_start_us INTEGER NOT NULL,
            burst_sends INTEGER NOT NULL,
            slow_until_us INTEGER,
            idle_from_us INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX pacing_schedules_idle ON pacing_schedules (idle_from_us);
    ",
}];

/// The embedded [`PacingLedger`].
#[derive(Debug)]
pub struct SqlitePacingLedger {
    db: SqliteDb,
    writes: AtomicU64,
}

fn backend(operation: &'static str, e: SqliteError) -> PacingError {
    PacingError::Backend {
        operation,
        source: Box::new(e),
    }
}

fn read(tx: &Transaction<'_>, key: &str) -> Result<Option<PaceState>, SqliteError> {
    Ok(tx
        .row(
            "SELECT rested_at_us, burst_start_us, burst_sends, slow_until_us
             FROM pacing_schedules WHERE key = ?1",
            [key],
            |r| {
                Ok(PaceState {
                    rested_at_us: r.get(0)?,
                    burst_start_us: r.get(1)?,
                    burst_sends: r.get(2)?,
                    slow_until_us: r.get(3)?,
                })
            },
        )
        .optional()?)
}

fn write(tx: &Transaction<'_>, key: &str, state: &PaceState) -> Result<(), SqliteError> {
    tx.exec(
        "INSERT INTO pacing_schedules
             (key, rested_at_us, burst_start_us, burst_sends, slow_until_us, idle_from_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (key) DO UPDATE SET
             rested_at_us = excluded.rested_at_us,
             burst_start_us = excluded.burst_start_us,
             burst_sends = excluded.burst_sends,
             slow_until_us = excluded.slow_until_us,
             idle_from_us = excluded.idle_from_us",
        params![
            key,
            state.rested_at_us,
            state.burst_start_us,
            state.burst_sends,
            state.slow_until_us,
            state.idle_from_us(),
        ],
    )?;
    Ok(())
}

impl SqlitePacingLedger {
    /// The ledger over `db` (its table is created now if needed).
    pub async fn new(db: SqliteDb) -> Result<Self, PacingError> {
        db.migrate(MIGRATIONS)
            .await
            .map_err(|e| backend("migrate", e))?;
        Ok(Self {
            db,
            writes: AtomicU64::new(0),
        })
    }

    /// Whether this write should also remove rows idle for longer than the keep.
    fn sweep_due(&self) -> bool {
        self.writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
    }
}

fn sweep(tx: &Transaction<'_>, now_us: i64) -> Result<(), SqliteError> {
    tx.exec(
        "DELETE FROM pacing_schedules WHERE idle_from_us < ?1",
        [now_us.saturating_sub(IDLE_KEEP_US)],
    )?;
    Ok(())
}

#[async_trait]
impl PacingLedger for SqlitePacingLedger {
    async fn reserve(
        &self,
        key: &PaceKey,
        rule: &PaceRule,
        now: Timestamp,
        horizon: Duration,
    ) -> Result<Reservation, PacingError> {
        let (key, rule, now_us) = (key.storage_key(), *rule, micros_of(now));
        let horizon_us = i64::try_from(horizon.as_micros()).unwrap_or(i64::MAX);
        let sweep_due = self.sweep_due();
        self.db
            .write(move |tx| -> Result<Reservation, SqliteError> {
                if sweep_due {
                    sweep(tx, now_us)?;
                }
                let state = read(tx, &key)?;
                Ok(match rule.reserve(state.as_ref(), now_us, horizon_us) {
                    PaceDecision::Reserve { slot_us, next } => {
                        write(tx, &key, &next)?;
                        Reservation::Reserved {
                            slot: timestamp_at_or_after(slot_us),
                        }
                    }
                    PaceDecision::Defer { ready_us } => Reservation::Deferred {
                        ready_at: timestamp_at_or_after(ready_us),
                    },
                })
            })
            .await
            .map_err(|e| backend("reserve", e))
    }

    async fn hold(
        &self,
        key: &PaceKey,
        rule: &PaceRule,
        until: Timestamp,
        slow_until: Option<Timestamp>,
    ) -> Result<(), PacingError> {
        let (key, rule) = (key.storage_key(), *rule);
        let (until_us, slow_until_us) = (micros_of(until), slow_until.map(micros_of));
        self.db
            .write(move |tx| -> Result<(), SqliteError> {
                let state = read(tx, &key)?;
                if let Some(next) = rule.hold(state.as_ref(), until_us, slow_until_us) {
                    write(tx, &key, &next)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| backend("hold", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PhoneNumber, PhoneNumberId};

    const T0: Timestamp = Timestamp::from_millis(1_780_481_730_000);

    #[tokio::test]
    async fn idle_rows_are_swept_as_new_ones_are_written() {
        let db = SqliteDb::open_in_memory().await.unwrap();
        let ledger = SqlitePacingLedger::new(db.clone()).await.unwrap();
        let number = PhoneNumberId::parse("106540352242922").unwrap();
        let rule = PaceRule::per_second(80, 4);
        let old = PaceKey::Pair(number.clone(), PhoneNumber::parse("+14155550123").unwrap());
        ledger
            .reserve(&old, &rule, T0, Duration::ZERO)
            .await
            .unwrap();
        let rows = || {
            db.call(|c| -> Result<i64, SqliteError> {
                Ok(c.row("SELECT count(*) FROM pacing_schedules", [], |r| r.get(0))?)
            })
        };
        assert_eq!(rows().await.unwrap(), 1);
        // Two hours later, the sweeping write (one in SWEEP_EVERY) removes the old row.
        let later = T0.plus_millis(2 * 3_600_000);
        ledger.writes.store(0, Ordering::Relaxed);
        let key = PaceKey::Number(number);
        ledger
            .reserve(&key, &rule, later, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(rows().await.unwrap(), 1);
    }
}
