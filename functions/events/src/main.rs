//! `events`: the DynamoDB streams of the messages table (derive the events of each
//! stored write into the event log) and of the events table (publish each logged event
//! to the stage's EventBridge bus), answered with `ReportBatchItemFailures`. All logic
//! is in `wa_shared::app::events`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::convert::Infallible;
use wa_shared::app::events::DynamoDbEvent;
use wa_shared::config::EventsConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wa_shared::telemetry::init();
    let config = EventsConfig::from_env()?;
    let deps = wa_shared::wiring::aws::events(&config).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<DynamoDbEvent>| async move {
            Ok::<_, Infallible>(wa_shared::app::events::handle(deps, event.payload).await)
        },
    ))
    .await
}
