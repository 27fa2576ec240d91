//! API keys: the routing item `apikey#{hash}` (what intake reads, one GetItem) and
//! the tenant's listing item `tenant#{id}` / `apikey#{hash}` (what `api_keys`
//! queries), always written and deleted together by one TransactWriteItems.
//!
//! - Adding puts both items; the routing item only if absent, so a key of another
//!   tenant is refused ([`DirectoryError::ApiKeyTaken`]), never re-pointed. A key the
//!   tenant already has changes nothing, except that a routing item stored before
//!   listing items existed gets its listing item.
//! - Revoking deletes both, the routing item only while it points at the tenant.

use super::items::{ApiKeyItem, Item, Key, TENANT_API_KEY_SK_PREFIX, decode, encode, tenant_pk};
use super::{DynamoDirectory, backend};
use crate::domain::TenantId;
use crate::domain::Timestamp;
use crate::domain::tenant::{ApiKeyEntry, ApiKeyHash};
use crate::ports::DirectoryError;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

/// Whether a TransactWriteItems was cancelled because its first action's condition
/// failed (DynamoDB gives the reasons in request order).
fn first_condition_failed<R>(err: &SdkError<TransactWriteItemsError, R>) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
            .cancellation_reasons()
            .first()
            .and_then(|r| r.code())
            .is_some_and(|code| code == "ConditionalCheckFailed"),
        _ => false,
    }
}

impl DynamoDirectory {
    /// [`crate::ports::Directory::add_api_key`] on DynamoDB.
    pub(super) async fn add_api_key_items(
        &self,
        tenant: &TenantId,
        entry: &ApiKeyEntry,
    ) -> Result<(), DirectoryError> {
        let route_key = Key::api_key(&entry.hash);
        let listing_key = Key::tenant_api_key(tenant, &entry.hash);
        let route = route_item(&route_key, tenant, entry)?;
        let listing = listing_item(&listing_key, entry)?;
        let put_route = Put::builder()
            .table_name(&self.table)
            .set_item(Some(route))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| backend("TransactWriteItems", e))?;
        let put_listing = Put::builder()
            .table_name(&self.table)
            .set_item(Some(listing))
            .build()
            .map_err(|e| backend("TransactWriteItems", e))?;
        self.calls.record("TransactWriteItems");
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_route).build())
            .transact_items(TransactWriteItem::builder().put(put_listing).build())
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        if !first_condition_failed(&err) {
            return Err(backend("TransactWriteItems", err));
        }
        // The key is routed already: to this tenant (nothing to change but a missing
        // listing item) or to another one (refused).
        let stored = self
            .get(&route_key, true)
            .await?
            .map(decode::<ApiKeyItem>)
            .transpose()?;
        let Some(stored) = stored else {
            // Revoked in between: the caller may simply add it again.
            return Err(backend(
                "TransactWriteItems",
                format!("API key {} changed while being added", route_key.describe()),
            ));
        };
        match stored.tenant {
            Some(owner) if &owner != tenant => Err(DirectoryError::ApiKeyTaken { owner }),
            _ => {
                let kept = ApiKeyEntry {
                    hash: entry.hash.clone(),
                    added_at: stored.added_at.map(Timestamp::from_millis),
                    label: stored.label,
                };
                self.put_listing_if_absent(&listing_key, &kept).await
            }
        }
    }

    /// Write the listing item of a key routed before listing items existed.
    async fn put_listing_if_absent(
        &self,
        key: &Key,
        entry: &ApiKeyEntry,
    ) -> Result<(), DirectoryError> {
        self.calls.record("PutItem");
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(listing_item(key, entry)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(backend("PutItem", err)),
        }
    }

    /// [`crate::ports::Directory::api_keys`]: one Query of the tenant's partition.
    pub(super) async fn api_key_items(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<ApiKeyEntry>, DirectoryError> {
        let items = self
            .query_prefix(tenant_pk(tenant), TENANT_API_KEY_SK_PREFIX.to_owned())
            .await?;
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let stored = decode::<ApiKeyItem>(item)?;
            let key = Key {
                pk: stored.pk.clone(),
                sk: stored.sk.clone(),
            };
            let hash = stored
                .hash
                .as_deref()
                .or_else(|| stored.sk.strip_prefix(TENANT_API_KEY_SK_PREFIX))
                .unwrap_or_default();
            let hash = ApiKeyHash::parse(hash).map_err(|e| DirectoryError::Corrupt {
                key: key.describe(),
                source: Box::new(e),
            })?;
            entries.push(ApiKeyEntry {
                hash,
                added_at: stored.added_at.map(Timestamp::from_millis),
                label: stored.label,
            });
        }
        entries.sort_by(|a, b| (a.added_at, &a.hash.as_str()).cmp(&(b.added_at, &b.hash.as_str())));
        Ok(entries)
    }

    /// [`crate::ports::Directory::revoke_api_key`] on DynamoDB.
    pub(super) async fn revoke_api_key_items(
        &self,
        tenant: &TenantId,
        hash: &ApiKeyHash,
    ) -> Result<bool, DirectoryError> {
        let listing_key = Key::tenant_api_key(tenant, hash);
        let delete_route = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Key::api_key(hash).to_item()))
            .condition_expression("tenant = :tenant")
            .expression_attribute_values(":tenant", AttributeValue::S(tenant.as_str().to_owned()))
            .build()
            .map_err(|e| backend("TransactWriteItems", e))?;
        let delete_listing = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(listing_key.to_item()))
            .build()
            .map_err(|e| backend("TransactWriteItems", e))?;
        self.calls.record("TransactWriteItems");
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete_route).build())
            .transact_items(TransactWriteItem::builder().delete(delete_listing).build())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(err) if first_condition_failed(&err) => {
                // Not (or no longer) this tenant's key: drop a stray listing item only.
                self.calls.record("DeleteItem");
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(listing_key.to_item()))
                    .send()
                    .await
                    .map_err(|e| backend("DeleteItem", e))?;
                Ok(false)
            }
            Err(err) => Err(backend("TransactWriteItems", err)),
        }
    }
}

fn route_item(key: &Key, tenant: &TenantId, entry: &ApiKeyEntry) -> Result<Item, DirectoryError> {
    let item = ApiKeyItem {
        pk: key.pk.clone(),
        sk: key.sk.clone(),
        tenant: Some(tenant.clone()),
        hash: None,
        added_at: entry.added_at.map(Timestamp::as_millis),
        label: entry.label.clone(),
    };
    encode(&item, &key.describe())
}

fn listing_item(key: &Key, entry: &ApiKeyEntry) -> Result<Item, DirectoryError> {
    let item = ApiKeyItem {
        pk: key.pk.clone(),
        sk: key.sk.clone(),
        tenant: None,
        hash: Some(entry.hash.as_str().to_owned()),
        added_at: entry.added_at.map(Timestamp::as_millis),
        label: entry.label.clone(),
    };
    encode(&item, &key.describe())
}
