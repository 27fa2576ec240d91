//! Which endpoint URLs the AWS delivery function may call.
//!
//! An endpoint runs on the public internet: `https://` only, and never to an address
//! inside AWS or the function's network (private, loopback, link-local such as the
//! instance metadata service at 169.254.169.254, carrier-grade NAT, multicast,
//! documentation and reserved ranges). The URL is checked when the endpoint is added
//! and again at each attempt (an IP literal), and every name is resolved through
//! [`PublicOnlyResolver`], which drops such addresses, so a name that resolves, or
//! later rebinds, to one is refused too.
//!
//! Tests (and only tests) set [`UrlRules::allow_loopback`]: plain `http://` to
//! 127.0.0.1, `localhost` or `[::1]`, as `wa dev` allows.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What URLs are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlRules {
    /// Allow `http://` (and `https://`) to loopback addresses: tests only.
    pub allow_loopback: bool,
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("url: {0}")]
pub struct UrlError(pub String);

/// `url`, normalized, if an endpoint may be called there under `rules`.
pub fn check_endpoint_url(url: &str, rules: UrlRules) -> Result<String, UrlError> {
    let bad = |why: &str| UrlError(why.to_owned());
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| UrlError(e.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "credentials in the URL are not allowed (sign with the secret)",
        ));
    }
    if parsed.fragment().is_some() {
        return Err(bad("a fragment (#...) is not allowed"));
    }
    let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let name_is_local = {
        let h = host.to_ascii_lowercase();
        h == "localhost" || h.ends_with(".localhost")
    };
    let loopback = name_is_local || literal.is_some_and(|ip| ip.is_loopback());
    if loopback {
        if !rules.allow_loopback {
            return Err(bad("loopback addresses are not allowed"));
        }
    } else if let Some(ip) = literal
        && !is_public(ip)
    {
        return Err(UrlError(format!(
            "{ip} is a private, link-local or reserved address"
        )));
    }
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(bad("must be https://")),
        other => return Err(UrlError(format!("scheme {other:?}: must be https://"))),
    }
    Ok(parsed.to_string())
}

/// Whether `ip` is a public unicast address (not private, loopback, link-local,
/// shared, multicast, documentation, benchmarking or reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64: the IPv4 address it embeds decides.
        let v4 = Ipv4Addr::new(
            (s[6] >> 8) as u8,
            (s[6] & 0xff) as u8,
            (s[7] >> 8) as u8,
            (s[7] & 0xff) as u8,
        );
        return is_public_v4(v4);
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible and reserved
}

/// A resolver that keeps only public addresses (and loopback ones when the rules
/// allow them); a name left with none fails to resolve, so nothing connects.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver {
    /// The rules in force.
    pub rules: UrlRules,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| is_public(a.ip()) || (rules.allow_loopback && a.ip().is_loopback()))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (private, link-local and reserved \
                     addresses are refused)"
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_https_urls_pass_and_private_ones_do_not() {
        let aws = UrlRules::default();
        for ok in [
            "https://hooks.example.com/wa",
            "https://8.8.8.8/x",
            "https://[2606:4700::1111]/x",
        ] {
            assert!(check_endpoint_url(ok, aws).is_ok(), "{ok}");
        }
        for (bad, needle) in [
            ("http://hooks.example.com/", "must be https"),
            ("https://10.1.2.3/", "private"),
            ("https://172.16.0.1/", "private"),
            ("https://192.168.1.1/", "private"),
            ("https://169.254.169.254/latest/meta-data", "link-local"),
            ("https://100.64.0.1/", "reserved"),
            ("https://0.0.0.0/", "reserved"),
            ("https://[fe80::1]/", "link-local"),
            ("https://[fd00::1]/", "private"),
            ("https://[::ffff:10.0.0.1]/", "private"),
            ("https://[64:ff9b::a9fe:a9fe]/", "private"),
            ("https://127.0.0.1/", "loopback"),
            ("http://localhost:9000/", "loopback"),
            ("https://api.localhost/", "loopback"),
            ("https://u:p@example.com/", "credentials"),
            ("https://example.com/#f", "fragment"),
            ("ftp://example.com/", "scheme"),
        ] {
            let e = check_endpoint_url(bad, aws).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let tests = UrlRules {
            allow_loopback: true,
        };
        assert_eq!(
            check_endpoint_url("http://127.0.0.1:9000", tests).unwrap(),
            "http://127.0.0.1:9000/"
        );
        assert!(check_endpoint_url("http://10.0.0.1/", tests).is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_private_answers() {
        let strict = PublicOnlyResolver::default();
        let name: Name = "localhost".parse().unwrap();
        let e = strict.resolve(name).await.err().unwrap().to_string();
        assert!(e.contains("no public address"), "{e}");
        let tests = PublicOnlyResolver {
            rules: UrlRules {
                allow_loopback: true,
            },
        };
        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = tests.resolve(name).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
