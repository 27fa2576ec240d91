//! `TokenSource`: resolves a tenant's `token_ref` to its Graph API token.
//!
//! Tokens never sit in the directory or in config files checked into a repo: the
//! profile names where the token lives (`env:VAR`, a Secrets Manager name, ...)
//! and an adapter fetches it.

use async_trait::async_trait;
use secrecy::SecretString;

/// Why a token could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The reference names nothing this source can read (shown without any secret).
    #[error("token reference {0:?} is not resolvable by this token source")]
    Unresolvable(String),
    /// The backend failed or could not be reached; the call may be retried.
    #[error("token backend failed during {operation}")]
    Backend {
        /// The operation that failed (e.g. `GetSecretValue`).
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Resolves token references to tokens.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// The token that `token_ref` names.
    async fn graph_token(&self, token_ref: &str) -> Result<SecretString, TokenError>;
}
