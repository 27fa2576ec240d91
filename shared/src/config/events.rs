//! The `events` function's configuration: the stage's bus and the publishing retries.

use super::{CommonConfig, ConfigError, Vars};
use crate::app::events::EventsSettings;

/// The `events` function's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// Shared part (`WA_MESSAGES_TABLE` and `WA_EVENTS_TABLE` also tell the two
    /// streams apart).
    pub common: CommonConfig,
    /// `WA_EVENT_BUS_NAME`: the stage's EventBridge bus (name or ARN).
    pub event_bus_name: String,
    /// `WA_EVENTS_PUBLISH_ATTEMPTS` (default 4, 1..=10): attempts at publishing one
    /// event within an invocation; `WA_EVENTS_PUBLISH_BACKOFF_MS` (default 100,
    /// 1..=5000): the wait before the second, doubled for each later one up to
    /// `WA_EVENTS_PUBLISH_MAX_BACKOFF_MS` (default 1000, 1..=10000).
    pub settings: EventsSettings,
}

impl EventsConfig {
    /// Read and validate from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read and validate through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(var);
        let d = EventsSettings::default();
        let common = CommonConfig::read(&vars)?;
        let attempts = vars.number(
            "WA_EVENTS_PUBLISH_ATTEMPTS",
            u64::from(d.publish_attempts),
            1,
            10,
        )?;
        let settings = EventsSettings {
            messages_table: common.messages_table.clone(),
            events_table: common.events_table.clone(),
            publish_attempts: u32::try_from(attempts).unwrap_or(d.publish_attempts),
            publish_backoff: vars.millis(
                "WA_EVENTS_PUBLISH_BACKOFF_MS",
                d.publish_backoff,
                1,
                5_000,
            )?,
            max_publish_backoff: vars.millis(
                "WA_EVENTS_PUBLISH_MAX_BACKOFF_MS",
                d.max_publish_backoff,
                1,
                10_000,
            )?,
        };
        Ok(Self {
            common,
            event_bus_name: vars.required("WA_EVENT_BUS_NAME")?,
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

    const BASE: [(&str, &str); 5] = [
        ("WA_STAGE", "dev"),
        ("WA_MESSAGES_TABLE", "dev-wa-messages"),
        ("WA_DIRECTORY_TABLE", "dev-wa-directory"),
        ("WA_EVENTS_TABLE", "dev-wa-events"),
        ("WA_EVENT_BUS_NAME", "dev-wa-events"),
    ];

    #[test]
    fn the_events_function_needs_its_bus_and_defaults_the_retries() {
        assert_eq!(
            EventsConfig::from_lookup(lookup(&BASE[..4])).unwrap_err(),
            ConfigError::Missing("WA_EVENT_BUS_NAME")
        );
        let c = EventsConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(c.event_bus_name, "dev-wa-events");
        assert_eq!(c.settings.messages_table, "dev-wa-messages");
        assert_eq!(c.settings.events_table, "dev-wa-events");
        assert_eq!(c.settings.publish_attempts, 4);
        assert_eq!(c.settings.publish_backoff, Duration::from_millis(100));
        let mut vars = BASE.to_vec();
        vars.push(("WA_EVENTS_PUBLISH_ATTEMPTS", "2"));
        vars.push(("WA_EVENTS_PUBLISH_BACKOFF_MS", "20"));
        let c = EventsConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(c.settings.publish_attempts, 2);
        assert_eq!(c.settings.publish_backoff, Duration::from_millis(20));
        let mut zero = BASE.to_vec();
        zero.push(("WA_EVENTS_PUBLISH_ATTEMPTS", "0"));
        assert!(matches!(
            EventsConfig::from_lookup(lookup(&zero)),
            Err(ConfigError::Invalid {
                var: "WA_EVENTS_PUBLISH_ATTEMPTS",
                ..
            })
        ));
    }
}
