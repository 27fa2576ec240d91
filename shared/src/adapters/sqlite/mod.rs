//! The embedded backend: one SQLite file holding queues, messages and directory.
//!
//! [`SqliteDb`] is a small connection pool shared by every SQLite adapter. SQLite
//! calls block, so each runs on tokio's blocking pool and never stalls the async
//! runtime. Durability: WAL journal with `synchronous=FULL` by default, so a
//! committed (acknowledged) write survives a process kill and a power loss;
//! `NORMAL` survives a process kill only and is offered for throughput tests.

mod checkpointer;
pub mod costs;
pub mod directory;
pub mod events;
mod group_commit;
pub mod messages;
pub mod overview;
pub mod pacing;
pub mod queue;
pub mod quotas;
pub mod series;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// Errors of the embedded database itself (adapters wrap it in their own error).
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// SQLite refused a statement or could not open the file.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running the statement panicked or was cancelled.
    #[error("sqlite task did not finish")]
    TaskFailed(#[from] tokio::task::JoinError),
    /// The pool was closed while waiting for a connection.
    #[error("sqlite pool closed")]
    PoolClosed(#[from] tokio::sync::AcquireError),
    /// The only connection of an in-memory database was lost (a statement panicked).
    #[error("in-memory sqlite database lost its connection")]
    InMemoryConnectionLost,
    /// The file is not a store of ours: empty, not SQLite, damaged, or another schema.
    #[error("{0}")]
    NotAStore(String),
    /// The writer thread is gone or a write panicked on it.
    #[error("sqlite writer: {0}")]
    WriterGone(String),
    /// The batch holding this write could not begin or commit: nothing of it was kept.
    #[error("sqlite commit failed: {0}")]
    CommitFailed(String),
}

/// Statements run through the connection's prepared-statement cache: parsing and
/// planning the same SQL again on every write was a tenth of wa dev's CPU under load.
pub trait CachedSql {
    /// `execute`, with the statement prepared once per connection.
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// `query_row`, with the statement prepared once per connection.
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl CachedSql for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Statements kept prepared per connection (rusqlite's default of 16 is fewer than
/// the store's hot statements, and an LRU that small thrashes).
const STATEMENT_CACHE: usize = 256;

/// How a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync the WAL on every commit: no acknowledged write is lost, even on power loss.
    Full,
    /// fsync only at checkpoints: survives a process kill, may lose the last
    /// commits on power loss or an OS crash. For load tests.
    Normal,
}

/// Tuning of a [`SqliteDb`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Most connections open at once (readers run in parallel under WAL; writers queue).
    pub max_connections: usize,
    /// How long a statement waits for another connection's write lock before failing.
    pub busy_timeout: Duration,
    /// Durability of commits.
    pub synchronous: Synchronous,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Full,
        }
    }
}

/// One schema step, applied once per database and recorded in `schema_migrations`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Unique id, prefixed by the owning adapter: `queue/0001_tables`.
    pub id: &'static str,
    /// The statements, run in one transaction with the record of the step.
    pub sql: &'static str,
}

/// A pool of SQLite connections to one database. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    inner: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    /// `None` for an in-memory database (a single connection that must never be replaced).
    path: Option<PathBuf>,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// The group-commit writer of a file database (`None` in memory: one connection).
    writer: Option<group_commit::Writer>,
    /// Checkpoints run off the writer thread (none in memory).
    checkpoints: checkpointer::Checkpoints,
}

impl SqliteDb {
    /// Open (creating if needed) the database file at `path` in WAL mode. An existing
    /// file must be a sound store of ours: an empty file, a file that is not SQLite, one
    /// that fails `PRAGMA quick_check`, or one holding another application's tables is
    /// refused with a message that says which, rather than silently used.
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, SqliteError> {
        let path = path.as_ref().to_path_buf();
        let max = options.max_connections.max(1);
        let first = {
            let (path, options) = (path.clone(), options.clone());
            tokio::task::spawn_blocking(move || -> Result<(Connection, (group_commit::Writer, checkpointer::Checkpoints)), SqliteError> {
                let existed = match std::fs::metadata(&path) {
                    Ok(m) if m.len() == 0 => {
                        return Err(SqliteError::NotAStore(format!(
                            "{} is an empty file, not a store: remove it or choose another path",
                            path.display()
                        )));
                    }
                    Ok(_) => true,
                    Err(_) => false,
                };
                let conn = open_connection(&path, &options).map_err(|e| not_sqlite(&path, e))?;
                if existed {
                    check_store(&conn, &path)?;
                }
                // WAL is a property of the file: set once, it holds for every connection.
                let mode: String = conn.row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
                tracing::debug!(journal_mode = %mode, path = %path.display(), "sqlite opened");
                create_migrations_table(&conn)?;
                let mut writer_conn = open_connection(&path, &options)?;
                let checkpoints =
                    checkpointer::attach(&mut writer_conn, open_connection(&path, &options)?)?;
                let restarts = checkpoints.clone();
                let busy_timeout = options.busy_timeout;
                let writer = group_commit::Writer::start(writer_conn, move |conn| {
                    restarts.restart_if_wanted(conn, busy_timeout);
                })?;
                Ok((conn, (writer, checkpoints)))
            })
            .await??
        };
        let (first, (writer, checkpoints)) = first;
        Ok(Self::from_parts(
            Some(path),
            options,
            first,
            max,
            Some(writer),
            checkpoints,
        ))
    }

    /// A private in-memory database with a single connection (unit tests; nothing is durable).
    pub async fn open_in_memory() -> Result<Self, SqliteError> {
        let options = SqliteOptions {
            max_connections: 1,
            ..SqliteOptions::default()
        };
        let conn = tokio::task::spawn_blocking(|| -> Result<Connection, SqliteError> {
            let conn = Connection::open_in_memory()?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            create_migrations_table(&conn)?;
            Ok(conn)
        })
        .await??;
        Ok(Self::from_parts(
            None,
            options,
            conn,
            1,
            None,
            checkpointer::Checkpoints::default(),
        ))
    }

    fn from_parts(
        path: Option<PathBuf>,
        options: SqliteOptions,
        first: Connection,
        max: usize,
        writer: Option<group_commit::Writer>,
        checkpoints: checkpointer::Checkpoints,
    ) -> Self {
        Self {
            inner: Arc::new(Pool {
                path,
                options,
                idle: Mutex::new(vec![first]),
                permits: Arc::new(Semaphore::new(max)),
                writer,
                checkpoints,
            }),
        }
    }

    /// Run `f` with a pooled connection on the blocking thread pool.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<SqliteError> + Send + 'static,
    {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(SqliteError::from)?;
        let pool = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.checkout()?;
            let result = f(&mut conn);
            // Any transaction `f` opened has been committed or rolled back (dropped) by
            // now, so the connection goes back clean. A panic in `f` drops it instead.
            pool.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        })
        .await
        .map_err(SqliteError::from)?
    }

    /// Run `f` as a write transaction, committed when `f` returns `Ok`; the answer
    /// comes once the commit is on disk.
    ///
    /// On a file, `f` runs on the group-commit writer thread inside a savepoint of a
    /// `BEGIN IMMEDIATE` batch shared with the writes queued alongside it (see
    /// `group_commit.rs`). IMMEDIATE takes the write lock up front: a deferred
    /// transaction that reads and then writes can fail with SQLITE_BUSY at the
    /// upgrade, which the busy timeout does not retry. Every read-then-write step
    /// must use this.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<SqliteError> + Send + 'static,
    {
        if let Some(writer) = &self.inner.writer {
            return writer.write(f).await;
        }
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(SqliteError::from)?;
            let value = f(&tx)?;
            tx.commit().map_err(SqliteError::from)?;
            Ok(value)
        })
        .await
    }

    /// Write batches committed by the group-commit writer so far (0 in memory).
    pub fn write_batches(&self) -> u64 {
        self.inner
            .writer
            .as_ref()
            .map_or(0, group_commit::Writer::batches)
    }

    /// Checkpoints of the write-ahead log run so far, off the writer thread (0 in memory).
    pub fn checkpoints(&self) -> u64 {
        self.inner.checkpoints.count()
    }

    /// Restarts of the write-ahead log run by the writer so far (0 in memory).
    pub fn log_restarts(&self) -> u64 {
        self.inner.checkpoints.restarts()
    }

    /// Apply the `migrations` not applied yet, in order, each in its own transaction.
    /// Safe to run from several processes at once.
    pub async fn migrate(&self, migrations: &'static [Migration]) -> Result<(), SqliteError> {
        for migration in migrations {
            self.write(move |tx| -> Result<(), SqliteError> {
                let applied = tx
                    .row(
                        "SELECT 1 FROM schema_migrations WHERE id = ?1",
                        [migration.id],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !applied {
                    tx.execute_batch(migration.sql)?;
                    tx.exec(
                        "INSERT INTO schema_migrations (id, applied_at_ms) VALUES (?1, ?2)",
                        rusqlite::params![migration.id, unix_millis()],
                    )?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Ids of the migrations applied to this database, in the order applied.
    pub async fn applied_migrations(&self) -> Result<Vec<String>, SqliteError> {
        self.call(|conn| -> Result<Vec<String>, SqliteError> {
            let mut stmt =
                conn.prepare_cached("SELECT id FROM schema_migrations ORDER BY rowid")?;
            let ids = stmt
                .query_map([], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })
        .await
    }
}

impl Pool {
    fn checkout(&self) -> Result<Connection, SqliteError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match (idle, &self.path) {
            (Some(conn), _) => Ok(conn),
            (None, Some(path)) => open_connection(path, &self.options),
            (None, None) => Err(SqliteError::InMemoryConnectionLost),
        }
    }
}

/// Explain an SQLite refusal of a file that is not a database at all.
fn not_sqlite(path: &Path, e: SqliteError) -> SqliteError {
    match &e {
        SqliteError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::NotADatabase =>
        {
            SqliteError::NotAStore(format!("{} is not an SQLite database", path.display()))
        }
        _ => e,
    }
}

/// An existing file passes `PRAGMA quick_check` and holds our schema (its tables come
/// with our `schema_migrations`), or nothing yet.
fn check_store(conn: &Connection, path: &Path) -> Result<(), SqliteError> {
    let check: Result<String, rusqlite::Error> = conn.row("PRAGMA quick_check", [], |r| r.get(0));
    let check = check.map_err(|e| not_sqlite(path, e.into()))?;
    if check != "ok" {
        return Err(SqliteError::NotAStore(format!(
            "{} failed PRAGMA quick_check: {check}",
            path.display()
        )));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
     ORDER BY name",
    )?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if !tables.is_empty() && !tables.iter().any(|t| t == "schema_migrations") {
        return Err(SqliteError::NotAStore(format!(
            "{} holds another application's tables ({}), not a store",
            path.display(),
            tables.join(", ")
        )));
    }
    Ok(())
}

fn open_connection(path: &Path, options: &SqliteOptions) -> Result<Connection, SqliteError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(options.busy_timeout)?;
    let synchronous = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Each write of a group commit runs in a savepoint, whose rollback journal SQLite
    // keeps in a temporary file once it outgrows 64 KiB: under load a tenth of the
    // writer thread's time went to writing it (issue 15). In memory it costs no
    // syscall, and it never needs to survive the transaction it belongs to.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn create_migrations_table(conn: &Connection) -> Result<(), SqliteError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            id TEXT PRIMARY KEY,
            applied_at_ms INTEGER NOT NULL
        ) STRICT;",
    )?;
    Ok(())
}

/// Wall-clock milliseconds, for bookkeeping columns only (adapters take "now" from a Clock).
pub(crate) fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_that_are_not_a_store_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        async fn refused(path: std::path::PathBuf) -> String {
            match SqliteDb::open(&path, SqliteOptions::default()).await {
                Err(SqliteError::NotAStore(why)) => why,
                Err(other) => panic!("{}: {other}", path.display()),
                Ok(_) => panic!("{} was opened", path.display()),
            }
        }
        let refused = |name: &str| refused(dir.path().join(name));
        std::fs::write(dir.path().join("empty.sqlite"), b"").unwrap();
        assert!(refused("empty.sqlite").await.contains("empty file"));
        std::fs::write(
            dir.path().join("text.sqlite"),
            b"not a database, just some text!!",
        )
        .unwrap();
        assert!(
            refused("text.sqlite")
                .await
                .contains("not an SQLite database")
        );
        let foreign = dir.path().join("foreign.sqlite");
        rusqlite::Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY);")
            .unwrap();
        assert!(refused("foreign.sqlite").await.contains("invoices"));
        // A new path is created, and a store of ours opens again.
        let ours = dir.path().join("ours.sqlite");
        let db = SqliteDb::open(&ours, SqliteOptions::default())
            .await
            .unwrap();
        db.migrate(STEPS).await.unwrap();
        drop(db);
        SqliteDb::open(&ours, SqliteOptions::default())
            .await
            .unwrap();
    }

    static STEPS: &[Migration] = &[
        Migration {
            id: "test/0001",
            sql: "CREATE TABLE t (n INTEGER NOT NULL) STRICT;",
        },
        Migration {
            id: "test/0002",
            sql: "ALTER TABLE t ADD COLUMN m INTEGER;",
        },
    ];

    #[tokio::test]
    async fn migrations_apply_once_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wa.sqlite");
        let db = SqliteDb::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        db.migrate(STEPS).await.unwrap();
        db.migrate(STEPS).await.unwrap();
        drop(db);
        let db = SqliteDb::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        db.migrate(STEPS).await.unwrap();
        assert_eq!(
            db.applied_migrations().await.unwrap(),
            ["test/0001", "test/0002"]
        );
        let mode: String = db
            .call(|c| {
                c.row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(SqliteError::from)
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn queued_writes_share_a_commit_and_a_failed_or_panicking_one_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
            .await
            .unwrap();
        db.migrate(STEPS).await.unwrap();
        // Hold the writer in a first write until the others are queued behind it.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let first = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |tx| -> Result<(), SqliteError> {
                    tx.exec("INSERT INTO t (n) VALUES (-1)", [])?;
                    held.recv().ok();
                    Ok(())
                })
                .await
            })
        };
        let before = db.write_batches();
        let writes: Vec<_> = (0..60_i64)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.write(move |tx| -> Result<i64, SqliteError> {
                        tx.exec("INSERT INTO t (n) VALUES (?1)", [i])?;
                        match i % 3 {
                            // Fails after writing: its row must not survive.
                            1 => Err(SqliteError::NotAStore(format!("refused {i}"))),
                            2 if i == 2 => panic!("a write that panics"),
                            _ => Ok(i),
                        }
                    })
                    .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        let mut kept = vec![-1];
        for (i, w) in (0..60_i64).zip(writes) {
            match (i % 3, w.await.unwrap()) {
                (1, Err(SqliteError::NotAStore(why))) => assert_eq!(why, format!("refused {i}")),
                (2, Err(SqliteError::WriterGone(why))) if i == 2 => {
                    assert!(why.contains("panicked"))
                }
                (_, Ok(n)) => kept.push(n),
                (_, other) => panic!("write {i}: {other:?}"),
            }
        }
        let mut stored: Vec<i64> = db
            .call(|c| -> Result<Vec<i64>, SqliteError> {
                let mut stmt = c.prepare_cached("SELECT n FROM t")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        stored.sort_unstable();
        kept.sort_unstable();
        assert_eq!(stored, kept, "exactly the successful writes are kept");
        let batches = db.write_batches() - before;
        assert!(
            batches < 10,
            "61 writes queued behind one took {batches} commits"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_concurrent_writers_lose_no_increment() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
            .await
            .unwrap();
        db.migrate(STEPS).await.unwrap();
        db.write(|tx| {
            tx.exec("INSERT INTO t (n) VALUES (0)", [])
                .map_err(SqliteError::from)
        })
        .await
        .unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    // Read then write in one transaction: the classic lost-update shape.
                    db.write(|tx| -> Result<(), SqliteError> {
                        let n: i64 = tx.row("SELECT n FROM t", [], |r| r.get(0))?;
                        tx.exec("UPDATE t SET n = ?1", [n + 1])?;
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let n: i64 = db
            .call(|c| {
                c.row("SELECT n FROM t", [], |r| r.get(0))
                    .map_err(SqliteError::from)
            })
            .await
            .unwrap();
        assert_eq!(n, 32);
    }

    #[tokio::test]
    async fn a_failed_write_is_rolled_back() {
        let db = SqliteDb::open_in_memory().await.unwrap();
        db.migrate(STEPS).await.unwrap();
        let failed = db
            .write(|tx| -> Result<(), SqliteError> {
                tx.exec("INSERT INTO t (n) VALUES (1)", [])?;
                tx.exec("INSERT INTO missing_table VALUES (1)", [])?;
                Ok(())
            })
            .await;
        assert!(failed.is_err());
        let rows: i64 = db
            .call(|c| {
                c.row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(SqliteError::from)
            })
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }
}
