//! What the sandbox saw and did, for assertions: every Graph request, every webhook
//! delivery attempt (bounded rings), and counters that are never dropped.
//!
//! Sends are counted per message by decoding `biz_opaque_callback_data` with
//! [`CallbackData::decode`], so a test can prove a message was never accepted twice.

use super::config::RecordingConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use wa_shared::domain::graph::CallbackData;

/// One request to the Graph surface (sends and template listings; not `/_sandbox`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Arrival order, from 0.
    pub seq: u64,
    /// Milliseconds since the sandbox started.
    pub at_ms: u64,
    /// `POST` or `GET`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The HTTP status answered (for accept-then-timeout: the one that was withheld).
    pub http_status: u16,
    /// What became of it.
    pub outcome: RequestOutcome,
    /// `biz_opaque_callback_data` of a send, as sent.
    pub callback_data: Option<String>,
    /// The JSON body, when bodies are recorded and it was JSON.
    pub body: Option<Value>,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RequestOutcome {
    /// A send was accepted with this wamid.
    Accepted {
        /// The wamid answered.
        wamid: String,
        /// The answer was withheld (accept-then-timeout fault).
        answer_withheld: bool,
    },
    /// An error envelope was answered.
    Rejected {
        /// Its code.
        code: i64,
        /// Injected by a fault rather than earned by the request.
        injected: bool,
    },
    /// Anything else answered 200 (template listing, mark-as-read).
    Served,
}

/// One POST of webhooks to the receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedDelivery {
    /// Order of attempts, from 0.
    pub seq: u64,
    /// Milliseconds since the sandbox started.
    pub at_ms: u64,
    /// 1 for the first attempt of this POST, 2 for its first retry, ...
    pub attempt: u32,
    /// `(wamid, status)` of each status in the POST.
    pub statuses: Vec<(String, String)>,
    /// `changes[].field` of each change.
    pub fields: Vec<String>,
    /// The receiver's HTTP status, if it answered.
    pub http_status: Option<u16>,
    /// Whether the receiver took it (2xx).
    pub ok: bool,
    /// Why not, if it did not answer (timeout, connection refused).
    pub error: Option<String>,
    /// The signed body, when bodies are recorded.
    pub body: Option<String>,
}

/// Counters; nothing here is ever dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxStats {
    /// Requests to the Graph surface.
    pub requests: u64,
    /// Sends answered with a wamid (including withheld answers).
    pub sends_accepted: u64,
    /// Sends answered with an error envelope.
    pub sends_rejected: u64,
    /// Error answers by code.
    pub rejected_by_code: BTreeMap<i64, u64>,
    /// Error answers injected by faults.
    pub injected_errors: u64,
    /// Accepted sends whose answer was withheld.
    pub answers_withheld: u64,
    /// Accepted sends per message, keyed by the encoded [`CallbackData`] (`wa1:t:id`).
    pub accepted_per_message: BTreeMap<String, u64>,
    /// Send attempts (any answer) per message, same key.
    pub attempts_per_message: BTreeMap<String, u64>,
    /// Accepted sends whose callback data is absent or not ours.
    pub accepted_without_callback_data: u64,
    /// Webhook counters.
    pub webhooks: WebhookStats,
}

/// Webhook counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStats {
    /// Statuses scheduled after accepted sends (before faults).
    pub statuses_scheduled: u64,
    /// Statuses in POSTs the receiver took (a duplicate counts twice).
    pub statuses_delivered: u64,
    /// Statuses never posted (drop fault).
    pub statuses_dropped: u64,
    /// Statuses posted twice (duplicate fault).
    pub statuses_duplicated: u64,
    /// Statuses swapped with the next one of their message (reorder fault).
    pub statuses_reordered: u64,
    /// Statuses held back (delay fault).
    pub statuses_delayed: u64,
    /// Other events (inbound, template and quality updates) posted.
    pub events_delivered: u64,
    /// POSTs the receiver took.
    pub posts_ok: u64,
    /// Attempts that failed (non-2xx, timeout, connection error).
    pub posts_failed: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// POSTs abandoned after the last attempt.
    pub posts_abandoned: u64,
    /// POSTs built while no webhook URL was set.
    pub posts_without_receiver: u64,
}

impl SandboxStats {
    /// The highest count of accepted sends of any one message (0 if none).
    pub fn max_accepted_per_message(&self) -> u64 {
        self.accepted_per_message
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// Messages accepted more than once: what "never sent twice" must keep empty.
    pub fn messages_accepted_twice(&self) -> Vec<&str> {
        self.accepted_per_message
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Error answers with this code.
    pub fn rejected(&self, code: i64) -> u64 {
        self.rejected_by_code.get(&code).copied().unwrap_or(0)
    }
}

/// The recorder.
#[derive(Debug)]
pub struct Recorder {
    config: RecordingConfig,
    requests: VecDeque<RecordedRequest>,
    deliveries: VecDeque<RecordedDelivery>,
    next_request: u64,
    next_delivery: u64,
    /// Counters.
    pub stats: SandboxStats,
}

impl Recorder {
    /// Empty.
    pub fn new(config: RecordingConfig) -> Self {
        Self {
            config,
            requests: VecDeque::new(),
            deliveries: VecDeque::new(),
            next_request: 0,
            next_delivery: 0,
            stats: SandboxStats::default(),
        }
    }

    /// Whether bodies are kept.
    pub fn keeps_bodies(&self) -> bool {
        self.config.bodies
    }

    /// Record a request and count it.
    pub fn request(&mut self, mut r: RecordedRequest, is_send: bool) {
        r.seq = self.next_request;
        self.next_request += 1;
        let s = &mut self.stats;
        s.requests += 1;
        let key = r
            .callback_data
            .as_deref()
            .and_then(|d| CallbackData::decode(d).ok())
            .map(|d| d.encode());
        if is_send && let Some(k) = &key {
            *s.attempts_per_message.entry(k.clone()).or_default() += 1;
        }
        match &r.outcome {
            RequestOutcome::Accepted {
                answer_withheld, ..
            } => {
                s.sends_accepted += 1;
                s.answers_withheld += u64::from(*answer_withheld);
                match key {
                    Some(k) => *s.accepted_per_message.entry(k).or_default() += 1,
                    None => s.accepted_without_callback_data += 1,
                }
            }
            RequestOutcome::Rejected { code, injected } => {
                if is_send {
                    s.sends_rejected += 1;
                }
                *s.rejected_by_code.entry(*code).or_default() += 1;
                s.injected_errors += u64::from(*injected);
            }
            RequestOutcome::Served => {}
        }
        if !self.config.bodies {
            r.body = None;
        }
        push_bounded(&mut self.requests, r, self.config.max_requests);
    }

    /// Record one delivery attempt (counters are updated by the caller, who knows why).
    pub fn delivery(&mut self, mut d: RecordedDelivery) {
        d.seq = self.next_delivery;
        self.next_delivery += 1;
        if !self.config.bodies {
            d.body = None;
        }
        push_bounded(&mut self.deliveries, d, self.config.max_deliveries);
    }

    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.iter().cloned().collect()
    }

    /// The recorded delivery attempts, oldest first.
    pub fn deliveries(&self) -> Vec<RecordedDelivery> {
        self.deliveries.iter().cloned().collect()
    }
}

fn push_bounded<T>(ring: &mut VecDeque<T>, item: T, max: Option<usize>) {
    if max == Some(0) {
        return;
    }
    if let Some(max) = max
        && ring.len() >= max
    {
        ring.pop_front();
    }
    ring.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(callback: Option<&str>) -> RecordedRequest {
        RecordedRequest {
            seq: 0,
            at_ms: 0,
            method: "POST".into(),
            path: "/v25.0/1/messages".into(),
            http_status: 200,
            outcome: RequestOutcome::Accepted {
                wamid: "wamid.x".into(),
                answer_withheld: false,
            },
            callback_data: callback.map(str::to_owned),
            body: None,
        }
    }

    #[test]
    fn accepted_sends_are_counted_per_decoded_message() {
        let mut r = Recorder::new(RecordingConfig {
            max_requests: Some(2),
            ..RecordingConfig::default()
        });
        let id = "wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3";
        r.request(accepted(Some(id)), true);
        r.request(accepted(Some(id)), true);
        r.request(accepted(Some("foreign")), true);
        assert_eq!(r.stats.accepted_per_message.get(id), Some(&2));
        assert_eq!(r.stats.messages_accepted_twice(), vec![id]);
        assert_eq!(r.stats.accepted_without_callback_data, 1);
        assert_eq!(r.requests().len(), 2, "the ring keeps the newest two");
        assert_eq!(r.requests()[1].seq, 2);
    }
}
