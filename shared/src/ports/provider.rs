//! The `Provider` port: hand one message to WhatsApp (the Graph API or the sandbox).
//!
//! One call is one attempt. Retries, pacing and state changes belong to the sender;
//! the provider only says what happened, as a [`SendOutcome`], so transport
//! failures and Graph answers are handled by the same `match`.

use crate::domain::PhoneNumberId;
use crate::domain::graph::{SendEndpoint, SendOutcome};
use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::Value;
use std::fmt;

/// Everything one send attempt needs (not the caller's `SendRequest`: this is what
/// the provider gets, a built payload for one phone number). Borrowed, because the sender already holds the
/// tenant's token and the built payload, and a send should not copy a secret.
#[derive(Clone, Copy)]
pub struct ProviderRequest<'a> {
    /// The business phone number's id, the `{PHONE_NUMBER_ID}` of the send URL.
    pub phone_number_id: &'a PhoneNumberId,
    /// `/messages`, or `/marketing_messages` (Marketing Messages API, same body).
    pub endpoint: SendEndpoint,
    /// The tenant's Graph access token, sent as `Authorization: Bearer …`.
    pub token: &'a SecretString,
    /// The Graph request body, sent unchanged (built by the payload builder).
    pub body: &'a Value,
}

/// Shows the phone number id only: the token is a secret, and the body holds the
/// recipient and message text, which logs must not carry whole.
impl fmt::Debug for ProviderRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRequest")
            .field("phone_number_id", self.phone_number_id)
            .field("endpoint", &self.endpoint)
            .field("token", &"[REDACTED]")
            .field("body", &"[…]")
            .finish()
    }
}

/// Sends one message for a tenant. Implementations never panic and never return
/// an error type: a failure of any kind (an error answer, a refused connection, a
/// timeout after the request was written) is a [`SendOutcome::Failed`] whose
/// class says whether the sender may retry.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Make one send attempt and classify what came back.
    async fn send(&self, request: ProviderRequest<'_>) -> SendOutcome;
}
