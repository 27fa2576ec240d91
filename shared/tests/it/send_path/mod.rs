//! The send path through its real handlers: intake (API Gateway v2 events) and the
//! sender (SQS events), on the embedded adapters with a manual clock.

// Test code: a failed expectation is a failed test.

mod holds;
mod intake;
mod marketing_limit;
mod moto;
mod pacing;
mod pacing_load;
mod quotas;
mod sandbox;
mod sender;
mod sending_number;
mod series;
mod support;
