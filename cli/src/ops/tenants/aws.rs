//! What only AWS has per tenant (infra/README.md, "What the CLI must create"):
//! the queues' encryption and exact settings, the event source mapping to the
//! sender, the Graph token secret and the DLQ alarm. Each is first observed with
//! read-only calls, then created or updated only where it differs.

use super::super::backend::Aws;
use super::super::plan::{Change, Step, diff};
use anyhow::Context;
use aws_sdk_cloudwatch::types::{AlarmType, ComparisonOperator, Dimension, MetricAlarm, Statistic};
use aws_sdk_lambda::types::{EventSourceMappingConfiguration, FunctionResponseType, ScalingConfig};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::QueueAttributeName;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use wa_shared::domain::TenantId;
use wa_shared::ports::{QueueSpec, queue::DEAD_LETTER_SUFFIX};

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

/// The settings of the send queue pair, from the stack outputs.
pub fn queue_spec(aws: &Aws) -> QueueSpec {
    QueueSpec {
        max_receive_count: aws.settings.send_queue_max_receive_count,
        visibility_timeout: std::time::Duration::from_secs(u64::from(
            aws.settings.send_queue_visibility_timeout,
        )),
        ..QueueSpec::default()
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

    /// The queue steps: DLQ, then the send queue.
    pub fn queue_steps(&self, observed: &Observed) -> [Step; 2] {
        let retention = self.spec.dead_letter_retention.as_secs().to_string();
        let dlq_wanted = [
            ("MessageRetentionPeriod", retention.as_str()),
            ("SqsManagedSseEnabled", "true"),
        ];
        let dlq = attribute_step(&self.names.dlq, observed.dlq.as_ref(), &dlq_wanted);

        let visibility = self.spec.visibility_timeout.as_secs().to_string();
        let queue_retention = self.spec.message_retention.as_secs().to_string();
        let wanted = [
            ("VisibilityTimeout", visibility.as_str()),
            ("MessageRetentionPeriod", queue_retention.as_str()),
            ("SqsManagedSseEnabled", "true"),
        ];
        let mut queue = attribute_step(&self.names.queue, observed.queue.as_ref(), &wanted);
        let redrive = format!(
            "RedrivePolicy: maxReceiveCount={} -> {}",
            self.spec.max_receive_count, self.names.dlq
        );
        match (&mut queue.change, &observed.queue) {
            (Change::Create, _) => queue.detail = format!("{}, {redrive}", queue.detail),
            (change, Some(info)) => {
                let dlq_arn = observed.dlq.as_ref().and_then(QueueInfo::arn);
                if !redrive_matches(info, dlq_arn, self.spec.max_receive_count) {
                    let have = info
                        .attributes
                        .get("RedrivePolicy")
                        .map_or("(none)", String::as_str);
                    let line = format!("{redrive} (was {have})");
                    match change {
                        Change::Update(diffs) => diffs.push(line),
                        _ => *change = Change::Update(vec![line]),
                    }
                }
            }
            (_, None) => {}
        }
        [dlq, queue]
    }

    /// The event source mapping step.
    pub fn mapping_step(&self, observed: &Observed, max_concurrency: u32) -> Step {
        let name = format!("{} -> {}", self.names.queue, self.sender_arn);
        let detail = format!(
            "BatchSize={}, FunctionResponseTypes=[ReportBatchItemFailures], MaximumConcurrency={max_concurrency}",
            self.batch_size
        );
        let Some(mapping) = &observed.mapping else {
            return Step::new("mapping", name, Change::Create).with_detail(detail);
        };
        let reports_failures = mapping
            .function_response_types()
            .contains(&FunctionResponseType::ReportBatchItemFailures);
        let diffs: Vec<String> = [
            diff(
                "BatchSize",
                mapping.batch_size().unwrap_or_default(),
                self.batch_size,
            ),
            (!reports_failures).then(|| "FunctionResponseTypes: + ReportBatchItemFailures".into()),
            diff(
                "MaximumConcurrency",
                mapping
                    .scaling_config()
                    .and_then(ScalingConfig::maximum_concurrency)
                    .map_or("(unset)".to_owned(), |n| n.to_string()),
                max_concurrency,
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        Step::new("mapping", name, change_of(diffs))
    }

    /// The secret step; `token` is what `--graph-token` gave.
    pub fn secret_step(&self, observed: &Observed, token: Option<&SecretString>) -> Step {
        let name = self.names.secret.clone();
        match (&observed.secret, token) {
            (SecretState::Missing, Some(_)) => Step::new("secret", name, Change::Create)
                .with_detail("the Graph token from --graph-token / WA_GRAPH_TOKEN"),
            (SecretState::Missing, None) => Step::new("secret", name, Change::Create)
                .with_detail("no value: store the token before sending (see below)"),
            (SecretState::Deleted, _) => {
                let mut diffs = vec!["scheduled for deletion -> restored".to_owned()];
                if token.is_some() {
                    diffs.push("value -> the given token".to_owned());
                }
                Step::new("secret", name, Change::Update(diffs))
            }
            (SecretState::Present { holds_token }, _) => {
                let change = if *holds_token == Some(false) {
                    Change::Update(vec!["value -> the given token".to_owned()])
                } else {
                    Change::Keep
                };
                Step::new("secret", name, change)
            }
        }
    }

    fn alarm_description(&self) -> String {
        format!(
            "Messages of tenant {} are in its send queue's DLQ: see `wa dlq list --tenant {}`.",
            self.tenant, self.tenant
        )
    }

    /// The DLQ alarm step.
    pub fn alarm_step(&self, observed: &Observed) -> Step {
        let name = self.names.alarm.clone();
        let Some(alarm) = &observed.alarm else {
            return Step::new("alarm", name, Change::Create).with_detail(format!(
                "{ALARM_NAMESPACE} {ALARM_METRIC} of {} > 0 (Maximum, {ALARM_PERIOD_SECONDS} s) -> {}",
                self.names.dlq, self.alarm_topic
            ));
        };
        let dimensions: Vec<String> = alarm
            .dimensions()
            .iter()
            .map(|d| {
                format!(
                    "{}={}",
                    d.name().unwrap_or_default(),
                    d.value().unwrap_or_default()
                )
            })
            .collect();
        let topic = [self.alarm_topic.clone()];
        let text = |v: Option<&str>| v.unwrap_or("(unset)").to_owned();
        let diffs: Vec<String> = [
            diff("Namespace", text(alarm.namespace()), ALARM_NAMESPACE),
            diff("MetricName", text(alarm.metric_name()), ALARM_METRIC),
            diff(
                "Dimensions",
                dimensions.join(","),
                format!("QueueName={}", self.names.dlq),
            ),
            diff(
                "Statistic",
                text(alarm.statistic().map(Statistic::as_str)),
                "Maximum",
            ),
            diff(
                "Period",
                alarm.period().unwrap_or_default(),
                ALARM_PERIOD_SECONDS,
            ),
            diff(
                "EvaluationPeriods",
                alarm.evaluation_periods().unwrap_or_default(),
                1,
            ),
            diff("Threshold", alarm.threshold().unwrap_or(-1.0), 0.0),
            diff(
                "ComparisonOperator",
                text(alarm.comparison_operator().map(ComparisonOperator::as_str)),
                "GreaterThanThreshold",
            ),
            diff(
                "TreatMissingData",
                text(alarm.treat_missing_data()),
                TREAT_MISSING_DATA,
            ),
            diff(
                "AlarmActions",
                alarm.alarm_actions().join(","),
                topic.join(","),
            ),
            diff("OKActions", alarm.ok_actions().join(","), topic.join(",")),
            (alarm.alarm_description() != Some(self.alarm_description().as_str()))
                .then(|| "AlarmDescription".to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        Step::new("alarm", name, change_of(diffs))
    }

    /// Encrypt both queues with SQS-managed keys (`ensure_queue` leaves encryption alone).
    pub async fn encrypt_queues(&self) -> anyhow::Result<()> {
        for name in [&self.names.dlq, &self.names.queue] {
            let url = self
                .queue_info(name)
                .await?
                .with_context(|| format!("queue {name} vanished"))?
                .url;
            self.sqs
                .set_queue_attributes()
                .queue_url(url)
                .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
                .send()
                .await
                .with_context(|| format!("enabling SSE on queue {name}"))?;
        }
        Ok(())
    }

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

fn change_of(diffs: Vec<String>) -> Change {
    if diffs.is_empty() {
        Change::Keep
    } else {
        Change::Update(diffs)
    }
}

/// Create when absent, else the attributes that differ from `wanted`.
fn attribute_step(name: &str, info: Option<&QueueInfo>, wanted: &[(&str, &str)]) -> Step {
    match info {
        None => {
            let detail: Vec<String> = wanted.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Step::new("queue", name, Change::Create).with_detail(detail.join(", "))
        }
        Some(info) => {
            let diffs = wanted
                .iter()
                .filter_map(|(k, v)| diff(k, info.get(k), v))
                .collect();
            Step::new("queue", name, change_of(diffs))
        }
    }
}

/// Whether the queue's redrive policy targets `dlq_arn` after `max_receive_count` receives.
fn redrive_matches(info: &QueueInfo, dlq_arn: Option<&str>, max_receive_count: u32) -> bool {
    let Some(policy) = info.attributes.get("RedrivePolicy") else {
        return false;
    };
    let Ok(policy) = serde_json::from_str::<serde_json::Value>(policy) else {
        return false;
    };
    let target = policy.get("deadLetterTargetArn").and_then(|v| v.as_str());
    // SQS returns the count as a number; older answers and moto may use a string.
    let count = match policy.get("maxReceiveCount") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    dlq_arn.is_some() && target == dlq_arn && count == Some(u64::from(max_receive_count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(attributes: &[(&str, &str)]) -> QueueInfo {
        QueueInfo {
            url: "http://q".into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn redrive_policies_match_on_target_and_count_in_either_encoding() {
        let arn = "arn:aws:sqs:us-east-1:1:dev-wa-send-acme-dlq";
        let number = info(&[(
            "RedrivePolicy",
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dev-wa-send-acme-dlq","maxReceiveCount":5}"#,
        )]);
        let string = info(&[(
            "RedrivePolicy",
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dev-wa-send-acme-dlq","maxReceiveCount":"5"}"#,
        )]);
        assert!(redrive_matches(&number, Some(arn), 5));
        assert!(redrive_matches(&string, Some(arn), 5));
        assert!(!redrive_matches(&number, Some(arn), 4));
        assert!(!redrive_matches(&number, Some("arn:other"), 5));
        assert!(!redrive_matches(&number, None, 5));
        assert!(!redrive_matches(&info(&[]), Some(arn), 5));
    }

    #[test]
    fn attribute_steps_list_only_what_differs() {
        let wanted = [
            ("VisibilityTimeout", "180"),
            ("SqsManagedSseEnabled", "true"),
        ];
        let same = info(&[
            ("VisibilityTimeout", "180"),
            ("SqsManagedSseEnabled", "true"),
        ]);
        assert_eq!(
            attribute_step("q", Some(&same), &wanted).change,
            Change::Keep
        );
        let other = info(&[("VisibilityTimeout", "30")]);
        assert_eq!(
            attribute_step("q", Some(&other), &wanted).change,
            Change::Update(vec![
                "VisibilityTimeout: 30 -> 180".into(),
                "SqsManagedSseEnabled: (unset) -> true".into()
            ])
        );
        let created = attribute_step("q", None, &wanted);
        assert_eq!(created.change, Change::Create);
        assert_eq!(
            created.detail,
            "VisibilityTimeout=180, SqsManagedSseEnabled=true"
        );
    }
}
