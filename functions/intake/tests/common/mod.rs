//! A fresh AWS stack on moto for one test of a built function binary: both tables,
//! the tenant's send queue and token secret, tenant `demo` with the fixture catalog.
//! Shared by the intake and sender crates' binary tests.

#![allow(clippy::unwrap_used, dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use wa_shared::adapters::aws::SdkConfig;
use wa_shared::adapters::dynamo::{TableNames, create_tables};
use wa_shared::adapters::{DynamoDirectory, DynamoMessageStore, SqsWorkQueue};
use wa_shared::app::IntakeDeps;
use wa_shared::app::http::ApiGatewayV2httpRequest;
use wa_shared::config::IntakeConfig;
use wa_shared::domain::template::TemplateCatalog;
use wa_shared::domain::tenant::ApiKeyHash;
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::ports::{Directory, QueueRef, WorkQueue};
use wa_testkit::{moto, unique_name};

/// The business phone number of `demo`.
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// The Graph token stored in `demo`'s secret (and expected by the sandbox).
pub const TOKEN: &str = "EAAG-test-token";

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An event file of `events/`.
pub fn event(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join("events").join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Tables, queue and secret of one test, with the adapters to read them back.
pub struct AwsStack {
    pub sdk: SdkConfig,
    pub tables: TableNames,
    pub queue: QueueRef,
    pub secret_prefix: String,
    pub store: Arc<DynamoMessageStore>,
    pub directory: Arc<DynamoDirectory>,
    pub queues: Arc<SqsWorkQueue>,
}

impl AwsStack {
    /// Build it on moto; `None` (test skipped) when moto is not running.
    pub async fn start() -> Option<Self> {
        let sdk = moto::sdk_config_or_skip().await?;
        let name = unique_name("sp");
        let tables = TableNames::with_prefix(&name);
        create_tables(&aws_sdk_dynamodb::Client::new(&sdk), &tables)
            .await
            .unwrap();
        let queues = Arc::new(SqsWorkQueue::new(&sdk));
        let queue = queues
            .ensure_queue(&format!("{name}-send-demo"), &wa_shared::queues::SEND.spec)
            .await
            .unwrap();
        let secret_prefix = format!("{name}/tenants/");
        aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(format!("{secret_prefix}demo"))
            .secret_string(TOKEN)
            .send()
            .await
            .unwrap();
        let store = Arc::new(DynamoMessageStore::new(&sdk, tables.messages.clone()));
        let directory = Arc::new(DynamoDirectory::new(&sdk, tables.directory.clone()));
        let stack = Self {
            sdk,
            tables,
            queue,
            secret_prefix,
            store,
            directory,
            queues,
        };
        stack.seed().await;
        Some(stack)
    }

    async fn seed(&self) {
        let now = Timestamp::from_millis(1_780_481_730_000);
        let tenant = TenantId::parse("demo").unwrap();
        let profile = wa_testkit::fixtures::tenant("demo")
            .phone_number_id(PHONE_NUMBER_ID)
            .queue(self.queue.as_str())
            .token_ref(&format!("{}demo", self.secret_prefix))
            .updated_at(now)
            .build();
        self.directory.put_tenant(&profile).await.unwrap();
        self.directory
            .put_api_key(&ApiKeyHash::of_key("wa_demo_key"), &tenant)
            .await
            .unwrap();
        let catalog =
            std::fs::read_to_string(root().join("shared/tests/fixtures/templates/catalog.json"))
                .unwrap();
        for t in TemplateCatalog::from_json(&catalog).unwrap().iter() {
            self.directory.put_template(&tenant, t, now).await.unwrap();
        }
    }

    /// The environment the SAM template gives a function (moto's endpoint, region and
    /// credentials are inherited from `scripts/with-moto.sh`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WA_STAGE", "test".into()),
            ("WA_MESSAGES_TABLE", self.tables.messages.clone()),
            ("WA_DIRECTORY_TABLE", self.tables.directory.clone()),
            ("WA_EVENTS_TABLE", self.tables.events.clone()),
            ("WA_QUOTAS_TABLE", self.tables.quotas.clone()),
            ("WA_METRICS_NAMESPACE", "WaPipeline".into()),
            ("WA_TENANT_SECRET_PREFIX", self.secret_prefix.clone()),
            ("WA_CLAIM_LEASE_MS", "60000".into()),
        ]
    }

    /// In-process intake on the same stack (to seed and to read back), wired as the
    /// Lambda is: from the function's environment, by the AWS wiring.
    pub async fn intake_deps(&self) -> IntakeDeps {
        let env = self.env();
        let config = IntakeConfig::from_lookup(|k| {
            env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        wa_shared::wiring::aws::intake(&config).await.unwrap()
    }
}

/// An API Gateway request from an event file.
pub fn http_request(path: &str) -> ApiGatewayV2httpRequest {
    serde_json::from_value(event(path)).unwrap()
}
