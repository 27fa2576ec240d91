//! Tests against moto (local AWS): run them with `scripts/with-moto.sh`.
//!
//! Without `AWS_ENDPOINT_URL` a moto-backed test skips (a developer's plain
//! `cargo test` stays green and fast); with `WA_REQUIRE_MOTO=1` (set by the
//! script, so by `make test` and CI) a missing endpoint fails the test instead,
//! so CI can never pass by skipping.

use wa_shared::adapters::aws::{SdkConfig, load_sdk_config};

/// What a skipped test prints.
pub const SKIP_MESSAGE: &str = "skipping: moto not running (AWS_ENDPOINT_URL unset)";

/// Whether moto-backed tests can run, given the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MotoAvailability {
    /// `AWS_ENDPOINT_URL` names the emulator.
    Available {
        /// The endpoint URL, e.g. `http://127.0.0.1:5123`.
        endpoint: String,
    },
    /// No endpoint, and nobody requires one: skip.
    Skip,
    /// No endpoint, but `WA_REQUIRE_MOTO=1`: fail.
    Missing,
}

/// Decide from the values of `AWS_ENDPOINT_URL` and `WA_REQUIRE_MOTO`.
pub fn availability(endpoint: Option<&str>, require_moto: Option<&str>) -> MotoAvailability {
    match endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        Some(endpoint) => MotoAvailability::Available {
            endpoint: endpoint.to_owned(),
        },
        None if require_moto.map(str::trim) == Some("1") => MotoAvailability::Missing,
        None => MotoAvailability::Skip,
    }
}

/// The moto endpoint from the environment; `None` (after printing [`SKIP_MESSAGE`])
/// when it is unset.
///
/// # Panics
/// When the endpoint is unset and `WA_REQUIRE_MOTO=1`: a required test must not skip.
pub fn endpoint_or_skip() -> Option<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let require = std::env::var("WA_REQUIRE_MOTO").ok();
    match availability(endpoint.as_deref(), require.as_deref()) {
        MotoAvailability::Available { endpoint } => Some(endpoint),
        MotoAvailability::Skip => {
            eprintln!("{SKIP_MESSAGE}");
            None
        }
        MotoAvailability::Missing => panic!(
            "WA_REQUIRE_MOTO=1 but AWS_ENDPOINT_URL is unset: run the tests through scripts/with-moto.sh"
        ),
    }
}

/// The SDK configuration pointing at moto, or `None` after printing the skip
/// message. Use as `let Some(config) = moto::sdk_config_or_skip().await else { return };`.
///
/// # Panics
/// As [`endpoint_or_skip`].
pub async fn sdk_config_or_skip() -> Option<SdkConfig> {
    endpoint_or_skip()?;
    // The standard loader reads AWS_ENDPOINT_URL itself: the same path production takes.
    Some(load_sdk_config().await)
}

/// Create the bus `bus` and a rule on it (`source: wa.pipeline`, as the stage's
/// consumers match) whose one target is the SQS queue at `queue_url`: what the SAM
/// template builds for the `deliveries` queue, and what tests read events back from.
pub async fn route_bus_to_queue(sdk: &SdkConfig, bus: &str, queue_url: &str) {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    events.create_event_bus().name(bus).send().await.unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let rule = format!("{bus}-all");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(r#"{"source": ["wa.pipeline"]}"#)
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("consumer")
        .arn(arn)
        .build()
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_means_moto_is_available() {
        assert_eq!(
            availability(Some("http://127.0.0.1:5000"), None),
            MotoAvailability::Available {
                endpoint: "http://127.0.0.1:5000".into()
            }
        );
    }

    #[test]
    fn no_endpoint_skips_unless_moto_is_required() {
        assert_eq!(availability(None, None), MotoAvailability::Skip);
        assert_eq!(availability(Some(" "), Some("0")), MotoAvailability::Skip);
        assert_eq!(availability(None, Some("1")), MotoAvailability::Missing);
        assert_eq!(availability(Some(""), Some("1")), MotoAvailability::Missing);
    }
}
