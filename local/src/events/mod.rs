//! Events out, locally: `wa dev` delivers each tenant's events (DESIGN §10) to the
//! tenant's HTTP endpoints, signed as the Standard Webhooks specification says,
//! with retries over more than a day, dead letters and replay.
//!
//! ```toml
//! [[tenants.endpoints]]
//! url = "http://127.0.0.1:9000/hooks"
//! secret = "whsec_..."                              # base64 of 24..=64 random bytes
//! types = ["message.delivered", "message.failed"]   # optional; default: every type
//! ```
//!
//! # What is sent
//!
//! One event per `POST`, its body the event JSON (`docs/events/README.md`) exactly as
//! signed, `Content-Type: application/json`, and three headers ([`signing`]):
//! - `webhook-id`: the event's own `id`. It is stable (derived from what the event
//!   describes), the same on every attempt and replay: receivers dedupe on it.
//! - `webhook-timestamp`: the attempt's send time, in seconds.
//! - `webhook-signature`: `v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`,
//!   keyed with the bytes of the endpoint's `whsec_` secret.
//!
//! Delivery is **at least once and unordered**: several attempts of one endpoint run
//! at once and a failed one is retried later, so order a message's events by
//! `data.sequence`, not by arrival, and drop ids already seen.
//!
//! # Where it comes from
//!
//! The message store writes a message's events into the outbox (the event log) in
//! the transaction of its transition, and the webhook appends inbound, opt-out and
//! template events; nothing else knows about endpoints. Each endpoint has a cursor
//! into its tenant's log ([`store`]): a fan-out reads the events after it (through
//! the [`EventLog`](wa_shared::ports::EventLog) port) and, in one transaction,
//! inserts one pending delivery per event the endpoint's `types` want and moves the
//! cursor. A new endpoint starts at the end of its tenant's log; `wa events replay`
//! sends it older events.
//!
//! # Attempts, retries, dead letters, disabling
//!
//! A 2xx answer delivers. Anything else, a redirect included (never followed), a
//! timeout (10 s for the whole exchange by default, `[events] timeout_ms`) or a
//! connection error fails the attempt; at most 64 KiB of an answer are read. After
//! a failure the next attempt waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
//! (Standard Webhooks' schedule, 27.6 h in all; [`RETRY_SCHEDULE`]); the 8th failure
//! makes the delivery a dead letter. `[events] time_scale` multiplies every wait
//! (tests run a day of retries in seconds).
//!
//! An endpoint whose attempts have all failed for `disable_after` (3 days, scaled
//! too) is disabled: logged at error level, shown on the status page, no attempt
//! until `wa events replay` enables it again. Its new events still queue up (the
//! backlog the status page shows).
//!
//! # Isolation
//!
//! Each endpoint has its own task, and at most `[events] max_in_flight` (4) attempts
//! in flight: a slow or dead endpoint uses its own slots only and never delays
//! another endpoint's, or another tenant's, events.
//!
//! # Crashes
//!
//! Every step is one SQLite transaction (fan-out with its cursor; an attempt's
//! outcome with the endpoint's health). After a `kill -9` the deliveries that were
//! in flight are still pending and are sent again: nothing is lost, and a receiver
//! may see an id twice.
//!
//! # URLs and secrets
//!
//! `https://` only, except plain `http://` to 127.0.0.1 (any 127/8 address),
//! `localhost` or `[::1]` ([`check_url`]); no credentials or fragment in the URL.
//! A secret is `whsec_` + standard base64 (padding optional) of 24 to 64 bytes; a bad
//! one stops `wa dev` at start with the tenant and endpoint named. Secrets are held
//! in [`WebhookSecret`] (redacted `Debug`, zeroed on drop) and never logged; errors
//! never quote them.

pub mod dispatcher;
pub mod endpoint;
pub mod signing;
pub mod store;

pub use dispatcher::{Attempt, Dispatcher, MAX_ANSWER_BYTES};
pub use endpoint::{
    EndpointConfig, EndpointError, EventsSettings, MAX_ATTEMPTS, RETRY_SCHEDULE, check_url,
    endpoint_key,
};
pub use signing::{SecretError, VerifyError, WebhookSecret};
pub use store::{DeliveryError, DeliveryStore, EndpointHealth, Replayed};
