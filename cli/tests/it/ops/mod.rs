//! The operator commands as a user runs them: the built `wa` binary on a SQLite file
//! and on moto (skipped without moto, failing under `make test`, see
//! `wa_testkit::moto`), with the Graph sandbox for template syncs.

mod costs;
mod dlq;
mod doctor;
mod endpoints;
mod keys;
mod messages;
mod support;
mod templates;
mod tenants;
mod tenants_aws;
