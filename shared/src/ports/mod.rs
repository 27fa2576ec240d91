//! Ports: the small async traits through which the application does I/O.
//!
//! Each port is a `Send + Sync` trait held as `Arc<dyn Port>`; every adapter of
//! a port passes the same conformance suite (DESIGN §2).

pub mod clock;
pub mod costs;
pub mod deliveries;
pub mod directory;
pub mod endpoints;
pub mod events;
pub mod pacing;
pub mod provider;
pub mod publisher;
pub mod queue;
pub mod quota;
pub mod series;
pub mod store;
pub mod tokens;

pub use clock::Clock;
pub use costs::{CostLedger, CostLedgerError, MAX_COST_DAYS};
pub use deliveries::{DeliveryQueue, DeliveryQueueError, MAX_JOB_DELAY};
pub use directory::{AccountSignal, Directory, DirectoryError, StoredTemplate};
pub use endpoints::{EndpointRegistry, EndpointRegistryError, EndpointSecrets};
pub use events::{EventLog, EventLogError, EventPage, LoggedEvent, MAX_EVENT_PAGE};
pub use pacing::{PacingError, PacingLedger, Reservation};
pub use provider::{Provider, ProviderRequest};
pub use publisher::{EventPublisher, PublishError};
pub use queue::{
    BatchSendOutcome, DeadLetter, EntryFailure, QueueDepth, QueueError, QueueMessageId, QueueRef,
    QueueSpec, ReceiptHandle, ReceivedMessage, SentEntry, WorkQueue,
};
pub use quota::{Admission, QuotaError, QuotaLedger};
pub use series::{MAX_SERIES_MINUTES, SeriesError, TrafficSeries};
pub use store::{
    ApplyOutcome, CreateOutcome, MessageQuery, MessageStore, Page, Recorded, StoreError,
    record_event,
};
pub use tokens::{TokenError, TokenSource};
