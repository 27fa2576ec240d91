//! The Graph sandbox over real HTTP on 127.0.0.1 (feature `sandbox`).
#![cfg(feature = "sandbox")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "sandbox/support.rs"]
mod support;

#[path = "sandbox/sends.rs"]
mod sends;

#[path = "sandbox/limits.rs"]
mod limits;

#[path = "sandbox/webhooks.rs"]
mod webhooks;

#[path = "sandbox/faults.rs"]
mod faults;

#[path = "sandbox/templates_api.rs"]
mod templates_api;

#[path = "sandbox/load.rs"]
mod load;
