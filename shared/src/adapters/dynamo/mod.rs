//! DynamoDB adapters.

pub mod directory;
