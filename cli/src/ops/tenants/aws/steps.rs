//! The plan's steps for the AWS-only resources: each compares what was observed
//! with what infra/README.md asks for, and lists the differences.

use super::{
    ALARM_METRIC, ALARM_NAMESPACE, ALARM_PERIOD_SECONDS, AwsTenant, Observed, QueueInfo,
    SecretState, TREAT_MISSING_DATA,
};
use crate::ops::plan::{Change, Step, diff};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use aws_sdk_lambda::types::{FunctionResponseType, ScalingConfig};
use secrecy::SecretString;

impl AwsTenant {
    /// The queue steps: DLQ, then the send queue.
    pub fn queue_steps(&self, observed: &Observed) -> [Step; 2] {
        let retention = self.spec.dead_letter_retention.as_secs().to_string();
        let sse = self.spec.encrypted.to_string();
        let dlq_wanted = [
            ("MessageRetentionPeriod", retention.as_str()),
            ("SqsManagedSseEnabled", sse.as_str()),
        ];
        let dlq = attribute_step(&self.names.dlq, observed.dlq.as_ref(), &dlq_wanted);

        let visibility = self.spec.visibility_timeout.as_secs().to_string();
        let queue_retention = self.spec.message_retention.as_secs().to_string();
        let wanted = [
            ("VisibilityTimeout", visibility.as_str()),
            ("MessageRetentionPeriod", queue_retention.as_str()),
            ("SqsManagedSseEnabled", sse.as_str()),
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

    /// The alarm's description: what to do when it fires.
    pub(super) fn alarm_description(&self) -> String {
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
