//! Logging setup, once per process: `telemetry::init()` first thing in `main`.
//!
//! Level: `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging control), else
//! `RUST_LOG` (any `EnvFilter` directive), else INFO. Format: one JSON object per
//! line, with the current span's fields (request id, tenant, message id), when
//! `AWS_LAMBDA_LOG_FORMAT=JSON` or when running in Lambda; human-readable text
//! otherwise.

use tracing_subscriber::EnvFilter;

/// What [`init`] sets up, decided from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// An `EnvFilter` directive, e.g. `info` or `wa_shared=debug,info`.
    pub filter: String,
    /// JSON lines instead of text.
    pub json: bool,
}

impl LogSettings {
    /// Decide from environment variables, read through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let filter = match non_empty("AWS_LAMBDA_LOG_LEVEL") {
            Some(level) => lambda_level(&level).to_owned(),
            None => non_empty("RUST_LOG").unwrap_or_else(|| "info".to_owned()),
        };
        let json = non_empty("AWS_LAMBDA_LOG_FORMAT")
            .is_some_and(|f| f.trim().eq_ignore_ascii_case("json"))
            || non_empty("AWS_LAMBDA_FUNCTION_NAME").is_some();
        Self { filter, json }
    }

    /// Decide from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// Lambda's level names as tracing levels (`FATAL` has no equivalent: `error`).
fn lambda_level(level: &str) -> &'static str {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => "info",
    }
}

/// Install the global subscriber. Calling it again (tests) changes nothing.
pub fn init() {
    init_with(&LogSettings::from_env());
}

/// Install the global subscriber with explicit settings (log lines on stdout, where
/// Lambda collects them).
pub fn init_with(settings: &LogSettings) {
    init_with_writer(settings, std::io::stdout);
}

/// Install the global subscriber writing to `writer`: the CLI logs to stderr, so its
/// stdout stays for what the user asked for.
pub fn init_with_writer<W>(settings: &LogSettings, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    // `set_global_default` fails only when a subscriber is already installed: keep that one.
    let _ = tracing::subscriber::set_global_default(subscriber(settings, writer));
}

/// The subscriber [`init_with_writer`] installs. A log line that cannot be written
/// (stderr closed or full) is dropped: the fmt layer would otherwise report it with
/// `eprintln!`, which panics when stderr is the thing that failed, and a panic in a
/// handler's logging must never stop the pipeline.
pub fn subscriber<W>(
    settings: &LogSettings,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .log_internal_errors(false);
    if settings.json {
        Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_ansi(false)
                .finish(),
        )
    } else {
        Box::new(builder.with_ansi(false).finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LogSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn lambda_level_beats_rust_log_which_beats_the_default() {
        assert_eq!(settings(&[]).filter, "info");
        assert_eq!(
            settings(&[("RUST_LOG", "wa_shared=debug")]).filter,
            "wa_shared=debug"
        );
        let both = settings(&[("RUST_LOG", "trace"), ("AWS_LAMBDA_LOG_LEVEL", "WARN")]);
        assert_eq!(both.filter, "warn");
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).filter,
            "error"
        );
        assert_eq!(settings(&[("AWS_LAMBDA_LOG_LEVEL", "")]).filter, "info");
    }

    #[test]
    fn json_in_lambda_or_when_asked() {
        assert!(!settings(&[]).json);
        assert!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).json);
        assert!(!settings(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).json);
        assert!(settings(&[("AWS_LAMBDA_FUNCTION_NAME", "dev-wa-intake")]).json);
    }
}
