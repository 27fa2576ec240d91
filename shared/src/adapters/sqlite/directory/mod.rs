//! `SqliteDirectory`: the [`Directory`] port on tables of the embedded SQLite file.
//!
//! Same semantics as the DynamoDB adapter: `put_tenant` writes the profile and its
//! routing rows in one transaction; template status and quality live in their own
//! columns and override the JSON's `status` on read; contact facts move forward only,
//! each guarded by its own timestamp inside one upsert statement, so concurrent
//! writers end at the latest value.

mod rows;

use super::{SqliteDb, SqliteError};
use crate::adapters::sqlite::CachedSql;
use crate::domain::template::{Template, TemplateCategory, TemplateStatus};
use crate::domain::tenant::{ApiKeyEntry, ApiKeyHash, Contact, TenantHold, TenantProfile};
use crate::domain::{PhoneNumber, PhoneNumberId, TenantId, Timestamp};
use crate::ports::{Directory, DirectoryError, StoredTemplate};
use async_trait::async_trait;
use rows::{
    API_KEY, MIGRATIONS, PHONE, TemplateRow, add_api_key, api_key_rows, contact_row,
    delete_route_of, profile_json, route, set_route, set_waba_tenant, template_rows, waba_tenants,
};
use rusqlite::params;

/// The embedded [`Directory`].
#[derive(Debug, Clone)]
pub struct SqliteDirectory {
    db: SqliteDb,
}

impl SqliteDirectory {
    /// Write one of a template's webhook-fed fields (status, category, quality) when
    /// `at` is not older than that field's stored time. `false`: unknown or stale.
    async fn update_template_field(
        &self,
        operation: &'static str,
        field: TemplateField,
        (tenant, name, language): (&TenantId, &str, &str),
        value: &str,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        let changed = self
            .execute(
                operation,
                field.update_sql(),
                vec![
                    text(tenant.as_str()),
                    text(name),
                    text(language),
                    text(value),
                    millis(at),
                ],
            )
            .await?;
        Ok(changed > 0)
    }

    /// The directory on `db`, creating its tables if needed.
    pub async fn new(db: SqliteDb) -> Result<Self, DirectoryError> {
        db.migrate(MIGRATIONS)
            .await
            .map_err(|e| backend("migrate", e))?;
        Ok(Self { db })
    }

    async fn route(
        &self,
        kind: &'static str,
        key: String,
    ) -> Result<Option<TenantId>, DirectoryError> {
        let tenant = self
            .db
            .call(move |conn| route(conn, kind, &key))
            .await
            .map_err(|e| backend("route", e))?;
        tenant
            .map(|t| TenantId::parse(&t).map_err(|e| corrupt(format!("route {kind}"), e)))
            .transpose()
    }

    async fn templates(
        &self,
        tenant: &TenantId,
        name: &str,
        language: Option<&str>,
    ) -> Result<Vec<StoredTemplate>, DirectoryError> {
        let (t, n, l) = (
            tenant.as_str().to_owned(),
            name.to_owned(),
            language.map(str::to_owned),
        );
        let rows = self
            .db
            .call(move |conn| template_rows(conn, &t, &n, l.as_deref()))
            .await
            .map_err(|e| backend("template", e))?;
        rows.into_iter()
            .map(|row| stored_template(tenant, row))
            .collect()
    }

    /// Run one write statement; the number of rows it changed.
    async fn execute(
        &self,
        operation: &'static str,
        sql: &'static str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<usize, DirectoryError> {
        self.db
            .write(move |tx| -> Result<usize, SqliteError> {
                Ok(tx.exec(sql, rusqlite::params_from_iter(values))?)
            })
            .await
            .map_err(|e| backend(operation, e))
    }
}

/// A template field fed by Meta's webhooks, with its own event time.
#[derive(Debug, Clone, Copy)]
enum TemplateField {
    Status,
    Category,
    Quality,
}

impl TemplateField {
    /// The conditional update: only when not older than the field's stored time.
    const fn update_sql(self) -> &'static str {
        match self {
            TemplateField::Status => {
                "UPDATE directory_templates SET status = ?4, updated_at_ms = ?5, status_at_ms = ?5
                 WHERE tenant = ?1 AND name = ?2 AND language = ?3
                   AND (status_at_ms IS NULL OR status_at_ms <= ?5)"
            }
            TemplateField::Category => {
                "UPDATE directory_templates SET category = ?4, updated_at_ms = ?5, category_at_ms = ?5
                 WHERE tenant = ?1 AND name = ?2 AND language = ?3
                   AND (category_at_ms IS NULL OR category_at_ms <= ?5)"
            }
            TemplateField::Quality => {
                "UPDATE directory_templates SET quality = ?4, updated_at_ms = ?5, quality_at_ms = ?5
                 WHERE tenant = ?1 AND name = ?2 AND language = ?3
                   AND (quality_at_ms IS NULL OR quality_at_ms <= ?5)"
            }
        }
    }
}

fn stored_template(tenant: &TenantId, row: TemplateRow) -> Result<StoredTemplate, DirectoryError> {
    let (json, status, quality, updated_at, category) = row;
    let mut template: Template =
        serde_json::from_str(&json).map_err(|e| corrupt(format!("template of {tenant}"), e))?;
    template.status = status.map(TemplateStatus::from);
    if let Some(category) = category {
        template.category = Some(TemplateCategory::from(category));
    }
    Ok(StoredTemplate {
        template,
        quality,
        updated_at: Timestamp::from_millis(updated_at),
    })
}

fn backend(operation: &'static str, source: SqliteError) -> DirectoryError {
    DirectoryError::Backend {
        operation,
        source: Box::new(source),
    }
}

fn corrupt(key: String, source: impl std::error::Error + Send + Sync + 'static) -> DirectoryError {
    DirectoryError::Corrupt {
        key,
        source: Box::new(source),
    }
}

fn text(s: &str) -> rusqlite::types::Value {
    rusqlite::types::Value::Text(s.to_owned())
}

fn millis(at: Timestamp) -> rusqlite::types::Value {
    rusqlite::types::Value::Integer(at.as_millis())
}

#[async_trait]
impl Directory for SqliteDirectory {
    async fn tenant_by_api_key(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<TenantId>, DirectoryError> {
        self.route(API_KEY, hash.as_str().to_owned()).await
    }

    async fn tenant_by_phone_number_id(
        &self,
        id: &PhoneNumberId,
    ) -> Result<Option<TenantId>, DirectoryError> {
        self.route(PHONE, id.as_str().to_owned()).await
    }

    async fn tenants_by_waba_id(&self, waba_id: &str) -> Result<Vec<TenantId>, DirectoryError> {
        let waba = waba_id.to_owned();
        let tenants = self
            .db
            .call(move |conn| waba_tenants(conn, &waba))
            .await
            .map_err(|e| backend("tenants_by_waba_id", e))?;
        tenants
            .iter()
            .map(|t| TenantId::parse(t).map_err(|e| corrupt(format!("WABA route {waba_id}"), e)))
            .collect()
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantProfile>, DirectoryError> {
        let tenant = id.as_str().to_owned();
        let json = self
            .db
            .call(move |conn| profile_json(conn, &tenant))
            .await
            .map_err(|e| backend("tenant", e))?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| corrupt(format!("profile of {id}"), e)))
            .transpose()
    }

    /// Every profile, sorted by tenant id.
    async fn list_tenants(&self) -> Result<Vec<TenantProfile>, DirectoryError> {
        let rows = self
            .db
            .call(|conn| -> Result<Vec<(String, String)>, SqliteError> {
                let mut stmt = conn.prepare_cached(
                    "SELECT tenant, profile FROM directory_tenants ORDER BY tenant",
                )?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(|e| backend("list_tenants", e))?;
        rows.into_iter()
            .map(|(tenant, json)| {
                serde_json::from_str(&json).map_err(|e| corrupt(format!("profile of {tenant}"), e))
            })
            .collect()
    }

    async fn put_tenant(&self, profile: &TenantProfile) -> Result<(), DirectoryError> {
        let json = serde_json::to_string(profile)
            .map_err(|e| corrupt(format!("profile of {}", profile.id), e))?;
        let profile = profile.clone();
        self.db
            .write(move |tx| -> Result<(), SqliteError> {
                let tenant = profile.id.as_str();
                // The routing the replaced profile had goes away with it (unless another
                // tenant took those ids since), all in this one transaction. A previous
                // profile that no longer decodes is simply replaced: its routing rows
                // cannot be known, and refusing the put would leave it broken for good.
                let previous = profile_json(tx, tenant)?
                    .and_then(|j| serde_json::from_str::<TenantProfile>(&j).ok());
                if let Some(previous) = &previous {
                    for number in previous.phone_number_ids() {
                        delete_route_of(tx, PHONE, number.as_str(), tenant)?;
                    }
                }
                for number in profile.phone_number_ids() {
                    set_route(tx, PHONE, number.as_str(), tenant)?;
                }
                let previous_waba = previous.as_ref().map(|p| p.waba_id.as_str());
                set_waba_tenant(tx, previous_waba, &profile.waba_id, tenant)?;
                tx.exec(
                    "INSERT INTO directory_tenants (tenant, profile) VALUES (?1, ?2)
                     ON CONFLICT (tenant) DO UPDATE SET profile = excluded.profile",
                    params![tenant, json],
                )?;
                Ok(())
            })
            .await
            .map_err(|e| backend("put_tenant", e))
    }

    async fn add_api_key(
        &self,
        tenant: &TenantId,
        entry: &ApiKeyEntry,
    ) -> Result<(), DirectoryError> {
        let row = (
            entry.hash.as_str().to_owned(),
            entry.added_at.map(Timestamp::as_millis),
            entry.label.clone(),
        );
        let owner = tenant.as_str().to_owned();
        let foreign = self
            .db
            .write(move |tx| add_api_key(tx, &owner, &row))
            .await
            .map_err(|e| backend("add_api_key", e))?;
        match foreign {
            None => Ok(()),
            Some(owner) => Err(DirectoryError::ApiKeyTaken {
                owner: TenantId::parse(&owner)
                    .map_err(|e| corrupt(format!("route {API_KEY}"), e))?,
            }),
        }
    }

    async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyEntry>, DirectoryError> {
        let owner = tenant.as_str().to_owned();
        let rows = self
            .db
            .call(move |conn| api_key_rows(conn, &owner))
            .await
            .map_err(|e| backend("api_keys", e))?;
        rows.into_iter()
            .map(|(hash, added_at, label)| {
                Ok(ApiKeyEntry {
                    hash: ApiKeyHash::parse(&hash)
                        .map_err(|e| corrupt(format!("API key of {tenant}"), e))?,
                    added_at: added_at.map(Timestamp::from_millis),
                    label,
                })
            })
            .collect()
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        hash: &ApiKeyHash,
    ) -> Result<bool, DirectoryError> {
        let (hash, owner) = (hash.as_str().to_owned(), tenant.as_str().to_owned());
        self.db
            .write(move |tx| delete_route_of(tx, API_KEY, &hash, &owner))
            .await
            .map_err(|e| backend("revoke_api_key", e))
    }

    async fn template(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>, DirectoryError> {
        Ok(self
            .templates(tenant, name, Some(language))
            .await?
            .into_iter()
            .next())
    }

    async fn templates_named(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Vec<StoredTemplate>, DirectoryError> {
        self.templates(tenant, name, None).await
    }

    /// An upsert of the JSON and status that keeps the last reported quality.
    async fn put_template(
        &self,
        tenant: &TenantId,
        template: &Template,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        let without_status = Template {
            status: None,
            ..template.clone()
        };
        let json = serde_json::to_string(&without_status)
            .map_err(|e| corrupt(format!("template {}", template.name), e))?;
        let status = template
            .status
            .as_ref()
            .map_or(rusqlite::types::Value::Null, |s| text(s.as_str()));
        self.execute(
            "put_template",
            "INSERT INTO directory_templates
                 (tenant, name, language, template, status, updated_at_ms, status_at_ms,
                  category, category_at_ms)
             -- status_at: the sync's whole second, as Meta's webhook times are seconds
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6 - (?6 % 1000), NULL, ?6 - (?6 % 1000))
             ON CONFLICT (tenant, name, language) DO UPDATE SET
                 template = excluded.template,
                 status = excluded.status,
                 updated_at_ms = excluded.updated_at_ms,
                 status_at_ms = excluded.status_at_ms,
                 category = NULL,
                 category_at_ms = excluded.category_at_ms",
            vec![
                text(tenant.as_str()),
                text(&template.name),
                text(&template.language),
                rusqlite::types::Value::Text(json),
                status,
                millis(at),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn update_template_status(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        status: &TemplateStatus,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        self.update_template_field(
            "update_template_status",
            TemplateField::Status,
            (tenant, name, language),
            status.as_str(),
            at,
        )
        .await
    }

    async fn update_template_category(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        category: &TemplateCategory,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        self.update_template_field(
            "update_template_category",
            TemplateField::Category,
            (tenant, name, language),
            category.as_str(),
            at,
        )
        .await
    }

    async fn update_template_quality(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        quality: &str,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        self.update_template_field(
            "update_template_quality",
            TemplateField::Quality,
            (tenant, name, language),
            quality,
            at,
        )
        .await
    }

    async fn contact(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
    ) -> Result<Contact, DirectoryError> {
        let (t, p) = (tenant.as_str().to_owned(), who.as_str().to_owned());
        let row = self
            .db
            .call(move |conn| contact_row(conn, &t, &p))
            .await
            .map_err(|e| backend("contact", e))?;
        Ok(row.map_or_else(
            Contact::default,
            |(last, opted_out, changed, marketing_opted_out, marketing_changed, limited)| Contact {
                last_inbound_at: last.map(Timestamp::from_millis),
                opted_out,
                opt_changed_at: changed.map(Timestamp::from_millis),
                marketing_opted_out,
                marketing_changed_at: marketing_changed.map(Timestamp::from_millis),
                marketing_limited_until: limited.map(Timestamp::from_millis),
            },
        ))
    }

    async fn record_inbound(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        // Only a later inbound moves the window; an older one changes nothing.
        self.execute(
            "record_inbound",
            "INSERT INTO directory_contacts (tenant, phone, last_inbound_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant, phone) DO UPDATE SET last_inbound_at_ms = excluded.last_inbound_at_ms
             WHERE last_inbound_at_ms IS NULL OR last_inbound_at_ms < excluded.last_inbound_at_ms",
            vec![text(tenant.as_str()), text(who.as_str()), millis(at)],
        )
        .await
        .map(|_| ())
    }

    async fn set_marketing_opt_out(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        opted_out: bool,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        // As set_opt_out: an older change never wins, a stop wins a tie.
        self.execute(
            "set_marketing_opt_out",
            "INSERT INTO directory_contacts
                 (tenant, phone, opted_out, marketing_opted_out, marketing_changed_at_ms)
             VALUES (?1, ?2, 0, ?4, ?3)
             ON CONFLICT (tenant, phone) DO UPDATE SET
                 marketing_opted_out = excluded.marketing_opted_out,
                 marketing_changed_at_ms = excluded.marketing_changed_at_ms
             WHERE marketing_changed_at_ms IS NULL
                OR marketing_changed_at_ms < excluded.marketing_changed_at_ms
                OR (marketing_changed_at_ms = excluded.marketing_changed_at_ms
                    AND excluded.marketing_opted_out = 1)",
            vec![
                text(tenant.as_str()),
                text(who.as_str()),
                millis(at),
                rusqlite::types::Value::Integer(i64::from(opted_out)),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn set_marketing_limit(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        until: Timestamp,
    ) -> Result<(), DirectoryError> {
        // Never moves a later hold back.
        self.execute(
            "set_marketing_limit",
            "INSERT INTO directory_contacts (tenant, phone, opted_out, marketing_limited_until_ms)
             VALUES (?1, ?2, 0, ?3)
             ON CONFLICT (tenant, phone) DO UPDATE SET
                 marketing_limited_until_ms = excluded.marketing_limited_until_ms
             WHERE marketing_limited_until_ms IS NULL
                OR marketing_limited_until_ms < excluded.marketing_limited_until_ms",
            vec![text(tenant.as_str()), text(who.as_str()), millis(until)],
        )
        .await
        .map(|_| ())
    }

    async fn set_account_signal(
        &self,
        tenant: &TenantId,
        signal: crate::ports::AccountSignal,
        value: &str,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        let sql = match signal {
            crate::ports::AccountSignal::PhoneQuality => {
                "UPDATE directory_tenants
                 SET profile = json_set(profile, '$.phone_quality', ?2, '$.phone_quality_at', ?3)
                 WHERE tenant = ?1 AND (json_extract(profile, '$.phone_quality_at') IS NULL
                     OR json_extract(profile, '$.phone_quality_at') <= ?3)"
            }
            crate::ports::AccountSignal::AccountEvent => {
                "UPDATE directory_tenants
                 SET profile = json_set(profile, '$.account_event', ?2, '$.account_event_at', ?3)
                 WHERE tenant = ?1 AND (json_extract(profile, '$.account_event_at') IS NULL
                     OR json_extract(profile, '$.account_event_at') <= ?3)"
            }
        };
        self.execute(
            "set_account_signal",
            sql,
            vec![text(tenant.as_str()), text(value), millis(at)],
        )
        .await
        .map(|n| n == 1)
    }

    async fn set_tenant_status(
        &self,
        tenant: &TenantId,
        status: crate::domain::tenant::TenantStatus,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        let status = match status {
            crate::domain::tenant::TenantStatus::Active => "active",
            crate::domain::tenant::TenantStatus::Suspended => "suspended",
        };
        self.execute(
            "set_tenant_status",
            "UPDATE directory_tenants
             SET profile = json_set(profile, '$.status', ?2, '$.updated_at', ?3)
             WHERE tenant = ?1",
            vec![text(tenant.as_str()), text(status), millis(at)],
        )
        .await
        .map(|n| n == 1)
    }

    // Holds are partial writes of the profile's JSON: nothing else of it changes.
    async fn place_hold(
        &self,
        tenant: &TenantId,
        hold: &TenantHold,
    ) -> Result<bool, DirectoryError> {
        let json =
            serde_json::to_string(hold).map_err(|e| corrupt(format!("hold of {tenant}"), e))?;
        self.execute(
            "place_hold",
            "UPDATE directory_tenants SET profile = json_set(profile, '$.hold', json(?2))
             WHERE tenant = ?1 AND json_type(profile, '$.hold') IS NULL",
            vec![text(tenant.as_str()), text(&json)],
        )
        .await
        .map(|n| n == 1)
    }

    async fn claim_hold_probe(
        &self,
        tenant: &TenantId,
        seen: Timestamp,
        next: Timestamp,
    ) -> Result<bool, DirectoryError> {
        self.execute(
            "claim_hold_probe",
            "UPDATE directory_tenants SET profile = json_set(profile, '$.hold.probe_at', ?3)
             WHERE tenant = ?1 AND json_extract(profile, '$.hold.probe_at') = ?2",
            vec![text(tenant.as_str()), millis(seen), millis(next)],
        )
        .await
        .map(|n| n == 1)
    }

    async fn release_hold(&self, tenant: &TenantId) -> Result<bool, DirectoryError> {
        self.execute(
            "release_hold",
            "UPDATE directory_tenants SET profile = json_remove(profile, '$.hold')
             WHERE tenant = ?1 AND json_type(profile, '$.hold') IS NOT NULL",
            vec![text(tenant.as_str())],
        )
        .await
        .map(|n| n == 1)
    }

    async fn set_opt_out(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        opted_out: bool,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        // An older change never overwrites a newer one; at the same millisecond an
        // opt-out wins over an opt-in (?4 is 1 for an opt-out).
        self.execute(
            "set_opt_out",
            "INSERT INTO directory_contacts (tenant, phone, opted_out, opt_changed_at_ms)
             VALUES (?1, ?2, ?4, ?3)
             ON CONFLICT (tenant, phone) DO UPDATE SET
                 opted_out = excluded.opted_out,
                 opt_changed_at_ms = excluded.opt_changed_at_ms
             WHERE opt_changed_at_ms IS NULL
                OR opt_changed_at_ms < excluded.opt_changed_at_ms
                OR (opt_changed_at_ms = excluded.opt_changed_at_ms AND excluded.opted_out = 1)",
            vec![
                text(tenant.as_str()),
                text(who.as_str()),
                millis(at),
                rusqlite::types::Value::Integer(i64::from(opted_out)),
            ],
        )
        .await
        .map(|_| ())
    }
}
