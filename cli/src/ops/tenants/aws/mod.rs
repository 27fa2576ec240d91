//! What only AWS has per tenant (infra/README.md, "What the CLI must create"):
//! the queues' encryption and exact settings, the event source mapping to the
//! sender, the Graph token secret and the DLQ alarm. Each is first observed with
//! read-only calls, then created or updated only where it differs.
//!
//! - `steps`: the plan's steps, from what was observed.
//! - `apply`: the changes.

mod apply;
mod steps;

use crate::ops::backend::Aws;
use anyhow::Context;
use aws_sdk_cloudwatch::types::{AlarmType, MetricAlarm};
use aws_sdk_lambda::types::EventSourceMappingConfiguration;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::QueueAttributeName;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use wa_shared::domain::TenantId;
use wa_shared::ports::{QueueSpec, queue::DEAD_LETTER_SUFFIX};
use wa_shared::queues::SEND;

/// Period of the DLQ alarm, seconds.
const ALARM_PERIOD_SECONDS: i32 = 300;
const ALARM_METRIC: &str = "ApproximateNumberOfMessagesVisible";
const ALARM_NAMESPACE: &str = "AWS/SQS";
const TREAT_MISSING_DATA: &str = "notBreaching";

/// The names of one tenant's AWS resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsNames {
    /// `{SendQueueNamePrefix}T`.
    pub queue: String,
    /// `{SendQueueNamePrefix}T-dlq`.
    pub dlq: String,
    /// `{TenantSecretPrefix}T`.
    pub secret: String,
    /// `{SendQueueNamePrefix}T-dlq-depth`, i.e. `{stage}-{prefix}-send-T-dlq-depth`.
    pub alarm: String,
}

impl AwsNames {
    /// Names from the stack outputs.
    pub fn new(aws: &Aws, tenant: &TenantId) -> anyhow::Result<Self> {
        let queue = format!("{}{tenant}", aws.settings.send_queue_prefix()?);
        let dlq = format!("{queue}{DEAD_LETTER_SUFFIX}");
        Ok(Self {
            secret: format!("{}{tenant}", aws.settings.tenant_secret_prefix()?),
            alarm: format!("{dlq}-depth"),
            queue,
            dlq,
        })
    }
}

/// A queue as SQS describes it.
#[derive(Debug, Clone)]
pub struct QueueInfo {
    /// Its URL.
    pub url: String,
    /// Every attribute, by name.
    pub attributes: HashMap<String, String>,
}

impl QueueInfo {
    fn get(&self, name: &str) -> &str {
        self.attributes.get(name).map_or("(unset)", String::as_str)
    }

    /// The queue's ARN.
    pub fn arn(&self) -> Option<&str> {
        self.attributes.get("QueueArn").map(String::as_str)
    }
}

/// The tenant's secret as Secrets Manager describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretState {
    /// No such secret.
    Missing,
    /// Scheduled for deletion: restore it.
    Deleted,
    /// Present; `holds_token` is `None` when its value was not compared.
    Present {
        /// Whether its value is the given token.
        holds_token: Option<bool>,
    },
}

/// Everything observed before changing anything.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The send queue.
    pub queue: Option<QueueInfo>,
    /// Its dead-letter queue.
    pub dlq: Option<QueueInfo>,
    /// The mapping of the send queue to the sender.
    pub mapping: Option<EventSourceMappingConfiguration>,
    /// The token secret.
    pub secret: SecretState,
    /// The DLQ alarm.
    pub alarm: Option<MetricAlarm>,
}

/// The AWS clients and settings for one tenant.
#[derive(Debug, Clone)]
pub struct AwsTenant {
    tenant: TenantId,
    /// Resource names.
    pub names: AwsNames,
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
    secrets: aws_sdk_secretsmanager::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    sender_arn: String,
    alarm_topic: String,
    batch_size: u32,
    spec: QueueSpec,
}

/// The settings of the send queue pair: [`SEND`], with the visibility timeout and
/// receive count the deployed stack reports in its outputs (they default to
/// [`SEND`]'s own, and differ only for a stack built from another revision).
pub fn queue_spec(aws: &Aws) -> QueueSpec {
    QueueSpec {
        max_receive_count: aws.settings.send_queue_max_receive_count,
        visibility_timeout: std::time::Duration::from_secs(u64::from(
            aws.settings.send_queue_visibility_timeout,
        )),
        ..SEND.spec
    }
}

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl AwsTenant {
    /// Clients on `aws` for `tenant`; fails when an output the provisioning needs is missing.
    pub fn new(aws: &Aws, tenant: &TenantId) -> anyhow::Result<Self> {
        Ok(Self {
            tenant: tenant.clone(),
            names: AwsNames::new(aws, tenant)?,
            sqs: aws_sdk_sqs::Client::new(&aws.sdk),
            lambda: aws_sdk_lambda::Client::new(&aws.sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&aws.sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&aws.sdk),
            sender_arn: aws.settings.sender_function_arn()?.to_owned(),
            alarm_topic: aws.settings.alarm_topic_arn()?.to_owned(),
            batch_size: aws.settings.send_batch_size,
            spec: queue_spec(aws),
        })
    }

    /// The queue settings `ensure_queue` must apply.
    pub fn spec(&self) -> &QueueSpec {
        &self.spec
    }

    /// Look at every resource (read-only). `token` is compared with the secret's value.
    pub async fn observe(&self, token: Option<&SecretString>) -> anyhow::Result<Observed> {
        let queue = self.queue_info(&self.names.queue).await?;
        let dlq = self.queue_info(&self.names.dlq).await?;
        let mapping = match queue.as_ref().and_then(QueueInfo::arn) {
            Some(arn) => self.mapping(arn).await?,
            None => None,
        };
        Ok(Observed {
            queue,
            dlq,
            mapping,
            secret: self.secret_state(token).await?,
            alarm: self.alarm().await?,
        })
    }

    async fn queue_info(&self, name: &str) -> anyhow::Result<Option<QueueInfo>> {
        let url = match self.sqs.get_queue_url().queue_name(name).send().await {
            Ok(out) => out.queue_url().unwrap_or_default().to_owned(),
            Err(e)
                if matches!(
                    e.code(),
                    Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e).with_context(|| format!("looking up queue {name}")),
        };
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .with_context(|| format!("reading the attributes of queue {name}"))?;
        let attributes = out
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(QueueInfo { url, attributes }))
    }

    async fn mapping(
        &self,
        queue_arn: &str,
    ) -> anyhow::Result<Option<EventSourceMappingConfiguration>> {
        let out = self
            .lambda
            .list_event_source_mappings()
            .function_name(&self.sender_arn)
            .event_source_arn(queue_arn)
            .send()
            .await
            .context("listing the sender's event source mappings")?;
        Ok(out.event_source_mappings().first().cloned())
    }

    async fn secret_state(&self, token: Option<&SecretString>) -> anyhow::Result<SecretState> {
        let name = &self.names.secret;
        let described = match self.secrets.describe_secret().secret_id(name).send().await {
            Ok(d) => d,
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                return Ok(SecretState::Missing);
            }
            Err(e) => return Err(e).with_context(|| format!("describing secret {name}")),
        };
        if described.deleted_date().is_some() {
            return Ok(SecretState::Deleted);
        }
        let Some(token) = token else {
            return Ok(SecretState::Present { holds_token: None });
        };
        let holds = match self.secrets.get_secret_value().secret_id(name).send().await {
            Ok(v) => v.secret_string() == Some(token.expose_secret()),
            // A secret created without a value has no AWSCURRENT version yet.
            Err(e) if e.code() == Some("ResourceNotFoundException") => false,
            Err(e) => return Err(e).with_context(|| format!("reading secret {name}")),
        };
        Ok(SecretState::Present {
            holds_token: Some(holds),
        })
    }

    async fn alarm(&self) -> anyhow::Result<Option<MetricAlarm>> {
        let out = self
            .cloudwatch
            .describe_alarms()
            .alarm_names(&self.names.alarm)
            .alarm_types(AlarmType::MetricAlarm)
            .send()
            .await
            .with_context(|| format!("describing alarm {}", self.names.alarm))?;
        Ok(out.metric_alarms().first().cloned())
    }
}
