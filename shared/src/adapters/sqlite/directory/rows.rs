//! Tables of the embedded directory and the statements that need more than one line.
//!
//! The tables mirror the DynamoDB items (docs/data-model.md): one routing table for
//! API keys, phone numbers and WABAs, profiles and templates as JSON text with the
//! fields webhooks change in their own columns, contacts with one column per fact.

use super::super::{Migration, SqliteError};
use crate::adapters::sqlite::CachedSql;
use rusqlite::{OptionalExtension, Transaction, params};

/// Schema of the embedded directory.
pub(super) static MIGRATIONS: &[Migration] = &[
    Migration {
        id: "directory/0001_tables",
        sql: "
        CREATE TABLE directory_tenants (
            tenant TEXT PRIMARY KEY,
            profile TEXT NOT NULL
        ) STRICT;
        CREATE TABLE directory_routes (
            kind TEXT NOT NULL CHECK (kind IN ('apikey', 'phone', 'waba')),
            key TEXT NOT NULL,
            tenant TEXT NOT NULL,
            PRIMARY KEY (kind, key)
        ) STRICT;
        CREATE TABLE directory_templates (
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            language TEXT NOT NULL,
            template TEXT NOT NULL,
            status TEXT,
            quality TEXT,
            updated_at_ms INTEGER NOT NULL,
            PRIMARY KEY (tenant, name, language)
        ) STRICT;
        CREATE TABLE directory_contacts (
            tenant TEXT NOT NULL,
            phone TEXT NOT NULL,
            last_inbound_at_ms INTEGER,
            opted_out INTEGER NOT NULL DEFAULT 0,
            opt_changed_at_ms INTEGER,
            PRIMARY KEY (tenant, phone)
        ) STRICT;
    ",
    },
    // Meta's event time of the stored status and quality: a webhook applies only when
    // newer (a stale PAUSED replayed from the inbox must not re-pause a template).
    Migration {
        id: "directory/0002_template_event_times",
        sql: "
        ALTER TABLE directory_templates ADD COLUMN status_at_ms INTEGER;
        ALTER TABLE directory_templates ADD COLUMN quality_at_ms INTEGER;
    ",
    },
    // A completed category change from Meta, over the category of the stored JSON
    // until the next sync.
    Migration {
        id: "directory/0003_template_category",
        sql: "
        ALTER TABLE directory_templates ADD COLUMN category TEXT;
        ALTER TABLE directory_templates ADD COLUMN category_at_ms INTEGER;
    ",
    },
    // A contact's marketing preference (Meta's user_preferences, or a 131050).
    Migration {
        id: "directory/0004_contact_marketing",
        sql: "
        ALTER TABLE directory_contacts ADD COLUMN marketing_opted_out INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE directory_contacts ADD COLUMN marketing_changed_at_ms INTEGER;
    ",
    },
    // Meta's per-user marketing limit (131049): the contact's marketing waits until then.
    Migration {
        id: "directory/0005_contact_marketing_limit",
        sql: "
        ALTER TABLE directory_contacts ADD COLUMN marketing_limited_until_ms INTEGER;
    ",
    },
    // Several tenants may share a WABA: its routing is one row per (WABA, tenant),
    // moved out of the single-valued routing table.
    Migration {
        id: "directory/0006_waba_tenants",
        sql: "
        CREATE TABLE directory_waba_tenants (
            waba TEXT NOT NULL,
            tenant TEXT NOT NULL,
            PRIMARY KEY (waba, tenant)
        ) STRICT;
        INSERT INTO directory_waba_tenants (waba, tenant)
            SELECT key, tenant FROM directory_routes WHERE kind = 'waba';
        DELETE FROM directory_routes WHERE kind = 'waba';
    ",
    },
    // API keys can be listed per tenant and revoked: when each was added, where it
    // came from (`wa.toml`, `wa tenants add`, a label), and an index by tenant.
    Migration {
        id: "directory/0007_api_key_entries",
        sql: "
        ALTER TABLE directory_routes ADD COLUMN added_at_ms INTEGER;
        ALTER TABLE directory_routes ADD COLUMN label TEXT;
        CREATE INDEX directory_routes_by_tenant ON directory_routes (kind, tenant);
    ",
    },
];

/// Kinds of routing rows.
pub(super) const API_KEY: &str = "apikey";
pub(super) const PHONE: &str = "phone";

/// The tenants on a WABA, sorted.
pub(super) fn waba_tenants(
    conn: &rusqlite::Connection,
    waba: &str,
) -> Result<Vec<String>, SqliteError> {
    let mut stmt = conn.prepare_cached(
        "SELECT tenant FROM directory_waba_tenants WHERE waba = ?1 ORDER BY tenant",
    )?;
    let tenants = stmt
        .query_map(params![waba], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(tenants)
}

/// Move `tenant` from WABA `previous` (if any) to `waba`.
pub(super) fn set_waba_tenant(
    tx: &Transaction<'_>,
    previous: Option<&str>,
    waba: &str,
    tenant: &str,
) -> Result<(), SqliteError> {
    if let Some(previous) = previous {
        tx.exec(
            "DELETE FROM directory_waba_tenants WHERE waba = ?1 AND tenant = ?2",
            params![previous, tenant],
        )?;
    }
    tx.exec(
        "INSERT INTO directory_waba_tenants (waba, tenant) VALUES (?1, ?2)
         ON CONFLICT (waba, tenant) DO NOTHING",
        params![waba, tenant],
    )?;
    Ok(())
}

/// A template row as stored: JSON text, status, quality, updated_at.
pub(super) type TemplateRow = (String, Option<String>, Option<String>, i64, Option<String>);

/// A contact row: last inbound, opted out, opt change time.
pub(super) type ContactRow = (
    Option<i64>,
    bool,
    Option<i64>,
    bool,
    Option<i64>,
    Option<i64>,
);

pub(super) fn route(
    conn: &rusqlite::Connection,
    kind: &'static str,
    key: &str,
) -> Result<Option<String>, SqliteError> {
    Ok(conn
        .row(
            "SELECT tenant FROM directory_routes WHERE kind = ?1 AND key = ?2",
            params![kind, key],
            |r| r.get(0),
        )
        .optional()?)
}

pub(super) fn set_route(
    tx: &Transaction<'_>,
    kind: &'static str,
    key: &str,
    tenant: &str,
) -> Result<(), SqliteError> {
    tx.exec(
        "INSERT INTO directory_routes (kind, key, tenant) VALUES (?1, ?2, ?3)
         ON CONFLICT (kind, key) DO UPDATE SET tenant = excluded.tenant",
        params![kind, key, tenant],
    )?;
    Ok(())
}

/// A stored API key: hash, added at (ms), label.
pub(super) type ApiKeyRow = (String, Option<i64>, Option<String>);

/// Map API key `hash` to `tenant` unless it is another tenant's; the owner when it
/// is. A key the tenant already has keeps its time and label (filled when missing).
pub(super) fn add_api_key(
    tx: &Transaction<'_>,
    tenant: &str,
    (hash, added_at_ms, label): &ApiKeyRow,
) -> Result<Option<String>, SqliteError> {
    tx.exec(
        "INSERT INTO directory_routes (kind, key, tenant, added_at_ms, label)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (kind, key) DO UPDATE SET
             added_at_ms = COALESCE(added_at_ms, excluded.added_at_ms),
             label = COALESCE(label, excluded.label)
         WHERE tenant = excluded.tenant",
        params![API_KEY, hash, tenant, added_at_ms, label],
    )?;
    let owner = route(tx, API_KEY, hash)?;
    Ok(owner.filter(|owner| owner != tenant))
}

/// A tenant's API keys, oldest first.
pub(super) fn api_key_rows(
    conn: &rusqlite::Connection,
    tenant: &str,
) -> Result<Vec<ApiKeyRow>, SqliteError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, added_at_ms, label FROM directory_routes
         WHERE kind = ?1 AND tenant = ?2 ORDER BY added_at_ms, key",
    )?;
    let rows = stmt
        .query_map(params![API_KEY, tenant], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Remove a routing row only while it still points at `tenant` (another tenant may own it now).
/// Whether it removed one.
pub(super) fn delete_route_of(
    tx: &Transaction<'_>,
    kind: &'static str,
    key: &str,
    tenant: &str,
) -> Result<bool, SqliteError> {
    let deleted = tx.exec(
        "DELETE FROM directory_routes WHERE kind = ?1 AND key = ?2 AND tenant = ?3",
        params![kind, key, tenant],
    )?;
    Ok(deleted > 0)
}

pub(super) fn profile_json(
    conn: &rusqlite::Connection,
    tenant: &str,
) -> Result<Option<String>, SqliteError> {
    Ok(conn
        .row(
            "SELECT profile FROM directory_tenants WHERE tenant = ?1",
            [tenant],
            |r| r.get(0),
        )
        .optional()?)
}

pub(super) fn template_rows(
    conn: &rusqlite::Connection,
    tenant: &str,
    name: &str,
    language: Option<&str>,
) -> Result<Vec<TemplateRow>, SqliteError> {
    let mut stmt = conn.prepare_cached(
        "SELECT template, status, quality, updated_at_ms, category FROM directory_templates
         WHERE tenant = ?1 AND name = ?2 AND (?3 IS NULL OR language = ?3)
         ORDER BY language",
    )?;
    let rows = stmt
        .query_map(params![tenant, name, language], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn contact_row(
    conn: &rusqlite::Connection,
    tenant: &str,
    phone: &str,
) -> Result<Option<ContactRow>, SqliteError> {
    Ok(conn
        .row(
            "SELECT last_inbound_at_ms, opted_out, opt_changed_at_ms, marketing_opted_out,
                    marketing_changed_at_ms, marketing_limited_until_ms
             FROM directory_contacts WHERE tenant = ?1 AND phone = ?2",
            params![tenant, phone],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?)
}
