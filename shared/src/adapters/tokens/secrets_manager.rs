//! [`SecretsManagerTokenSource`]: tenants' Graph tokens in Secrets Manager (AWS only).

use super::{ENV_PREFIX, EnvTokenSource};
use crate::ports::tokens::{TokenError, TokenSource};
use async_trait::async_trait;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a token read from Secrets Manager is reused. Short, so a rotated token
/// is picked up within minutes without a deploy.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// Tenants' tokens in Secrets Manager, restricted to names under one prefix (the
/// sender's IAM policy allows only those anyway; checking here gives a clear error).
#[derive(Debug)]
pub struct SecretsManagerTokenSource {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, SecretString)>>,
}

impl SecretsManagerTokenSource {
    /// A source reading secrets named `prefix…` (or ARNs of them) with `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            ttl: SECRET_CACHE_TTL,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `token_ref` names a secret under the prefix: `prefix…`, or an ARN
    /// `arn:…:secret:prefix…`.
    pub fn allows(&self, token_ref: &str) -> bool {
        let name = match token_ref.split_once(":secret:") {
            Some((arn, name)) if arn.starts_with("arn:") => name,
            _ => token_ref,
        };
        !self.prefix.is_empty() && name.starts_with(&self.prefix) && name.len() > self.prefix.len()
    }

    fn cached(&self, token_ref: &str) -> Option<SecretString> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(token_ref)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, t)| t.clone())
    }
}

/// The token inside a secret: the whole string, or the `token` field of a JSON object.
pub fn token_from_secret_string(secret: &str) -> Option<SecretString> {
    let trimmed = secret.trim();
    if trimmed.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        let token = value.get("token")?.as_str()?.trim();
        return (!token.is_empty()).then(|| SecretString::from(token.to_owned()));
    }
    (!trimmed.is_empty()).then(|| SecretString::from(trimmed.to_owned()))
}

#[async_trait]
impl TokenSource for SecretsManagerTokenSource {
    async fn graph_token(&self, token_ref: &str) -> Result<SecretString, TokenError> {
        if token_ref.starts_with(ENV_PREFIX) {
            return EnvTokenSource::resolve(token_ref);
        }
        if !self.allows(token_ref) {
            return Err(TokenError::Unresolvable(token_ref.to_owned()));
        }
        if let Some(token) = self.cached(token_ref) {
            return Ok(token);
        }
        let answer = self
            .client
            .get_secret_value()
            .secret_id(token_ref)
            .send()
            .await
            .map_err(|e| TokenError::Backend {
                operation: "GetSecretValue",
                source: Box::new(e),
            })?;
        let token = answer
            .secret_string()
            .and_then(token_from_secret_string)
            .ok_or_else(|| TokenError::Unresolvable(token_ref.to_owned()))?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(token_ref.to_owned(), (Instant::now(), token.clone()));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn only_secrets_under_the_prefix_are_read() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let source = SecretsManagerTokenSource::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            "dev/wa/tenants/",
        );
        assert!(source.allows("dev/wa/tenants/acme"));
        assert!(source.allows(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:dev/wa/tenants/acme-AbCdEf"
        ));
        assert!(!source.allows("dev/wa/tenants/"));
        assert!(!source.allows("prod/wa/tenants/acme"));
        assert!(!source.allows("arn:aws:secretsmanager:us-east-1:1:secret:other/acme"));
        // Refused before any call (this client has no endpoint or credentials).
        let e = source
            .graph_token("prod/wa/tenants/acme")
            .await
            .unwrap_err();
        assert!(matches!(e, TokenError::Unresolvable(_)));
    }

    #[test]
    fn secrets_are_raw_tokens_or_json_with_a_token_field() {
        let raw = token_from_secret_string(" EAAG123 \n").unwrap();
        assert_eq!(raw.expose_secret(), "EAAG123");
        let json = token_from_secret_string(r#"{"token": "EAAG456"}"#).unwrap();
        assert_eq!(json.expose_secret(), "EAAG456");
        assert!(token_from_secret_string("").is_none());
        assert!(token_from_secret_string(r#"{"other": "x"}"#).is_none());
    }
}
