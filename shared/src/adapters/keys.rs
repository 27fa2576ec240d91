//! Keys every message store shares (DynamoDB's partition key, SQLite's primary key).

use crate::domain::{MessageId, TenantId};

/// The partition key of a message: `{tenant}#{id}`. Tenant ids never contain `#`.
pub fn pk(tenant: &TenantId, id: &MessageId) -> String {
    format!("{tenant}#{id}", tenant = tenant.as_str(), id = id.as_str())
}

/// The tenant and id of a partition key made by [`pk`].
pub fn parse_pk(pk: &str) -> Option<(TenantId, MessageId)> {
    let (tenant, id) = pk.split_once('#')?;
    Some((TenantId::parse(tenant).ok()?, MessageId::parse(id).ok()?))
}
