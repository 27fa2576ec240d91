//! What every AWS adapter shares: SDK configuration and call counting.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

pub use aws_config::SdkConfig;

/// Load the SDK configuration from the standard sources (environment, profile,
/// Lambda role). `AWS_ENDPOINT_URL` redirects every client, which is how tests
/// reach moto; call this once per process (cold start), not per event.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Counts AWS operations by name (`SendMessageBatch`, ...) for the cost model.
///
/// One count per operation the adapter issues; the SDK's own retries of that
/// operation are not counted separately.
#[derive(Debug, Default)]
pub struct CallCounter {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl CallCounter {
    /// A counter with every count at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one call of `operation`.
    pub fn record(&self, operation: &'static str) {
        // A poisoned lock only means another thread panicked mid-increment; the
        // map itself is still a valid map of counts.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry(operation).or_insert(0) += 1;
    }

    /// The counts so far, by operation name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counter_adds_up_calls_from_many_threads() {
        let counter = Arc::new(CallCounter::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        counter.record("SendMessage");
                    }
                    counter.record("ReceiveMessage");
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let counts = counter.snapshot();
        assert_eq!(counts.get("SendMessage"), Some(&1000));
        assert_eq!(counts.get("ReceiveMessage"), Some(&4));
        assert_eq!(counts.len(), 2);
    }
}
