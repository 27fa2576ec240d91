//! End-to-end tests: the built `wa` binary runs `wa dev` on free ports (SQLite store,
//! embedded Graph sandbox) and the tests talk to it over HTTP, like a product and
//! Meta would. Nothing is mocked: intake, sender, webhook and reconciler are the
//! Lambda handlers, wired by `wa dev`.

mod commands;
mod durability;
mod events;
mod faults;
mod intake;
mod isolation;
mod lifecycle;
mod quotas;
mod secrets_in_logs;
mod support;
