//! The integration tests of `wa-perf`, one binary: the cost of a message lifecycle
//! through the built Lambda binaries on moto, counted by the AWS meter.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../../../functions/intake/tests/common/mod.rs"]
mod common;
mod lambda_times;
mod lifecycle_cost;
mod streams;
mod support;
