//! The integration tests of `wa-local`, one binary: the status page over a real
//! store, in headless Chromium; events delivered to Standard Webhooks endpoints; the
//! API contract (`docs/openapi.yaml`) against the gateway's routes and the handlers'
//! error codes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api_keys;
mod batch;
mod costs;
mod events;
mod gateway_limits;
mod holds;
mod listing;
mod marketing;
mod numbers;
mod openapi;
mod schedule;
mod security;
mod status_page;
mod status_page_load;
