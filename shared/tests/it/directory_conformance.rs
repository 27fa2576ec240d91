//! The `Directory` conformance suite, run against every adapter: the embedded
//! SQLite directory always, DynamoDB on moto when `AWS_ENDPOINT_URL` is set
//! (`scripts/with-moto.sh cargo test -p wa-shared --all-features --test it directory_conformance`).

// Harness setup outside #[test] fns: a failure there is a failed test.

use std::sync::Arc;
use wa_shared::adapters::aws::SdkConfig;
use wa_shared::adapters::dynamo::schema;
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{DynamoDirectory, SqliteDirectory};
use wa_shared::ports::Directory;
use wa_testkit::directory_conformance::DirectoryHarness;
use wa_testkit::{moto, unique_name};

/// The embedded directory on a fresh database file (a pool of several connections,
/// so concurrent cases really run in parallel).
struct SqliteHarness {
    directory: Arc<SqliteDirectory>,
    _dir: tempfile::TempDir,
}

async fn sqlite_harness() -> Option<SqliteHarness> {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(dir.path().join("wa.sqlite"), SqliteOptions::default())
        .await
        .unwrap();
    let directory = SqliteDirectory::new(db).await.unwrap();
    Some(SqliteHarness {
        directory: Arc::new(directory),
        _dir: dir,
    })
}

impl DirectoryHarness for SqliteHarness {
    fn directory(&self) -> Arc<dyn Directory> {
        self.directory.clone()
    }
}

/// DynamoDB on moto, on a table of its own.
struct DynamoHarness {
    directory: Arc<DynamoDirectory>,
}

/// The `directory` table exactly as the schema (checked against infra/template.yaml) defines it.
async fn create_directory_table(config: &SdkConfig, table: &str) {
    let client = aws_sdk_dynamodb::Client::new(config);
    schema::create_table(&client, &schema::DIRECTORY, table)
        .await
        .unwrap();
}

async fn dynamo_harness() -> Option<DynamoHarness> {
    let config = moto::sdk_config_or_skip().await?;
    let table = unique_name("directory");
    create_directory_table(&config, &table).await;
    Some(DynamoHarness {
        directory: Arc::new(DynamoDirectory::new(&config, table)),
    })
}

impl DirectoryHarness for DynamoHarness {
    fn directory(&self) -> Arc<dyn Directory> {
        self.directory.clone()
    }
}

mod sqlite {
    use super::*;
    wa_testkit::directory_conformance_tests!(sqlite_harness());
}

mod dynamo {
    use super::*;
    use wa_shared::domain::{PhoneNumber, TenantId, Timestamp};
    use wa_testkit::directory_conformance::{profile, template};

    fn calls_of(d: &DynamoDirectory, operation: &str) -> u64 {
        d.calls().get(operation).copied().unwrap_or(0)
    }

    wa_testkit::directory_conformance_tests!(dynamo_harness());

    /// The cost model counts calls: a put_tenant is one read and one transaction, a
    /// status webhook one UpdateItem, a template lookup one GetItem.
    #[tokio::test]
    async fn each_operation_costs_the_calls_the_cost_model_expects() {
        let Some(harness) = dynamo_harness().await else {
            return;
        };
        let d = harness.directory;
        let acme = TenantId::parse("acme").unwrap();
        let at = Timestamp::from_secs(1_750_000_000);
        d.put_tenant(&profile("acme", "10", "11")).await.unwrap();
        assert_eq!(calls_of(&d, "GetItem"), 1);
        assert_eq!(calls_of(&d, "TransactWriteItems"), 1);
        d.put_template(&acme, &template("hello", "en", "APPROVED"), at)
            .await
            .unwrap();
        let status = wa_shared::domain::template::TemplateStatus::Paused;
        d.update_template_status(&acme, "hello", "en", &status, at)
            .await
            .unwrap();
        assert_eq!(calls_of(&d, "UpdateItem"), 2);
        d.template(&acme, "hello", "en").await.unwrap();
        d.templates_named(&acme, "hello").await.unwrap();
        assert_eq!((calls_of(&d, "GetItem"), calls_of(&d, "Query")), (2, 1));
        let who = PhoneNumber::parse("+14155550123").unwrap();
        d.record_inbound(&acme, &who, at).await.unwrap();
        d.record_inbound(&acme, &who, at).await.unwrap();
        assert_eq!(calls_of(&d, "UpdateItem"), 4);
        d.list_tenants().await.unwrap();
        assert_eq!(calls_of(&d, "Scan"), 1);
    }
}
