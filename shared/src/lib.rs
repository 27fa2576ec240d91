//! `wa-shared`: everything the four Lambda functions and the `wa` CLI share.
//!
//! Layout (it follows DESIGN §2):
//! - [`domain`]: pure model — ids, states and ranks, failure classes, the message
//!   lifecycle, template catalog and validation, Graph payloads and error
//!   classification, webhook parsing and signature checks. No I/O.
//! - [`ports`]: the traits through which the application does I/O (`Provider`, …).
//! - [`adapters`]: one implementation of a port per backend (`GraphProvider`, …).
//!
//! Later layers (ports, adapters, app handlers, config, telemetry) build on it.

pub mod adapters;
pub mod domain;
pub mod ports;
