//! Running the built `wa` binary, and the two backends it is tested on: a fresh
//! SQLite file, and a fresh "stack" on moto (tables from the schema the SAM template
//! is checked against, a sender function with its IAM role, name prefixes of its own).

use aws_sdk_dynamodb::types::AttributeValue;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use wa_shared::adapters::aws::SdkConfig;
use wa_shared::adapters::dynamo::{TableNames, create_tables};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{
    DynamoDirectory, DynamoMessageStore, SqliteDirectory, SqliteMessageStore, SqliteWorkQueue,
    SqsWorkQueue, SystemClock,
};
use wa_shared::ports::{Directory, MessageStore, WorkQueue};
use wa_testkit::{moto, unique_name};

/// Settings the developer's shell may hold that would change what the binary does.
const ISOLATED_ENV: &[&str] = &[
    "WA_DATA",
    "WA_CONFIG",
    "WA_GRAPH_TOKEN",
    "WA_GRAPH_BASE_URL",
    "WA_GRAPH_API_VERSION",
    "WA_MESSAGES_TABLE",
    "WA_DIRECTORY_TABLE",
    "WA_SENDER_FUNCTION_ARN",
    "WA_SEND_QUEUE_PREFIX",
    "WA_SEND_QUEUE_VISIBILITY_TIMEOUT",
    "WA_SEND_QUEUE_MAX_RECEIVE_COUNT",
    "WA_SEND_BATCH_SIZE",
    "WA_TENANT_SECRET_PREFIX",
    "WA_ALARM_TOPIC_ARN",
    "WA_EVENTS_TABLE",
    "WA_DELIVERY_QUEUE_URL",
    "WA_ENDPOINT_SECRET_PREFIX",
    "WA_ENDPOINT_SECRET",
    "WA_DELIVERY_ALLOW_LOOPBACK",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
];

/// What one run of `wa` printed.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Stdout of a successful run (panics with both streams otherwise).
    pub fn ok(self) -> String {
        assert!(self.success, "wa failed:\n{}\n{}", self.stdout, self.stderr);
        assert!(
            !self.stdout.contains('\u{1b}') && !self.stdout.contains('\r'),
            "no progress bar or colour when stdout is not a terminal: {:?}",
            self.stdout
        );
        self.stdout
    }

    /// Stderr of a failed run (panics otherwise).
    pub fn failed(self) -> String {
        assert!(!self.success, "wa succeeded:\n{}", self.stdout);
        self.stderr
    }
}

/// Run `wa` with `args` and extra environment variables, stdout and stderr captured.
pub fn wa_env(args: &[String], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wa"));
    for var in ISOLATED_ENV {
        command.env_remove(var);
    }
    command.args(args).envs(env.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("running wa");
    Run {
        success: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Run `wa` with `args`.
pub fn wa(args: &[String]) -> Run {
    wa_env(args, &[])
}

/// `["a", "b"]` as owned strings, for building argument lists.
pub fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The line after `heading`: where `wa tenants add` prints a new API key.
pub fn api_key(stdout: &str) -> Option<String> {
    let mut lines = stdout.lines();
    lines.find(|l| l.starts_with("API key of tenant"))?;
    lines.next().map(str::to_owned)
}

/// The phone number and WABA of the tests' tenants (the sandbox's defaults).
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// See [`PHONE_NUMBER_ID`].
pub const WABA_ID: &str = "102290129340398";

/// A backend the commands are tested on, with the test's own handles on its ports.
pub struct Backend {
    /// Arguments selecting it (`--data FILE`, or the stack outputs).
    pub args: Vec<String>,
    /// The directory, as the commands see it.
    pub directory: Arc<dyn Directory>,
    /// The message store.
    pub store: Arc<dyn MessageStore>,
    /// The queues.
    pub queue: Arc<dyn WorkQueue>,
    /// Kept alive for the SQLite file.
    _dir: Option<tempfile::TempDir>,
    /// The moto stack, when on moto.
    pub moto: Option<MotoStack>,
}

impl Backend {
    /// `args` followed by this backend's arguments.
    pub fn cmd(&self, items: &[&str]) -> Vec<String> {
        let mut all = args(items);
        all.extend(self.args.iter().cloned());
        all
    }

    /// A fresh SQLite file in a temporary folder.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wa").join("dev.sqlite");
        let mut backend = Self::sqlite_at(&path).await;
        backend._dir = Some(dir);
        backend
    }

    /// The SQLite file at `path` (opened, so created, by the test).
    pub async fn sqlite_at(path: &Path) -> Self {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let db = SqliteDb::open(path, SqliteOptions::default())
            .await
            .unwrap();
        Self {
            args: vec!["--data".into(), path.display().to_string()],
            directory: Arc::new(SqliteDirectory::new(db.clone()).await.unwrap()),
            store: Arc::new(SqliteMessageStore::new(db.clone()).await.unwrap()),
            queue: Arc::new(
                SqliteWorkQueue::new(db, Arc::new(SystemClock))
                    .await
                    .unwrap(),
            ),
            _dir: None,
            moto: None,
        }
    }

    /// A fresh stack on moto; `None` (after the skip notice) without moto.
    pub async fn moto() -> Option<Self> {
        let stack = MotoStack::start().await?;
        Some(Self {
            args: stack.args(),
            directory: Arc::new(DynamoDirectory::new(&stack.sdk, &stack.tables.directory)),
            store: Arc::new(DynamoMessageStore::new(&stack.sdk, &stack.tables.messages)),
            queue: Arc::new(SqsWorkQueue::new(&stack.sdk)),
            _dir: None,
            moto: Some(stack),
        })
    }

    /// Provision `tenant` with `wa tenants add` (phone and WABA of the sandbox).
    pub fn add_tenant(&self, tenant: &str, env: &[(&str, &str)]) -> String {
        wa_env(
            &self.cmd(&[
                "tenants",
                "add",
                tenant,
                "--phone-number-id",
                PHONE_NUMBER_ID,
                "--waba-id",
                WABA_ID,
            ]),
            env,
        )
        .ok()
    }
}

/// The resources of one test's stack on moto.
pub struct MotoStack {
    /// SDK configuration pointing at moto.
    pub sdk: SdkConfig,
    /// Table names (both tables created from the schema).
    pub tables: TableNames,
    /// The sender function's ARN.
    pub sender_arn: String,
    /// `SendQueueNamePrefix`.
    pub queue_prefix: String,
    /// `TenantSecretPrefix`.
    pub secret_prefix: String,
    /// `AlarmTopicArn`.
    pub topic: String,
}

impl MotoStack {
    /// Create tables, role and function; `None` without moto.
    pub async fn start() -> Option<Self> {
        let sdk = moto::sdk_config_or_skip().await?;
        let stack = unique_name("ops");
        let tables = TableNames::with_prefix(&stack);
        create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &tables)
            .await
            .unwrap();
        let role = create_role(&format!("{stack}-sender")).await;
        let sender_arn = create_function(&sdk, &format!("{stack}-sender"), &role).await;
        Some(Self {
            sdk,
            tables,
            sender_arn,
            queue_prefix: format!("{stack}-send-"),
            secret_prefix: format!("{stack}/tenants/"),
            topic: format!("arn:aws:sns:us-east-1:123456789012:{stack}-alarms"),
        })
    }

    /// The stack outputs as flags.
    pub fn args(&self) -> Vec<String> {
        args(&[
            "--messages-table",
            &self.tables.messages,
            "--directory-table",
            &self.tables.directory,
            "--sender-function-arn",
            &self.sender_arn,
            "--send-queue-prefix",
            &self.queue_prefix,
            "--tenant-secret-prefix",
            &self.secret_prefix,
            "--alarm-topic-arn",
            &self.topic,
        ])
    }

    /// Items of the directory table whose key starts with `prefix` (e.g. `apikey#`).
    pub async fn directory_items(&self, prefix: &str) -> usize {
        let out = aws_sdk_dynamodb::Client::new(&self.sdk)
            .scan()
            .table_name(&self.tables.directory)
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(":p", AttributeValue::S(prefix.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.items().len()
    }
}

/// Create an IAM role on moto, which `CreateFunction` requires to exist. The project
/// has no IAM SDK (nothing else needs one); moto does not check signatures, so a
/// plain Query-protocol POST does, routed to IAM by the credential scope.
async fn create_role(name: &str) -> String {
    let endpoint = moto::endpoint_or_skip().unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    // URL-encode the form with the URL type's query encoder.
    let mut form = reqwest::Url::parse("http://form.invalid/").unwrap();
    form.query_pairs_mut().extend_pairs([
        ("Action", "CreateRole"),
        ("Version", "2010-05-08"),
        ("RoleName", name),
        ("AssumeRolePolicyDocument", policy),
    ]);
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.query().unwrap_or_default().to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "CreateRole: {status} {body}");
    let arn = body
        .split("<Arn>")
        .nth(1)
        .and_then(|rest| rest.split("</Arn>").next())
        .expect("role ARN in the CreateRole answer");
    arn.to_owned()
}

/// A function that is never invoked (moto would need Docker for that): the target
/// of the event source mappings.
async fn create_function(sdk: &SdkConfig, name: &str, role: &str) -> String {
    // The smallest zip archive: an empty end-of-central-directory record.
    let mut empty_zip = b"PK\x05\x06".to_vec();
    empty_zip.extend([0u8; 18]);
    let out = aws_sdk_lambda::Client::new(sdk)
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .architectures(aws_sdk_lambda::types::Architecture::Arm64)
        .handler("bootstrap")
        .role(role)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(empty_zip))
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.function_arn().unwrap().to_owned()
}
