//! One `BatchGetItem` reader for the adapters that read items of one table by `pk`
//! (the sweep and listing read-backs, the cost ledger's days, the series' hours):
//! 100 keys a call, strongly consistent, the keys DynamoDB leaves unprocessed
//! (throttling) asked again with a growing pause, a bounded number of times.

use crate::adapters::aws::CallCounter;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity,
};
use std::collections::HashMap;
use std::time::Duration;

/// Keys one `BatchGetItem` may read.
const KEYS_PER_CALL: usize = 100;

/// Calls per chunk of keys before giving up on the unprocessed ones.
const ROUNDS: u32 = 8;

/// One stored item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// What a batch read found: the items (in no order; a key with no item is absent) and
/// the capacity each call reported.
#[derive(Debug, Default)]
pub(crate) struct BatchRead {
    /// The items found.
    pub items: Vec<Item>,
    /// Each call's consumed capacity, for the adapters' cost meters.
    pub consumed: Vec<ConsumedCapacity>,
}

/// Why a batch read failed (the adapter maps it to its own error).
pub(crate) type BatchGetError = Box<dyn std::error::Error + Send + Sync>;

/// Read the items of `table` whose `pk` is one of `pks`, counting each call in `calls`.
pub(crate) async fn batch_get_by_pk(
    client: &Client,
    table: &str,
    pks: &[String],
    calls: &CallCounter,
) -> Result<BatchRead, BatchGetError> {
    let mut read = BatchRead::default();
    for chunk in pks.chunks(KEYS_PER_CALL) {
        let mut pending: Vec<Item> = chunk
            .iter()
            .map(|pk| HashMap::from([("pk".to_owned(), AttributeValue::S(pk.clone()))]))
            .collect();
        for round in 0..ROUNDS {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(20 << round.min(5))).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()?;
            calls.record("BatchGetItem");
            let answer = client
                .batch_get_item()
                .request_items(table, request)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| e.into_service_error())?;
            read.consumed
                .extend(answer.consumed_capacity.unwrap_or_default());
            read.items.extend(
                answer
                    .responses
                    .and_then(|mut r| r.remove(table))
                    .unwrap_or_default(),
            );
            pending = answer
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .map(|k| k.keys)
                .unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(format!("{} keys unprocessed after {ROUNDS} rounds", pending.len()).into());
        }
    }
    Ok(read)
}
