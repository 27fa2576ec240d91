//! `SqliteTrafficSeries`: the [`TrafficSeries`] port in the embedded database.
//!
//! One row per (tenant, minute, metric key) in `series_counts` (primary key in that
//! order, so a tenant's range of minutes is one index range). A `record` is one
//! `BEGIN IMMEDIATE` transaction of upserts (`count = count + ?`); it also deletes
//! the recorded tenants' rows older than two days, an index range that is empty but
//! once a minute. A read sums its steps in SQL (`GROUP BY`), so a day by hour comes
//! back as 24 rows per metric.
//!
//! Records are combined: those made while an earlier one still waits for the writer
//! thread join its write, so a busy pipeline (a few points per message) makes one
//! write per commit instead of one per call. Each caller still returns only once the
//! write holding its points is committed.

use super::{Migration, SqliteDb, SqliteError};
use crate::domain::TenantId;
use crate::domain::series::{KEEP_MINUTES, Minute, SeriesMetric, SeriesPoint};
use crate::ports::series::check_range;
use crate::ports::{SeriesError, TrafficSeries};
use async_trait::async_trait;
use rusqlite::params;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// Schema of the embedded traffic series.
static MIGRATIONS: &[Migration] = &[Migration {
    id: "series/0001_counts",
    sql: "
        CREATE TABLE series_counts (
            tenant TEXT NOT NULL,
            minute INTEGER NOT NULL,
            metric TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (tenant, minute, metric)
        ) STRICT, WITHOUT ROWID;
    ",
}];

/// The embedded [`TrafficSeries`].
#[derive(Debug, Clone)]
pub struct SqliteTrafficSeries {
    db: SqliteDb,
    /// Points waiting for the write queued to store them (`None`: no write queued).
    waiting: Arc<Mutex<Option<Waiting>>>,
}

/// The counts of the records combined into one queued write, and how their callers
/// hear of its outcome.
#[derive(Debug)]
struct Waiting {
    counts: Counts,
    /// `Some` once the write is over: `Err` holds why it failed.
    outcome: watch::Sender<Option<Result<(), Arc<str>>>>,
}

/// Counts summed per (tenant, minute, metric key), and each tenant's newest minute.
#[derive(Debug, Default)]
struct Counts {
    rows: BTreeMap<(String, i64, String), i64>,
    newest: BTreeMap<String, i64>,
}

impl Counts {
    fn add(&mut self, points: &[SeriesPoint]) {
        for p in points {
            let tenant = p.tenant.as_str().to_owned();
            let n = i64::try_from(p.count).unwrap_or(i64::MAX);
            let slot = self
                .rows
                .entry((tenant.clone(), p.minute.index(), p.metric.key()))
                .or_default();
            *slot = slot.saturating_add(n);
            let latest = self.newest.entry(tenant).or_insert(i64::MIN);
            *latest = (*latest).max(p.minute.index());
        }
    }

    /// One upsert per counter, then each tenant's rows past the kept window deleted.
    fn write(&self, tx: &rusqlite::Transaction<'_>) -> Result<(), SqliteError> {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO series_counts (tenant, minute, metric, count)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant, minute, metric)
             DO UPDATE SET count = count + excluded.count",
        )?;
        for ((tenant, minute, metric), n) in &self.rows {
            upsert.execute(params![tenant, minute, metric, n])?;
        }
        let mut prune =
            tx.prepare_cached("DELETE FROM series_counts WHERE tenant = ?1 AND minute < ?2")?;
        for (tenant, latest) in &self.newest {
            prune.execute(params![tenant, latest.saturating_sub(KEEP_MINUTES)])?;
        }
        Ok(())
    }
}

fn backend(operation: &'static str, e: SqliteError) -> SeriesError {
    SeriesError::Backend {
        operation,
        source: Box::new(e),
    }
}

impl SqliteTrafficSeries {
    /// The series over `db` (its table is created now if needed).
    pub async fn new(db: SqliteDb) -> Result<Self, SeriesError> {
        db.migrate(MIGRATIONS)
            .await
            .map_err(|e| backend("migrate", e))?;
        Ok(Self {
            db,
            waiting: Arc::new(Mutex::new(None)),
        })
    }
}

#[async_trait]
impl TrafficSeries for SqliteTrafficSeries {
    async fn record(&self, points: &[SeriesPoint]) -> Result<(), SeriesError> {
        if points.is_empty() {
            return Ok(());
        }
        let (mut outcome, queue_write) = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            match waiting.as_mut() {
                Some(w) => {
                    w.counts.add(points);
                    (w.outcome.subscribe(), false)
                }
                None => {
                    let mut counts = Counts::default();
                    counts.add(points);
                    let (sender, receiver) = watch::channel(None);
                    *waiting = Some(Waiting {
                        counts,
                        outcome: sender,
                    });
                    (receiver, true)
                }
            }
        };
        if queue_write {
            // A task of its own, so a caller that gives up waiting cannot leave the
            // others without an answer.
            let (db, waiting) = (self.db.clone(), Arc::clone(&self.waiting));
            tokio::spawn(async move {
                let (taken, ran) = (Arc::clone(&waiting), Arc::new(AtomicBool::new(false)));
                let ran_on_writer = Arc::clone(&ran);
                let written = db
                    .write(move |tx| -> Result<_, SqliteError> {
                        ran_on_writer.store(true, Ordering::Relaxed);
                        // Taken on the writer thread: later records start a new write.
                        let Some(batch) =
                            taken.lock().unwrap_or_else(PoisonError::into_inner).take()
                        else {
                            return Ok(None);
                        };
                        match batch.counts.write(tx) {
                            Ok(()) => Ok(Some(batch.outcome)),
                            Err(e) => {
                                batch.outcome.send_replace(Some(Err(e.to_string().into())));
                                Err(e)
                            }
                        }
                    })
                    .await;
                match written {
                    Ok(Some(outcome)) => {
                        outcome.send_replace(Some(Ok(())));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "series write failed");
                        // Never ran (the writer is gone): its batch is still waiting. One
                        // that ran took its batch along, and has answered or dropped it.
                        if !ran.load(Ordering::Relaxed) {
                            let left = waiting
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .take();
                            if let Some(batch) = left {
                                batch.outcome.send_replace(Some(Err(e.to_string().into())));
                            }
                        }
                    }
                }
            });
        }
        let settled = outcome
            .wait_for(Option::is_some)
            .await
            // The sender went with a batch whose commit failed.
            .map_err(|_| {
                backend(
                    "record",
                    SqliteError::CommitFailed("the series write was not committed".into()),
                )
            })?;
        match settled.as_ref() {
            Some(Err(why)) => Err(backend(
                "record",
                SqliteError::CommitFailed(why.to_string()),
            )),
            _ => Ok(()),
        }
    }

    async fn read(
        &self,
        tenant: &TenantId,
        from: Minute,
        until: Minute,
        step: i64,
    ) -> Result<Vec<SeriesPoint>, SeriesError> {
        check_range(from, until)?;
        let key = tenant.as_str().to_owned();
        let (lo, hi, step) = (from.index(), until.index(), step.max(1));
        let rows = self
            .db
            .call(
                move |conn| -> Result<Vec<(i64, String, i64)>, SqliteError> {
                    let mut stmt = conn.prepare_cached(
                        "SELECT ?2 + ((minute - ?2) / ?4) * ?4 AS slot, metric, sum(count)
                         FROM series_counts
                         WHERE tenant = ?1 AND minute >= ?2 AND minute < ?3 AND count > 0
                         GROUP BY slot, metric ORDER BY slot, metric",
                    )?;
                    let rows = stmt
                        .query_map(params![key, lo, hi, step], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(rows)
                },
            )
            .await
            .map_err(|e| backend("read", e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(minute, metric, count)| {
                Some(SeriesPoint {
                    tenant: tenant.clone(),
                    minute: Minute::from_index(minute),
                    metric: SeriesMetric::parse(&metric)?,
                    count: u64::try_from(count).ok()?,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::SqliteOptions;
    use crate::domain::Timestamp;

    /// Records made while the writer thread is busy, as in a busy pipeline: they
    /// join one write, every caller returns after its points are stored, none is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn records_made_while_the_writer_is_busy_share_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(dir.path().join("series.sqlite"), SqliteOptions::default())
            .await
            .unwrap();
        let series = SqliteTrafficSeries::new(db.clone()).await.unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        let at = Timestamp::from_secs(1_750_000_000);
        // Hold the writer thread until every record has joined the waiting write.
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(move |_tx| -> Result<(), SqliteError> {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    Ok(())
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || started_rx.recv())
            .await
            .unwrap()
            .unwrap();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..200u64 {
            let (series, tenant) = (series.clone(), tenant.clone());
            calls.spawn(async move {
                let metric = if i % 2 == 0 {
                    SeriesMetric::Accepted
                } else {
                    SeriesMetric::Read
                };
                let point = SeriesPoint::one(&tenant, at, metric);
                series.record(&[point.clone(), point]).await
            });
        }
        let waiting_points = || {
            series
                .waiting
                .lock()
                .unwrap()
                .as_ref()
                .map_or(0, |w| w.counts.rows.values().sum::<i64>())
        };
        for _ in 0..1000 {
            if waiting_points() == 400 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(waiting_points(), 400);
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        while let Some(done) = calls.join_next().await {
            done.unwrap().unwrap();
        }
        let minute = Minute::of(at);
        let points = series
            .read(&tenant, minute, Minute::from_index(minute.index() + 1), 1)
            .await
            .unwrap();
        let count = |metric: SeriesMetric| {
            points
                .iter()
                .find(|p| p.metric == metric)
                .map_or(0, |p| p.count)
        };
        assert_eq!(count(SeriesMetric::Accepted), 200);
        assert_eq!(count(SeriesMetric::Read), 200);
        // A record made after that write starts a write of its own.
        series
            .record(&[SeriesPoint::one(&tenant, at, SeriesMetric::Read)])
            .await
            .unwrap();
        assert!(series.waiting.lock().unwrap().is_none());
    }
}
