//! `DeliveryStore`: the durable delivery state, in the SQLite file of `wa dev`.
//!
//! Two tables (migrations `deliveries/...`):
//! - `delivery_endpoints`: one row per endpoint (key: tenant and URL) with its
//!   cursor into the tenant's event log (the last position fanned out, as the
//!   [`EventLog`] hands it out), its type filter, and its health: last success,
//!   failing since, last error, disabled.
//! - `deliveries`: one row per (endpoint, event) with the body as signed, the
//!   attempts, the next attempt's time, the state (`pending`, `delivered`, `dead`)
//!   and the last answer.
//!
//! Every step is one transaction: a fan-out inserts the new events' rows and moves
//! the cursor together (guarded by the cursor it read), an attempt's outcome updates
//! its row and the endpoint's health together. A `kill -9` at any point therefore
//! loses no event and, at worst, repeats the attempt that was in flight.

use super::endpoint::{EndpointConfig, EventsSettings, endpoint_key};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeSet;
use wa_shared::adapters::sqlite::CachedSql;
use wa_shared::adapters::sqlite::{Migration, SqliteDb, SqliteError};
use wa_shared::domain::TenantId;
use wa_shared::domain::events::{Event, EventType};
use wa_shared::ports::{EventLog, EventLogError, MAX_EVENT_PAGE};

/// The delivery tables.
pub static MIGRATIONS: &[Migration] = &[Migration {
    id: "deliveries/0001_tables",
    sql: "
        CREATE TABLE delivery_endpoints (
            endpoint TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            types TEXT,
            cursor TEXT,
            created_ms INTEGER NOT NULL,
            last_attempt_ms INTEGER,
            last_success_ms INTEGER,
            failing_since_ms INTEGER,
            last_error TEXT,
            disabled_ms INTEGER
        ) STRICT;
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            endpoint TEXT NOT NULL REFERENCES delivery_endpoints (endpoint),
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            event_ms INTEGER NOT NULL,
            body TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
            attempts INTEGER NOT NULL,
            next_at_ms INTEGER NOT NULL,
            queued_ms INTEGER NOT NULL,
            last_attempt_ms INTEGER,
            last_status INTEGER,
            last_error TEXT,
            done_ms INTEGER,
            UNIQUE (endpoint, event_id)
        ) STRICT;
        CREATE INDEX deliveries_due ON deliveries (endpoint, state, next_at_ms);
    ",
}];

/// Why a delivery-state call failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The SQLite file failed.
    #[error("delivery state: {0}")]
    Sqlite(#[from] SqliteError),
    /// The event log failed.
    #[error("event log: {0}")]
    Log(#[from] EventLogError),
    /// An event could not be encoded.
    #[error("encoding an event: {0}")]
    Encode(#[from] serde_json::Error),
    /// No endpoint matches.
    #[error("{0}")]
    NoEndpoint(String),
}

impl From<rusqlite::Error> for DeliveryError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(SqliteError::from(e))
    }
}

/// A delivery whose attempt is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// The row.
    pub id: i64,
    /// The event's id (`webhook-id`).
    pub event_id: String,
    /// The event JSON, exactly as it is signed and sent.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Another attempt after this wait.
    Retry(std::time::Duration),
    /// Every attempt failed: a dead letter (replayable).
    Dead,
    /// The row was not pending any more (replayed or finished meanwhile).
    Gone,
}

/// An endpoint's row: where it is and how it is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    /// The key (tenant and URL).
    pub key: String,
    /// The tenant.
    pub tenant: String,
    /// The URL.
    pub url: String,
    /// Its last successful attempt (ms since the epoch).
    pub last_success_ms: Option<i64>,
    /// Its first failed attempt since its last success.
    pub failing_since_ms: Option<i64>,
    /// The last failure's cause.
    pub last_error: Option<String>,
    /// When it was disabled (no more attempts until a replay).
    pub disabled_ms: Option<i64>,
    /// Deliveries waiting (the backlog).
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
    /// Deliveries done.
    pub delivered: u64,
}

/// How many deliveries a replay queued again, per endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The endpoint's URL.
    pub url: String,
    /// Deliveries set pending again (or created).
    pub requeued: u64,
}

/// The delivery state over the SQLite file. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeliveryStore {
    db: SqliteDb,
}

/// The instant of an event's RFC 3339 `timestamp`, in ms (0 when unreadable).
pub fn event_millis(event: &Event) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&event.timestamp).map_or(0, |t| t.timestamp_millis())
}

fn types_json(types: Option<&BTreeSet<EventType>>) -> Option<String> {
    types.map(|t| {
        serde_json::Value::from(t.iter().map(|t| t.as_str()).collect::<Vec<_>>()).to_string()
    })
}

fn types_from_json(text: Option<&str>) -> Option<BTreeSet<EventType>> {
    let names: Vec<String> = serde_json::from_str(text?).ok()?;
    Some(names.iter().filter_map(|n| n.parse().ok()).collect())
}

impl DeliveryStore {
    /// The store over `db` (its tables are created now if needed).
    pub async fn open(db: SqliteDb) -> Result<Self, DeliveryError> {
        db.migrate(MIGRATIONS).await?;
        Ok(Self { db })
    }

    /// Make `endpoint`'s row exist. A new endpoint starts at the current end of the
    /// tenant's log (it receives what happens from now on; `replay` sends it older
    /// events); a known one keeps its cursor and health and takes the new type filter.
    pub async fn register(
        &self,
        endpoint: &EndpointConfig,
        log: &dyn EventLog,
        now_ms: i64,
    ) -> Result<(), DeliveryError> {
        let key = endpoint.key();
        let types = types_json(endpoint.types.as_ref());
        let known = {
            let (key, types) = (key.clone(), types.clone());
            self.db
                .write(move |tx| -> Result<bool, DeliveryError> {
                    let n = tx.exec(
                        "UPDATE delivery_endpoints SET types = ?2 WHERE endpoint = ?1",
                        params![key, types],
                    )?;
                    Ok(n == 1)
                })
                .await?
        };
        if known {
            return Ok(());
        }
        let mut end: Option<String> = None;
        loop {
            let page = log
                .list(&endpoint.tenant, end.as_deref(), MAX_EVENT_PAGE)
                .await?;
            if let Some(last) = page.events.last() {
                end = Some(last.position.clone());
            }
            if !page.more {
                break;
            }
        }
        let (tenant, url) = (endpoint.tenant.as_str().to_owned(), endpoint.url.clone());
        self.db
            .write(move |tx| -> Result<(), DeliveryError> {
                tx.exec(
                    "INSERT OR IGNORE INTO delivery_endpoints (endpoint, tenant, url, types, cursor, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![key, tenant, url, types, end, now_ms],
                )?;
                Ok(())
            })
            .await
    }

    /// Read the events after `endpoint`'s cursor (one page) and, in one transaction,
    /// insert a pending delivery for each it wants and move the cursor past them.
    /// Returns whether more events may follow at once.
    pub async fn fan_out(
        &self,
        endpoint: &EndpointConfig,
        log: &dyn EventLog,
        now_ms: i64,
    ) -> Result<bool, DeliveryError> {
        let key = endpoint.key();
        let cursor = {
            let key = key.clone();
            self.db
                .call(move |c| -> Result<Option<String>, DeliveryError> {
                    Ok(c.row(
                        "SELECT cursor FROM delivery_endpoints WHERE endpoint = ?1",
                        [key],
                        |r| r.get(0),
                    )?)
                })
                .await?
        };
        let page = log
            .list(&endpoint.tenant, cursor.as_deref(), MAX_EVENT_PAGE)
            .await?;
        let Some(last) = page.events.last().map(|e| e.position.clone()) else {
            return Ok(false);
        };
        let mut rows = Vec::new();
        for logged in &page.events {
            let e = &logged.event;
            if endpoint.wants(e.event_type) {
                rows.push((
                    e.id.clone(),
                    e.event_type.as_str(),
                    event_millis(e),
                    serde_json::to_string(e)?,
                ));
            }
        }
        let moved = self
            .db
            .write(move |tx| -> Result<bool, DeliveryError> {
                let now: Option<String> = tx.row(
                    "SELECT cursor FROM delivery_endpoints WHERE endpoint = ?1",
                    [&key],
                    |r| r.get(0),
                )?;
                if now != cursor {
                    // Moved by someone else since we read it: read again next time.
                    return Ok(false);
                }
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO deliveries
                       (endpoint, event_id, event_type, event_ms, body, state, attempts, next_at_ms, queued_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
                )?;
                for (id, t, at, body) in &rows {
                    insert.execute(params![key, id, t, at, body, now_ms])?;
                }
                tx.exec(
                    "UPDATE delivery_endpoints SET cursor = ?2 WHERE endpoint = ?1",
                    params![key, last],
                )?;
                Ok(true)
            })
            .await?;
        Ok(moved && page.more)
    }

    /// Up to `limit` pending deliveries of `key` due at `now_ms`, oldest first.
    pub async fn due(
        &self,
        key: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, DeliveryError> {
        let key = key.to_owned();
        self.db
            .call(move |c| -> Result<Vec<DueDelivery>, DeliveryError> {
                let mut stmt = c.prepare_cached(
                    "SELECT id, event_id, body, attempts FROM deliveries
                     WHERE endpoint = ?1 AND state = 'pending' AND next_at_ms <= ?2
                     ORDER BY id LIMIT ?3",
                )?;
                let rows = stmt
                    .query_map(params![key, now_ms, limit as i64], |r| {
                        Ok(DueDelivery {
                            id: r.get(0)?,
                            event_id: r.get(1)?,
                            body: r.get(2)?,
                            attempts: r.get(3)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }

    /// The endpoint answered 2xx: the delivery is done, the endpoint healthy.
    pub async fn record_success(
        &self,
        key: &str,
        id: i64,
        status: u16,
        now_ms: i64,
    ) -> Result<(), DeliveryError> {
        let key = key.to_owned();
        self.db
            .write(move |tx| -> Result<(), DeliveryError> {
                tx.exec(
                    "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
                       last_attempt_ms = ?2, last_status = ?3, last_error = NULL, done_ms = ?2
                     WHERE id = ?1 AND state = 'pending'",
                    params![id, now_ms, status],
                )?;
                tx.exec(
                    "UPDATE delivery_endpoints SET last_attempt_ms = ?2, last_success_ms = ?2,
                       failing_since_ms = NULL, last_error = NULL
                     WHERE endpoint = ?1",
                    params![key, now_ms],
                )?;
                Ok(())
            })
            .await
    }

    /// The attempt failed (`status`: the non-2xx answer, if any): schedule the next
    /// one, or make the delivery a dead letter after the last.
    pub async fn record_failure(
        &self,
        key: &str,
        id: i64,
        status: Option<u16>,
        error: &str,
        now_ms: i64,
        settings: &EventsSettings,
    ) -> Result<FailureOutcome, DeliveryError> {
        let (key, error, settings) = (key.to_owned(), error.to_owned(), settings.clone());
        self.db
            .write(move |tx| -> Result<FailureOutcome, DeliveryError> {
                tx.exec(
                    "UPDATE delivery_endpoints SET last_attempt_ms = ?2,
                       failing_since_ms = COALESCE(failing_since_ms, ?2), last_error = ?3
                     WHERE endpoint = ?1",
                    params![key, now_ms, error],
                )?;
                let attempts: Option<u32> = tx
                    .row(
                        "SELECT attempts FROM deliveries WHERE id = ?1 AND state = 'pending'",
                        [id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(attempts) = attempts.map(|a| a + 1) else {
                    return Ok(FailureOutcome::Gone);
                };
                let outcome = match settings.retry_delay(attempts) {
                    Some(wait) => FailureOutcome::Retry(wait),
                    None => FailureOutcome::Dead,
                };
                let (state, next_at, done) = match outcome {
                    FailureOutcome::Retry(wait) => {
                        let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                        ("pending", now_ms.saturating_add(wait), None)
                    }
                    _ => ("dead", now_ms, Some(now_ms)),
                };
                tx.exec(
                    "UPDATE deliveries SET state = ?2, attempts = ?3, next_at_ms = ?4,
                       last_attempt_ms = ?5, last_status = ?6, last_error = ?7, done_ms = ?8
                     WHERE id = ?1",
                    params![id, state, attempts, next_at, now_ms, status, error, done],
                )?;
                Ok(outcome)
            })
            .await
    }

    /// Disable `key` when every attempt has failed for `disable_after_ms` or more;
    /// true when this call disabled it.
    pub async fn disable_if_failing(
        &self,
        key: &str,
        now_ms: i64,
        disable_after_ms: i64,
    ) -> Result<bool, DeliveryError> {
        let key = key.to_owned();
        self.db
            .write(move |tx| -> Result<bool, DeliveryError> {
                let n = tx.exec(
                    "UPDATE delivery_endpoints SET disabled_ms = ?2
                     WHERE endpoint = ?1 AND disabled_ms IS NULL
                       AND failing_since_ms IS NOT NULL AND failing_since_ms <= ?2 - ?3",
                    params![key, now_ms, disable_after_ms],
                )?;
                Ok(n == 1)
            })
            .await
    }

    /// Every endpoint's health (of `tenant`, or all), by tenant and URL.
    pub async fn health(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<EndpointHealth>, DeliveryError> {
        let tenant = tenant.map(|t| t.as_str().to_owned());
        self.db
            .call(move |c| -> Result<Vec<EndpointHealth>, DeliveryError> {
                let mut stmt = c.prepare_cached(
                    "SELECT e.endpoint, e.tenant, e.url, e.last_success_ms, e.failing_since_ms,
                       e.last_error, e.disabled_ms,
                       (SELECT count(*) FROM deliveries d WHERE d.endpoint = e.endpoint AND d.state = 'pending'),
                       (SELECT count(*) FROM deliveries d WHERE d.endpoint = e.endpoint AND d.state = 'dead'),
                       (SELECT count(*) FROM deliveries d WHERE d.endpoint = e.endpoint AND d.state = 'delivered')
                     FROM delivery_endpoints e
                     WHERE ?1 IS NULL OR e.tenant = ?1
                     ORDER BY e.tenant, e.url",
                )?;
                let rows = stmt
                    .query_map([tenant], |r| {
                        Ok(EndpointHealth {
                            key: r.get(0)?,
                            tenant: r.get(1)?,
                            url: r.get(2)?,
                            last_success_ms: r.get(3)?,
                            failing_since_ms: r.get(4)?,
                            last_error: r.get(5)?,
                            disabled_ms: r.get(6)?,
                            pending: count(r.get(7)?),
                            dead: count(r.get(8)?),
                            delivered: count(r.get(9)?),
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }

    /// Whether `key` is disabled, and since when its attempts have all failed.
    pub async fn status(&self, key: &str) -> Result<(bool, Option<i64>), DeliveryError> {
        let key = key.to_owned();
        self.db
            .call(move |c| -> Result<(bool, Option<i64>), DeliveryError> {
                let row: Option<(Option<i64>, Option<i64>)> = c
                    .row(
                        "SELECT disabled_ms, failing_since_ms FROM delivery_endpoints WHERE endpoint = ?1",
                        [key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                Ok(row.map_or((false, None), |(d, f)| (d.is_some(), f)))
            })
            .await
    }

    /// Queue again `tenant`'s events logged with a timestamp at or after `since_ms`
    /// for its endpoints (only the one at `url` when given): every delivery, or only
    /// the dead ones with `only_dead`; an event the endpoint never had a delivery of
    /// (older than the endpoint) gets one, unless `only_dead`. The endpoints' type
    /// filters apply. The endpoints are enabled again.
    pub async fn replay(
        &self,
        log: &dyn EventLog,
        tenant: &TenantId,
        since_ms: i64,
        url: Option<&str>,
        only_dead: bool,
        now_ms: i64,
    ) -> Result<Vec<Replayed>, DeliveryError> {
        let endpoints: Vec<EndpointConfigRow> = {
            let (tenant, url) = (tenant.as_str().to_owned(), url.map(str::to_owned));
            self.db
                .call(move |c| -> Result<Vec<EndpointConfigRow>, DeliveryError> {
                    let mut stmt = c.prepare_cached(
                        "SELECT endpoint, url, types FROM delivery_endpoints
                         WHERE tenant = ?1 AND (?2 IS NULL OR url = ?2) ORDER BY url",
                    )?;
                    let rows = stmt
                        .query_map(params![tenant, url], |r| {
                            let types: Option<String> = r.get(2)?;
                            Ok(EndpointConfigRow {
                                key: r.get(0)?,
                                url: r.get(1)?,
                                types: types_from_json(types.as_deref()),
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(rows)
                })
                .await?
        };
        if endpoints.is_empty() {
            return Err(DeliveryError::NoEndpoint(match url {
                Some(u) => format!(
                    "tenant {tenant} has no endpoint {u} (wa dev registers the endpoints of its wa.toml)"
                ),
                None => format!(
                    "tenant {tenant} has no endpoint (wa dev registers the endpoints of its wa.toml)"
                ),
            }));
        }
        let mut counts = vec![0u64; endpoints.len()];
        let mut after: Option<String> = None;
        loop {
            let page = log.list(tenant, after.as_deref(), MAX_EVENT_PAGE).await?;
            let mut rows = Vec::new();
            for logged in &page.events {
                let e = &logged.event;
                let at = event_millis(e);
                if at < since_ms {
                    continue;
                }
                for (i, ep) in endpoints.iter().enumerate() {
                    if ep.types.as_ref().is_none_or(|t| t.contains(&e.event_type)) {
                        rows.push((
                            i,
                            e.id.clone(),
                            e.event_type.as_str(),
                            at,
                            serde_json::to_string(e)?,
                        ));
                    }
                }
            }
            if !rows.is_empty() {
                let keys: Vec<String> = endpoints.iter().map(|e| e.key.clone()).collect();
                let changed = self
                    .db
                    .write(move |tx| -> Result<Vec<(usize, u64)>, DeliveryError> {
                        let mut out = Vec::new();
                        for (i, id, t, at, body) in &rows {
                            let n = if only_dead {
                                tx.exec(
                                    "UPDATE deliveries SET state = 'pending', attempts = 0, next_at_ms = ?3,
                                       last_status = NULL, last_error = NULL, done_ms = NULL
                                     WHERE endpoint = ?1 AND event_id = ?2 AND state = 'dead'",
                                    params![keys[*i], id, now_ms],
                                )?
                            } else {
                                tx.exec(
                                    "INSERT INTO deliveries
                                       (endpoint, event_id, event_type, event_ms, body, state, attempts, next_at_ms, queued_ms)
                                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)
                                     ON CONFLICT (endpoint, event_id) DO UPDATE SET state = 'pending',
                                       attempts = 0, next_at_ms = ?6, last_status = NULL,
                                       last_error = NULL, done_ms = NULL",
                                    params![keys[*i], id, t, at, body, now_ms],
                                )?
                            };
                            out.push((*i, n as u64));
                        }
                        Ok(out)
                    })
                    .await?;
                for (i, n) in changed {
                    counts[i] += n;
                }
            }
            match page.events.last() {
                Some(last) if page.more => after = Some(last.position.clone()),
                _ => break,
            }
        }
        let keys: Vec<String> = endpoints.iter().map(|e| e.key.clone()).collect();
        self.db
            .write(move |tx| -> Result<(), DeliveryError> {
                for key in &keys {
                    tx.exec(
                        "UPDATE delivery_endpoints SET disabled_ms = NULL, failing_since_ms = NULL
                         WHERE endpoint = ?1",
                        [key],
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(endpoints
            .into_iter()
            .zip(counts)
            .map(|(e, requeued)| Replayed {
                url: e.url,
                requeued,
            })
            .collect())
    }

    /// The rows of `tenant`'s endpoint at `url` by state (tests and tools):
    /// `(event_id, state, attempts)`, in fan-out order.
    pub async fn deliveries(
        &self,
        tenant: &TenantId,
        url: &str,
    ) -> Result<Vec<(String, String, u32)>, DeliveryError> {
        let key = endpoint_key(tenant, url);
        self.db
            .call(move |c| -> Result<Vec<(String, String, u32)>, DeliveryError> {
                let mut stmt = c.prepare_cached(
                    "SELECT event_id, state, attempts FROM deliveries WHERE endpoint = ?1 ORDER BY id",
                )?;
                let rows = stmt
                    .query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }
}

/// A SQLite count (never negative) as `u64`.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

struct EndpointConfigRow {
    key: String,
    url: String,
    types: Option<BTreeSet<EventType>>,
}
