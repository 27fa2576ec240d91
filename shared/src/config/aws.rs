//! The AWS wiring of each function: DynamoDB store and directory, SQS queues, the
//! Graph client, Secrets Manager tokens and stdout metrics, built once at cold start.
//!
//! Endpoints come from the standard SDK configuration (`AWS_ENDPOINT_URL` reaches
//! moto), so tests run this same code.

use super::{CommonConfig, ConfigError, IntakeConfig, SenderConfig};
use crate::adapters::aws::{SdkConfig, load_sdk_config};
use crate::adapters::graph::{GraphConfig, GraphProvider};
use crate::adapters::tokens::{EnvTokenSource, SecretsManagerTokenSource};
use crate::adapters::{DynamoDirectory, DynamoMessageStore, SqsWorkQueue, SystemClock};
use crate::app::Deps;
use crate::app::intake::IntakeSettings;
use crate::app::sender::SenderSettings;
use crate::metrics::{Metrics, MetricsSink};
use crate::ports::tokens::TokenSource;
use std::sync::Arc;

pub(super) fn graph(config: &GraphConfig) -> Result<GraphProvider, ConfigError> {
    GraphProvider::new(config).map_err(|e| ConfigError::Invalid {
        var: "WA_GRAPH_BASE_URL",
        reason: e.to_string(),
    })
}

pub(super) fn deps(
    common: &CommonConfig,
    sdk: &SdkConfig,
    provider: GraphProvider,
    tokens: Arc<dyn TokenSource>,
    intake: IntakeSettings,
    sender: SenderSettings,
) -> Deps {
    Deps {
        store: Arc::new(DynamoMessageStore::new(sdk, common.messages_table.clone())),
        directory: Arc::new(DynamoDirectory::new(sdk, common.directory_table.clone())),
        queue: Arc::new(SqsWorkQueue::new(sdk)),
        provider: Arc::new(provider),
        tokens,
        clock: Arc::new(SystemClock),
        metrics: Metrics::new(MetricsSink::Stdout, &common.stage),
        lifecycle: common.lifecycle.clone(),
        intake,
        sender,
        webhook: Default::default(),
        reconciler: Default::default(),
    }
}

impl IntakeConfig {
    /// Intake's dependencies on AWS. Intake never calls Graph; its provider is
    /// the default client, unused.
    pub async fn aws_deps(&self) -> Result<Deps, ConfigError> {
        let sdk = load_sdk_config().await;
        Ok(deps(
            &self.common,
            &sdk,
            graph(&GraphConfig::default())?,
            Arc::new(EnvTokenSource),
            self.settings(),
            SenderSettings::default(),
        ))
    }
}

impl SenderConfig {
    /// The sender's dependencies on AWS: Graph at `WA_GRAPH_BASE_URL`, tokens from
    /// Secrets Manager under `WA_TENANT_SECRET_PREFIX`.
    pub async fn aws_deps(&self) -> Result<Deps, ConfigError> {
        let sdk = load_sdk_config().await;
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let tokens = SecretsManagerTokenSource::new(secrets, self.tenant_secret_prefix.clone());
        Ok(deps(
            &self.common,
            &sdk,
            graph(&self.graph)?,
            Arc::new(tokens),
            IntakeSettings::default(),
            self.settings(),
        ))
    }
}
