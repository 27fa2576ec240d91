//! Sender (DESIGN §5): an SQS batch of `{"tenant", "id"}` references in, Graph
//! sends out, `ReportBatchItemFailures` back.
//!
//! Records run concurrently, at most [`SenderSettings::concurrency`] at once. A
//! record is reported as a batch item failure only when SQS should deliver it again:
//! a retry (its visibility already set to the retry delay) or an infrastructure
//! error. Everything else (sent, failed for good, suppressed, ambiguous, duplicate)
//! deletes it. Duplicate deliveries are harmless because of the claim.
//!
//! - `record`: one record, from the claim to the Graph call.
//! - `outcome`: recording what came of it (retry delay, failure, suppression).
//! - [`pacing`]: the number's and the recipient's send slots, taken before the claim
//!   from the ledger every sender shares, and the holds after a throttle.

pub mod hold;
mod marketing_limit;
mod outcome;
pub mod pacing;
mod record;

pub use hold::{DEFAULT_HOLD_PROBE_INTERVAL, resume_with};
pub use pacing::PacingPolicy;

use crate::app::SenderDeps;
pub use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{Instrument, error, info_span};

/// How long the sender caches tenant and template reads for its policy re-check
/// (short: a paused template must stop sends soon).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(2);

/// The sender's settings and pacing policy. Its retry budget is the lifecycle
/// policy's (`max_attempts`, `max_age`), which the reconciler shares.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Records of one batch processed at once.
    pub concurrency: usize,
    /// Meta's limits the sender paces to (the schedules are in `SenderDeps::pacing`).
    pub pacing: PacingPolicy,
    /// Wait between two probes (one real send) of a held tenant.
    pub hold_probe_interval: std::time::Duration,
}

impl Default for SenderSettings {
    /// 10 records at once, Meta's limits.
    fn default() -> Self {
        Self {
            concurrency: 10,
            pacing: PacingPolicy::default(),
            hold_probe_interval: hold::DEFAULT_HOLD_PROBE_INTERVAL,
        }
    }
}

/// Process one SQS batch. Never fails as a whole: a record that must come back is
/// listed in `batch_item_failures`, so one bad record never replays the batch.
pub async fn handle(deps: &SenderDeps, event: SqsEvent) -> SqsBatchResponse {
    let permits = Arc::new(Semaphore::new(deps.settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut item_ids = HashMap::new();
    let mut failures = Vec::new();
    for message in event.records {
        let Some(item_id) = message.message_id.clone() else {
            // Without an id the record cannot be reported; SQS redelivers it only if
            // the whole batch failed, which it must not.
            error!("SQS record without messageId skipped");
            continue;
        };
        let deps = deps.clone();
        let permits = Arc::clone(&permits);
        let span = info_span!(
            "send",
            sqs_message_id = %item_id,
            tenant = tracing::field::Empty,
            message_id = tracing::field::Empty,
            to = tracing::field::Empty,
            attempt = tracing::field::Empty,
        );
        let task = tasks.spawn(
            async move {
                // The semaphore is never closed, so acquiring cannot fail.
                let _permit = permits.acquire_owned().await.ok();
                record::process(&deps, &message).await
            }
            .instrument(span),
        );
        item_ids.insert(task.id(), item_id);
    }
    while let Some(joined) = tasks.join_next_with_id().await {
        let (task, again) = match joined {
            Ok((task, again)) => (task, again),
            Err(e) => {
                // A panicked record must come back rather than be deleted unseen.
                error!(error = %e, "a record's task failed");
                (e.id(), record::Again::Yes)
            }
        };
        if let (record::Again::Yes, Some(item_id)) = (again, item_ids.remove(&task)) {
            failures.push(item_id);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    const WORKSPACE_MANIFEST: &str = include_str!("../../../../Cargo.toml");

    /// `handle` turns a panicked record's `JoinError` into a batch item failure; with
    /// `panic = "abort"` the process would die instead and SQS would replay the whole
    /// batch. Guard the release profile against that setting coming back.
    #[test]
    fn the_release_profile_unwinds_so_a_panicked_record_is_caught() {
        let release: Vec<&str> = WORKSPACE_MANIFEST
            .lines()
            .skip_while(|l| l.trim() != "[profile.release]")
            .skip(1)
            .take_while(|l| !l.starts_with('['))
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert!(release.contains(&"lto = \"fat\""), "{release:?}");
        assert!(
            !release.iter().any(|l| l.starts_with("panic")),
            "the release profile must unwind: {release:?}"
        );
    }
}
