//! Ports: the few traits through which the application does I/O (DESIGN §2).
//!
//! Each is a small `Send + Sync` async trait held as `Arc<dyn Port>`, with one
//! adapter per backend under [`crate::adapters`].

pub mod provider;
