//! Typed configuration of the Lambda functions, read once from the environment at
//! cold start and validated then (a bad value stops the function before it takes
//! any event). The variable names are those `infra/template.yaml` passes (see
//! infra/README.md, "Environment"); optional tuning variables have defaults.
//!
//! Each function's config holds the shared [`CommonConfig`] (tables, stage and the
//! lifecycle policy, retry budget included: each variable is parsed in one place)
//! and its own part; `crate::wiring::aws` builds the function's deps from it.

mod delivery;
#[cfg(feature = "aws")]
mod events;
mod reconciler;
mod webhook;

pub use delivery::DeliveryConfig;
#[cfg(feature = "aws")]
pub use events::EventsConfig;
pub use reconciler::ReconcilerConfig;
pub use webhook::WebhookConfig;

use crate::adapters::graph::{
    DEFAULT_CONNECT_TIMEOUT, GRAPH_API_VERSION, GRAPH_BASE_URL, GraphConfig,
};
use crate::app::intake::{DEFAULT_CACHE_TTL, IntakeSettings};
use crate::app::sender::SenderSettings;
use crate::domain::LifecyclePolicy;
use crate::metrics::NAMESPACE;
use std::time::Duration;

/// A variable is missing or unusable. Values are not echoed (they could be secrets
/// put in the wrong variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads variables through a lookup function (the process environment, or a map in tests).
pub(crate) struct Vars<F>(pub(crate) F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn optional(&self, var: &'static str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.optional(var).ok_or(ConfigError::Missing(var))
    }

    fn number(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.optional(var) else {
            return Ok(default);
        };
        let n: u64 = raw.parse().map_err(|_| ConfigError::Invalid {
            var,
            reason: "not a whole number".into(),
        })?;
        if !(min..=max).contains(&n) {
            return Err(ConfigError::Invalid {
                var,
                reason: format!("must be within {min}..={max}"),
            });
        }
        Ok(n)
    }

    fn millis(
        &self,
        var: &'static str,
        default: Duration,
        min_ms: u64,
        max_ms: u64,
    ) -> Result<Duration, ConfigError> {
        let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        self.number(var, default_ms, min_ms, max_ms)
            .map(Duration::from_millis)
    }
}

/// What every function reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonConfig {
    /// `WA_STAGE`: the stage, also the `Stage` metric dimension.
    pub stage: String,
    /// `WA_MESSAGES_TABLE`.
    pub messages_table: String,
    /// `WA_DIRECTORY_TABLE`.
    pub directory_table: String,
    /// `WA_EVENTS_TABLE`: the tenants' event logs.
    pub events_table: String,
    /// Lifecycle timings and retry budget: `WA_CLAIM_LEASE_MS` sets the lease,
    /// `WA_MAX_ATTEMPTS` (default 5) and `WA_MAX_MESSAGE_AGE_MS` (default 24 h) the
    /// budget the sender and the reconciler share.
    pub lifecycle: LifecyclePolicy,
}

impl CommonConfig {
    fn read<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, ConfigError> {
        if let Some(ns) = vars.optional("WA_METRICS_NAMESPACE")
            && ns != NAMESPACE
        {
            return Err(ConfigError::Invalid {
                var: "WA_METRICS_NAMESPACE",
                reason: format!("the metric contract's namespace is {NAMESPACE}"),
            });
        }
        let mut lifecycle = LifecyclePolicy::default();
        lifecycle.lease =
            vars.millis("WA_CLAIM_LEASE_MS", lifecycle.lease, 1_000, 12 * 3_600_000)?;
        let max_attempts =
            vars.number("WA_MAX_ATTEMPTS", u64::from(lifecycle.max_attempts), 1, 100)?;
        lifecycle.max_attempts = u32::try_from(max_attempts).unwrap_or(u32::MAX);
        lifecycle.max_age = vars.millis(
            "WA_MAX_MESSAGE_AGE_MS",
            lifecycle.max_age,
            60_000,
            14 * 86_400_000,
        )?;
        Ok(Self {
            stage: vars.required("WA_STAGE")?,
            messages_table: vars.required("WA_MESSAGES_TABLE")?,
            directory_table: vars.required("WA_DIRECTORY_TABLE")?,
            events_table: vars.required("WA_EVENTS_TABLE")?,
            lifecycle,
        })
    }
}

/// Intake's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeConfig {
    /// Shared part.
    pub common: CommonConfig,
    /// `WA_LOOKUP_CACHE_MS` (default 5000; 0 disables): tenant and template cache.
    pub lookup_cache_ttl: Duration,
    /// `WA_QUOTAS_TABLE`: the tenants' intake quota ledger.
    pub quotas_table: String,
}

impl IntakeConfig {
    /// Read and validate from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read and validate through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(var);
        Ok(Self {
            common: CommonConfig::read(&vars)?,
            lookup_cache_ttl: vars.millis("WA_LOOKUP_CACHE_MS", DEFAULT_CACHE_TTL, 0, 300_000)?,
            quotas_table: vars.required("WA_QUOTAS_TABLE")?,
        })
    }

    /// The handler's settings.
    pub fn settings(&self) -> IntakeSettings {
        IntakeSettings::default()
    }
}

/// The sender's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// Shared part.
    pub common: CommonConfig,
    /// `WA_GRAPH_BASE_URL`, `WA_GRAPH_API_VERSION`, `WA_GRAPH_TIMEOUT_MS`,
    /// `WA_GRAPH_CONNECT_TIMEOUT_MS` (checked by [`GraphConfig::messages_url_prefix`]).
    pub graph: GraphConfig,
    /// `WA_TENANT_SECRET_PREFIX`: token secrets live under it.
    pub tenant_secret_prefix: String,
    /// `WA_SEND_CONCURRENCY` (default 10): records of a batch in flight at once.
    pub concurrency: usize,
    /// `WA_LOOKUP_CACHE_MS` (default 2000; 0 disables).
    pub lookup_cache_ttl: Duration,
    /// `WA_QUOTAS_TABLE`: the numbers' and recipients' send schedules live there,
    /// beside intake's quotas (docs/pacing.md).
    pub quotas_table: String,
}

impl SenderConfig {
    /// Read and validate from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read and validate through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(var);
        let defaults = SenderSettings::default();
        let timeout = vars.millis("WA_GRAPH_TIMEOUT_MS", Duration::from_secs(10), 10, 120_000)?;
        // The connect limit must stay below the total one (GraphConfig's rule).
        let connect_default = DEFAULT_CONNECT_TIMEOUT.min(timeout / 2);
        let graph = GraphConfig {
            base_url: vars
                .optional("WA_GRAPH_BASE_URL")
                .unwrap_or_else(|| GRAPH_BASE_URL.to_owned()),
            api_version: vars
                .optional("WA_GRAPH_API_VERSION")
                .unwrap_or_else(|| GRAPH_API_VERSION.to_owned()),
            connect_timeout: vars.millis(
                "WA_GRAPH_CONNECT_TIMEOUT_MS",
                connect_default,
                1,
                60_000,
            )?,
            timeout,
        };
        graph
            .messages_url_prefix()
            .map_err(|e| ConfigError::Invalid {
                var: "WA_GRAPH_BASE_URL",
                reason: e.to_string(),
            })?;
        let concurrency =
            vars.number("WA_SEND_CONCURRENCY", defaults.concurrency as u64, 1, 100)?;
        Ok(Self {
            common: CommonConfig::read(&vars)?,
            graph,
            tenant_secret_prefix: vars.required("WA_TENANT_SECRET_PREFIX")?,
            quotas_table: vars.required("WA_QUOTAS_TABLE")?,
            concurrency: usize::try_from(concurrency).unwrap_or(1),
            lookup_cache_ttl: vars.millis(
                "WA_LOOKUP_CACHE_MS",
                crate::app::sender::DEFAULT_CACHE_TTL,
                0,
                60_000,
            )?,
        })
    }

    /// The handler's settings (Meta's limits; the schedules are in the quotas table,
    /// shared by every concurrent sender).
    pub fn settings(&self) -> SenderSettings {
        SenderSettings {
            concurrency: self.concurrency,
            ..SenderSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const COMMON: [(&str, &str); 5] = [
        ("WA_STAGE", "dev"),
        ("WA_MESSAGES_TABLE", "dev-wa-messages"),
        ("WA_DIRECTORY_TABLE", "dev-wa-directory"),
        ("WA_EVENTS_TABLE", "dev-wa-events"),
        ("WA_METRICS_NAMESPACE", "WaPipeline"),
    ];

    fn intake_vars() -> Vec<(&'static str, &'static str)> {
        let mut vars = COMMON.to_vec();
        vars.push(("WA_QUOTAS_TABLE", "dev-wa-quotas"));
        vars
    }

    #[test]
    fn intake_reads_the_template_variables_and_defaults_the_rest() {
        let config = IntakeConfig::from_lookup(lookup(&intake_vars())).unwrap();
        assert_eq!(config.common.stage, "dev");
        assert_eq!(config.common.messages_table, "dev-wa-messages");
        assert_eq!(config.quotas_table, "dev-wa-quotas");
        assert_eq!(config.lookup_cache_ttl, DEFAULT_CACHE_TTL);
        assert_eq!(config.common.lifecycle, LifecyclePolicy::default());
        assert_eq!(config.settings(), IntakeSettings::default());
    }

    #[test]
    fn missing_and_invalid_variables_are_named() {
        let missing = IntakeConfig::from_lookup(lookup(&COMMON[1..])).unwrap_err();
        assert_eq!(missing, ConfigError::Missing("WA_STAGE"));
        let missing = IntakeConfig::from_lookup(lookup(&COMMON)).unwrap_err();
        assert_eq!(missing, ConfigError::Missing("WA_QUOTAS_TABLE"));
        let mut vars = intake_vars();
        vars.push(("WA_LOOKUP_CACHE_MS", "soon"));
        let invalid = IntakeConfig::from_lookup(lookup(&vars)).unwrap_err();
        assert!(matches!(
            invalid,
            ConfigError::Invalid {
                var: "WA_LOOKUP_CACHE_MS",
                ..
            }
        ));
        let mut vars = intake_vars();
        vars[4] = ("WA_METRICS_NAMESPACE", "Other");
        assert!(IntakeConfig::from_lookup(lookup(&vars)).is_err());
    }

    #[test]
    fn the_sender_needs_a_secret_prefix_and_checks_graph_settings() {
        assert_eq!(
            SenderConfig::from_lookup(lookup(&COMMON)).unwrap_err(),
            ConfigError::Missing("WA_TENANT_SECRET_PREFIX")
        );
        let mut vars = COMMON.to_vec();
        vars.extend([
            ("WA_TENANT_SECRET_PREFIX", "dev/wa/tenants/"),
            ("WA_QUOTAS_TABLE", "dev-wa-quotas"),
            ("WA_GRAPH_BASE_URL", "http://127.0.0.1:9"),
            ("WA_GRAPH_TIMEOUT_MS", "300"),
            ("WA_CLAIM_LEASE_MS", "60000"),
            ("WA_MAX_ATTEMPTS", "3"),
        ]);
        let config = SenderConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(config.graph.timeout, Duration::from_millis(300));
        assert_eq!(config.graph.connect_timeout, Duration::from_millis(150));
        assert_eq!(config.common.lifecycle.lease, Duration::from_secs(60));
        assert_eq!(config.common.lifecycle.max_attempts, 3);
        assert_eq!(config.quotas_table, "dev-wa-quotas");
        vars.push(("WA_GRAPH_API_VERSION", "25"));
        assert!(SenderConfig::from_lookup(lookup(&vars)).is_err());
    }
}
