//! Adapters: the ports implemented on real backends.
//!
//! AWS adapters load their configuration through [`aws`] (so `AWS_ENDPOINT_URL`
//! points them at moto with no special code path); the embedded adapters share
//! one SQLite file through [`sqlite::SqliteDb`].

#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
#[cfg(feature = "aws")]
pub mod dynamo;
#[cfg(feature = "aws")]
pub mod eventbridge;
pub mod graph;
pub mod keys;
#[cfg(feature = "aws")]
pub mod secrets;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "aws")]
pub mod sqs;
pub mod tokens;

pub use clock::{ManualClock, SystemClock};
#[cfg(feature = "aws")]
pub use dynamo::directory::DynamoDirectory;
#[cfg(feature = "aws")]
pub use dynamo::{
    DynamoCostLedger, DynamoEndpointRegistry, DynamoEventLog, DynamoMessageStore,
    DynamoPacingLedger, DynamoQuotaLedger, DynamoTrafficSeries,
};
#[cfg(feature = "aws")]
pub use eventbridge::EventBridgePublisher;
pub use graph::{GraphConfig, GraphProvider};
#[cfg(feature = "aws")]
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
#[cfg(feature = "aws")]
pub use sqs::SqsWorkQueue;
#[cfg(feature = "aws")]
pub use sqs::deliveries::SqsDeliveryQueue;
