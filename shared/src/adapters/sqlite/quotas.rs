//! `SqliteQuotaLedger`: the [`QuotaLedger`] port in the embedded database.
//!
//! One row per tenant holds the rate bucket's theoretical arrival time; one row per
//! tenant and UTC day holds the day's message count. Taking a request reads the
//! bucket, applies the domain's rule and writes it back in one `BEGIN IMMEDIATE`
//! transaction; counting a message is one upsert whose update applies only under
//! the limit. Counts older than a week are removed as new ones are written.

use super::{Migration, SqliteDb, SqliteError};
use crate::adapters::sqlite::CachedSql;
use crate::domain::quota::{IntakeQuota, RateDecision, UtcDay, micros};
use crate::domain::{TenantId, Timestamp};
use crate::ports::{Admission, QuotaError, QuotaLedger};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

/// Days of counts kept (today and the six before it).
const DAYS_KEPT: i64 = 7;

/// Schema of the embedded quota ledger.
static MIGRATIONS: &[Migration] = &[Migration {
    id: "quotas/0001_tables",
    sql: "
        CREATE TABLE quota_rates (
            tenant TEXT PRIMARY KEY,
            tat_us INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE quota_days (
            tenant TEXT NOT NULL,
            day TEXT NOT NULL,
            messages INTEGER NOT NULL,
            PRIMARY KEY (tenant, day)
        ) STRICT;
    ",
}];

/// The embedded [`QuotaLedger`].
#[derive(Debug, Clone)]
pub struct SqliteQuotaLedger {
    db: SqliteDb,
}

fn backend(operation: &'static str, e: SqliteError) -> QuotaError {
    QuotaError::Backend {
        operation,
        source: Box::new(e),
    }
}

impl SqliteQuotaLedger {
    /// The ledger over `db` (its tables are created now if needed).
    pub async fn new(db: SqliteDb) -> Result<Self, QuotaError> {
        db.migrate(MIGRATIONS)
            .await
            .map_err(|e| backend("migrate", e))?;
        Ok(Self { db })
    }
}

#[async_trait]
impl QuotaLedger for SqliteQuotaLedger {
    async fn take_request(
        &self,
        tenant: &TenantId,
        quota: &IntakeQuota,
        now: Timestamp,
    ) -> Result<Admission, QuotaError> {
        let (tenant, rate, now_us) = (tenant.as_str().to_owned(), quota.rate(), micros(now));
        self.db
            .write(move |tx| -> Result<Admission, SqliteError> {
                let tat: Option<i64> = tx
                    .row(
                        "SELECT tat_us FROM quota_rates WHERE tenant = ?1",
                        [&tenant],
                        |r| r.get(0),
                    )
                    .optional()?;
                match rate.decide(tat, now_us) {
                    RateDecision::Admit { tat_us } => {
                        tx.exec(
                            "INSERT INTO quota_rates (tenant, tat_us) VALUES (?1, ?2)
                             ON CONFLICT (tenant) DO UPDATE SET tat_us = excluded.tat_us",
                            params![tenant, tat_us],
                        )?;
                        Ok(Admission::Admitted)
                    }
                    RateDecision::Refuse { retry_after } => Ok(Admission::Refused { retry_after }),
                }
            })
            .await
            .map_err(|e| backend("take_request", e))
    }

    async fn reserve_message(
        &self,
        tenant: &TenantId,
        day: UtcDay,
        limit: u32,
    ) -> Result<bool, QuotaError> {
        let tenant = tenant.as_str().to_owned();
        let (key, oldest) = (day.key(), day.minus_days(DAYS_KEPT - 1).key());
        self.db
            .write(move |tx| -> Result<bool, SqliteError> {
                let changed = tx.exec(
                    "INSERT INTO quota_days (tenant, day, messages) SELECT ?1, ?2, 1 WHERE ?3 > 0
                     ON CONFLICT (tenant, day) DO UPDATE SET messages = messages + 1
                     WHERE messages < ?3",
                    params![tenant, key, i64::from(limit)],
                )?;
                tx.exec(
                    "DELETE FROM quota_days WHERE tenant = ?1 AND day < ?2",
                    params![tenant, oldest],
                )?;
                Ok(changed == 1)
            })
            .await
            .map_err(|e| backend("reserve_message", e))
    }

    async fn release_message(&self, tenant: &TenantId, day: UtcDay) -> Result<(), QuotaError> {
        let (tenant, key) = (tenant.as_str().to_owned(), day.key());
        self.db
            .write(move |tx| -> Result<(), SqliteError> {
                tx.exec(
                    "UPDATE quota_days SET messages = messages - 1
                     WHERE tenant = ?1 AND day = ?2 AND messages > 0",
                    params![tenant, key],
                )?;
                Ok(())
            })
            .await
            .map_err(|e| backend("release_message", e))
    }

    async fn messages_counted(&self, tenant: &TenantId, day: UtcDay) -> Result<u64, QuotaError> {
        let (tenant, key) = (tenant.as_str().to_owned(), day.key());
        let counted = self
            .db
            .call(move |conn| -> Result<Option<i64>, SqliteError> {
                Ok(conn
                    .row(
                        "SELECT messages FROM quota_days WHERE tenant = ?1 AND day = ?2",
                        params![tenant, key],
                        |r| r.get(0),
                    )
                    .optional()?)
            })
            .await
            .map_err(|e| backend("messages_counted", e))?;
        Ok(counted.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }
}
