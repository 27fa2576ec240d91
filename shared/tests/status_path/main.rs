//! The webhook and reconciler handlers end to end on the embedded adapters (SQLite
//! store, directory and queues) with a manual clock: event JSON in, stored state,
//! queue contents and metrics out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod inbox;
mod management;
mod reconciler;
mod statuses;
mod support;
mod webhook;
