//! `SecretsManagerEndpointSecrets`: the [`EndpointSecrets`] port on AWS Secrets
//! Manager. An endpoint's secret is the secret `{prefix}{tenant}/{endpoint id}`, its
//! string the `whsec_…` text; the registry keeps its ARN. Only secrets under the
//! prefix are read (the function's IAM policy says the same), and no error quotes a
//! secret's value.

use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::TenantId;
use crate::domain::endpoints::signing::WebhookSecret;
use crate::ports::{EndpointRegistryError, EndpointSecrets};
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

/// The Secrets Manager [`EndpointSecrets`].
#[derive(Debug)]
pub struct SecretsManagerEndpointSecrets {
    client: Client,
    prefix: String,
    calls: CallCounter,
}

fn backend(
    operation: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> EndpointRegistryError {
    EndpointRegistryError::Backend {
        operation,
        source: e.into(),
    }
}

impl SecretsManagerEndpointSecrets {
    /// Secrets named `prefix…` (e.g. `prod/wa/endpoints/`), with a client built from
    /// `config`.
    pub fn new(config: &SdkConfig, prefix: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            prefix: prefix.into(),
            calls: CallCounter::new(),
        }
    }

    /// AWS calls made so far, by operation.
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    /// Whether `secret_ref` names a secret under the prefix (a name or an ARN).
    pub fn allows(&self, secret_ref: &str) -> bool {
        let name = match secret_ref.split_once(":secret:") {
            Some((arn, name)) if arn.starts_with("arn:") => name,
            _ => secret_ref,
        };
        !self.prefix.is_empty() && name.starts_with(&self.prefix) && name.len() > self.prefix.len()
    }
}

#[async_trait]
impl EndpointSecrets for SecretsManagerEndpointSecrets {
    async fn create(
        &self,
        tenant: &TenantId,
        endpoint: &str,
        secret: &WebhookSecret,
    ) -> Result<String, EndpointRegistryError> {
        let name = format!("{}{tenant}/{endpoint}", self.prefix);
        self.calls.record("CreateSecret");
        let out = self
            .client
            .create_secret()
            .name(&name)
            .description(format!(
                "Standard Webhooks secret of {tenant}'s event endpoint {endpoint}"
            ))
            .secret_string(secret.to_whsec())
            .send()
            .await
            .map_err(|e| backend("CreateSecret", e))?;
        Ok(out.arn().map_or(name, str::to_owned))
    }

    async fn read(&self, secret_ref: &str) -> Result<WebhookSecret, EndpointRegistryError> {
        if !self.allows(secret_ref) {
            return Err(backend(
                "GetSecretValue",
                format!("{secret_ref:?} is not under the endpoint secrets' prefix"),
            ));
        }
        self.calls.record("GetSecretValue");
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_ref)
            .send()
            .await
            .map_err(|e| backend("GetSecretValue", e))?;
        let text = out
            .secret_string()
            .ok_or_else(|| backend("GetSecretValue", "the secret has no string value"))?;
        WebhookSecret::parse(text.trim()).map_err(|e| EndpointRegistryError::Corrupt {
            key: secret_ref.to_owned(),
            source: Box::new(e),
        })
    }

    async fn delete(&self, secret_ref: &str) -> Result<(), EndpointRegistryError> {
        if !self.allows(secret_ref) {
            return Err(backend(
                "DeleteSecret",
                format!("{secret_ref:?} is not under the endpoint secrets' prefix"),
            ));
        }
        self.calls.record("DeleteSecret");
        self.client
            .delete_secret()
            .secret_id(secret_ref)
            .recovery_window_in_days(7)
            .send()
            .await
            .map_err(|e| backend("DeleteSecret", e))?;
        Ok(())
    }
}
