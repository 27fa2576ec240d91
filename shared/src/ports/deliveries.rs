//! `DeliveryQueue`: where the AWS `delivery` function parks an event's next attempt
//! at an endpoint (DESIGN §10, signed HTTP endpoints).
//!
//! A job is hidden until its delay has passed; a delay longer than the backend's
//! longest ([`MAX_JOB_DELAY`], SQS's 15 minutes) is fine: the job carries its own
//! `due_at_ms` and the function parks it again until it is due.

use crate::domain::endpoints::DeliveryJob;
use async_trait::async_trait;
use std::time::Duration;

/// Longest delay a job can be hidden for in one go (SQS `DelaySeconds` ≤ 900).
pub const MAX_JOB_DELAY: Duration = Duration::from_secs(900);

/// Why jobs were not queued.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryQueueError {
    /// The backend failed or refused some of the jobs; the call may be retried (a
    /// job queued twice is delivered twice: receivers dedupe on the event id).
    #[error("delivery queue backend failed during {operation}")]
    Backend {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The queue of delivery attempts to come.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Queue each job, hidden for its delay (capped at [`MAX_JOB_DELAY`]). All or an
    /// error: on error some jobs may have been queued.
    async fn schedule(&self, jobs: &[(DeliveryJob, Duration)]) -> Result<(), DeliveryQueueError>;
}
