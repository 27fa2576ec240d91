//! A [`Message`] as a `messages` item: `serde_dynamo` of the message plus the key and
//! index attributes that only exist in the table (`pk`, `tenant_shard`, `tenant_to`).

use crate::domain::lifecycle::sweep_shard;
use crate::domain::{Message, MessageId, PhoneNumber, TenantId};
use crate::ports::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// A DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Shards of the `by_tenant` index per tenant (`{tenant}#{0..7}`): spreads a busy
/// tenant's listing writes over several index partitions.
pub const TENANT_SHARDS: u32 = 8;

pub use crate::adapters::keys::{parse_pk, pk};

/// The `by_tenant` partition of a message: `{tenant}#{shard}`, the shard derived
/// from the id with the same stable hash as the sweep shards.
pub fn tenant_shard(tenant: &TenantId, id: &MessageId) -> String {
    tenant_shard_key(tenant, sweep_shard(id, TENANT_SHARDS))
}

/// The `by_tenant` partition `{tenant}#{shard}`.
pub fn tenant_shard_key(tenant: &TenantId, shard: u32) -> String {
    format!("{}#{shard}", tenant.as_str())
}

/// The `by_recipient` partition of a message: `{tenant}#{to}` (E.164).
pub fn tenant_recipient_key(tenant: &TenantId, to: &PhoneNumber) -> String {
    format!("{}#{}", tenant.as_str(), to.as_str())
}

fn corrupt(key: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        source: source.into(),
    }
}

/// The item of `message`.
pub(crate) fn to_item(message: &Message) -> Result<Item, StoreError> {
    let key = pk(&message.tenant, &message.id);
    let mut item: Item = serde_dynamo::to_item(message).map_err(|e| StoreError::Backend {
        operation: "encode_message",
        source: e.into(),
    })?;
    // `flags` is a string set in the table (the lifecycle adds to it with `ADD`);
    // serde writes a set as a list. It is never empty here (empty sets are skipped).
    if let Some(AttributeValue::L(list)) = item.remove("flags") {
        let strings = list
            .into_iter()
            .map(|v| match v {
                AttributeValue::S(s) => Ok(s),
                other => Err(corrupt(&key, format!("flag is not a string: {other:?}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        item.insert("flags".into(), AttributeValue::Ss(strings));
    }
    item.insert(
        "tenant_shard".into(),
        AttributeValue::S(tenant_shard(&message.tenant, &message.id)),
    );
    item.insert(
        "tenant_to".into(),
        AttributeValue::S(tenant_recipient_key(&message.tenant, &message.to)),
    );
    item.insert("pk".into(), AttributeValue::S(key));
    Ok(item)
}

/// The message of `item` (extra table attributes are ignored).
pub(crate) fn from_item(item: Item) -> Result<Message, StoreError> {
    let key = match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => String::from("<no pk>"),
    };
    serde_dynamo::from_item(item).map_err(|e| corrupt(&key, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::LifecyclePolicy;
    use crate::domain::message::NewMessage;
    use crate::domain::{PhoneNumber, Timestamp};
    use serde_json::json;

    fn message() -> Message {
        let new = NewMessage {
            tenant: TenantId::parse("acme").unwrap(),
            id: MessageId::parse("msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3").unwrap(),
            to: PhoneNumber::parse("+14155550123").unwrap(),
            template_name: Some("order_update".into()),
            template_language: Some("en_US".into()),
            request: json!({"to": "+14155550123", "n": [1, 2.5, -3], "x": null, "e": {}}),
            request_hash: "abc".into(),
            metadata: Some(json!({"order": "A-1"}).as_object().unwrap().clone()),
        };
        Message::new_queued(
            new,
            Timestamp::from_secs(1_750_000_000),
            &LifecyclePolicy::default(),
        )
    }

    #[test]
    fn an_item_has_the_key_and_index_attributes_of_the_data_model() {
        let m = message();
        let item = to_item(&m).unwrap();
        assert_eq!(
            item["pk"],
            AttributeValue::S("acme#msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3".into())
        );
        // Pinned shard of this id (FNV-1a % 8 = 6), like the sweep key.
        assert_eq!(item["tenant_shard"], AttributeValue::S("acme#6".into()));
        assert_eq!(
            item["tenant_to"],
            AttributeValue::S("acme#+14155550123".into())
        );
        assert_eq!(
            item["created_at"],
            AttributeValue::N("1750000000000".into())
        );
        assert_eq!(item["sweep_key"], AttributeValue::S("queued#6".into()));
        assert!(matches!(item["sweep_at"], AttributeValue::N(_)));
        assert_eq!(item["expires_at"], AttributeValue::N("1757776000".into()));
        assert_eq!(item["state"], AttributeValue::S("queued".into()));
        assert!(matches!(item["history"], AttributeValue::M(_)));
        assert!(matches!(item["timestamps"], AttributeValue::M(_)));
        // Sparse attributes are absent, not null.
        assert!(!item.contains_key("wamid") && !item.contains_key("flags"));
    }

    #[test]
    fn a_message_round_trips_through_its_item() {
        let mut m = message();
        m.flags.insert("duplicate_send".into());
        m.flags.insert("stale_sender_event".into());
        let item = to_item(&m).unwrap();
        assert!(matches!(&item["flags"], AttributeValue::Ss(s) if s.len() == 2));
        assert_eq!(from_item(item).unwrap(), m);
    }

    #[test]
    fn pk_parses_back_into_tenant_and_id() {
        let m = message();
        assert_eq!(parse_pk(&pk(&m.tenant, &m.id)), Some((m.tenant, m.id)));
        assert_eq!(parse_pk("no-hash"), None);
        assert_eq!(parse_pk("acme#not-an-id"), None);
    }

    #[test]
    fn a_broken_item_is_reported_as_corrupt_with_its_key() {
        let mut item = to_item(&message()).unwrap();
        item.insert("rank".into(), AttributeValue::S("high".into()));
        match from_item(item) {
            Err(StoreError::Corrupt { key, .. }) => {
                assert_eq!(key, "acme#msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3");
            }
            other => panic!("{other:?}"),
        }
    }

    /// DynamoDB refuses an item over 400 KB. The largest request intake takes, a
    /// history at its cap, every entry with the longest wamid and the largest detail
    /// kept: the item stays under it, so no transition can fail on the item's size.
    #[test]
    fn the_history_cap_and_the_detail_bound_keep_the_largest_item_under_dynamodbs_limit() {
        use crate::adapters::dynamo::capacity::item_size;
        use crate::app::intake::MAX_BODY_BYTES;
        use crate::domain::MessageState;
        use crate::domain::lifecycle::MAX_DETAIL_BYTES;
        use crate::domain::message::{HistoryEntry, HistoryOutcome};

        let policy = LifecyclePolicy::default();
        let mut m = message();
        m.request = json!({"to": "+14155550123", "text": {"body": "x".repeat(MAX_BODY_BYTES)}});
        let wamid = "w".repeat(512);
        // A detail of the largest size kept: its JSON is MAX_DETAIL_BYTES long.
        let filler = MAX_DETAIL_BYTES - json!({"wamid": wamid, "failure": ""}).to_string().len();
        let detail = json!({"wamid": wamid, "failure": "f".repeat(filler)});
        assert_eq!(detail.to_string().len(), MAX_DETAIL_BYTES);
        for i in 0..policy.history_cap {
            m.history.insert(
                format!("webhook.failed{i}:{wamid}"),
                HistoryEntry {
                    at: Timestamp::from_secs(1_750_000_000),
                    event: "webhook.failed".into(),
                    state_after: MessageState::Failed,
                    outcome: HistoryOutcome::Anomaly,
                    detail: Some(detail.clone()),
                },
            );
        }
        let bytes = item_size(&to_item(&m).unwrap());
        assert!(bytes < 400 * 1024, "{bytes} bytes");
        // The history is most of it: the cap, not the request, is what bounds growth.
        assert!(bytes > usize::try_from(policy.history_cap).unwrap() * MAX_DETAIL_BYTES);
    }
}
