//! `wa-cli`: the logic of every `wa` subcommand, as library functions so tests can
//! call them in-process (for instance `wa dev` on port 0). The `wa` binary only
//! parses arguments ([`cli`]) and dispatches.
//!
//! - [`sandbox`]: `wa sandbox`, the Graph API sandbox on its own.
//! - [`ops`]: the operator commands `wa tenants`, `wa templates`, `wa messages`, `wa dlq`.

pub mod cli;
pub mod ops;
pub mod sandbox;
