//! One tenant's endpoint as configured, its URL rules, the retry schedule and the
//! dispatcher's settings.

use super::signing::{SecretError, WebhookSecret};
use std::collections::BTreeSet;
use std::time::Duration;
use wa_shared::domain::TenantId;
use wa_shared::domain::events::EventType;

pub use wa_shared::domain::endpoints::{MAX_ATTEMPTS, RETRY_SCHEDULE};

/// The dispatcher's settings (`[events]` in `wa.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct EventsSettings {
    /// Multiplies every wait of the schedule and `disable_after` (1: real time; tests
    /// use 0.001 and less so a day of retries takes seconds).
    pub time_scale: f64,
    /// An endpoint whose attempts have all failed for this long (before scaling) is
    /// disabled (default 3 days).
    pub disable_after: Duration,
    /// The whole HTTP exchange of one attempt, answer included (default 10 s).
    pub timeout: Duration,
    /// Attempts in flight at once per endpoint (default 4).
    pub max_in_flight: usize,
    /// How often each endpoint looks for new events and due retries (default 100 ms).
    pub poll_interval: Duration,
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            disable_after: Duration::from_secs(3 * 24 * 3600),
            timeout: Duration::from_secs(10),
            max_in_flight: 4,
            poll_interval: Duration::from_millis(100),
        }
    }
}

impl EventsSettings {
    /// The wait before the next attempt after `attempts` attempts have failed, or
    /// `None` when the delivery is dead (all [`MAX_ATTEMPTS`] spent).
    pub fn retry_delay(&self, attempts: u32) -> Option<Duration> {
        wa_shared::domain::endpoints::retry_delay(attempts, self.time_scale)
    }

    /// `disable_after`, scaled.
    pub fn disable_after_scaled(&self) -> Duration {
        self.scaled(self.disable_after)
    }

    fn scaled(&self, d: Duration) -> Duration {
        wa_shared::domain::endpoints::scaled(d, self.time_scale)
    }
}

/// One configured endpoint of a tenant.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The tenant whose events it receives.
    pub tenant: TenantId,
    /// The URL, checked by [`check_url`] and normalized.
    pub url: String,
    /// The signing secret (never logged).
    pub secret: WebhookSecret,
    /// Types it receives; `None`: all.
    pub types: Option<BTreeSet<EventType>>,
}

impl EndpointConfig {
    /// The endpoint's key in the delivery tables: tenant and URL.
    pub fn key(&self) -> String {
        endpoint_key(&self.tenant, &self.url)
    }

    /// Whether an event of type `t` goes to this endpoint.
    pub fn wants(&self, t: EventType) -> bool {
        self.types.as_ref().is_none_or(|types| types.contains(&t))
    }

    /// Parse and check one `[[tenants.endpoints]]` entry.
    pub fn parse(
        tenant: &TenantId,
        url: &str,
        secret: &str,
        types: Option<&[String]>,
    ) -> Result<Self, EndpointError> {
        let url = check_url(url)?;
        let secret = WebhookSecret::parse(secret).map_err(EndpointError::Secret)?;
        let types = match types {
            None => None,
            Some(names) => {
                let mut set = BTreeSet::new();
                for name in names {
                    let t: EventType = name
                        .parse()
                        .map_err(|_| EndpointError::UnknownType(name.clone()))?;
                    set.insert(t);
                }
                if set.is_empty() {
                    return Err(EndpointError::NoTypes);
                }
                Some(set)
            }
        };
        Ok(Self {
            tenant: tenant.clone(),
            url,
            secret,
            types,
        })
    }
}

/// The key of `tenant`'s endpoint at `url` in the delivery tables.
pub fn endpoint_key(tenant: &TenantId, url: &str) -> String {
    format!("{tenant} {url}")
}

/// Why an endpoint entry was refused (never quoting the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The URL is not usable.
    #[error("url: {0}")]
    Url(String),
    /// The secret is not a Standard Webhooks secret.
    #[error("secret: {0}")]
    Secret(SecretError),
    /// A `types` entry names no event type.
    #[error("types: unknown event type {0:?}")]
    UnknownType(String),
    /// `types = []` would receive nothing.
    #[error("types: empty (leave it out to receive every type)")]
    NoTypes,
}

/// `url`, normalized, when it is `https://`, or `http://` to this machine
/// (`127.0.0.1` and the rest of 127/8, `localhost`, `[::1]`): events leave the machine
/// encrypted only. No credentials in it, no fragment.
pub fn check_url(url: &str) -> Result<String, EndpointError> {
    let bad = |why: &str| EndpointError::Url(why.to_owned());
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| EndpointError::Url(e.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "credentials in the URL are not allowed (sign with the secret)",
        ));
    }
    if parsed.fragment().is_some() {
        return Err(bad("a fragment (#...) is not allowed"));
    }
    let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "must be https:// (plain http:// only to 127.0.0.1, localhost or [::1])",
            ));
        }
        other => {
            return Err(EndpointError::Url(format!(
                "scheme {other:?}: must be https://"
            )));
        }
    }
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_more_than_a_day_and_scales() {
        let real = EventsSettings::default();
        let total: Duration = (1..MAX_ATTEMPTS).filter_map(|a| real.retry_delay(a)).sum();
        assert_eq!(total, Duration::from_secs(27 * 3600 + 35 * 60 + 5));
        assert!(total > Duration::from_secs(24 * 3600));
        assert_eq!(real.retry_delay(0), None);
        assert_eq!(real.retry_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(real.retry_delay(2), Some(Duration::from_secs(300)));
        assert_eq!(real.retry_delay(7), Some(Duration::from_secs(36_000)));
        assert_eq!(
            real.retry_delay(MAX_ATTEMPTS),
            None,
            "the 8th failure is final"
        );
        assert_eq!(MAX_ATTEMPTS, 8);
        let fast = EventsSettings {
            time_scale: 0.001,
            ..EventsSettings::default()
        };
        assert_eq!(fast.retry_delay(1), Some(Duration::from_millis(5)));
        assert_eq!(fast.retry_delay(3), Some(Duration::from_millis(1800)));
        assert_eq!(fast.disable_after_scaled(), Duration::from_millis(259_200));
    }

    #[test]
    fn urls_are_https_or_local_http() {
        for ok in [
            "https://hooks.example.com/wa",
            "http://127.0.0.1:9000/hooks",
            "http://127.0.0.2/hooks",
            "http://localhost:9000/",
            "http://LOCALHOST/x",
            "http://[::1]:9000/hooks",
            "https://10.0.0.1/hooks?x=1",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_url("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000/"
        );
        for (bad, needle) in [
            ("http://example.com/hooks", "must be https"),
            ("http://10.0.0.1/hooks", "must be https"),
            ("http://localhost.example.com/", "must be https"),
            ("ftp://127.0.0.1/", "scheme"),
            ("https://user:pw@example.com/", "credentials"),
            ("https://example.com/#x", "fragment"),
            ("not a url", "url"),
        ] {
            let e = check_url(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn types_filter_events() {
        let tenant = TenantId::parse("acme").unwrap();
        let secret = WebhookSecret::from_key(&[3u8; 32]).to_whsec();
        let all = EndpointConfig::parse(&tenant, "http://127.0.0.1:1/", &secret, None).unwrap();
        assert!(all.wants(EventType::MessageRead));
        let some = EndpointConfig::parse(
            &tenant,
            "http://127.0.0.1:1/",
            &secret,
            Some(&["message.delivered".to_owned(), "message.failed".to_owned()]),
        )
        .unwrap();
        assert!(some.wants(EventType::MessageDelivered));
        assert!(!some.wants(EventType::MessageRead));
        assert_eq!(some.key(), "acme http://127.0.0.1:1/");
        let e = EndpointConfig::parse(&tenant, "http://127.0.0.1:1/", &secret, Some(&["x".into()]))
            .unwrap_err();
        assert_eq!(e, EndpointError::UnknownType("x".into()));
        let e =
            EndpointConfig::parse(&tenant, "http://127.0.0.1:1/", &secret, Some(&[])).unwrap_err();
        assert_eq!(e, EndpointError::NoTypes);
    }
}
