//! The events function (`app::events`) end to end: stream records of the messages
//! table become logged events exactly once, and the events table's records reach
//! the bus (EventBridge on moto, or a fake publisher that refuses some entries);
//! the sample events of `events/events/` go through the same handler.

mod failures;
mod moto;
mod samples;
mod support;
