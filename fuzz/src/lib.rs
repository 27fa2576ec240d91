//! `wa-fuzz`: fuzzing of the pipeline's untrusted-input parsers that runs on the stable
//! toolchain, as ordinary tests (`cargo nextest run -p wa-fuzz`, hence `make test`).
//!
//! No coverage instrumentation (libFuzzer and AFL need nightly or a custom linker):
//! a seeded mutational loop over real fixtures, with a cheap feedback in its place —
//! an input whose *outcome* (error kind, event kinds, problem codes) was not seen
//! before joins the working corpus. docs/fuzzing.md says how to run and reproduce.
//!
//! - [`corpus`]: seeds from `events/**/*.json` and `../shared/webhook-samples/`,
//!   including the JSON embedded in them (API Gateway and SQS bodies, base64 too).
//! - [`mutate`]: byte-level and JSON-aware mutations.
//! - [`engine`]: the time-bounded loop, panic capture, crash files and the report.
//! - [`targets`]: the entry points under test, each `fn(&[u8]) -> u64`.

pub mod corpus;
pub mod engine;
pub mod mutate;
pub mod targets;
