//! Performance and cost measurement of the pipeline (issue 15; `make perf`,
//! `docs/performance.md`):
//! - [`meter`]: an AWS call meter in front of moto, counting calls and DynamoDB units;
//! - [`item_size`]: DynamoDB's item size and request unit rules;
//! - [`cost`]: those counts, Lambda time and logs turned into dollars per million
//!   messages at list prices;
//! - the `hello-lambda` binary: the baseline Lambda init times are compared with.

pub mod cost;
pub mod item_size;
pub mod meter;
