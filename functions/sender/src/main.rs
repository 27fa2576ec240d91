//! `sender`: per-tenant SQS batches of `{tenant, id}` references -> Graph API sends,
//! answered with `ReportBatchItemFailures`. All logic is in `wa_shared::app::sender`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::convert::Infallible;
use wa_shared::app::sender::SqsEvent;
use wa_shared::config::SenderConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wa_shared::telemetry::init();
    let config = SenderConfig::from_env()?;
    let deps = wa_shared::wiring::aws::sender(&config).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Infallible>(wa_shared::app::sender::handle(deps, event.payload).await)
    }))
    .await
}
