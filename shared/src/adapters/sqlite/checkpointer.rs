//! Checkpoints off the writer thread: the group-commit writer no longer stops every
//! 1,000 pages to copy the write-ahead log back into the database file.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the log past 1,000
//! pages, so that commit (and every write queued behind it) waited 5-18 ms for the
//! copy and its fsyncs: under load that was intake's p99 (issue 15). Here a commit
//! only notes the log's size. A thread with its own connection runs the PASSIVE
//! checkpoint, which takes no lock a writer needs, while the writer goes on.
//!
//! A passive checkpoint cannot start the log over: SQLite rewinds it only when a
//! write begins with every page copied and no reader left on the log, which never
//! happens while writes keep coming. So once the log passes `RESTART_PAGES`, the
//! writer thread itself, between two batches, runs a RESTART checkpoint: it copies
//! the few pages written since the last passive one and waits (2 ms, see
//! `RESTART_POLLS`) for readers to move off the log. The log stays bounded, and the
//! writer pays that short step a few times a second instead of the whole copy 20
//! times. Durability does not change: a commit is in the log on disk when it returns.

use super::SqliteError;
use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Pages written to the log since the last checkpoint past which the checkpointer
/// wakes (SQLite's own automatic threshold).
const CHECKPOINT_PAGES: i32 = 1000;

/// Log size, in pages, past which the writer starts the log over between batches.
const RESTART_PAGES: i32 = 4000;

/// How often a restart looks again whether readers left the log.
const RESTART_POLL: Duration = Duration::from_micros(100);

/// Looks a restart takes before it gives up until the next passive checkpoint (2 ms;
/// doubled for each restart put off in a row, up to 64 times).
const RESTART_POLLS: i32 = 20;

/// State shared by the writer's log hook, the checkpointer thread and the writer.
#[derive(Debug, Default)]
struct Shared {
    /// Passive checkpoints run so far.
    checkpoints: AtomicU64,
    /// Log restarts the writer ran so far.
    restarts: AtomicU64,
    /// Pages of the current log copied back by the last checkpoint.
    copied: AtomicI32,
    /// The log outgrew `RESTART_PAGES`: the writer restarts it after its batch.
    restart_wanted: AtomicBool,
    /// Restarts put off in a row.
    deferred: AtomicU32,
}

/// The checkpointer's side that the pool and the writer keep: counts for tests and
/// diagnostics, and the restart the writer runs between batches.
#[derive(Debug, Clone, Default)]
pub(super) struct Checkpoints(Arc<Shared>);

impl Checkpoints {
    /// Passive checkpoints run so far.
    pub(super) fn count(&self) -> u64 {
        self.0.checkpoints.load(Ordering::Relaxed)
    }

    /// Log restarts run so far.
    pub(super) fn restarts(&self) -> u64 {
        self.0.restarts.load(Ordering::Relaxed)
    }

    /// On the writer thread, between batches: start the log over if it grew too long.
    /// `busy_timeout` is the connection's own, put back afterwards.
    pub(super) fn restart_if_wanted(&self, conn: &mut Connection, busy_timeout: Duration) {
        if !self.0.restart_wanted.swap(false, Ordering::Relaxed) {
            return;
        }
        let started = std::time::Instant::now();
        // Readers leave the log within a query, well under a millisecond: poll for them
        // every 100 us, where SQLite's own busy handler sleeps 1, 2, 5 ms... Each
        // restart put off lets the writer wait longer the next time, so a log that
        // readers keep busy is still bounded.
        let deferred = self.0.deferred.load(Ordering::Relaxed);
        let polls = RESTART_POLLS.saturating_mul(1 << deferred.min(6));
        let restarted = conn
            .busy_handler(Some(move |attempt: i32| {
                std::thread::sleep(RESTART_POLL);
                attempt < polls
            }))
            .and_then(|()| conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::RESTART));
        if let Err(e) = conn.busy_timeout(busy_timeout) {
            tracing::warn!(error = %e, "sqlite writer: busy timeout not restored");
        }
        let elapsed_us = started.elapsed().as_micros();
        match restarted {
            Ok((log, _)) => {
                tracing::debug!(log_pages = log, elapsed_us, "sqlite log restarted");
                self.0.copied.store(0, Ordering::Relaxed);
                self.0.deferred.store(0, Ordering::Relaxed);
                self.0.restarts.fetch_add(1, Ordering::Relaxed);
            }
            // A reader stayed on the log, or the checkpointer was copying: the next
            // passive checkpoint asks again.
            Err(e) => {
                self.0.deferred.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, elapsed_us, deferred, "sqlite log restart deferred");
            }
        }
    }
}

/// Start the checkpointer thread on `checkpoint_conn` and hand the writer's
/// connection `writer_conn` a log hook that wakes it; the thread stops when the
/// writer's connection is closed.
pub(super) fn attach(
    writer_conn: &mut Connection,
    checkpoint_conn: Connection,
) -> Result<Checkpoints, SqliteError> {
    // One pending wake-up at most: commits that find one already pending add nothing.
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    let checkpoints = Checkpoints::default();
    let shared = Arc::clone(&checkpoints.0);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || run(&checkpoint_conn, &woken, &shared))
        .map_err(|e| SqliteError::WriterGone(format!("could not start the checkpointer: {e}")))?;
    let shared = Arc::clone(&checkpoints.0);
    let mut last_pages = 0;
    // Registering a log hook replaces SQLite's automatic checkpoint on this connection.
    writer_conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
        // A log shorter than at the last commit was started over: nothing of it is
        // copied yet.
        if pages < last_pages {
            shared.copied.store(0, Ordering::Relaxed);
        }
        last_pages = pages;
        if pages - shared.copied.load(Ordering::Relaxed) >= CHECKPOINT_PAGES {
            let _ = wake.try_send(());
        }
        Ok(())
    }))?;
    Ok(checkpoints)
}

fn run(conn: &Connection, woken: &mpsc::Receiver<()>, shared: &Shared) {
    while woken.recv().is_ok() {
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok((log, copied)) => {
                tracing::trace!(log_pages = log, copied_pages = copied, "sqlite checkpoint");
                shared.copied.store(copied, Ordering::Relaxed);
                if log >= RESTART_PAGES {
                    shared.restart_wanted.store(true, Ordering::Relaxed);
                }
            }
            // Not fatal: the log keeps every commit, and the next wake-up tries again.
            Err(e) => tracing::warn!(error = %e, "sqlite checkpoint failed"),
        }
        shared.checkpoints.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SqliteDb, SqliteError, SqliteOptions};
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn the_log_is_copied_back_off_the_writer_and_started_over_between_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let db = SqliteDb::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        // The writer's connection runs no automatic checkpoint of its own.
        let automatic: i64 = db
            .write(|tx| {
                tx.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
                    .map_err(SqliteError::from)
            })
            .await
            .unwrap();
        assert_eq!(automatic, 0);
        db.write(|tx| {
            tx.execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
                .map_err(SqliteError::from)
        })
        .await
        .unwrap();
        // About 1,600 pages of log, in writes of their own.
        for _ in 0..100 {
            db.write(|tx| {
                tx.execute("INSERT INTO blobs (body) VALUES (zeroblob(65536))", [])
                    .map_err(SqliteError::from)
            })
            .await
            .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while db.checkpoints() == 0 || std::fs::metadata(&path).unwrap().len() < 2 << 20 {
            assert!(
                Instant::now() < deadline,
                "no checkpoint copied the log back: {} checkpoints, file of {} bytes",
                db.checkpoints(),
                std::fs::metadata(&path).unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Past RESTART_PAGES the writer starts the log over between two batches.
        for _ in 0..250 {
            db.write(|tx| {
                tx.execute("INSERT INTO blobs (body) VALUES (zeroblob(65536))", [])
                    .map_err(SqliteError::from)
            })
            .await
            .unwrap();
        }
        while db.log_restarts() == 0 {
            assert!(Instant::now() < deadline, "the log was never started over");
            db.write(|tx| {
                tx.execute("INSERT INTO blobs (body) VALUES (x'00')", [])
                    .map_err(SqliteError::from)
            })
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Every write is still there, read through the pool.
        let rows: i64 = db
            .call(|c| {
                c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
                    .map_err(SqliteError::from)
            })
            .await
            .unwrap();
        assert!(rows >= 350, "{rows} rows");
    }
}
