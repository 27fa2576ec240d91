//! DynamoDB adapters: the table contract ([`schema`]) and the stores on it.
//!
//! Table names are configuration and the endpoint comes from the SDK configuration
//! (`AWS_ENDPOINT_URL`), so moto needs no special code path.

pub mod capacity;
mod cursor;
pub mod directory;
pub mod events;
pub mod messages;
pub mod schema;

pub use events::DynamoEventLog;
pub use messages::DynamoMessageStore;
pub use schema::{TableNames, create_tables};
