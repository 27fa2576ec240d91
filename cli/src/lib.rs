//! `wa-cli`: the command surface of `wa` (arguments, output, operator commands), as
//! library functions so tests can call them in-process. The `wa` binary only parses
//! arguments ([`cli`]) and dispatches. The local runtime itself is `wa-local`.
//!
//! - [`dev`]: `wa dev`, which starts the local runtime (`wa_local`);
//! - [`client`]: `wa send` and `wa status` against a running API;
//! - [`load`]: `wa load`, load and soak figures of a running pipeline;
//! - [`soak`]: `wa soak`, a pipeline under faults and crashes, then its invariants;
//! - [`ops`]: the operator commands `wa tenants`, `wa templates`, `wa messages`, `wa dlq`,
//!   `wa events`, `wa costs`, `wa doctor`;
//! - [`sandbox`]: `wa sandbox`, the Graph API sandbox on its own;

pub mod cli;
pub mod client;
pub mod dev;
pub mod echo;
pub mod load;
pub mod ops;
pub mod sandbox;
pub mod soak;
