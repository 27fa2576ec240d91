//! `wa-shared`: everything the four Lambda functions and the `wa` CLI share.
//!
//! Layout (it follows DESIGN §2):
//! - [`domain`]: pure model — ids, states and ranks, failure classes, the message
//!   lifecycle, template catalog and validation, Graph payloads and error
//!   classification, webhook parsing and signature checks. No I/O.
//! - [`ports`]: the async traits the app does I/O through (`WorkQueue`, `Clock`, `Provider`, ...).
//! - [`adapters`]: those ports on AWS (SQS, ...), on the Graph API (`GraphProvider`) and on the embedded SQLite file.
//! - [`queues`]: the queue definitions (send queue, webhook inbox, their DLQs and
//!   consumers), the one source the SAM template is checked against.
//! - `testkit` (feature `testkit`): port conformance suites and moto helpers.
//!
//! Later layers (ports, adapters, app handlers, config, telemetry) build on it.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod ports;
pub mod queues;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod wiring;
