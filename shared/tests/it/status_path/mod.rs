//! The webhook and reconciler handlers end to end, with a manual clock: event JSON in,
//! stored state, queue contents and metrics out. Every case runs on the embedded
//! adapters (SQLite store, directory and queues); the important ones also on DynamoDB
//! and SQS on moto (`dynamo::` tests), and the lost answer against the Graph sandbox.

mod costs;
mod events;
mod inbox;
mod lost_answer;
mod management;
mod reconciler;
mod routing;
mod series;
mod statuses;
mod support;
mod webhook;
