//! The integration tests of `wa-shared`, one binary: the port conformance suites on
//! every adapter (SQLite always, DynamoDB/SQS on moto under `make test`), the golden
//! Graph payloads, the Graph client over real HTTP, and the send, status and events
//! paths through the real handlers.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod alarm_metrics;
mod cost_conformance;
mod delivery_path;
mod directory_conformance;
mod event_log_conformance;
mod events_path;
mod golden_payloads;
mod graph_client;
mod pacing_conformance;
mod queue_conformance;
mod quota_conformance;
mod send_path;
mod series_conformance;
mod status_path;
mod store_conformance;
