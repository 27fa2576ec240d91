//! `DynamoMessageStore`: the [`MessageStore`] port on the `messages` table
//! (`docs/data-model.md`).
//!
//! Every write is one conditional request that returns the item it leaves or finds
//! (`ReturnValues = ALL_NEW`, `ReturnValuesOnConditionCheckFailure = ALL_OLD`), so a
//! lost race costs no extra read. Reads by key are strongly consistent; the three
//! index queries (`find_by_wamid`, `sweep`, `list_by_tenant`) are **eventually
//! consistent**, as every GSI is: a write may take a moment (usually well under a
//! second) to show there, so callers treat what they find as a hint and act through
//! conditional writes (the reconciler's transitions re-check the state).
//!
//! Every AWS call is counted ([`DynamoMessageStore::calls`]) and the capacity units
//! DynamoDB reports are summed ([`DynamoMessageStore::consumed_capacity`]) for the
//! cost model.

mod expression;
mod item;
mod listing;

pub use item::{TENANT_SHARDS, parse_pk, pk, tenant_shard};

use super::capacity::{CapacityMeter, WriteEstimate, estimate_write, item_size};
use super::schema::{BY_WAMID, MESSAGES};
use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::lifecycle::Transition;
use crate::domain::{Message, MessageId, TenantId, Timestamp, Wamid};
use crate::ports::{ApplyOutcome, CreateOutcome, MessageQuery, MessageStore, Page, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use item::{from_item, to_item};
use std::collections::BTreeMap;

/// The DynamoDB [`MessageStore`] on one `messages` table.
#[derive(Debug)]
pub struct DynamoMessageStore {
    client: Client,
    table: String,
    calls: CallCounter,
    capacity: CapacityMeter,
}

fn backend(
    operation: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    StoreError::Backend {
        operation,
        source: source.into(),
    }
}

impl DynamoMessageStore {
    /// A store on `table`, with a client built from `config` (build it once per process).
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self::from_client(Client::new(config), table)
    }

    /// A store on `table` with an existing client.
    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            calls: CallCounter::new(),
            capacity: CapacityMeter::new(),
        }
    }

    /// The table this store writes.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// DynamoDB calls made so far, by operation name (`PutItem`, `UpdateItem`, ...).
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.snapshot()
    }

    /// Capacity units DynamoDB reported so far, by operation name (table and indexes
    /// together). Writes whose condition failed report nothing (they still cost).
    pub fn consumed_capacity(&self) -> BTreeMap<&'static str, f64> {
        self.capacity.snapshot()
    }

    /// The write units DynamoDB bills for turning `old` into `new` (a put when `old`
    /// is `None`), estimated from item sizes (moto reports constants instead).
    pub fn estimate_write_units(
        old: Option<&Message>,
        new: &Message,
    ) -> Result<WriteEstimate, StoreError> {
        let old = old.map(to_item).transpose()?;
        Ok(estimate_write(&MESSAGES, old.as_ref(), &to_item(new)?))
    }

    /// The size in bytes DynamoDB bills for the item of `message`.
    pub fn item_size(message: &Message) -> Result<usize, StoreError> {
        Ok(item_size(&to_item(message)?))
    }

    fn key(tenant: &TenantId, id: &MessageId) -> AttributeValue {
        AttributeValue::S(pk(tenant, id))
    }
}

#[async_trait]
impl MessageStore for DynamoMessageStore {
    async fn create_if_absent(&self, message: &Message) -> Result<CreateOutcome, StoreError> {
        self.calls.record("PutItem");
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(message)?))
            // The idempotency check: only a new key is written.
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.capacity.record("PutItem", out.consumed_capacity());
                Ok(CreateOutcome::Created)
            }
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(failed) => match failed.item {
                    Some(existing) => Ok(CreateOutcome::Exists(Box::new(from_item(existing)?))),
                    None => Err(backend(
                        "PutItem",
                        "condition failed without the existing item",
                    )),
                },
                other => Err(backend("PutItem", other)),
            },
        }
    }

    async fn get(&self, tenant: &TenantId, id: &MessageId) -> Result<Option<Message>, StoreError> {
        self.calls.record("GetItem");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::key(tenant, id))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| backend("GetItem", e.into_service_error()))?;
        self.capacity.record("GetItem", out.consumed_capacity());
        let message = out.item.map(from_item).transpose()?;
        // The key already scopes by tenant; this guards against a mis-keyed item.
        Ok(message.filter(|m| &m.tenant == tenant && &m.id == id))
    }

    async fn find_by_wamid(
        &self,
        wamid: &Wamid,
    ) -> Result<Option<(TenantId, MessageId)>, StoreError> {
        self.calls.record("Query");
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_WAMID)
            .key_condition_expression("#wamid = :wamid")
            .expression_attribute_names("#wamid", "wamid")
            .expression_attribute_values(":wamid", AttributeValue::S(wamid.as_str().to_owned()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| backend("Query", e.into_service_error()))?;
        self.capacity.record("Query", out.consumed_capacity());
        // KEYS_ONLY: the table key `pk` names the message.
        let found = out.items().iter().find_map(|item| match item.get("pk") {
            Some(AttributeValue::S(key)) => parse_pk(key),
            _ => None,
        });
        Ok(found)
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        id: &MessageId,
        transition: &Transition,
    ) -> Result<ApplyOutcome, StoreError> {
        let e = expression::update_expressions(transition)?;
        self.calls.record("UpdateItem");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::key(tenant, id))
            .condition_expression(e.condition)
            .update_expression(e.update)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.capacity.record("UpdateItem", out.consumed_capacity());
                let item = out
                    .attributes
                    .ok_or_else(|| backend("UpdateItem", "answer has no ALL_NEW item"))?;
                Ok(ApplyOutcome::Applied(Box::new(from_item(item)?)))
            }
            Err(err) => match err.into_service_error() {
                // The condition starts with `attribute_exists(pk)`: no old item means
                // no message; an old item means the guard or the history slot failed.
                UpdateItemError::ConditionalCheckFailedException(failed) => match failed.item {
                    Some(current) => Ok(ApplyOutcome::Rejected(Box::new(from_item(current)?))),
                    None => Ok(ApplyOutcome::NotFound),
                },
                other => Err(backend("UpdateItem", other)),
            },
        }
    }

    async fn sweep(
        &self,
        sweep_key: &str,
        due: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.sweep_page(sweep_key, due, limit, cursor).await
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        query: &MessageQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        if let (Some(since), Some(until)) = (query.since, query.until)
            && since >= until
        {
            // An empty window (a key condition cannot express it).
            return Ok(Page::default());
        }
        match &query.to {
            Some(to) => self.recipient_page(tenant, to, query, limit, cursor).await,
            None => self.list_page(tenant, query, limit, cursor).await,
        }
    }
}
