//! The tables of `docs/data-model.md` (messages, directory, events, quotas) as Rust data, and
//! [`create_tables`] to create them (tests on moto, local provisioning).
//!
//! `infra/template.yaml` declares the same tables for deployment; a unit test below
//! reads the template and fails when the two disagree, so the adapters are always
//! tested on the tables that production gets. Point-in-time recovery, encryption and
//! deletion protection are deployment settings and live only in the template.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use std::time::Duration;

/// The type of a key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// String (`S`).
    S,
    /// Number (`N`).
    N,
}

impl KeyKind {
    /// The DynamoDB name of the type (`S`, `N`).
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyKind::S => "S",
            KeyKind::N => "N",
        }
    }

    fn scalar(self) -> ScalarAttributeType {
        match self {
            KeyKind::S => ScalarAttributeType::S,
            KeyKind::N => ScalarAttributeType::N,
        }
    }
}

/// One attribute of a table or index key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttribute {
    /// Attribute name.
    pub name: &'static str,
    /// Attribute type.
    pub kind: KeyKind,
}

/// Which attributes a global secondary index copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexProjection {
    /// Only the table and index keys.
    KeysOnly,
    /// The whole item.
    All,
}

impl IndexProjection {
    /// The DynamoDB name of the projection type.
    pub const fn as_str(self) -> &'static str {
        match self {
            IndexProjection::KeysOnly => "KEYS_ONLY",
            IndexProjection::All => "ALL",
        }
    }
}

/// A global secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    /// Index name.
    pub name: &'static str,
    /// Partition key.
    pub hash: KeyAttribute,
    /// Sort key, if any.
    pub range: Option<KeyAttribute>,
    /// What the index copies.
    pub projection: IndexProjection,
}

/// A table: keys, indexes and TTL attribute (billing is always on demand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// The template's logical resource id (`MessagesTable`).
    pub resource: &'static str,
    /// Partition key.
    pub hash: KeyAttribute,
    /// Sort key, if any.
    pub range: Option<KeyAttribute>,
    /// Global secondary indexes.
    pub indexes: &'static [IndexSpec],
    /// The TTL attribute (epoch seconds), if any.
    pub ttl_attribute: Option<&'static str>,
}

const fn s(name: &'static str) -> KeyAttribute {
    KeyAttribute {
        name,
        kind: KeyKind::S,
    }
}

const fn n(name: &'static str) -> KeyAttribute {
    KeyAttribute {
        name,
        kind: KeyKind::N,
    }
}

/// Messages by wamid (sparse: absent until Meta accepts), keys only.
pub const BY_WAMID: &str = "by_wamid";
/// Non-terminal messages by `sweep_key` (sparse), due first; keys only.
pub const BY_SWEEP: &str = "by_sweep";
/// A tenant's messages by `tenant_shard`, by creation time; keys only.
pub const BY_TENANT: &str = "by_tenant";
/// A tenant's messages to one recipient by `tenant_to` (`{tenant}#{E.164}`), by
/// creation time.
pub const BY_RECIPIENT: &str = "by_recipient";

/// The `messages` table: one item per message, key `pk = "{tenant}#{id}"`.
pub const MESSAGES: TableSpec = TableSpec {
    resource: "MessagesTable",
    hash: s("pk"),
    range: None,
    indexes: &[
        IndexSpec {
            name: BY_WAMID,
            hash: s("wamid"),
            range: None,
            projection: IndexProjection::KeysOnly,
        },
        IndexSpec {
            name: BY_SWEEP,
            hash: s("sweep_key"),
            range: Some(n("sweep_at")),
            projection: IndexProjection::KeysOnly,
        },
        IndexSpec {
            name: BY_TENANT,
            hash: s("tenant_shard"),
            range: Some(n("created_at")),
            projection: IndexProjection::KeysOnly,
        },
        IndexSpec {
            name: BY_RECIPIENT,
            hash: s("tenant_to"),
            range: Some(n("created_at")),
            projection: IndexProjection::KeysOnly,
        },
    ],
    ttl_attribute: Some("expires_at"),
};

/// The `directory` table: single-table design on `pk` + `sk`, no indexes.
pub const DIRECTORY: TableSpec = TableSpec {
    resource: "DirectoryTable",
    hash: s("pk"),
    range: Some(s("sk")),
    indexes: &[],
    ttl_attribute: None,
};

/// The `events` table: a tenant's event log on `pk` (tenant) + `sk` (`"{logged at
/// ms, 13 digits}#{event id}"`), and an idempotency guard item per event id.
pub const EVENTS: TableSpec = TableSpec {
    resource: "EventsTable",
    hash: s("pk"),
    range: Some(s("sk")),
    indexes: &[],
    ttl_attribute: Some("expires_at"),
};

/// The `quotas` table: the tenants' intake quota state (`pk` = `"rate#{tenant}"` for
/// the rate bucket, `"day#{tenant}#{YYYY-MM-DD}"` for a day's message count).
pub const QUOTAS: TableSpec = TableSpec {
    resource: "QuotasTable",
    hash: s("pk"),
    range: None,
    indexes: &[],
    ttl_attribute: Some("expires_at"),
};

impl TableSpec {
    /// Every key attribute of the table and its indexes, once each, in order of use.
    pub fn key_attributes(&self) -> Vec<KeyAttribute> {
        let mut all = vec![self.hash];
        all.extend(self.range);
        for index in self.indexes {
            all.push(index.hash);
            all.extend(index.range);
        }
        let mut seen = Vec::new();
        for a in all {
            if !seen.iter().any(|b: &KeyAttribute| b.name == a.name) {
                seen.push(a);
            }
        }
        seen
    }
}

/// The physical names of the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// The `messages` table.
    pub messages: String,
    /// The `directory` table.
    pub directory: String,
    /// The `events` table.
    pub events: String,
    /// The `quotas` table (intake's quota ledger).
    pub quotas: String,
}

impl TableNames {
    /// `{prefix}-messages`, `{prefix}-directory`, `{prefix}-events` and
    /// `{prefix}-quotas`; the template's names are
    /// `TableNames::with_prefix("{stage}-{name prefix}")`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            messages: format!("{prefix}-messages"),
            directory: format!("{prefix}-directory"),
            events: format!("{prefix}-events"),
            quotas: format!("{prefix}-quotas"),
        }
    }
}

/// Why creating a table failed.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// DynamoDB refused or failed a call.
    #[error("{operation} on table {table} failed")]
    Aws {
        /// The operation (`CreateTable`, ...).
        operation: &'static str,
        /// The table.
        table: String,
        /// The SDK error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A request could not be built from the spec (a bug in the spec).
    #[error("invalid table definition")]
    Build(#[from] BuildError),
    /// The table did not become `ACTIVE` in time.
    #[error("table {table} not active after {waited:?}")]
    NotActive {
        /// The table.
        table: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// How long [`create_tables`] waits for a new table to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
const ACTIVE_POLL: Duration = Duration::from_millis(250);

/// Create the tables (on-demand billing, their indexes and TTL) and wait until they
/// are active. A table that already exists is left as is and only waited for.
pub async fn create_tables(client: &Client, names: &TableNames) -> Result<(), SchemaError> {
    create_table(client, &MESSAGES, &names.messages).await?;
    create_table(client, &DIRECTORY, &names.directory).await?;
    create_table(client, &EVENTS, &names.events).await?;
    create_table(client, &QUOTAS, &names.quotas).await
}

fn key_schema(
    hash: KeyAttribute,
    range: Option<KeyAttribute>,
) -> Result<Vec<KeySchemaElement>, BuildError> {
    let mut keys = vec![
        KeySchemaElement::builder()
            .attribute_name(hash.name)
            .key_type(KeyType::Hash)
            .build()?,
    ];
    if let Some(range) = range {
        keys.push(
            KeySchemaElement::builder()
                .attribute_name(range.name)
                .key_type(KeyType::Range)
                .build()?,
        );
    }
    Ok(keys)
}

fn index(spec: &IndexSpec) -> Result<GlobalSecondaryIndex, BuildError> {
    let projection = match spec.projection {
        IndexProjection::KeysOnly => ProjectionType::KeysOnly,
        IndexProjection::All => ProjectionType::All,
    };
    GlobalSecondaryIndex::builder()
        .index_name(spec.name)
        .set_key_schema(Some(key_schema(spec.hash, spec.range)?))
        .projection(Projection::builder().projection_type(projection).build())
        .build()
}

/// Create one table from `spec` under `name` (see [`create_tables`]).
pub async fn create_table(
    client: &Client,
    spec: &TableSpec,
    name: &str,
) -> Result<(), SchemaError> {
    let aws = |operation: &'static str| {
        move |e: Box<dyn std::error::Error + Send + Sync>| SchemaError::Aws {
            operation,
            table: name.to_owned(),
            source: e,
        }
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(spec.hash, spec.range)?));
    for attribute in spec.key_attributes() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute.name)
                .attribute_type(attribute.kind.scalar())
                .build()?,
        );
    }
    for spec in spec.indexes {
        request = request.global_secondary_indexes(index(spec)?);
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(aws("CreateTable")(e.into())),
    }
    wait_until_active(client, name).await?;
    if let Some(attribute) = spec.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| aws("UpdateTimeToLive")(e.into()))?;
    }
    Ok(())
}

async fn wait_until_active(client: &Client, name: &str) -> Result<(), SchemaError> {
    let started = tokio::time::Instant::now();
    loop {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| SchemaError::Aws {
                operation: "DescribeTable",
                table: name.to_owned(),
                source: e.into(),
            })?;
        let status = described.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            return Ok(());
        }
        if started.elapsed() > ACTIVE_TIMEOUT {
            return Err(SchemaError::NotActive {
                table: name.to_owned(),
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(ACTIVE_POLL).await;
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
