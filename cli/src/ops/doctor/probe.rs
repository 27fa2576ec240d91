//! What both kinds of checks share: the webhook handshake, the Graph reads (a phone
//! number, a WABA's subscribed apps, its template listing) and the comparison of a
//! tenant's stored templates with a reference catalog.

use super::Check;
use crate::ops::templates::listing::TemplateListing;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;
use wa_shared::adapters::graph::GraphConfig;
use wa_shared::domain::TenantId;
use wa_shared::domain::graph::GraphError;
use wa_shared::domain::template::{Template, TemplateCatalog};
use wa_shared::ports::Directory;

/// Name of the handshake check.
pub const HANDSHAKE: &str = "webhook handshake";

/// An HTTP client that never follows redirects (a token must not go elsewhere).
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wa-doctor/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Meta's handshake on `url`: `hub.challenge` must come back as the whole body.
/// `fixes` are (unreachable, refused) fixes.
pub async fn handshake(
    http: &reqwest::Client,
    url: &str,
    verify_token: &SecretString,
    fix_unreachable: &str,
    fix_refused: &str,
) -> Check {
    let mut target = match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => {
            return Check::fail(
                HANDSHAKE,
                format!("{url:?} is not an http(s) URL"),
                "pass --webhook-url https://HOST/webhook",
            );
        }
    };
    let challenge = challenge();
    target
        .query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.verify_token", verify_token.expose_secret())
        .append_pair("hub.challenge", &challenge);
    let answer = match http.get(target).send().await {
        Ok(a) => a,
        // The error would print the URL, and the URL holds the verify token.
        Err(e) => {
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection refused or unreachable"
            } else {
                "request failed"
            };
            return Check::fail(
                HANDSHAKE,
                format!("{url} did not answer: {why}"),
                fix_unreachable,
            );
        }
    };
    let status = answer.status().as_u16();
    let body = answer.text().await.unwrap_or_default();
    match status {
        200 if body.trim() == challenge => {
            Check::pass(HANDSHAKE, format!("{url} echoed the challenge"))
        }
        200 => Check::fail(
            HANDSHAKE,
            format!(
                "{url} answered 200 without echoing the challenge: {}",
                excerpt(&body)
            ),
            "the URL must be the pipeline's /webhook route",
        ),
        401 | 403 => Check::fail(
            HANDSHAKE,
            format!("{url} refused the verify token (HTTP {status})"),
            fix_refused,
        ),
        _ => Check::fail(
            HANDSHAKE,
            format!("{url} answered HTTP {status}: {}", excerpt(&body)),
            "the URL must be the pipeline's /webhook route (GET answers Meta's handshake)",
        ),
    }
}

/// A challenge Meta could send: digits, different each run.
fn challenge() -> String {
    let mut bytes = [0u8; 4];
    let n = match getrandom::fill(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes),
        Err(_) => std::process::id(),
    };
    format!("{}", 1_000_000_000 + u64::from(n))
}

/// Why a Graph read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// No answer.
    Unreachable(String),
    /// Graph answered an error (`code` is Meta's).
    Graph {
        /// HTTP status.
        status: u16,
        /// `error.code`.
        code: Option<i64>,
        /// `error.message` (and details).
        message: String,
    },
    /// The answer is not JSON.
    Body(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unreachable(why) => write!(f, "no answer ({why})"),
            ReadError::Graph {
                status,
                code: Some(code),
                message,
            } => write!(f, "HTTP {status}, error {code}: {message}"),
            ReadError::Graph {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            ReadError::Body(why) => write!(f, "not a Graph answer ({why})"),
        }
    }
}

impl ReadError {
    /// Whether Graph refused the token (190, or 401).
    pub fn is_token(&self) -> bool {
        matches!(
            self,
            ReadError::Graph {
                code: Some(190),
                ..
            } | ReadError::Graph {
                status: 401,
                code: None,
                ..
            }
        )
    }
}

/// The Graph API (Meta's or a sandbox) at one base URL and version.
#[derive(Debug, Clone)]
pub struct Graph {
    http: reqwest::Client,
    /// `{base}/{version}/`.
    prefix: String,
    /// The base URL, as given.
    pub base_url: String,
    /// The version.
    pub version: String,
    timeout: Duration,
}

impl Graph {
    /// Checks the base URL and version the way the sender does.
    pub fn new(base_url: &str, version: &str, timeout: Duration) -> anyhow::Result<Self> {
        let config = GraphConfig {
            base_url: base_url.to_owned(),
            api_version: version.to_owned(),
            ..GraphConfig::default()
        };
        let prefix = config.messages_url_prefix()?;
        Ok(Self {
            http: client(timeout)?,
            prefix,
            base_url: base_url.trim_end_matches('/').to_owned(),
            version: version.to_owned(),
            timeout,
        })
    }

    /// `GET {prefix}{path}` with `token`; the JSON answer.
    pub async fn get(&self, path: &str, token: &SecretString) -> Result<Value, ReadError> {
        let url = format!("{}{path}", self.prefix);
        let answer = self
            .http
            .get(&url)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(|e| {
                ReadError::Unreachable(if e.is_timeout() {
                    format!("{} timed out", self.base_url)
                } else {
                    format!("cannot reach {}", self.base_url)
                })
            })?;
        let status = answer.status().as_u16();
        let body = answer
            .bytes()
            .await
            .map_err(|_| ReadError::Unreachable("the answer was cut".into()))?;
        if !(200..300).contains(&status) {
            let (code, message) = match GraphError::parse(&body) {
                Ok(e) => {
                    let mut message = e.message.clone().unwrap_or_default();
                    if let Some(details) = e.details() {
                        message = format!("{message} ({details})");
                    }
                    (e.code, message)
                }
                Err(_) => (None, excerpt(&String::from_utf8_lossy(&body))),
            };
            return Err(ReadError::Graph {
                status,
                code,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| ReadError::Body(e.to_string()))
    }

    /// `GET /{phone_number_id}?fields=display_phone_number,quality_rating,verified_name`.
    pub async fn phone_number(&self, id: &str, token: &SecretString) -> Result<Value, ReadError> {
        self.get(
            &format!("{id}?fields=display_phone_number,quality_rating,verified_name"),
            token,
        )
        .await
    }

    /// `GET /{waba_id}/subscribed_apps`: the names (or ids) of the subscribed apps.
    pub async fn subscribed_apps(
        &self,
        waba_id: &str,
        token: &SecretString,
    ) -> Result<Vec<String>, ReadError> {
        let v = self
            .get(&format!("{waba_id}/subscribed_apps"), token)
            .await?;
        let data = v["data"]
            .as_array()
            .ok_or_else(|| ReadError::Body("no data array".into()))?;
        Ok(data
            .iter()
            .map(|app| {
                let a = &app["whatsapp_business_api_data"];
                a["name"]
                    .as_str()
                    .or_else(|| a["id"].as_str())
                    .unwrap_or("(unnamed app)")
                    .to_owned()
            })
            .collect())
    }

    /// Every template of `waba_id` (Meta's paged listing, as `wa templates sync` reads it).
    pub async fn templates(
        &self,
        waba_id: &str,
        token: &SecretString,
    ) -> anyhow::Result<TemplateCatalog> {
        let listing =
            TemplateListing::new(&self.base_url, &self.version, waba_id, 100, token.clone())?;
        let bar = indicatif::ProgressBar::hidden();
        let listed = tokio::time::timeout(self.timeout * 4, listing.fetch_all(&bar))
            .await
            .map_err(|_| anyhow::anyhow!("the listing took too long"))??;
        Ok(listed.catalog)
    }
}

/// The `token (tenant T)` check: the phone number read with the tenant's token.
/// `fix_token` says how to give the tenant a valid token on this backend.
pub async fn token_check(
    graph: &Graph,
    tenant: &TenantId,
    phone_number_id: &str,
    token: &SecretString,
    fix_token: &str,
) -> Check {
    let name = format!("token (tenant {tenant})");
    match graph.phone_number(phone_number_id, token).await {
        Ok(v) => {
            let field = |k: &str| v[k].as_str().unwrap_or("?").to_owned();
            Check::pass(
                name,
                format!(
                    "number {} {}, quality {}, verified name {:?}",
                    phone_number_id,
                    field("display_phone_number"),
                    field("quality_rating"),
                    field("verified_name")
                ),
            )
        }
        Err(e) if e.is_token() => Check::fail(
            name,
            format!("Graph refused the tenant's token reading phone number {phone_number_id}: {e}"),
            fix_token,
        ),
        Err(e @ ReadError::Unreachable(_)) => Check::fail(
            name,
            format!("Graph at {} gave {e}", graph.base_url),
            "check --graph-base-url (for wa dev: the sandbox URL it prints) and the network",
        ),
        Err(e) => Check::fail(
            name,
            format!("reading phone number {phone_number_id}: {e}"),
            format!(
                "check the tenant's phone_number_id (WhatsApp → API Setup in Meta's app) and that its token has whatsapp_business_management on WABA of {tenant}"
            ),
        ),
    }
}

/// The `app subscribed (WABA W)` check.
pub async fn subscribed_check(
    graph: &Graph,
    waba_id: &str,
    token: &SecretString,
    fix_token: &str,
) -> Check {
    let name = format!("app subscribed (WABA {waba_id})");
    let subscribe = format!(
        "subscribe the app to the WABA: curl -X POST '{}/{}/{waba_id}/subscribed_apps' -H \"Authorization: Bearer $TOKEN\" (a System User token of the WABA), and subscribe the webhook fields (docs/deploy.md, section 4)",
        graph.base_url, graph.version
    );
    match graph.subscribed_apps(waba_id, token).await {
        Ok(apps) if apps.is_empty() => Check::fail(
            name,
            "no app is subscribed to the WABA's webhooks: statuses and template updates never arrive",
            subscribe,
        ),
        Ok(apps) => Check::pass(name, apps.join(", ")),
        Err(e) if e.is_token() => {
            Check::fail(name, format!("Graph refused the token: {e}"), fix_token)
        }
        Err(e) => Check::fail(
            name,
            format!("GET /{waba_id}/subscribed_apps gave {e}"),
            format!("check the WABA id of its tenants, then: {subscribe}"),
        ),
    }
}

fn key(t: &Template) -> String {
    format!("{}/{}", t.name, t.language)
}

fn status(t: &Template) -> &str {
    t.status.as_ref().map_or("(no status)", |s| s.as_str())
}

/// Where the reference catalog of [`templates_check`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// Graph's listing: the truth, statuses included.
    Graph,
    /// wa dev's configured catalog: what is seeded (webhooks change statuses since).
    Seed,
}

/// The `templates (tenant T)` check: every template of `reference` (Graph's listing,
/// or wa dev's configured catalog) is stored (with Graph's status), and none is paused
/// or disabled. `sync` is the command that syncs them.
pub async fn templates_check(
    directory: &dyn Directory,
    tenant: &TenantId,
    reference: &TemplateCatalog,
    (kind, source): (Reference, &str),
    sync: &str,
) -> Check {
    let name = format!("templates (tenant {tenant})");
    if reference.is_empty() {
        return Check::fail(
            name,
            format!("{source} lists no template: the tenant can only send free-form text"),
            format!("create templates in WhatsApp Manager, wait for their approval, then: {sync}"),
        );
    }
    let mut unsynced = Vec::new();
    let mut paused = Vec::new();
    for t in reference.iter() {
        let stored = match directory.template(tenant, &t.name, &t.language).await {
            Ok(s) => s,
            Err(e) => {
                return Check::fail(
                    name,
                    format!("reading template {}: {e}", key(t)),
                    "see the store check",
                );
            }
        };
        let Some(stored) = stored else {
            unsynced.push(format!("{} missing", key(t)));
            continue;
        };
        if kind == Reference::Graph && stored.template.status != t.status {
            unsynced.push(format!(
                "{} is {} here, {} in {source}",
                key(t),
                status(&stored.template),
                status(t)
            ));
        }
        let mut seen = vec![status(&stored.template)];
        if kind == Reference::Graph {
            seen.push(status(t));
        }
        for s in seen {
            if matches!(s, "PAUSED" | "DISABLED") {
                let line = format!("{} {s}", key(t));
                if !paused.contains(&line) {
                    paused.push(line);
                }
            }
        }
    }
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if !paused.is_empty() {
        problems.push(format!("paused or disabled: {}", paused.join(", ")));
        fixes.push(
            "sends of a paused template fail (132015): improve it or send another; Meta unpauses it after a while (its webhook updates the catalog), a disabled one must be recreated in WhatsApp Manager"
                .to_owned(),
        );
    }
    if !unsynced.is_empty() {
        problems.push(format!("not synced: {}", unsynced.join("; ")));
        fixes.push(sync.to_owned());
    }
    if problems.is_empty() {
        return Check::pass(
            name,
            format!(
                "{} template(s) of {source} stored, none paused",
                reference.len()
            ),
        );
    }
    Check::fail(name, problems.join("; "), fixes.join("; then "))
}
