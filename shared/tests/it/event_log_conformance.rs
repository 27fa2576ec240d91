//! The `EventLog` conformance suite, run against every adapter: the embedded SQLite
//! log always, DynamoDB on moto when `AWS_ENDPOINT_URL` is set.

use std::sync::Arc;
use wa_shared::adapters::DynamoEventLog;
use wa_shared::adapters::SqliteEventLog;
use wa_shared::adapters::dynamo::schema::{EVENTS, create_table};
use wa_shared::adapters::sqlite::SqliteDb;
use wa_shared::ports::EventLog;
use wa_testkit::{moto, unique_name};

async fn sqlite_log() -> Option<Arc<dyn EventLog>> {
    let db = SqliteDb::open_in_memory().await.unwrap();
    Some(Arc::new(SqliteEventLog::new(db).await.unwrap()))
}

async fn dynamo_log() -> Option<Arc<dyn EventLog>> {
    let sdk = moto::sdk_config_or_skip().await?;
    let table = unique_name("events");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &EVENTS, &table)
        .await
        .unwrap();
    Some(Arc::new(DynamoEventLog::new(&sdk, table)))
}

mod sqlite {
    use super::*;
    wa_testkit::event_log_conformance_tests!(sqlite_log());
}

mod dynamo {
    use super::*;
    wa_testkit::event_log_conformance_tests!(dynamo_log());
}
