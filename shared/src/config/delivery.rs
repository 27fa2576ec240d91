//! The `delivery` function's configuration.

use super::{CommonConfig, ConfigError, Vars};
use crate::app::delivery::DeliverySettings;
use crate::app::delivery::urls::UrlRules;

/// The `delivery` function's configuration (and `wa events replay`'s on AWS).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Shared part (the directory table holds the endpoints; the events table is
    /// read by replays).
    pub common: CommonConfig,
    /// `WA_DELIVERY_QUEUE_URL`: the `deliveries` queue (jobs to come).
    pub queue_url: String,
    /// `WA_ENDPOINT_SECRET_PREFIX`: the endpoints' secrets are named under it.
    pub secret_prefix: String,
    /// `WA_DELIVERY_TIMEOUT_MS` (default 10000, 100..=30000): one attempt;
    /// `WA_DELIVERY_CONCURRENCY` (default 32, 1..=256): attempts at once;
    /// `WA_ENDPOINT_DISABLE_AFTER_MS` (default 3 days): failing this long disables;
    /// `WA_DELIVERY_TIME_SCALE` (default 1, in (0, 1]) and
    /// `WA_DELIVERY_ALLOW_LOOPBACK` (`true` for tests on 127.0.0.1 only).
    pub settings: DeliverySettings,
}

impl DeliveryConfig {
    /// Read and validate from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read and validate through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(var);
        let d = DeliverySettings::default();
        let common = CommonConfig::read(&vars)?;
        let time_scale = match vars.optional("WA_DELIVERY_TIME_SCALE") {
            None => 1.0,
            Some(raw) => match raw.parse::<f64>() {
                Ok(x) if x > 0.0 && x <= 1.0 => x,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: "WA_DELIVERY_TIME_SCALE",
                        reason: "must be a number in (0, 1]".into(),
                    });
                }
            },
        };
        let allow_loopback = match vars.optional("WA_DELIVERY_ALLOW_LOOPBACK").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: "WA_DELIVERY_ALLOW_LOOPBACK",
                    reason: "must be true or false".into(),
                });
            }
        };
        let concurrency = vars.number("WA_DELIVERY_CONCURRENCY", 32, 1, 256)?;
        let settings = DeliverySettings {
            time_scale,
            disable_after: vars.millis(
                "WA_ENDPOINT_DISABLE_AFTER_MS",
                d.disable_after,
                1,
                30 * 86_400_000,
            )?,
            timeout: vars.millis("WA_DELIVERY_TIMEOUT_MS", d.timeout, 100, 30_000)?,
            rules: UrlRules { allow_loopback },
            concurrency: usize::try_from(concurrency).unwrap_or(d.concurrency),
            ..d
        };
        Ok(Self {
            common,
            queue_url: vars.required("WA_DELIVERY_QUEUE_URL")?,
            secret_prefix: vars.required("WA_ENDPOINT_SECRET_PREFIX")?,
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    const BASE: [(&str, &str); 6] = [
        ("WA_STAGE", "dev"),
        ("WA_MESSAGES_TABLE", "dev-wa-messages"),
        ("WA_DIRECTORY_TABLE", "dev-wa-directory"),
        ("WA_EVENTS_TABLE", "dev-wa-events"),
        ("WA_DELIVERY_QUEUE_URL", "http://127.0.0.1:1/q"),
        ("WA_ENDPOINT_SECRET_PREFIX", "dev/wa/endpoints/"),
    ];

    #[test]
    fn delivery_needs_its_queue_and_prefix_and_keeps_urls_public_by_default() {
        assert_eq!(
            DeliveryConfig::from_lookup(lookup(&BASE[..4])).unwrap_err(),
            ConfigError::Missing("WA_DELIVERY_QUEUE_URL")
        );
        let c = DeliveryConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(c.settings.timeout, Duration::from_secs(10));
        assert!(!c.settings.rules.allow_loopback);
        assert!((c.settings.time_scale - 1.0).abs() < f64::EPSILON);
        let mut vars = BASE.to_vec();
        vars.push(("WA_DELIVERY_ALLOW_LOOPBACK", "true"));
        vars.push(("WA_DELIVERY_TIME_SCALE", "0.001"));
        vars.push(("WA_DELIVERY_TIMEOUT_MS", "500"));
        let c = DeliveryConfig::from_lookup(lookup(&vars)).unwrap();
        assert!(c.settings.rules.allow_loopback);
        assert_eq!(c.settings.timeout, Duration::from_millis(500));
        for (var, bad) in [
            ("WA_DELIVERY_ALLOW_LOOPBACK", "yes"),
            ("WA_DELIVERY_TIME_SCALE", "2"),
            ("WA_DELIVERY_TIMEOUT_MS", "60000"),
        ] {
            let mut vars = BASE.to_vec();
            vars.push((var, bad));
            assert!(
                matches!(DeliveryConfig::from_lookup(lookup(&vars)), Err(ConfigError::Invalid { var: v, .. }) if v == var),
                "{var}={bad}"
            );
        }
    }
}
