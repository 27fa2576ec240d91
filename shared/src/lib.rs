//! `wa-shared`: everything the four Lambda functions and the `wa` CLI share.
//!
//! Layout (it follows DESIGN §2):
//! - [`domain`]: pure model — ids, states and ranks, failure classes, the message
//!   lifecycle, template catalog and validation, Graph payloads and error
//!   classification, webhook parsing and signature checks. No I/O.
//!
//! Later layers (ports, adapters, app handlers, config, telemetry) build on it.

pub mod domain;
#[cfg(feature = "sandbox")]
pub mod sandbox;
