//! `wa-cli`: the logic of every `wa` subcommand, as library functions so tests can
//! call them in-process (for instance `wa dev` on port 0). The `wa` binary only
//! parses arguments ([`cli`]) and dispatches.
//!
//! - [`dev`]: `wa dev`, the whole pipeline on one machine;
//! - [`client`]: `wa send` and `wa status` against a running API;
//! - [`load`]: `wa load`, load and soak figures of a running pipeline;
//! - [`ops`]: the operator commands `wa tenants`, `wa templates`, `wa messages`, `wa dlq`;
//! - [`sandbox`]: `wa sandbox`, the Graph API sandbox on its own;
//! - [`status_page`]: the status page `wa dev` serves at `/`.

pub mod cli;
pub mod client;
pub mod dev;
pub mod load;
pub mod ops;
pub mod sandbox;
pub mod status_page;
