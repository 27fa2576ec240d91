//! Making the planned changes to the AWS-only resources.

use super::{
    ALARM_METRIC, ALARM_NAMESPACE, ALARM_PERIOD_SECONDS, AwsTenant, Observed, SecretState,
    TREAT_MISSING_DATA, int,
};
use anyhow::Context;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use aws_sdk_lambda::types::{FunctionResponseType, ScalingConfig};
use aws_sdk_sqs::types::QueueAttributeName;
use secrecy::{ExposeSecret, SecretString};

impl AwsTenant {
    /// Create, restore or update the secret.
    pub async fn apply_secret(
        &self,
        observed: &Observed,
        token: Option<&SecretString>,
    ) -> anyhow::Result<()> {
        let name = &self.names.secret;
        match observed.secret {
            SecretState::Missing => {
                self.secrets
                    .create_secret()
                    .name(name)
                    .description(format!(
                        "Graph API token of tenant {} (wa tenants add)",
                        self.tenant
                    ))
                    .set_secret_string(token.map(|t| t.expose_secret().to_owned()))
                    .send()
                    .await
                    .with_context(|| format!("creating secret {name}"))?;
                return Ok(());
            }
            SecretState::Deleted => {
                self.secrets
                    .restore_secret()
                    .secret_id(name)
                    .send()
                    .await
                    .with_context(|| format!("restoring secret {name}"))?;
            }
            SecretState::Present { .. } => {}
        }
        if let Some(token) = token {
            self.secrets
                .put_secret_value()
                .secret_id(name)
                .secret_string(token.expose_secret())
                .send()
                .await
                .with_context(|| format!("storing the token in secret {name}"))?;
        }
        Ok(())
    }

    /// Create or update the event source mapping of the send queue `queue_url`.
    pub async fn apply_mapping(
        &self,
        observed: &Observed,
        queue_url: &str,
        max_concurrency: u32,
    ) -> anyhow::Result<()> {
        let scaling = ScalingConfig::builder()
            .maximum_concurrency(int(max_concurrency))
            .build();
        match &observed.mapping {
            Some(mapping) => {
                let uuid = mapping
                    .uuid()
                    .context("the event source mapping has no UUID")?;
                self.lambda
                    .update_event_source_mapping()
                    .uuid(uuid)
                    .batch_size(int(self.batch_size))
                    .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                    .scaling_config(scaling)
                    .send()
                    .await
                    .context("updating the event source mapping")?;
            }
            None => {
                let arn = self.queue_arn(queue_url).await?;
                self.lambda
                    .create_event_source_mapping()
                    .event_source_arn(arn)
                    .function_name(&self.sender_arn)
                    .batch_size(int(self.batch_size))
                    .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                    .scaling_config(scaling)
                    .enabled(true)
                    .send()
                    .await
                    .context("creating the event source mapping")?;
            }
        }
        Ok(())
    }

    async fn queue_arn(&self, queue_url: &str) -> anyhow::Result<String> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .context("reading the send queue's ARN")?;
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .context("the send queue has no QueueArn")
    }

    /// Create or replace the DLQ alarm (PutMetricAlarm is an upsert).
    pub async fn apply_alarm(&self) -> anyhow::Result<()> {
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(&self.names.alarm)
            .alarm_description(self.alarm_description())
            .namespace(ALARM_NAMESPACE)
            .metric_name(ALARM_METRIC)
            .dimensions(
                Dimension::builder()
                    .name("QueueName")
                    .value(&self.names.dlq)
                    .build(),
            )
            .statistic(Statistic::Maximum)
            .period(ALARM_PERIOD_SECONDS)
            .evaluation_periods(1)
            .threshold(0.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .treat_missing_data(TREAT_MISSING_DATA)
            .alarm_actions(&self.alarm_topic)
            .ok_actions(&self.alarm_topic)
            .send()
            .await
            .with_context(|| format!("putting alarm {}", self.names.alarm))?;
        Ok(())
    }
}
