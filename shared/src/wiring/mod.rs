//! One wiring per runtime: the only places that build the functions' deps.
//!
//! - [`aws`]: the Lambda functions (environment, SDK clients, secrets read at cold start).
//! - `local` (feature `sqlite`): the embedded SQLite backend, used by `wa dev` and
//!   the tests.
//!
//! Both build a [`Ports`](crate::app::Ports) once and give each function only what it
//! uses: only the sender gets a Graph client and a token source.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "sqlite")]
pub mod local;
