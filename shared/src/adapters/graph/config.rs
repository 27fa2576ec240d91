//! Where and how patiently the Graph client talks: checked once, at cold start.

use std::time::Duration;
use thiserror::Error;

/// The Graph API version every send is pinned to (reference §6: Meta's examples
/// use v25.0, served until July 2028). Upgrade deliberately, in one place.
pub const GRAPH_API_VERSION: &str = "v25.0";

/// Meta's Graph API host.
pub const GRAPH_BASE_URL: &str = "https://graph.facebook.com";

/// Default limit on DNS + TCP + TLS. Nothing has been sent while connecting, so a
/// short limit only costs a cheap retry.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Default limit on the whole exchange, connect included. Graph answers a send in
/// well under a second; past this the send is ambiguous, so waiting longer only
/// holds the sender's lease.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Settings of a [`GraphProvider`](super::GraphProvider). No secrets: tokens are
/// per tenant and come with each send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphConfig {
    /// Scheme, host, optional port and path prefix, e.g. [`GRAPH_BASE_URL`] or a
    /// local sandbox (`http://127.0.0.1:8089`). No query, fragment or credentials.
    pub base_url: String,
    /// `v<major>.<minor>`, normally [`GRAPH_API_VERSION`].
    pub api_version: String,
    /// Limit on establishing the connection (DNS, TCP, TLS).
    pub connect_timeout: Duration,
    /// Limit on the whole request, from connecting to the last byte of the answer.
    /// Must exceed `connect_timeout`, so that a timeout which is not a connect
    /// timeout can only happen once the request may have been written.
    pub timeout: Duration,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            base_url: GRAPH_BASE_URL.to_owned(),
            api_version: GRAPH_API_VERSION.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Why a [`GraphConfig`] cannot be used. The base URL is not echoed, in case an
/// operator put credentials in it.
#[derive(Debug, Error)]
pub enum GraphConfigError {
    /// The base URL is not an absolute http(s) URL we can append a path to.
    #[error("invalid Graph base URL: {0}")]
    InvalidBaseUrl(&'static str),
    /// The API version is not of the form `v25.0`.
    #[error("invalid Graph API version {0:?}: expected v<major>.<minor>")]
    InvalidApiVersion(String),
    /// A timeout is zero, or the total timeout does not exceed the connect timeout.
    #[error("invalid timeouts: connect {connect:?} must be > 0 and less than total {total:?}")]
    InvalidTimeouts {
        /// The configured connect timeout.
        connect: Duration,
        /// The configured total timeout.
        total: Duration,
    },
    /// The HTTP client could not be built (e.g. no TLS roots).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl GraphConfig {
    /// Check every field and return the URL prefix of all sends,
    /// `{base}/{version}/`, to which `{phone_number_id}/messages` is appended.
    pub fn messages_url_prefix(&self) -> Result<String, GraphConfigError> {
        let base = self.base_url.trim_end_matches('/');
        let url = reqwest::Url::parse(base)
            .map_err(|_| GraphConfigError::InvalidBaseUrl("not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(GraphConfigError::InvalidBaseUrl(
                "scheme must be http or https",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(GraphConfigError::InvalidBaseUrl("no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(GraphConfigError::InvalidBaseUrl(
                "no query or fragment allowed",
            ));
        }
        // Credentials would end up in error messages that reqwest formats with the URL.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(GraphConfigError::InvalidBaseUrl("no credentials allowed"));
        }
        if !is_api_version(&self.api_version) {
            return Err(GraphConfigError::InvalidApiVersion(
                crate::domain::graph::excerpt(&self.api_version),
            ));
        }
        if self.connect_timeout.is_zero() || self.timeout <= self.connect_timeout {
            return Err(GraphConfigError::InvalidTimeouts {
                connect: self.connect_timeout,
                total: self.timeout,
            });
        }
        Ok(format!("{base}/{}/", self.api_version))
    }
}

/// `v` + digits + `.` + digits.
fn is_api_version(v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    v.strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| digits(major) && digits(minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_base(base: &str) -> GraphConfig {
        GraphConfig {
            base_url: base.to_owned(),
            ..GraphConfig::default()
        }
    }

    #[test]
    fn the_default_config_points_at_meta_with_the_pinned_version() {
        assert_eq!(
            GraphConfig::default().messages_url_prefix().unwrap(),
            "https://graph.facebook.com/v25.0/"
        );
    }

    #[test]
    fn a_base_url_may_carry_a_port_and_a_path_prefix_and_trailing_slashes() {
        assert_eq!(
            with_base("http://127.0.0.1:8089/graph//")
                .messages_url_prefix()
                .unwrap(),
            "http://127.0.0.1:8089/graph/v25.0/"
        );
    }

    #[test]
    fn unusable_base_urls_are_refused_without_echoing_them() {
        for base in [
            "",
            "graph.facebook.com",
            "ftp://graph.facebook.com",
            "https://graph.facebook.com/?x=1",
            "https://graph.facebook.com/#top",
            "https://user:hunter2@graph.facebook.com",
        ] {
            let error = with_base(base).messages_url_prefix().unwrap_err();
            assert!(
                matches!(error, GraphConfigError::InvalidBaseUrl(_)),
                "{base}: {error}"
            );
            assert!(!error.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn api_versions_must_look_like_v25_0() {
        for good in ["v25.0", "v3.11"] {
            assert!(is_api_version(good), "{good}");
        }
        for bad in ["25.0", "v25", "v.0", "v25.", "v25.0/x", "V25.0", ""] {
            let config = GraphConfig {
                api_version: bad.to_owned(),
                ..GraphConfig::default()
            };
            assert!(
                matches!(
                    config.messages_url_prefix(),
                    Err(GraphConfigError::InvalidApiVersion(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_total_timeout_must_exceed_a_nonzero_connect_timeout() {
        let cases = [
            (Duration::ZERO, Duration::from_secs(1)),
            (Duration::from_secs(2), Duration::from_secs(2)),
            (Duration::from_secs(3), Duration::from_secs(1)),
        ];
        for (connect, total) in cases {
            let config = GraphConfig {
                connect_timeout: connect,
                timeout: total,
                ..GraphConfig::default()
            };
            assert!(
                matches!(
                    config.messages_url_prefix(),
                    Err(GraphConfigError::InvalidTimeouts { .. })
                ),
                "{connect:?} {total:?}"
            );
        }
    }
}
