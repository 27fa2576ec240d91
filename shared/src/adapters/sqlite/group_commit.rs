//! Group commit: every write of a file database runs on one writer thread, and the
//! writes that queue up while a commit is on its way to the disk share the next one.
//!
//! Each write keeps the meaning it had as a transaction of its own: it runs inside a
//! savepoint of the batch's transaction, so a write that fails is rolled back alone;
//! writes run one after the other, so each sees the ones before it (serial order, as
//! with SQLite's single write lock); and a caller hears of its write only after the
//! batch's commit returned, so `synchronous=FULL` still means an acknowledged write
//! survives a kill or a power loss. What changes is the number of fsyncs: one per
//! batch instead of one per write, which under load is most of the difference.

use super::{CachedSql, SqliteError};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// Most writes folded into one commit (bounds the latency a long batch adds).
const MAX_BATCH: usize = 256;

/// What a write job hands back after running: whether its savepoint is kept, and how
/// to answer its caller once the batch's fate is known.
pub(super) struct Ran {
    /// The write succeeded; its savepoint is released into the batch.
    keep: bool,
    /// Called with the commit's outcome (always `Ok` for a job that failed on its own).
    answer: Box<dyn FnOnce(Result<(), SqliteError>) + Send>,
}

/// One queued write: run inside the batch's transaction, or told why it never ran.
pub(super) type Job = Box<dyn FnOnce(Result<&Transaction<'_>, SqliteError>) -> Ran + Send>;

/// The sending side of the writer thread; dropping the last one stops the thread.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Batches committed so far.
    batches: Arc<AtomicU64>,
}

impl Writer {
    /// Start the writer thread on `conn` (a connection of its own to the file);
    /// `between_batches` runs on it after each batch, outside any transaction.
    pub(super) fn start(
        conn: Connection,
        between_batches: impl FnMut(&mut Connection) + Send + 'static,
    ) -> Result<Self, SqliteError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let batches = Arc::new(AtomicU64::new(0));
        let counted = batches.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, &queue, &counted, between_batches))
            .map_err(|e| SqliteError::WriterGone(format!("could not start: {e}")))?;
        Ok(Self { jobs, batches })
    }

    /// Batches committed (or attempted) so far.
    pub(super) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Run `f` as one write of a batch; resolves after the batch is committed.
    pub(super) async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<SqliteError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |tx| {
            let tx = match tx {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = reply.send(Err(E::from(e)));
                    return Ran::done(false);
                }
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| f(tx))).unwrap_or_else(|_| {
                Err(E::from(SqliteError::WriterGone("a write panicked".into())))
            });
            let keep = outcome.is_ok();
            Ran {
                keep,
                answer: Box::new(move |committed| {
                    let result = match (outcome, committed) {
                        (Err(own), _) => Err(own),
                        (Ok(value), Ok(())) => Ok(value),
                        // The write itself worked, but its batch never reached the disk.
                        (Ok(_), Err(e)) => Err(E::from(e)),
                    };
                    let _ = reply.send(result);
                }),
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| E::from(SqliteError::WriterGone("the writer thread stopped".into())))?;
        answer
            .await
            .map_err(|_| E::from(SqliteError::WriterGone("a write was dropped".into())))?
    }
}

impl Ran {
    fn done(keep: bool) -> Self {
        Self {
            keep,
            answer: Box::new(|_| {}),
        }
    }
}

/// The writer thread: take what is queued (at least one job), run it as one batch.
fn run(
    mut conn: Connection,
    queue: &mpsc::Receiver<Job>,
    batches: &AtomicU64,
    mut between_batches: impl FnMut(&mut Connection),
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Counted before its callers hear of it, so a caller sees its own batch counted.
        batches.fetch_add(1, Ordering::Relaxed);
        run_batch(&mut conn, batch);
        between_batches(&mut conn);
    }
}

fn run_batch(conn: &mut Connection, batch: Vec<Job>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let why = e.to_string();
            tracing::error!(error = %why, writes = batch.len(), "sqlite batch could not begin");
            for job in batch {
                job(Err(SqliteError::CommitFailed(why.clone())));
            }
            return;
        }
    };
    let mut answers = Vec::with_capacity(batch.len());
    let mut broken: Option<String> = None;
    for job in batch {
        if let Some(why) = &broken {
            job(Err(SqliteError::CommitFailed(why.clone())));
            continue;
        }
        if let Err(e) = tx.exec("SAVEPOINT job", []) {
            broken = Some(e.to_string());
            job(Err(SqliteError::CommitFailed(e.to_string())));
            continue;
        }
        let ran = job(Ok(&tx));
        // Prepared once (CachedSql): parsing these two statements again for every
        // write was a few percent of the writer thread.
        let closed = if ran.keep {
            tx.exec("RELEASE job", [])
        } else {
            tx.exec("ROLLBACK TO job", [])
                .and_then(|_| tx.exec("RELEASE job", []))
        };
        if let Err(e) = closed {
            broken = Some(e.to_string());
        }
        answers.push(ran.answer);
    }
    let committed = match broken {
        // The transaction is in an unknown state: nothing of it is kept.
        Some(why) => {
            drop(tx);
            Err(why)
        }
        None => tx.commit().map_err(|e| e.to_string()),
    };
    if let Err(why) = &committed {
        tracing::error!(error = %why, writes = answers.len(), "sqlite batch was not committed");
    }
    for answer in answers {
        answer(committed.clone().map_err(SqliteError::CommitFailed));
    }
}
