//! `DynamoDirectory`: the [`Directory`] port on the single-table `directory` table
//! (docs/data-model.md).
//!
//! - Profiles and routing items are written together by one TransactWriteItems
//!   ([`tenants`]).
//! - A template item keeps Meta's JSON as a string plus top-level `status` and
//!   `quality` attributes, so a webhook's change is one conditional UpdateItem; the
//!   `status` attribute is merged back into the template on read.
//! - Contacts move forward only: each field is written under a condition on its own
//!   timestamp, and a failed condition means "we already know something newer".
//! - Reads of mutable facts (profiles, templates, contacts) are strongly consistent:
//!   an opt-out or a paused template must be seen by the very next send. Routing
//!   lookups (API key, phone number, WABA) change rarely and read eventually
//!   consistent, at half the cost.
//!
//! Every call is counted for the cost model ([`DynamoDirectory::calls`]).

mod api_keys;
mod items;
mod tenants;

use super::super::aws::{CallCounter, SdkConfig};
use crate::domain::template::{Template, TemplateCategory, TemplateStatus};
use crate::domain::tenant::{ApiKeyEntry, ApiKeyHash, Contact, TenantHold, TenantProfile};
use crate::domain::{PhoneNumber, PhoneNumberId, TenantId, Timestamp};
use crate::ports::{Directory, DirectoryError, StoredTemplate};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use items::{
    Item, Key, PROFILE_SK, RouteItem, TemplateItem, contact_from_item, decode, profile_from_item,
    template_json, template_sk_prefix, tenant_pk, waba_pk,
};
use std::collections::{BTreeMap, HashMap};

/// The DynamoDB [`Directory`] on one table (keys `pk`, `sk`).
#[derive(Debug)]
pub struct DynamoDirectory {
    client: Client,
    table: String,
    calls: CallCounter,
}

impl DynamoDirectory {
    /// A directory on `table`, with a client built from `config` (once per process).
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self::from_client(Client::new(config), table)
    }

    /// A directory on `table` through an existing client.
    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            calls: CallCounter::new(),
        }
    }

    /// Write one of a template's webhook-fed attributes (`status`, `category`,
    /// `quality`) and its event time `<field>_at`. `attribute_exists`: a webhook about a
    /// template we never loaded must not create a half item with no JSON. Only an event
    /// not older than the stored one applies: a stale PAUSED replayed from the inbox
    /// must not re-pause an approved template. `false`: unknown or stale.
    async fn update_template_field(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        field: &str,
        value: &str,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        let field_at = format!("{field}_at");
        let update = Update::new(
            "SET #field = :value, #updated_at = :at, #field_at = :at",
            Some("attribute_exists(pk) AND (attribute_not_exists(#field_at) OR #field_at <= :at)"),
        )
        .alias("#field", field)
        .alias("#field_at", &field_at)
        .name("updated_at")
        .value(":value", AttributeValue::S(value.to_owned()))
        .value(":at", number(at));
        self.update(&Key::template(tenant, name, language), update)
            .await
    }

    /// The table this directory reads and writes.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// DynamoDB calls made so far, by operation name (`GetItem`, `TransactWriteItems`, ...).
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.snapshot()
    }

    async fn get(&self, key: &Key, consistent: bool) -> Result<Option<Item>, DirectoryError> {
        self.calls.record("GetItem");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        Ok(out.item)
    }

    async fn profile(
        &self,
        tenant: &TenantId,
        consistent: bool,
    ) -> Result<Option<TenantProfile>, DirectoryError> {
        self.get(&Key::profile(tenant), consistent)
            .await?
            .map(profile_from_item)
            .transpose()
    }

    async fn route(&self, key: Key) -> Result<Option<TenantId>, DirectoryError> {
        let item = self.get(&key, false).await?;
        Ok(item.map(decode::<RouteItem>).transpose()?.map(|r| r.tenant))
    }

    /// One UpdateItem. `Ok(false)` when its condition failed.
    async fn update(&self, key: &Key, update: Update<'_>) -> Result<bool, DirectoryError> {
        self.calls.record("UpdateItem");
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .update_expression(update.expression)
            .set_expression_attribute_names(Some(update.names))
            // DynamoDB refuses an empty map (a REMOVE needs no values).
            .set_expression_attribute_values((!update.values.is_empty()).then_some(update.values));
        if let Some(condition) = update.condition {
            request = request.condition_expression(condition);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(backend("UpdateItem", err)),
        }
    }

    /// Every item of one partition whose sort key starts with `prefix`, all pages.
    async fn query_prefix(&self, pk: String, prefix: String) -> Result<Vec<Item>, DirectoryError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            self.calls.record("Query");
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

/// An UpdateItem's expressions.
struct Update<'a> {
    expression: &'a str,
    condition: Option<&'a str>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl<'a> Update<'a> {
    fn new(expression: &'a str, condition: Option<&'a str>) -> Self {
        Self {
            expression,
            condition,
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// `#name` stands for `attribute` (placeholders keep reserved words such as `status` safe).
    fn name(mut self, attribute: &str) -> Self {
        self.names
            .insert(format!("#{attribute}"), attribute.to_owned());
        self
    }

    /// `placeholder` (`#...`) stands for `attribute`.
    fn alias(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }
}

/// The time a sync's status counts as of: its whole second, because Meta's webhook
/// times are whole seconds and a status change in the second of a sync must apply.
pub(crate) fn sync_second(at: Timestamp) -> Timestamp {
    Timestamp::from_millis(at.as_millis() - at.as_millis().rem_euclid(1000))
}

fn number(at: Timestamp) -> AttributeValue {
    AttributeValue::N(at.as_millis().to_string())
}

/// A backend failure of `operation`, keeping its cause.
pub(super) fn backend(
    operation: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> DirectoryError {
    DirectoryError::Backend {
        operation,
        source: source.into(),
    }
}

#[async_trait]
impl Directory for DynamoDirectory {
    async fn tenant_by_api_key(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<TenantId>, DirectoryError> {
        self.route(Key::api_key(hash)).await
    }

    async fn tenant_by_phone_number_id(
        &self,
        id: &PhoneNumberId,
    ) -> Result<Option<TenantId>, DirectoryError> {
        self.route(Key::phone(id)).await
    }

    async fn tenants_by_waba_id(&self, waba_id: &str) -> Result<Vec<TenantId>, DirectoryError> {
        let mut tenants = Vec::new();
        let mut start = None;
        loop {
            self.calls.record("Query");
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(waba_pk(waba_id)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query", e))?;
            for item in out.items() {
                tenants.push(decode::<RouteItem>(item.clone())?.tenant);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        tenants.sort();
        tenants.dedup();
        Ok(tenants)
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantProfile>, DirectoryError> {
        self.profile(id, true).await
    }

    /// A Scan of the whole table keeping profile items, sorted by tenant id.
    async fn list_tenants(&self) -> Result<Vec<TenantProfile>, DirectoryError> {
        let mut tenants = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            self.calls.record("Scan");
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :profile")
                .expression_attribute_values(":profile", AttributeValue::S(PROFILE_SK.to_owned()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Scan", e))?;
            for item in out.items.unwrap_or_default() {
                tenants.push(profile_from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        tenants.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(tenants)
    }

    async fn put_tenant(&self, profile: &TenantProfile) -> Result<(), DirectoryError> {
        self.put_tenant_transaction(profile).await
    }

    async fn add_api_key(
        &self,
        tenant: &TenantId,
        entry: &ApiKeyEntry,
    ) -> Result<(), DirectoryError> {
        self.add_api_key_items(tenant, entry).await
    }

    async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyEntry>, DirectoryError> {
        self.api_key_items(tenant).await
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        hash: &ApiKeyHash,
    ) -> Result<bool, DirectoryError> {
        self.revoke_api_key_items(tenant, hash).await
    }

    async fn template(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>, DirectoryError> {
        let item = self
            .get(&Key::template(tenant, name, language), true)
            .await?;
        item.map(|i| decode::<TemplateItem>(i)?.into_stored())
            .transpose()
    }

    async fn templates_named(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Vec<StoredTemplate>, DirectoryError> {
        let items = self
            .query_prefix(tenant_pk(tenant), template_sk_prefix(name))
            .await?;
        let mut templates = Vec::with_capacity(items.len());
        for item in items {
            let stored = decode::<TemplateItem>(item)?.into_stored()?;
            // A malformed name containing '#' could share the prefix: keep exact matches only.
            if stored.template.name == name {
                templates.push(stored);
            }
        }
        Ok(templates)
    }

    /// An upsert of the JSON and status that keeps the last reported quality.
    async fn put_template(
        &self,
        tenant: &TenantId,
        template: &Template,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        let key = Key::template(tenant, &template.name, &template.language);
        let json = AttributeValue::S(template_json(template)?);
        let update = match &template.status {
            Some(status) => Update::new(
                "SET #template = :template, #updated_at = :at, #status = :status, #status_at = :status_at, #category_at = :status_at REMOVE #category",
                None,
            )
            .value(":status", AttributeValue::S(status.as_str().to_owned())),
            None => Update::new(
                "SET #template = :template, #updated_at = :at, #status_at = :status_at, #category_at = :status_at REMOVE #status, #category",
                None,
            ),
        };
        let update = update
            .name("template")
            .name("updated_at")
            .name("status")
            .name("status_at")
            .name("category")
            .name("category_at")
            .value(":template", json)
            .value(":at", number(at))
            .value(":status_at", number(sync_second(at)));
        self.update(&key, update).await.map(|_| ())
    }

    async fn update_template_status(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        status: &TemplateStatus,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        self.update_template_field(tenant, name, language, "status", status.as_str(), at)
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
        self.update_template_field(tenant, name, language, "category", category.as_str(), at)
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
        self.update_template_field(tenant, name, language, "quality", quality, at)
            .await
    }

    async fn contact(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
    ) -> Result<Contact, DirectoryError> {
        let item = self.get(&Key::contact(tenant, who), true).await?;
        item.map_or_else(|| Ok(Contact::default()), contact_from_item)
    }

    async fn record_inbound(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        // Webhooks arrive out of order: only a later inbound moves the window. A failed
        // condition means a newer one is stored already, which is success.
        let update = Update::new(
            "SET #last_inbound_at = :at",
            Some("attribute_not_exists(#last_inbound_at) OR #last_inbound_at < :at"),
        )
        .name("last_inbound_at")
        .value(":at", number(at));
        self.update(&Key::contact(tenant, who), update)
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
        let condition = if opted_out {
            "attribute_not_exists(#marketing_changed_at) OR #marketing_changed_at <= :at"
        } else {
            "attribute_not_exists(#marketing_changed_at) OR #marketing_changed_at < :at"
        };
        let update = Update::new(
            "SET #marketing_opted_out = :opted_out, #marketing_changed_at = :at",
            Some(condition),
        )
        .name("marketing_opted_out")
        .name("marketing_changed_at")
        .value(":opted_out", AttributeValue::Bool(opted_out))
        .value(":at", number(at));
        self.update(&Key::contact(tenant, who), update)
            .await
            .map(|_| ())
    }

    async fn set_marketing_limit(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        until: Timestamp,
    ) -> Result<(), DirectoryError> {
        // Never moves a later hold back (a failed condition is that, not an error).
        let update = Update::new(
            "SET #marketing_limited_until = :until",
            Some("attribute_not_exists(#marketing_limited_until) OR #marketing_limited_until < :until"),
        )
        .name("marketing_limited_until")
        .value(":until", number(until));
        self.update(&Key::contact(tenant, who), update)
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
        let (field, time) = signal.fields();
        let update = Update::new(
            "SET #value = :value, #time = :at",
            Some("attribute_exists(#pk) AND (attribute_not_exists(#time) OR #time <= :at)"),
        )
        .alias("#value", field)
        .alias("#time", time)
        .name("pk")
        .value(":value", AttributeValue::S(value.to_owned()))
        .value(":at", number(at));
        self.update(&Key::profile(tenant), update).await
    }

    async fn set_tenant_status(
        &self,
        tenant: &TenantId,
        status: crate::domain::tenant::TenantStatus,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        let value: AttributeValue =
            serde_dynamo::to_attribute_value(status).map_err(|e| backend("encode_status", e))?;
        let update = Update::new(
            "SET #status = :status, #updated_at = :at",
            Some("attribute_exists(#pk)"),
        )
        .name("status")
        .name("updated_at")
        .name("pk")
        .value(":status", value)
        .value(":at", number(at));
        self.update(&Key::profile(tenant), update).await
    }

    async fn place_hold(
        &self,
        tenant: &TenantId,
        hold: &TenantHold,
    ) -> Result<bool, DirectoryError> {
        let value: AttributeValue =
            serde_dynamo::to_attribute_value(hold).map_err(|e| backend("encode_hold", e))?;
        let update = Update::new(
            "SET #hold = :hold",
            Some("attribute_exists(#pk) AND attribute_not_exists(#hold)"),
        )
        .name("hold")
        .name("pk")
        .value(":hold", value);
        self.update(&Key::profile(tenant), update).await
    }

    async fn claim_hold_probe(
        &self,
        tenant: &TenantId,
        seen: Timestamp,
        next: Timestamp,
    ) -> Result<bool, DirectoryError> {
        let update = Update::new(
            "SET #hold.#probe_at = :next",
            Some("#hold.#probe_at = :seen"),
        )
        .name("hold")
        .name("probe_at")
        .value(":seen", number(seen))
        .value(":next", number(next));
        self.update(&Key::profile(tenant), update).await
    }

    async fn release_hold(&self, tenant: &TenantId) -> Result<bool, DirectoryError> {
        let update = Update::new("REMOVE #hold", Some("attribute_exists(#hold)")).name("hold");
        self.update(&Key::profile(tenant), update).await
    }

    async fn set_opt_out(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        opted_out: bool,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        // An older change never overwrites a newer one. At the very same millisecond
        // an opt-out wins over an opt-in: messaging someone who said STOP is the worse error.
        let condition = if opted_out {
            "attribute_not_exists(#opt_changed_at) OR #opt_changed_at <= :at"
        } else {
            "attribute_not_exists(#opt_changed_at) OR #opt_changed_at < :at"
        };
        let update = Update::new(
            "SET #opted_out = :opted_out, #opt_changed_at = :at",
            Some(condition),
        )
        .name("opted_out")
        .name("opt_changed_at")
        .value(":opted_out", AttributeValue::Bool(opted_out))
        .value(":at", number(at));
        self.update(&Key::contact(tenant, who), update)
            .await
            .map(|_| ())
    }
}
