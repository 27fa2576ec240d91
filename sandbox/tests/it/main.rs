//! The integration tests of `wa-sandbox`, one binary: the sandbox over real HTTP on
//! 127.0.0.1, and the real Graph client (`GraphProvider`) against it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod faults;
mod graph_client;
mod limits;
mod load;
mod sends;
mod support;
mod templates_api;
mod webhooks;
