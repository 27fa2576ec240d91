//! `delivery`: SQS batches of the `deliveries` queue (events copied from the stage's
//! bus, and retry jobs) -> signed Standard Webhooks `POST`s to the tenants' endpoints,
//! answered with `ReportBatchItemFailures`. All logic is in
//! `wa_shared::app::delivery`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::convert::Infallible;
use wa_shared::app::delivery::SqsEvent;
use wa_shared::config::DeliveryConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wa_shared::telemetry::init();
    let config = DeliveryConfig::from_env()?;
    let deps = wa_shared::wiring::aws::delivery(&config).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Infallible>(wa_shared::app::delivery::handle(deps, event.payload).await)
    }))
    .await
}
