//! DynamoDB adapters: the table contract ([`schema`]) and the stores on it.
//!
//! Table names are configuration and the endpoint comes from the SDK configuration
//! (`AWS_ENDPOINT_URL`), so moto needs no special code path.

mod batch_get;
pub mod capacity;
pub mod costs;
mod cursor;
pub mod directory;
pub mod endpoints;
pub mod events;
pub mod messages;
pub mod pacing;
pub mod quotas;
pub mod schema;
pub mod series;

pub use costs::DynamoCostLedger;
pub use endpoints::DynamoEndpointRegistry;
pub use events::DynamoEventLog;
pub use messages::DynamoMessageStore;
pub use pacing::DynamoPacingLedger;
pub use quotas::DynamoQuotaLedger;
pub use schema::{TableNames, create_tables};
pub use series::DynamoTrafficSeries;
