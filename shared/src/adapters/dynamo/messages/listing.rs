//! The paged index queries: the reconciler's sweep (`by_sweep`), the listing of a
//! tenant's messages (`by_tenant`, 8 shards merged) and of its messages to one
//! recipient (`by_recipient`). Every index is keys only (a transition then rewrites
//! no index entry whose key stays, where an `ALL` projection rewrote the whole item
//! in each): the matches are read from the table by key, strongly consistent, in
//! batches ([`DynamoMessageStore::batch_get`]), and filtered on what they are now.

use super::item::{
    Item, TENANT_SHARDS, from_item, parse_pk, tenant_recipient_key, tenant_shard_key,
};
use super::{DynamoMessageStore, backend};
use crate::adapters::dynamo::batch_get::batch_get_by_pk;
use crate::adapters::dynamo::cursor::{self, KeyData, key_data, key_of};
use crate::adapters::dynamo::schema::{BY_RECIPIENT, BY_SWEEP, BY_TENANT};
use crate::domain::{Message, PhoneNumber, TenantId, Timestamp};
use crate::ports::{MessageQuery, MessageStore, Page, StoreError};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Largest page a caller may ask for (one query answer is at most 1 MB anyway).
pub(super) const MAX_PAGE: usize = 1000;

fn page_limit(limit: usize) -> i32 {
    // Clamped to 1..=MAX_PAGE, so the cast cannot truncate.
    limit.clamp(1, MAX_PAGE) as i32
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Where the listing stands in one tenant shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ShardPosition {
    /// Nothing read yet.
    Start,
    /// Continue after this index key.
    After(KeyData),
    /// Every item of the shard was returned.
    Done,
}

/// One shard's items (newest first) and where its query stopped.
struct ShardItems {
    items: Vec<(Message, KeyData)>,
    last_evaluated: Option<KeyData>,
}

/// The `by_tenant` key of an item: table key plus index key.
fn tenant_index_key(item: &Item) -> Option<KeyData> {
    index_key(item, "tenant_shard")
}

/// An index key of an item: the table key, `partition` and `created_at`.
fn index_key(item: &Item, partition: &str) -> Option<KeyData> {
    let key = ["pk", partition, "created_at"]
        .into_iter()
        .map(|name| Some((name.to_owned(), item.get(name)?.clone())))
        .collect::<Option<_>>()?;
    key_data(&key)
}

fn last_key(out: &QueryOutput) -> Result<Option<KeyData>, StoreError> {
    out.last_evaluated_key()
        .map(|k| key_data(k).ok_or_else(|| backend("Query", "LastEvaluatedKey is not a key")))
        .transpose()
}

impl DynamoMessageStore {
    async fn run_query(&self, request: QueryFluentBuilder) -> Result<QueryOutput, StoreError> {
        self.calls.record("Query");
        let out = request
            .table_name(&self.table)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| backend("Query", e.into_service_error()))?;
        self.capacity.record("Query", out.consumed_capacity());
        Ok(out)
    }

    /// `sweep_key = :key AND sweep_at <= :due`, earliest deadline first. A page that
    /// ends exactly at the last item may still carry a cursor; the next page is empty.
    pub(super) async fn sweep_page(
        &self,
        sweep_key: &str,
        due: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        let start = cursor.map(cursor::decode::<KeyData>).transpose()?;
        let request = self
            .client
            .query()
            .index_name(BY_SWEEP)
            .key_condition_expression("#sweep_key = :key AND #sweep_at <= :due")
            .expression_attribute_names("#sweep_key", "sweep_key")
            .expression_attribute_names("#sweep_at", "sweep_at")
            .expression_attribute_values(":key", AttributeValue::S(sweep_key.to_owned()))
            .expression_attribute_values(":due", number(due.as_millis()))
            .scan_index_forward(true)
            .limit(page_limit(limit))
            .set_exclusive_start_key(start.as_ref().map(key_of));
        let out = self.run_query(request).await?;
        let next = last_key(&out)?.map(|k| cursor::encode(&k)).transpose()?;
        let keys: Vec<String> = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|k| match k.get("pk") {
                Some(AttributeValue::S(pk)) => Some(pk.clone()),
                _ => None,
            })
            .collect();
        let mut found = self.batch_get(&keys).await?;
        // The index lags the table: keep what is still in this sweep and due now.
        let items = keys
            .iter()
            .filter_map(|pk| found.remove(pk))
            .filter(|m| {
                m.sweep_key.as_deref() == Some(sweep_key) && m.sweep_at.is_some_and(|at| at <= due)
            })
            .collect();
        Ok(Page { items, next })
    }

    /// The messages stored under `keys` (`pk` values), by `pk`; a key with no item
    /// (expired) is absent.
    pub(super) async fn batch_get(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Message>, StoreError> {
        let read = batch_get_by_pk(&self.client, &self.table, keys, &self.calls)
            .await
            .map_err(|e| backend("BatchGetItem", e))?;
        for used in &read.consumed {
            self.capacity.record("BatchGetItem", Some(used));
        }
        let mut found = HashMap::with_capacity(read.items.len());
        for item in read.items {
            if let Some(AttributeValue::S(pk)) = item.get("pk").cloned() {
                found.insert(pk, from_item(item)?);
            }
        }
        Ok(found)
    }

    /// Up to `limit` matching items of one shard, newest first, after `start`.
    /// `Limit` counts items before the state filter, so this may take several queries.
    async fn shard_items(
        &self,
        shard: String,
        query: &MessageQuery,
        limit: usize,
        mut start: Option<KeyData>,
    ) -> Result<ShardItems, StoreError> {
        let state = query.state;
        let mut items = Vec::new();
        loop {
            let mut request = self
                .client
                .query()
                .index_name(BY_TENANT)
                .expression_attribute_names("#tenant_shard", "tenant_shard")
                .expression_attribute_values(":shard", AttributeValue::S(shard.clone()))
                .scan_index_forward(false)
                .limit(page_limit(limit - items.len()))
                .set_exclusive_start_key(start.as_ref().map(key_of));
            request = created_between(request, "#tenant_shard = :shard", query);
            let out = self.run_query(request).await?;
            let last_evaluated = last_key(&out)?;
            let mut keyed = Vec::new();
            for key_item in out.items.unwrap_or_default() {
                let key = tenant_index_key(&key_item)
                    .ok_or_else(|| backend("Query", "by_tenant item without its index key"))?;
                let Some(AttributeValue::S(pk)) = key_item.get("pk") else {
                    continue;
                };
                keyed.push((pk.clone(), key));
            }
            let pks: Vec<String> = keyed.iter().map(|(pk, _)| pk.clone()).collect();
            let mut found = self.batch_get(&pks).await?;
            for (pk, key) in keyed {
                // Gone since (expired), or not in the state asked for.
                let Some(message) = found.remove(&pk) else {
                    continue;
                };
                if state.is_some_and(|s| s != message.state) {
                    continue;
                }
                items.push((message, key));
            }
            if items.len() >= limit || last_evaluated.is_none() {
                return Ok(ShardItems {
                    items,
                    last_evaluated,
                });
            }
            start = last_evaluated;
        }
    }

    /// Query every shard for its newest `limit` matches after its position, then merge
    /// newest first and keep `limit`. The cursor records each shard's position.
    pub(super) async fn list_page(
        &self,
        tenant: &TenantId,
        query: &MessageQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let positions: Vec<ShardPosition> = match cursor {
            Some(c) => cursor::decode(c)?,
            None => vec![ShardPosition::Start; TENANT_SHARDS as usize],
        };
        if positions.len() != TENANT_SHARDS as usize {
            return Err(StoreError::InvalidCursor);
        }
        let mut fetched = Vec::with_capacity(positions.len());
        for (shard, position) in (0..TENANT_SHARDS).zip(&positions) {
            let start = match position {
                ShardPosition::Done => {
                    fetched.push(None);
                    continue;
                }
                ShardPosition::Start => None,
                ShardPosition::After(key) => Some(key.clone()),
            };
            let key = tenant_shard_key(tenant, shard);
            fetched.push(Some(self.shard_items(key, query, limit, start).await?));
        }
        let (items, positions) = merge_newest_first(positions, fetched, limit);
        let next = if positions.iter().all(|p| *p == ShardPosition::Done) {
            None
        } else {
            Some(cursor::encode(&positions)?)
        };
        Ok(Page { items, next })
    }

    /// A tenant's messages to `to`, newest first: the keys from `by_recipient` (one
    /// partition, no shards), each message read from the table (consistent) and
    /// filtered by state. The cursor is the index key of the last message returned.
    pub(super) async fn recipient_page(
        &self,
        tenant: &TenantId,
        to: &PhoneNumber,
        query: &MessageQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut start = cursor.map(cursor::decode::<KeyData>).transpose()?;
        let mut items = Vec::new();
        loop {
            let request = self
                .client
                .query()
                .index_name(BY_RECIPIENT)
                .expression_attribute_names("#tenant_to", "tenant_to")
                .expression_attribute_values(
                    ":recipient",
                    AttributeValue::S(tenant_recipient_key(tenant, to)),
                )
                .scan_index_forward(false)
                .limit(page_limit(limit - items.len()))
                .set_exclusive_start_key(start.as_ref().map(key_of));
            let request = created_between(request, "#tenant_to = :recipient", query);
            let out = self.run_query(request).await?;
            let last_evaluated = last_key(&out)?;
            for key_item in out.items.unwrap_or_default() {
                let key = index_key(&key_item, "tenant_to")
                    .ok_or_else(|| backend("Query", "by_recipient item without its key"))?;
                let Some(AttributeValue::S(pk)) = key_item.get("pk") else {
                    continue;
                };
                let Some((t, id)) = parse_pk(pk) else {
                    continue;
                };
                // Gone since (expired), or moved out of the state asked for.
                let Some(message) = self.get(&t, &id).await? else {
                    continue;
                };
                if query.state.is_some_and(|s| s != message.state) {
                    continue;
                }
                items.push(message);
                if items.len() == limit {
                    return Ok(Page {
                        items,
                        next: Some(cursor::encode(&key)?),
                    });
                }
            }
            match last_evaluated {
                None => return Ok(Page { items, next: None }),
                Some(last) => start = Some(last),
            }
        }
    }
}

/// `partition` (a key condition on the index's hash key) and the query's creation
/// window on `created_at`: `since` inclusive, `until` exclusive.
fn created_between(
    request: QueryFluentBuilder,
    partition: &str,
    query: &MessageQuery,
) -> QueryFluentBuilder {
    let window = |r: QueryFluentBuilder| r.expression_attribute_names("#created_at", "created_at");
    match (query.since, query.until) {
        (None, None) => request.key_condition_expression(partition),
        (Some(since), None) => window(request)
            .key_condition_expression(format!("{partition} AND #created_at >= :since"))
            .expression_attribute_values(":since", number(since.as_millis())),
        (None, Some(until)) => window(request)
            .key_condition_expression(format!("{partition} AND #created_at < :until"))
            .expression_attribute_values(":until", number(until.as_millis())),
        // BETWEEN is inclusive on both ends: `until` is exclusive.
        (Some(since), Some(until)) => window(request)
            .key_condition_expression(format!(
                "{partition} AND #created_at BETWEEN :since AND :last"
            ))
            .expression_attribute_values(":since", number(since.as_millis()))
            .expression_attribute_values(":last", number(until.as_millis() - 1)),
    }
}

/// Take the newest `limit` items over all shards (ties: lower shard first) and
/// compute each shard's new position from how many of its items were taken.
fn merge_newest_first(
    positions: Vec<ShardPosition>,
    fetched: Vec<Option<ShardItems>>,
    limit: usize,
) -> (Vec<Message>, Vec<ShardPosition>) {
    let mut taken = vec![0usize; fetched.len()];
    let mut out = Vec::new();
    while out.len() < limit {
        let newest = fetched
            .iter()
            .enumerate()
            .filter_map(|(s, f)| {
                let (m, _) = f.as_ref()?.items.get(taken[s])?;
                Some((s, m.created_at))
            })
            .fold(
                None,
                |best: Option<(usize, Timestamp)>, (s, at)| match best {
                    Some((_, best_at)) if best_at >= at => best,
                    _ => Some((s, at)),
                },
            );
        let Some((shard, _)) = newest else { break };
        if let Some(Some(f)) = fetched.get(shard)
            && let Some((m, _)) = f.items.get(taken[shard])
        {
            out.push(m.clone());
        }
        taken[shard] += 1;
    }
    let positions = positions
        .into_iter()
        .zip(fetched)
        .zip(taken)
        .map(|((old, f), k)| match f {
            None => old,
            Some(f) if k < f.items.len() => match k.checked_sub(1) {
                Some(last) => ShardPosition::After(f.items[last].1.clone()),
                None => old,
            },
            Some(f) => f
                .last_evaluated
                .map_or(ShardPosition::Done, ShardPosition::After),
        })
        .collect();
    (out, positions)
}
