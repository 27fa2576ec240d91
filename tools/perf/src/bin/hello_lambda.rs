//! The baseline of the Lambda init measurements (issue 15 point 2): a `lambda_runtime`
//! function that builds the same AWS SDK clients as the pipeline's functions
//! (DynamoDB, SQS, Secrets Manager, from the standard loader) and an HTTP client, and
//! answers every event with it unchanged. `wa-perf`'s `lambda_times` compares each
//! function's init and invocation times with this one's.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clients = (
        aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
        aws_sdk_secretsmanager::Client::new(&sdk),
        reqwest::Client::new(),
    );
    let clients = &clients;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Touch the clients so the build keeps them, as a function's handler would.
        let _ = (&clients.0, &clients.1, &clients.2, &clients.3);
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
