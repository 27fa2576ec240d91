//! The integration tests of `wa-cli`, one binary: the operator commands on SQLite and
//! on moto (`ops`), `wa sandbox` (`sandbox_smoke`), `wa soak` (`soak`), and the
//! end-to-end tests of the built `wa dev` over HTTP (`e2e`). They belong to this package so Cargo builds the
//! `wa` binary they run (`CARGO_BIN_EXE_wa`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod e2e;
mod ops;
mod sandbox_smoke;
mod soak;
