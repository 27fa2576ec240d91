//! The AWS wiring of each function: DynamoDB store and directory, SQS queues, stdout
//! metrics; the sender adds the Graph client and Secrets Manager tokens, the webhook
//! its two secrets, read once at cold start, the `events` function the EventBridge bus.
//!
//! Endpoints come from the standard SDK configuration (`AWS_ENDPOINT_URL` reaches
//! moto), so tests run this same code.

use crate::adapters::aws::{SdkConfig, load_sdk_config};
use crate::adapters::graph::GraphProvider;
use crate::adapters::tokens::SecretsManagerTokenSource;
use crate::adapters::{
    DynamoCostLedger, DynamoDirectory, DynamoEventLog, DynamoMessageStore, DynamoPacingLedger,
    DynamoQuotaLedger, DynamoTrafficSeries, EventBridgePublisher, SqsWorkQueue, SystemClock,
};
use crate::adapters::{DynamoEndpointRegistry, SecretsManagerEndpointSecrets, SqsDeliveryQueue};
use crate::app::delivery::DeliveryDeps;
use crate::app::{EventsDeps, IntakeDeps, Ports, ReconcilerDeps, SenderDeps, WebhookDeps};
use crate::config::{
    CommonConfig, ConfigError, DeliveryConfig, EventsConfig, IntakeConfig, ReconcilerConfig,
    SenderConfig, WebhookConfig,
};
use crate::domain::ids::PhoneNumber;
use crate::metrics::{Metrics, MetricsSink};
use crate::ports::series::NoSeries;
use std::sync::Arc;

/// The ports on DynamoDB and SQS for the tables of `common`.
pub fn ports(common: &CommonConfig, sdk: &SdkConfig) -> Ports {
    Ports {
        store: Arc::new(DynamoMessageStore::new(sdk, common.messages_table.clone())),
        directory: Arc::new(DynamoDirectory::new(sdk, common.directory_table.clone())),
        queue: Arc::new(SqsWorkQueue::new(sdk)),
        events: Arc::new(DynamoEventLog::new(sdk, common.events_table.clone())),
        series: Arc::new(NoSeries),
        clock: Arc::new(SystemClock),
        metrics: Metrics::new(MetricsSink::Stdout, &common.stage),
        lifecycle: common.lifecycle.clone(),
    }
}

/// Intake's deps: its directory reads cached for `WA_LOOKUP_CACHE_MS`, the quota
/// ledger and the traffic series (its suppressions) on `WA_QUOTAS_TABLE`.
pub async fn intake(config: &IntakeConfig) -> Result<IntakeDeps, ConfigError> {
    // Every request's recipient meets libphonenumber's metadata.
    PhoneNumber::warm_up_in_background();
    let sdk = load_sdk_config().await;
    Ok(IntakeDeps {
        ports: ports(&config.common, &sdk)
            .with_directory_cache(config.lookup_cache_ttl)
            .with_series(Arc::new(DynamoTrafficSeries::new(
                &sdk,
                config.quotas_table.clone(),
            ))),
        quotas: Arc::new(DynamoQuotaLedger::new(&sdk, config.quotas_table.clone())),
        settings: config.settings(),
    })
}

/// The sender's deps: Graph at `WA_GRAPH_BASE_URL`, tokens from Secrets Manager
/// under `WA_TENANT_SECRET_PREFIX`, send schedules on `WA_QUOTAS_TABLE`.
pub async fn sender(config: &SenderConfig) -> Result<SenderDeps, ConfigError> {
    // Each record's request is validated again, its recipient with the metadata.
    PhoneNumber::warm_up_in_background();
    let sdk = load_sdk_config().await;
    let provider = GraphProvider::new(&config.graph).map_err(|e| ConfigError::Invalid {
        var: "WA_GRAPH_BASE_URL",
        reason: e.to_string(),
    })?;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let tokens = SecretsManagerTokenSource::new(secrets, config.tenant_secret_prefix.clone());
    Ok(SenderDeps {
        ports: ports(&config.common, &sdk)
            .with_directory_cache(config.lookup_cache_ttl)
            .with_series(Arc::new(DynamoTrafficSeries::new(
                &sdk,
                config.quotas_table.clone(),
            ))),
        provider: Arc::new(provider),
        tokens: Arc::new(tokens),
        pacing: Arc::new(DynamoPacingLedger::new(&sdk, config.quotas_table.clone())),
        settings: config.settings(),
    })
}

/// The webhook's deps, with the app secret and the verify token read now, the cost
/// ledger on `WA_QUOTAS_TABLE`.
pub async fn webhook(config: &WebhookConfig) -> Result<WebhookDeps, ConfigError> {
    let sdk = load_sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    // Both at once: each is a round trip of the cold start (issue 15's init goal).
    let (app_secret, verify_token) = tokio::try_join!(
        secret(&secrets, &config.app_secret_arn, "WA_APP_SECRET_ARN"),
        secret(&secrets, &config.verify_token_arn, "WA_VERIFY_TOKEN_ARN"),
    )?;
    Ok(WebhookDeps {
        ports: ports(&config.common, &sdk).with_series(Arc::new(DynamoTrafficSeries::new(
            &sdk,
            config.quotas_table.clone(),
        ))),
        costs: Arc::new(DynamoCostLedger::new(&sdk, config.quotas_table.clone())),
        settings: config.settings(&app_secret, verify_token),
    })
}

/// The reconciler's deps.
pub async fn reconciler(config: &ReconcilerConfig) -> Result<ReconcilerDeps, ConfigError> {
    let sdk = load_sdk_config().await;
    Ok(ReconcilerDeps {
        ports: ports(&config.common, &sdk),
        settings: config.settings.clone(),
    })
}

/// The `events` function's deps: the event log on DynamoDB, the stage's bus
/// (`WA_EVENT_BUS_NAME`) on EventBridge.
pub async fn events(config: &EventsConfig) -> Result<EventsDeps, ConfigError> {
    let sdk = load_sdk_config().await;
    Ok(EventsDeps {
        ports: ports(&config.common, &sdk),
        publisher: Arc::new(EventBridgePublisher::new(
            &sdk,
            config.event_bus_name.clone(),
        )),
        settings: config.settings.clone(),
    })
}

/// The `delivery` function's deps (and `wa events replay`'s on AWS): endpoints in the
/// directory table, their secrets in Secrets Manager under `WA_ENDPOINT_SECRET_PREFIX`,
/// jobs on `WA_DELIVERY_QUEUE_URL`, the event log for replays.
pub async fn delivery(config: &DeliveryConfig) -> Result<DeliveryDeps, ConfigError> {
    let sdk = load_sdk_config().await;
    delivery_with_sdk(config, &sdk)
}

/// [`delivery`] on an SDK configuration already loaded.
pub fn delivery_with_sdk(
    config: &DeliveryConfig,
    sdk: &SdkConfig,
) -> Result<DeliveryDeps, ConfigError> {
    DeliveryDeps::new(
        Arc::new(DynamoEndpointRegistry::new(
            sdk,
            config.common.directory_table.clone(),
        )),
        Arc::new(SecretsManagerEndpointSecrets::new(
            sdk,
            config.secret_prefix.clone(),
        )),
        Arc::new(SqsDeliveryQueue::new(sdk, config.queue_url.clone())),
        Arc::new(DynamoEventLog::new(sdk, config.common.events_table.clone())),
        Arc::new(SystemClock),
        Metrics::new(MetricsSink::Stdout, &config.common.stage),
        config.settings.clone(),
    )
    .map_err(|e| ConfigError::Invalid {
        var: "WA_DELIVERY_TIMEOUT_MS",
        reason: format!("the HTTP client could not be built: {e}"),
    })
}

/// A secret's string value. Errors name the variable, never the value.
async fn secret(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
    var: &'static str,
) -> Result<String, ConfigError> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| ConfigError::Invalid {
            var,
            reason: format!(
                "the secret could not be read: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ),
        })?;
    out.secret_string()
        .map(str::to_owned)
        .filter(|s| !s.trim().is_empty())
        .ok_or(ConfigError::Invalid {
            var,
            reason: "the secret has no string value".into(),
        })
}
