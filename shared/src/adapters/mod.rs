//! Adapters: the ports implemented on real backends.
//!
//! AWS adapters load their configuration through [`aws`] (so `AWS_ENDPOINT_URL`
//! points them at moto with no special code path); the embedded adapters share
//! one SQLite file through [`sqlite::SqliteDb`].

pub mod aws;
pub mod clock;
pub mod dynamo;
pub mod eventbridge;
pub mod graph;
pub mod secrets;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sqs;
pub mod tokens;

pub use clock::{ManualClock, SystemClock};
pub use dynamo::directory::DynamoDirectory;
pub use dynamo::{
    DynamoCostLedger, DynamoEndpointRegistry, DynamoEventLog, DynamoMessageStore,
    DynamoPacingLedger, DynamoQuotaLedger, DynamoTrafficSeries,
};
pub use eventbridge::EventBridgePublisher;
pub use graph::{GraphConfig, GraphProvider};
pub use secrets::SecretsManagerEndpointSecrets;
#[cfg(feature = "sqlite")]
pub use sqlite::costs::SqliteCostLedger;
#[cfg(feature = "sqlite")]
pub use sqlite::directory::SqliteDirectory;
#[cfg(feature = "sqlite")]
pub use sqlite::events::SqliteEventLog;
#[cfg(feature = "sqlite")]
pub use sqlite::messages::SqliteMessageStore;
#[cfg(feature = "sqlite")]
pub use sqlite::pacing::SqlitePacingLedger;
#[cfg(feature = "sqlite")]
pub use sqlite::queue::SqliteWorkQueue;
#[cfg(feature = "sqlite")]
pub use sqlite::quotas::SqliteQuotaLedger;
#[cfg(feature = "sqlite")]
pub use sqlite::series::SqliteTrafficSeries;
pub use sqs::SqsWorkQueue;
pub use sqs::deliveries::SqsDeliveryQueue;
