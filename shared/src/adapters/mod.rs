//! Adapters: one implementation of a [port](crate::ports) per backend.

pub mod graph;
