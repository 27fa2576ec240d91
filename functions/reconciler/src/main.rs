//! `reconciler`: every minute (EventBridge Scheduler), sweep the stale messages within
//! a time budget. All logic is in `wa_shared::app::reconciler`.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use wa_shared::app::reconciler::EventBridgeEvent;
use wa_shared::config::ReconcilerConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    wa_shared::telemetry::init();
    let config = ReconcilerConfig::from_env()?;
    let deps = wa_shared::wiring::aws::reconciler(&config).await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent>| async move {
            // The invocation's deadline bounds the run as well as the configured budget.
            // A partial run is reported as an error so Lambda's Errors metric sees it.
            let deadline = Some(event.context.deadline());
            wa_shared::app::reconciler::handle(deps, event.payload, deadline)
                .await
                .map_err(|e| Diagnostic {
                    error_type: e.kind().to_owned(),
                    error_message: e.to_string(),
                })
        },
    ))
    .await
}
