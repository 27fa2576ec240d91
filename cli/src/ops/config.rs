//! Where the operator commands find the deployed stack and the Graph API.
//!
//! Each setting is read from, in order: its flag, its environment variable, and
//! the TOML file given by `--config` (or `WA_CONFIG`). The file's `[aws]` section
//! uses the stack's output names as keys, so the list that
//! `aws cloudformation describe-stacks` prints can be pasted in as is (outputs the
//! commands do not use are accepted and ignored); `[graph]` uses the template's
//! parameter names. See docs/deploy.md.

use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use wa_shared::queues::{SEND, seconds_u32};

/// Used when the `SendQueueVisibilityTimeout` output is not configured: the send
/// queue's definition (`wa_shared::queues::SEND`, which the template's
/// `Mappings.Tuning.Sender` is checked against).
pub fn default_send_queue_visibility_timeout() -> u32 {
    seconds_u32(SEND.spec.visibility_timeout)
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A stack output a command needs is not configured anywhere.
    #[error(
        "missing the stack output {output}: pass --{flag}, set {env}, or put {output} in the [aws] section of the --config file"
    )]
    Missing {
        /// The output's name (and TOML key).
        output: &'static str,
        /// The flag, without dashes.
        flag: &'static str,
        /// The environment variable.
        env: &'static str,
    },
    /// The configuration file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML of the expected shape.
    #[error("invalid configuration file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause (names the key and line).
        #[source]
        source: toml::de::Error,
    },
    /// A value is not usable.
    #[error("invalid {key}: {reason}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Which backend a command works on, and where the AWS stack's resources are.
#[derive(Debug, Clone, Default, Args)]
pub struct BackendArgs {
    /// Work on this SQLite file (wa dev's is .wa/dev.sqlite) instead of AWS.
    #[arg(long, env = "WA_DATA", value_name = "PATH", global = true)]
    pub data: Option<PathBuf>,
    /// TOML file: stack outputs in its aws table, Graph settings in its graph table (see docs/deploy.md).
    #[arg(long, env = "WA_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The stack outputs (AWS backend).
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// The stack outputs, as flags or environment variables.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "AWS stack outputs (flag, env var, or [aws] in --config)")]
pub struct AwsArgs {
    /// Output MessagesTableName.
    #[arg(long, env = "WA_MESSAGES_TABLE", global = true)]
    pub messages_table: Option<String>,
    /// Output DirectoryTableName.
    #[arg(long, env = "WA_DIRECTORY_TABLE", global = true)]
    pub directory_table: Option<String>,
    /// Output SenderFunctionArn (target of each tenant's event source mapping).
    #[arg(long, env = "WA_SENDER_FUNCTION_ARN", global = true)]
    pub sender_function_arn: Option<String>,
    /// Output SendQueueNamePrefix: tenant T's queue is PREFIX + T, its DLQ PREFIX + T + "-dlq".
    #[arg(long, env = "WA_SEND_QUEUE_PREFIX", global = true)]
    pub send_queue_prefix: Option<String>,
    /// Output SendQueueVisibilityTimeout, seconds [default: 180].
    #[arg(long, env = "WA_SEND_QUEUE_VISIBILITY_TIMEOUT", global = true)]
    pub send_queue_visibility_timeout: Option<u32>,
    /// Output SendQueueMaxReceiveCount [default: 5].
    #[arg(long, env = "WA_SEND_QUEUE_MAX_RECEIVE_COUNT", global = true)]
    pub send_queue_max_receive_count: Option<u32>,
    /// Output SendBatchSize [default: 10].
    #[arg(long, env = "WA_SEND_BATCH_SIZE", global = true)]
    pub send_batch_size: Option<u32>,
    /// Output TenantSecretPrefix: tenant T's Graph token is the secret PREFIX + T.
    #[arg(long, env = "WA_TENANT_SECRET_PREFIX", global = true)]
    pub tenant_secret_prefix: Option<String>,
    /// Output AlarmTopicArn (actions of each tenant's DLQ alarm).
    #[arg(long, env = "WA_ALARM_TOPIC_ARN", global = true)]
    pub alarm_topic_arn: Option<String>,
    /// Output EventsTableName (the tenants' event logs: wa events).
    #[arg(long, env = "WA_EVENTS_TABLE", global = true)]
    pub events_table: Option<String>,
    /// Output DeliveriesQueueUrl (wa events replay queues deliveries there).
    #[arg(long, env = "WA_DELIVERY_QUEUE_URL", global = true)]
    pub deliveries_queue_url: Option<String>,
    /// Output EndpointSecretPrefix: endpoint E of tenant T keeps its signing secret in PREFIX + T/E.
    #[arg(long, env = "WA_ENDPOINT_SECRET_PREFIX", global = true)]
    pub endpoint_secret_prefix: Option<String>,
    /// Output QuotasTableName (quotas, pacing and the cost ledger: wa costs).
    #[arg(long, env = "WA_QUOTAS_TABLE", global = true)]
    pub quotas_table: Option<String>,
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Stack outputs.
    #[serde(default)]
    pub aws: StackOutputs,
    /// Graph API settings.
    #[serde(default)]
    pub graph: GraphFileSection,
}

/// A number written as a TOML integer or as a string (stack outputs are strings).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// `180`
    Int(u32),
    /// `"180"`
    Text(String),
}

impl Number {
    fn value(&self, key: &'static str) -> Result<u32, ConfigError> {
        match self {
            Number::Int(n) => Ok(*n),
            Number::Text(s) => s.trim().parse().map_err(|_| ConfigError::Invalid {
                key,
                reason: format!("{s:?} is not a whole number"),
            }),
        }
    }
}

/// The `[aws]` section: the stack's outputs by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct StackOutputs {
    /// MessagesTableName.
    pub messages_table_name: Option<String>,
    /// DirectoryTableName.
    pub directory_table_name: Option<String>,
    /// SenderFunctionArn.
    pub sender_function_arn: Option<String>,
    /// SendQueueNamePrefix.
    pub send_queue_name_prefix: Option<String>,
    /// SendQueueVisibilityTimeout.
    pub send_queue_visibility_timeout: Option<Number>,
    /// SendQueueMaxReceiveCount.
    pub send_queue_max_receive_count: Option<Number>,
    /// SendBatchSize.
    pub send_batch_size: Option<Number>,
    /// TenantSecretPrefix.
    pub tenant_secret_prefix: Option<String>,
    /// AlarmTopicArn.
    pub alarm_topic_arn: Option<String>,
    /// ApiUrl (not used by the commands).
    pub api_url: Option<String>,
    /// WebhookUrl (not used by the commands).
    pub webhook_url: Option<String>,
    /// WebhookInboxQueueUrl (not used by the commands).
    pub webhook_inbox_queue_url: Option<String>,
    /// AppSecretArn (not used by the commands).
    pub app_secret_arn: Option<String>,
    /// VerifyTokenSecretArn (not used by the commands).
    pub verify_token_secret_arn: Option<String>,
    /// DashboardName (not used by the commands).
    pub dashboard_name: Option<String>,
    /// EventsTableName.
    pub events_table_name: Option<String>,
    /// DeliveriesQueueUrl.
    pub deliveries_queue_url: Option<String>,
    /// EndpointSecretPrefix.
    pub endpoint_secret_prefix: Option<String>,
    /// DeliveriesDlqUrl (not used by the commands).
    pub deliveries_dlq_url: Option<String>,
    /// QuotasTableName (not used by the commands).
    pub quotas_table_name: Option<String>,
    /// EventBusName (not used by the commands).
    pub event_bus_name: Option<String>,
    /// EventBusArn (not used by the commands).
    pub event_bus_arn: Option<String>,
    /// EventArchiveName (not used by the commands).
    pub event_archive_name: Option<String>,
    /// EventsDlqUrl (not used by the commands).
    pub events_dlq_url: Option<String>,
}

/// The `[graph]` section, keyed like the template's parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct GraphFileSection {
    /// GraphBaseUrl, e.g. `https://graph.facebook.com`.
    pub graph_base_url: Option<String>,
    /// GraphApiVersion, e.g. `v25.0`.
    pub graph_api_version: Option<String>,
}

impl FileConfig {
    /// Read `path`, or the empty configuration when there is none.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

/// The stack outputs after flags, environment and file are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    messages_table: Option<String>,
    directory_table: Option<String>,
    sender_function_arn: Option<String>,
    send_queue_prefix: Option<String>,
    tenant_secret_prefix: Option<String>,
    alarm_topic_arn: Option<String>,
    events_table: Option<String>,
    deliveries_queue_url: Option<String>,
    endpoint_secret_prefix: Option<String>,
    quotas_table: Option<String>,
    /// Visibility timeout of a tenant's send queue, seconds.
    pub send_queue_visibility_timeout: u32,
    /// Receives before a send-queue message moves to the DLQ.
    pub send_queue_max_receive_count: u32,
    /// Records per sender invocation.
    pub send_batch_size: u32,
}

fn pick(flag: &Option<String>, file: &Option<String>) -> Option<String> {
    flag.clone()
        .or_else(|| file.clone())
        .filter(|v| !v.trim().is_empty())
}

fn pick_number(
    flag: Option<u32>,
    file: &Option<Number>,
    key: &'static str,
    default: u32,
) -> Result<u32, ConfigError> {
    match (flag, file) {
        (Some(n), _) => Ok(n),
        (None, Some(n)) => n.value(key),
        (None, None) => Ok(default),
    }
}

fn required<'a>(
    value: &'a Option<String>,
    output: &'static str,
    flag: &'static str,
    env: &'static str,
) -> Result<&'a str, ConfigError> {
    value
        .as_deref()
        .ok_or(ConfigError::Missing { output, flag, env })
}

impl AwsSettings {
    /// Merge the flags (clap already applied the environment) over the file.
    pub fn resolve(args: &AwsArgs, file: &StackOutputs) -> Result<Self, ConfigError> {
        Ok(Self {
            messages_table: pick(&args.messages_table, &file.messages_table_name),
            directory_table: pick(&args.directory_table, &file.directory_table_name),
            sender_function_arn: pick(&args.sender_function_arn, &file.sender_function_arn),
            send_queue_prefix: pick(&args.send_queue_prefix, &file.send_queue_name_prefix),
            tenant_secret_prefix: pick(&args.tenant_secret_prefix, &file.tenant_secret_prefix),
            alarm_topic_arn: pick(&args.alarm_topic_arn, &file.alarm_topic_arn),
            events_table: pick(&args.events_table, &file.events_table_name),
            deliveries_queue_url: pick(&args.deliveries_queue_url, &file.deliveries_queue_url),
            endpoint_secret_prefix: pick(
                &args.endpoint_secret_prefix,
                &file.endpoint_secret_prefix,
            ),
            quotas_table: pick(&args.quotas_table, &file.quotas_table_name),
            send_queue_visibility_timeout: pick_number(
                args.send_queue_visibility_timeout,
                &file.send_queue_visibility_timeout,
                "SendQueueVisibilityTimeout",
                default_send_queue_visibility_timeout(),
            )?,
            send_queue_max_receive_count: pick_number(
                args.send_queue_max_receive_count,
                &file.send_queue_max_receive_count,
                "SendQueueMaxReceiveCount",
                SEND.spec.max_receive_count,
            )?,
            send_batch_size: pick_number(
                args.send_batch_size,
                &file.send_batch_size,
                "SendBatchSize",
                SEND.consumer.batch_size,
            )?,
        })
    }

    /// The `messages` table.
    pub fn messages_table(&self) -> Result<&str, ConfigError> {
        required(
            &self.messages_table,
            "MessagesTableName",
            "messages-table",
            "WA_MESSAGES_TABLE",
        )
    }

    /// The `directory` table.
    pub fn directory_table(&self) -> Result<&str, ConfigError> {
        required(
            &self.directory_table,
            "DirectoryTableName",
            "directory-table",
            "WA_DIRECTORY_TABLE",
        )
    }

    /// The sender function's ARN.
    pub fn sender_function_arn(&self) -> Result<&str, ConfigError> {
        required(
            &self.sender_function_arn,
            "SenderFunctionArn",
            "sender-function-arn",
            "WA_SENDER_FUNCTION_ARN",
        )
    }

    /// The per-tenant queue name prefix (`{stage}-{prefix}-send-`).
    pub fn send_queue_prefix(&self) -> Result<&str, ConfigError> {
        required(
            &self.send_queue_prefix,
            "SendQueueNamePrefix",
            "send-queue-prefix",
            "WA_SEND_QUEUE_PREFIX",
        )
    }

    /// The tenants' secret name prefix (`{stage}/{prefix}/tenants/`).
    pub fn tenant_secret_prefix(&self) -> Result<&str, ConfigError> {
        required(
            &self.tenant_secret_prefix,
            "TenantSecretPrefix",
            "tenant-secret-prefix",
            "WA_TENANT_SECRET_PREFIX",
        )
    }

    /// The alarm topic's ARN.
    pub fn alarm_topic_arn(&self) -> Result<&str, ConfigError> {
        required(
            &self.alarm_topic_arn,
            "AlarmTopicArn",
            "alarm-topic-arn",
            "WA_ALARM_TOPIC_ARN",
        )
    }

    /// The `events` table (the tenants' event logs).
    pub fn events_table(&self) -> Result<&str, ConfigError> {
        required(
            &self.events_table,
            "EventsTableName",
            "events-table",
            "WA_EVENTS_TABLE",
        )
    }

    /// The `deliveries` queue's URL (jobs of the `delivery` function).
    pub fn deliveries_queue_url(&self) -> Result<&str, ConfigError> {
        required(
            &self.deliveries_queue_url,
            "DeliveriesQueueUrl",
            "deliveries-queue-url",
            "WA_DELIVERY_QUEUE_URL",
        )
    }

    /// The endpoints' secret name prefix (`{stage}/{prefix}/endpoints/`).
    pub fn endpoint_secret_prefix(&self) -> Result<&str, ConfigError> {
        required(
            &self.endpoint_secret_prefix,
            "EndpointSecretPrefix",
            "endpoint-secret-prefix",
            "WA_ENDPOINT_SECRET_PREFIX",
        )
    }

    /// The `quotas` table (the cost ledger's counters).
    pub fn quotas_table(&self) -> Result<&str, ConfigError> {
        required(
            &self.quotas_table,
            "QuotasTableName",
            "quotas-table",
            "WA_QUOTAS_TABLE",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

    /// The defaults are the one queue definition (which a `wa-shared` test checks
    /// against the template), and the help text shows the same numbers.
    #[test]
    fn the_defaults_are_the_send_queue_definition_and_the_help_says_so() {
        let s = AwsSettings::resolve(&AwsArgs::default(), &StackOutputs::default()).unwrap();
        assert_eq!(s.send_queue_visibility_timeout, 180);
        assert_eq!(
            u64::from(s.send_queue_visibility_timeout),
            SEND.spec.visibility_timeout.as_secs()
        );
        assert_eq!(s.send_queue_max_receive_count, SEND.spec.max_receive_count);
        assert_eq!(s.send_batch_size, SEND.consumer.batch_size);

        use clap::Args as _;
        let command = AwsArgs::augment_args(clap::Command::new("wa"));
        let help = |id: &str| {
            command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_help())
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        for (id, value) in [
            (
                "send_queue_visibility_timeout",
                s.send_queue_visibility_timeout,
            ),
            (
                "send_queue_max_receive_count",
                s.send_queue_max_receive_count,
            ),
            ("send_batch_size", s.send_batch_size),
        ] {
            let text = help(id);
            assert!(
                text.contains(&format!("[default: {value}]")),
                "{id}: {text}"
            );
        }
    }

    #[test]
    fn every_stack_output_is_a_known_key_of_the_aws_section() {
        let outputs: Vec<&str> = TEMPLATE
            .lines()
            .skip_while(|l| *l != "Outputs:")
            .skip(1)
            .filter_map(|l| l.strip_prefix("  "))
            .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
            .map(|l| l.trim_end_matches(':'))
            .collect();
        assert!(outputs.len() >= 15, "{outputs:?}");
        let toml: String = outputs.iter().map(|o| format!("{o} = \"1\"\n")).collect();
        let parsed: FileConfig = toml::from_str(&format!("[aws]\n{toml}")).unwrap();
        assert_eq!(parsed.aws.sender_function_arn.as_deref(), Some("1"));
    }

    #[test]
    fn flags_win_over_the_file_and_numbers_may_be_strings() {
        let file: FileConfig = toml::from_str(
            r#"
            [aws]
            DirectoryTableName = "file-directory"
            MessagesTableName = "file-messages"
            SendQueueVisibilityTimeout = "240"
            SendBatchSize = 5
            [graph]
            GraphApiVersion = "v24.0"
            "#,
        )
        .unwrap();
        let args = AwsArgs {
            directory_table: Some("flag-directory".into()),
            ..AwsArgs::default()
        };
        let s = AwsSettings::resolve(&args, &file.aws).unwrap();
        assert_eq!(s.directory_table().unwrap(), "flag-directory");
        assert_eq!(s.messages_table().unwrap(), "file-messages");
        assert_eq!(s.send_queue_visibility_timeout, 240);
        assert_eq!(s.send_batch_size, 5);
        assert_eq!(s.send_queue_max_receive_count, 5);
        let missing = s.sender_function_arn().unwrap_err().to_string();
        assert!(missing.contains("--sender-function-arn"), "{missing}");
        assert!(missing.contains("WA_SENDER_FUNCTION_ARN"), "{missing}");
        assert_eq!(file.graph.graph_api_version.as_deref(), Some("v24.0"));
    }

    #[test]
    fn unknown_keys_and_bad_numbers_are_refused() {
        assert!(toml::from_str::<FileConfig>("[aws]\nDirectoryTable = \"x\"").is_err());
        let file: FileConfig = toml::from_str("[aws]\nSendBatchSize = \"ten\"").unwrap();
        assert!(AwsSettings::resolve(&AwsArgs::default(), &file.aws).is_err());
    }
}
