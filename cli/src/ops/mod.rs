//! The operator commands: `wa tenants`, `wa templates`, `wa messages`, `wa dlq`,
//! `wa events`, `wa costs`, `wa doctor`.
//!
//! Each works on AWS (the deployed stack: DynamoDB, SQS, and for provisioning
//! Lambda, Secrets Manager and CloudWatch) or, with `--data PATH`, on the SQLite
//! file of `wa dev`. Commands are written once against the ports ([`backend`]).
//!
//! - [`config`]: stack outputs and Graph settings from flags, env vars or a TOML file.
//! - [`backend`]: the ports on the chosen backend.
//! - [`tenants`]: `add` (idempotent provisioning, `--dry-run`), `list`, `suspend`, `resume`,
//!   `endpoints add|list|remove` (signed HTTP event endpoints, AWS only).
//! - [`templates`]: `sync` from the Graph API, `load` from a file.
//! - [`messages`]: `get`, `list`.
//! - [`dlq`]: `list`, `redrive`.
//! - [`doctor`]: checks a `wa dev` configuration or a deployed stage end to end.
//! - [`events`]: `list`, `replay` (the event log and its deliveries, on AWS and on `wa dev`'s file).
//! - [`costs`]: a tenant's priced messages per day and category, and their estimated spend.
//! - [`plan`], [`output`], [`since`]: what they share (change plans, tables and
//!   progress bars, `--since` parsing).

#[cfg(feature = "aws")]
pub mod backend;
#[cfg(feature = "aws")]
pub mod config;
#[cfg(feature = "aws")]
pub mod costs;
#[cfg(feature = "aws")]
pub mod dlq;
#[cfg(feature = "aws")]
pub mod doctor;
#[cfg(feature = "aws")]
pub mod events;
#[cfg(feature = "aws")]
pub mod messages;
#[cfg(feature = "aws")]
pub mod output;
#[cfg(feature = "aws")]
pub mod plan;
pub mod since;
#[cfg(feature = "aws")]
pub mod templates;
#[cfg(feature = "aws")]
pub mod tenants;

use wa_shared::adapters::SystemClock;
use wa_shared::domain::Timestamp;
use wa_shared::ports::Clock;

/// The current time, as every command stamps its writes.
pub fn now() -> Timestamp {
    SystemClock.now()
}
