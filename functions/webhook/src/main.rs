//! `webhook`: Meta's `GET`/`POST /webhook` through API Gateway's HTTP API (payload v2),
//! and batches of parked bodies from the webhook inbox (SQS) — one function, two event
//! shapes, told apart by `WebhookInvocation`. All logic is in `wa_shared::app::webhook`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::convert::Infallible;
use wa_shared::app::webhook::WebhookInvocation;
use wa_shared::config::WebhookConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wa_shared::telemetry::init();
    let config = WebhookConfig::from_env()?;
    let deps = wa_shared::wiring::aws::webhook(&config).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebhookInvocation>| async move {
            Ok::<_, Infallible>(wa_shared::app::webhook::handle(deps, event.payload).await)
        },
    ))
    .await
}
