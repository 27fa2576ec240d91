//! `SqliteCostLedger`: the [`CostLedger`] port in the embedded database.
//!
//! `cost_seen` holds one row per (tenant, message, category) counted; its primary key
//! is the exactly-once check: `INSERT OR IGNORE` of the marker, then, only when a row
//! was inserted, the upsert of the (tenant, day, category, billable, calling code)
//! counter in `cost_counts`, both in one `BEGIN IMMEDIATE` transaction. Markers older
//! than [`MARKER_DAYS`] are removed as new ones are written (a status replayed from
//! the webhook inbox comes within its 14 days of retention).

use super::{Migration, SqliteDb, SqliteError};
use crate::adapters::sqlite::CachedSql;
use crate::domain::TenantId;
use crate::domain::costs::{CallingCode, CostCount, PricedStatus, parse_category, parse_day};
use crate::domain::quota::UtcDay;
use crate::ports::costs::period_days;
use crate::ports::{CostLedger, CostLedgerError};
use async_trait::async_trait;
use rusqlite::params;

/// Days a marker is kept after its day (DynamoDB's TTL keeps them as long).
pub const MARKER_DAYS: i64 = 35;

/// Schema of the embedded cost ledger.
static MIGRATIONS: &[Migration] = &[Migration {
    id: "costs/0001_tables",
    sql: "
        CREATE TABLE cost_seen (
            tenant TEXT NOT NULL,
            message_id TEXT NOT NULL,
            category TEXT NOT NULL,
            day TEXT NOT NULL,
            PRIMARY KEY (tenant, message_id, category)
        ) STRICT;
        CREATE INDEX cost_seen_by_day ON cost_seen (day);
        CREATE TABLE cost_counts (
            tenant TEXT NOT NULL,
            day TEXT NOT NULL,
            category TEXT NOT NULL,
            billable INTEGER NOT NULL,
            calling_code TEXT NOT NULL,
            messages INTEGER NOT NULL,
            PRIMARY KEY (tenant, day, category, billable, calling_code)
        ) STRICT;
    ",
}];

/// The embedded [`CostLedger`].
#[derive(Debug, Clone)]
pub struct SqliteCostLedger {
    db: SqliteDb,
}

fn backend(operation: &'static str, e: SqliteError) -> CostLedgerError {
    CostLedgerError::Backend {
        operation,
        source: Box::new(e),
    }
}

impl SqliteCostLedger {
    /// The ledger over `db` (its tables are created now if needed).
    pub async fn new(db: SqliteDb) -> Result<Self, CostLedgerError> {
        db.migrate(MIGRATIONS)
            .await
            .map_err(|e| backend("migrate", e))?;
        Ok(Self { db })
    }
}

/// A row as stored, before its values are checked.
type RawCount = (String, String, i64, String, i64);

fn count_of(raw: RawCount) -> Result<CostCount, CostLedgerError> {
    let (day, category, billable, code, messages) = raw;
    let corrupt = |e: crate::domain::costs::CostError| CostLedgerError::Corrupt(e.to_string());
    Ok(CostCount {
        day: parse_day(&day).map_err(corrupt)?,
        category: parse_category(&category).map_err(corrupt)?,
        billable: billable != 0,
        calling_code: CallingCode::parse(&code).map_err(corrupt)?,
        messages: u64::try_from(messages)
            .map_err(|_| CostLedgerError::Corrupt(format!("{messages} messages")))?,
    })
}

#[async_trait]
impl CostLedger for SqliteCostLedger {
    async fn record_pricing(&self, status: &PricedStatus) -> Result<bool, CostLedgerError> {
        let s = status.clone();
        let oldest = s.day.minus_days(MARKER_DAYS).key();
        self.db
            .write(move |tx| -> Result<bool, SqliteError> {
                let day = s.day.key();
                let inserted = tx.exec(
                    "INSERT OR IGNORE INTO cost_seen (tenant, message_id, category, day)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![s.tenant.as_str(), s.message_id.as_str(), s.category, day],
                )?;
                if inserted == 0 {
                    return Ok(false);
                }
                tx.exec(
                    "INSERT INTO cost_counts (tenant, day, category, billable, calling_code, messages)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1)
                     ON CONFLICT (tenant, day, category, billable, calling_code)
                     DO UPDATE SET messages = messages + 1",
                    params![
                        s.tenant.as_str(),
                        day,
                        s.category,
                        i64::from(s.billable),
                        s.calling_code.as_str()
                    ],
                )?;
                tx.exec("DELETE FROM cost_seen WHERE day < ?1", [oldest])?;
                Ok(true)
            })
            .await
            .map_err(|e| backend("record_pricing", e))
    }

    async fn cost_totals(
        &self,
        tenant: &TenantId,
        since: UtcDay,
        until: UtcDay,
    ) -> Result<Vec<CostCount>, CostLedgerError> {
        period_days(since, until)?;
        let (tenant, since, until) = (tenant.as_str().to_owned(), since.key(), until.key());
        let raw = self
            .db
            .call(move |conn| -> Result<Vec<RawCount>, SqliteError> {
                let mut stmt = conn.prepare_cached(
                    "SELECT day, category, billable, calling_code, messages FROM cost_counts
                     WHERE tenant = ?1 AND day >= ?2 AND day < ?3 AND messages > 0
                     ORDER BY day, category, billable, calling_code",
                )?;
                let rows = stmt
                    .query_map(params![tenant, since, until], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect::<Result<Vec<RawCount>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(|e| backend("cost_totals", e))?;
        raw.into_iter().map(count_of).collect()
    }
}
