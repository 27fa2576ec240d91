//! The reconciler's configuration: its time budget and the sweep's bounds.

use super::{CommonConfig, ConfigError, Vars};
use crate::app::reconciler::ReconcilerSettings;

/// The reconciler's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerConfig {
    /// Shared part (`WA_CLAIM_LEASE_MS` included: leases expire by the same rule).
    pub common: CommonConfig,
    /// `WA_RECONCILER_BUDGET_MS` (default 45000), `WA_RECONCILER_DEADLINE_MARGIN_MS`
    /// (5000, before the invocation's deadline), and the sweep's bounds:
    /// `WA_RECONCILER_PAGE_SIZE` (100), `WA_RECONCILER_MAX_PAGES_PER_KEY` (10),
    /// `WA_RECONCILER_MAX_REQUEUES_PER_TENANT` (100). The retry budget
    /// (`WA_MAX_ATTEMPTS`) is the common lifecycle policy's.
    pub settings: ReconcilerSettings,
}

impl ReconcilerConfig {
    /// Read and validate from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read and validate through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(var);
        let d = ReconcilerSettings::default();
        let count = |var, default: usize, max| {
            vars.number(var, default as u64, 1, max)
                .map(|n| usize::try_from(n).unwrap_or(default))
        };
        let settings = ReconcilerSettings {
            // Under the 15-minute Lambda maximum, so a run always ends before its timeout.
            budget: vars.millis("WA_RECONCILER_BUDGET_MS", d.budget, 1_000, 840_000)?,
            deadline_margin: vars.millis(
                "WA_RECONCILER_DEADLINE_MARGIN_MS",
                d.deadline_margin,
                0,
                60_000,
            )?,
            page_size: count("WA_RECONCILER_PAGE_SIZE", d.page_size, 1_000)?,
            max_pages_per_key: count(
                "WA_RECONCILER_MAX_PAGES_PER_KEY",
                d.max_pages_per_key,
                10_000,
            )?,
            max_requeues_per_tenant: count(
                "WA_RECONCILER_MAX_REQUEUES_PER_TENANT",
                d.max_requeues_per_tenant,
                100_000,
            )?,
        };
        Ok(Self {
            common: CommonConfig::read(&vars)?,
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

    const BASE: [(&str, &str); 4] = [
        ("WA_STAGE", "dev"),
        ("WA_MESSAGES_TABLE", "dev-wa-messages"),
        ("WA_DIRECTORY_TABLE", "dev-wa-directory"),
        ("WA_EVENTS_TABLE", "dev-wa-events"),
    ];

    #[test]
    fn the_reconciler_defaults_every_bound_and_reads_the_budget() {
        let c = ReconcilerConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(c.settings, ReconcilerSettings::default());
        let mut vars = BASE.to_vec();
        vars.push(("WA_RECONCILER_BUDGET_MS", "30000"));
        vars.push(("WA_RECONCILER_MAX_REQUEUES_PER_TENANT", "7"));
        let c = ReconcilerConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(c.settings.budget, Duration::from_secs(30));
        assert_eq!(c.settings.max_requeues_per_tenant, 7);
    }

    #[test]
    fn a_budget_past_the_lambda_maximum_is_refused() {
        let mut vars = BASE.to_vec();
        vars.push(("WA_RECONCILER_BUDGET_MS", "900000"));
        assert!(matches!(
            ReconcilerConfig::from_lookup(lookup(&vars)),
            Err(ConfigError::Invalid {
                var: "WA_RECONCILER_BUDGET_MS",
                ..
            })
        ));
    }
}
