//! `wa-shared`: the product — what the Lambda functions run, and what `wa dev` runs
//! the same way. Test helpers (`wa-testkit`), the Graph sandbox (`wa-sandbox`) and the
//! local runtime (`wa-local`) are crates of their own; docs/architecture.md is the map.
//!
//! Layers, from the centre out:
//! - [`domain`]: pure model — ids, states and ranks, failure classes, the message
//!   lifecycle, policy rules, template catalog and validation, Graph payloads and error
//!   classification, webhook parsing and signature checks. No I/O.
//! - [`ports`]: the async traits the app does I/O through (`MessageStore`,
//!   `Directory`, `WorkQueue`, `Provider`, `TokenSource`, `Clock`); every port error has
//!   the same `Backend { operation, source }` shape.
//! - [`adapters`]: those ports on AWS (DynamoDB, SQS, Secrets Manager), on the Graph
//!   API (`GraphProvider`) and, with the feature `sqlite`, on the embedded SQLite file.
//! - [`app`]: the handlers of intake, sender, webhook and reconciler, each over its own
//!   deps (`IntakeDeps`, `SenderDeps`, ...), plus what they share (`Ports`,
//!   `DirectoryCache`, HTTP and error helpers).
//! - [`config`]: each function's settings from the environment, each variable parsed once.
//! - [`wiring`]: the only code that builds deps: `aws` for the Lambdas, `local`
//!   (feature `sqlite`) for `wa dev` and the tests.
//! - [`queues`]: the queue definitions (send queue, webhook inbox, their DLQs and
//!   consumers) and the send queue's message, the one source the SAM template is
//!   checked against.
//! - [`metrics`], [`telemetry`]: EMF metric lines and JSON logs.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod ports;
pub mod queues;
pub mod telemetry;
pub mod wiring;
