//! `intake`: `POST /v1/messages` and `GET /v1/messages/{id}` behind API Gateway's
//! HTTP API (payload v2). All logic is in `wa_shared::app::intake`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::convert::Infallible;
use wa_shared::app::http::ApiGatewayV2httpRequest;
use wa_shared::config::IntakeConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wa_shared::telemetry::init();
    let config = IntakeConfig::from_env()?;
    let deps = wa_shared::wiring::aws::intake(&config).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            Ok::<_, Infallible>(wa_shared::app::intake::handle(deps, event.payload).await)
        },
    ))
    .await
}
