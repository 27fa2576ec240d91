//! `TokenSource` adapters: where a tenant's `token_ref` points.
//!
//! - [`EnvTokenSource`]: `env:VAR` reads the process environment (local runs, tests).
//! - [`StaticTokenSource`]: a fixed map from reference to token (`wa dev`'s config).
//! - [`SecretsManagerTokenSource`]: a Secrets Manager secret name or ARN under the
//!   stage's tenant prefix (AWS), cached briefly; `env:` references still work.
//!
//! No error or log line carries a token.

use crate::ports::tokens::{TokenError, TokenSource};
use async_trait::async_trait;
use secrecy::SecretString;
use std::collections::HashMap;

#[cfg(feature = "aws")]
mod secrets_manager;
#[cfg(feature = "aws")]
pub use secrets_manager::{SECRET_CACHE_TTL, SecretsManagerTokenSource, token_from_secret_string};

/// Prefix of references read from the environment.
pub const ENV_PREFIX: &str = "env:";

/// Reads `env:VAR` references from the process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvTokenSource;

impl EnvTokenSource {
    /// The token of an `env:VAR` reference, if it is one and the variable is set.
    pub fn resolve(token_ref: &str) -> Result<SecretString, TokenError> {
        let unresolvable = || TokenError::Unresolvable(token_ref.to_owned());
        let var = token_ref
            .strip_prefix(ENV_PREFIX)
            .ok_or_else(unresolvable)?;
        match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => Ok(SecretString::from(value)),
            _ => Err(unresolvable()),
        }
    }
}

#[async_trait]
impl TokenSource for EnvTokenSource {
    async fn graph_token(&self, token_ref: &str) -> Result<SecretString, TokenError> {
        Self::resolve(token_ref)
    }
}

/// A fixed map of references to tokens; unknown `env:` references fall back to the
/// environment.
#[derive(Debug, Default)]
pub struct StaticTokenSource {
    tokens: HashMap<String, SecretString>,
}

impl StaticTokenSource {
    /// A source answering these `(reference, token)` pairs.
    pub fn new(tokens: impl IntoIterator<Item = (String, SecretString)>) -> Self {
        Self {
            tokens: tokens.into_iter().collect(),
        }
    }
}

#[async_trait]
impl TokenSource for StaticTokenSource {
    async fn graph_token(&self, token_ref: &str) -> Result<SecretString, TokenError> {
        match self.tokens.get(token_ref) {
            Some(token) => Ok(token.clone()),
            None => EnvTokenSource::resolve(token_ref),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn env_references_read_the_environment_and_nothing_else() {
        // Cargo sets CARGO_PKG_NAME for test processes (writing the environment is
        // `unsafe` in edition 2024, which this crate forbids).
        let token = EnvTokenSource
            .graph_token("env:CARGO_PKG_NAME")
            .await
            .unwrap();
        assert_eq!(token.expose_secret(), env!("CARGO_PKG_NAME"));
        for bad in ["CARGO_PKG_NAME", "env:WA_TOKENS_TEST_UNSET", "arn:x"] {
            let e = EnvTokenSource.graph_token(bad).await.unwrap_err();
            assert!(matches!(e, TokenError::Unresolvable(_)), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_static_map_answers_its_references() {
        let source = StaticTokenSource::new([("demo".to_owned(), SecretString::from("abc"))]);
        assert_eq!(
            source.graph_token("demo").await.unwrap().expose_secret(),
            "abc"
        );
        assert!(source.graph_token("other").await.is_err());
    }
}
