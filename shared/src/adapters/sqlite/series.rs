//! `SqliteTrafficSeries`: the [`TrafficSeries`] port in the embedded database.
//!
//! One row per (tenant, minute, metric key) in `series_counts` (primary key in that
//! order, so a tenant's range of minutes is one index range). A `record` is one
//! `BEGIN IMMEDIATE` transaction of upserts (`count = count + ?`); it also deletes
//! the recorded tenants' rows older than two days, an index range that is empty but
//! once a minute. A read sums its steps in SQL (`GROUP BY`), so a day by hour comes
//! back as 24 rows per metric.

use super::{Migration, SqliteDb, SqliteError};
use crate::domain::TenantId;
use crate::domain::series::{KEEP_MINUTES, Minute, SeriesMetric, SeriesPoint};
use crate::ports::series::check_range;
use crate::ports::{SeriesError, TrafficSeries};
use async_trait::async_trait;
use rusqlite::params;
use std::collections::BTreeMap;

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
        Ok(Self { db })
    }
}

#[async_trait]
impl TrafficSeries for SqliteTrafficSeries {
    async fn record(&self, points: &[SeriesPoint]) -> Result<(), SeriesError> {
        if points.is_empty() {
            return Ok(());
        }
        // Summed per key first: one upsert per counter, whatever the batch repeats.
        let mut rows: BTreeMap<(String, i64, String), i64> = BTreeMap::new();
        let mut newest: BTreeMap<String, i64> = BTreeMap::new();
        for p in points {
            let tenant = p.tenant.as_str().to_owned();
            let n = i64::try_from(p.count).unwrap_or(i64::MAX);
            let slot = rows
                .entry((tenant.clone(), p.minute.index(), p.metric.key()))
                .or_default();
            *slot = slot.saturating_add(n);
            let latest = newest.entry(tenant).or_insert(i64::MIN);
            *latest = (*latest).max(p.minute.index());
        }
        self.db
            .write(move |tx| -> Result<(), SqliteError> {
                {
                    let mut upsert = tx.prepare_cached(
                        "INSERT INTO series_counts (tenant, minute, metric, count)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (tenant, minute, metric)
                         DO UPDATE SET count = count + excluded.count",
                    )?;
                    for ((tenant, minute, metric), n) in &rows {
                        upsert.execute(params![tenant, minute, metric, n])?;
                    }
                    let mut prune = tx.prepare_cached(
                        "DELETE FROM series_counts WHERE tenant = ?1 AND minute < ?2",
                    )?;
                    for (tenant, latest) in &newest {
                        prune.execute(params![tenant, latest.saturating_sub(KEEP_MINUTES)])?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| backend("record", e))
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
