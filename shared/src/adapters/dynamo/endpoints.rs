//! `DynamoEndpointRegistry`: the [`EndpointRegistry`] port in the directory table.
//!
//! A tenant's endpoints and dead letters share one partition,
//! `pk = "endpoints#{tenant}"`:
//! - `sk = "ep#{id}"`: the endpoint (its fields; `health` a map updated in place);
//! - `sk = "dead#{id}#{event id}"`: one dead letter, its JSON in `letter`.
//!
//! Health updates are single conditional `UpdateItem`s on the endpoint
//! (`attribute_exists(pk)`, so a removed endpoint is never recreated), and counts
//! made by concurrent invocations add up (`ADD`).

use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::TenantId;
use crate::domain::endpoints::{DeadLetter, Endpoint, EndpointHealth};
use crate::domain::time::Timestamp;
use crate::ports::{EndpointRegistry, EndpointRegistryError};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;
use std::time::Duration;

/// The DynamoDB [`EndpointRegistry`].
#[derive(Debug)]
pub struct DynamoEndpointRegistry {
    client: Client,
    table: String,
    calls: CallCounter,
}

fn backend(
    operation: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> EndpointRegistryError {
    EndpointRegistryError::Backend {
        operation,
        source: e.into(),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn pk(tenant: &TenantId) -> String {
    format!("endpoints#{tenant}")
}

fn endpoint_sk(id: &str) -> String {
    format!("ep#{id}")
}

fn dead_sk(endpoint: &str, event_id: &str) -> String {
    format!("dead#{endpoint}#{event_id}")
}

fn conditional_failed<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// Decode an endpoint item (`pk`/`sk` ignored).
fn decode_endpoint(
    item: &HashMap<String, AttributeValue>,
) -> Result<Endpoint, EndpointRegistryError> {
    let mut item = item.clone();
    let key = match (item.remove("pk"), item.remove("sk")) {
        (Some(AttributeValue::S(p)), Some(AttributeValue::S(k))) => format!("{p}/{k}"),
        _ => "?".to_owned(),
    };
    serde_dynamo::from_item(item).map_err(|e| EndpointRegistryError::Corrupt {
        key,
        source: Box::new(e),
    })
}

fn decode_letter(
    item: &HashMap<String, AttributeValue>,
) -> Result<DeadLetter, EndpointRegistryError> {
    let key = match item.get("sk") {
        Some(AttributeValue::S(k)) => k.clone(),
        _ => "?".to_owned(),
    };
    let Some(AttributeValue::S(json)) = item.get("letter") else {
        return Err(EndpointRegistryError::Corrupt {
            key,
            source: "no letter attribute".into(),
        });
    };
    serde_json::from_str(json).map_err(|e| EndpointRegistryError::Corrupt {
        key,
        source: Box::new(e),
    })
}

impl DynamoEndpointRegistry {
    /// A registry in the directory table `table`, with a client built from `config`.
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            table: table.into(),
            calls: CallCounter::new(),
        }
    }

    /// AWS calls made so far, by operation.
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    /// Every item of `tenant`'s partition whose `sk` starts with `prefix`.
    async fn query_prefix(
        &self,
        tenant: &TenantId,
        prefix: &str,
        limit: Option<usize>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, EndpointRegistryError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            self.calls.record("Query");
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk(tenant)))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query", e))?;
            items.extend(out.items().iter().cloned());
            if limit.is_some_and(|l| items.len() >= l) {
                items.truncate(limit.unwrap_or(usize::MAX));
                return Ok(items);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }

    async fn delete(&self, pk_value: String, sk: String) -> Result<(), EndpointRegistryError> {
        self.calls.record("DeleteItem");
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk_value))
            .key("sk", s(sk))
            .send()
            .await
            .map_err(|e| backend("DeleteItem", e))?;
        Ok(())
    }
}

#[async_trait]
impl EndpointRegistry for DynamoEndpointRegistry {
    async fn add(&self, endpoint: &Endpoint) -> Result<(), EndpointRegistryError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(endpoint).map_err(|e| backend("encode_endpoint", e))?;
        item.insert("pk".into(), s(pk(&endpoint.tenant)));
        item.insert("sk".into(), s(endpoint_sk(&endpoint.id)));
        self.calls.record("PutItem");
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => {
                Err(EndpointRegistryError::AlreadyExists(endpoint.id.clone()))
            }
            Err(e) => Err(backend("PutItem", e)),
        }
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<Endpoint>, EndpointRegistryError> {
        let items = self.query_prefix(tenant, "ep#", None).await?;
        let mut endpoints = items
            .iter()
            .map(decode_endpoint)
            .collect::<Result<Vec<_>, _>>()?;
        endpoints.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(endpoints)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<Endpoint>, EndpointRegistryError> {
        self.calls.record("GetItem");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .consistent_read(true)
            .key("pk", s(pk(tenant)))
            .key("sk", s(endpoint_sk(id)))
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        out.item().map(decode_endpoint).transpose()
    }

    async fn remove(&self, tenant: &TenantId, id: &str) -> Result<bool, EndpointRegistryError> {
        self.calls.record("DeleteItem");
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk(tenant)))
            .key("sk", s(endpoint_sk(id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| backend("DeleteItem", e))?;
        let existed = out.attributes().is_some_and(|a| !a.is_empty());
        for item in self
            .query_prefix(tenant, &format!("dead#{id}#"), None)
            .await?
        {
            if let Some(AttributeValue::S(sk)) = item.get("sk") {
                self.delete(pk(tenant), sk.clone()).await?;
            }
        }
        Ok(existed)
    }

    async fn record_success(
        &self,
        tenant: &TenantId,
        id: &str,
        at: Timestamp,
    ) -> Result<(), EndpointRegistryError> {
        self.calls.record("UpdateItem");
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(tenant)))
            .key("sk", s(endpoint_sk(id)))
            .update_expression(
                "SET health.last_success_at = :at, health.failures_in_a_row = :zero \
                 REMOVE health.failing_since, health.hold_until, health.last_error",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", n(at.as_millis()))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(()),
            Err(e) => Err(backend("UpdateItem", e)),
        }
    }

    async fn record_failure(
        &self,
        tenant: &TenantId,
        id: &str,
        at: Timestamp,
        error: &str,
        hold: Duration,
    ) -> Result<Option<EndpointHealth>, EndpointRegistryError> {
        let hold_ms = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX);
        let excerpt: String = error.chars().take(300).collect();
        self.calls.record("UpdateItem");
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(tenant)))
            .key("sk", s(endpoint_sk(id)))
            .update_expression(
                "SET health.failing_since = if_not_exists(health.failing_since, :at), \
                 health.hold_until = :hold, health.last_error = :error \
                 ADD health.failures_in_a_row :one",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", n(at.as_millis()))
            .expression_attribute_values(":hold", n(at.as_millis().saturating_add(hold_ms)))
            .expression_attribute_values(":error", s(excerpt))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match sent {
            Ok(out) => {
                let item = out.attributes().cloned().unwrap_or_default();
                Ok(Some(decode_endpoint(&item)?.health))
            }
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(None),
            Err(e) => Err(backend("UpdateItem", e)),
        }
    }

    async fn claim_probe(
        &self,
        tenant: &TenantId,
        id: &str,
        seen: Option<Timestamp>,
        until: Timestamp,
    ) -> Result<bool, EndpointRegistryError> {
        self.calls.record("UpdateItem");
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(tenant)))
            .key("sk", s(endpoint_sk(id)))
            .update_expression("SET health.hold_until = :until")
            .expression_attribute_values(":until", n(until.as_millis()));
        call = match seen {
            Some(seen) => call
                .condition_expression("attribute_exists(pk) AND health.hold_until = :seen")
                .expression_attribute_values(":seen", n(seen.as_millis())),
            None => call.condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(health.hold_until)",
            ),
        };
        match call.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(backend("UpdateItem", e)),
        }
    }

    async fn set_disabled(
        &self,
        tenant: &TenantId,
        id: &str,
        disabled: bool,
    ) -> Result<bool, EndpointRegistryError> {
        let update = if disabled {
            "SET disabled = :d"
        } else {
            "SET disabled = :d, health.failures_in_a_row = :zero \
             REMOVE health.failing_since, health.hold_until"
        };
        self.calls.record("UpdateItem");
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(tenant)))
            .key("sk", s(endpoint_sk(id)))
            .update_expression(update)
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":d", AttributeValue::Bool(disabled));
        if !disabled {
            call = call.expression_attribute_values(":zero", n(0));
        }
        match call.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(backend("UpdateItem", e)),
        }
    }

    async fn put_dead_letter(&self, letter: &DeadLetter) -> Result<(), EndpointRegistryError> {
        let json = serde_json::to_string(letter).map_err(|e| backend("encode_letter", e))?;
        self.calls.record("PutItem");
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk(&letter.tenant)))
            .item("sk", s(dead_sk(&letter.endpoint, &letter.event.id)))
            .item("letter", s(json))
            .item("dead_at", n(letter.dead_at.as_millis()))
            .send()
            .await
            .map_err(|e| backend("PutItem", e))?;
        Ok(())
    }

    async fn dead_letters(
        &self,
        tenant: &TenantId,
        endpoint: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, EndpointRegistryError> {
        let prefix = match endpoint {
            Some(id) => format!("dead#{id}#"),
            None => "dead#".to_owned(),
        };
        let items = self
            .query_prefix(tenant, &prefix, Some(limit.max(1)))
            .await?;
        items.iter().map(decode_letter).collect()
    }

    async fn remove_dead_letter(
        &self,
        tenant: &TenantId,
        endpoint: &str,
        event_id: &str,
    ) -> Result<(), EndpointRegistryError> {
        self.delete(pk(tenant), dead_sk(endpoint, event_id)).await
    }
}
