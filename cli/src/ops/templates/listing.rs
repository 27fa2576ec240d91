//! `GET /{version}/{waba_id}/message_templates`, every page: Meta's cursor paging
//! through `paging.next`, followed only on the origin the listing started on, so the
//! token never goes anywhere else. Errors never carry the token.

use indicatif::ProgressBar;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;
use std::time::Duration;
use wa_shared::adapters::graph::{GraphConfig, GraphConfigError};
use wa_shared::domain::graph::GraphError;
use wa_shared::domain::template::{TemplateCatalog, TemplatePage};

/// Most pages one sync follows (at the default page size, 100,000 templates;
/// Meta allows a WABA far fewer), so a server that keeps answering `next` cannot
/// keep the command running forever.
const MAX_PAGES: usize = 1000;
/// Limit on one page's request.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the Graph listing failed. Never carries the token.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Base URL or version unusable.
    #[error("invalid Graph settings")]
    Config(#[from] GraphConfigError),
    /// The request failed without an answer.
    #[error("Graph request failed")]
    Http(#[source] reqwest::Error),
    /// Graph answered with an error.
    #[error("Graph answered HTTP {status}: {detail}")]
    Graph {
        /// HTTP status.
        status: u16,
        /// Meta's code and message, or the start of the body.
        detail: String,
    },
    /// The body is not a template page.
    #[error("Graph's answer is not a page of templates")]
    Body(#[source] serde_json::Error),
    /// `paging.next` is not a URL on the origin of the first request.
    #[error("paging.next leaves the Graph origin {origin}: refusing to send the token there")]
    ForeignNext {
        /// The origin the listing started on.
        origin: String,
    },
    /// `paging.next` came back to a page already read, or there were too many pages.
    #[error("paging does not end (a repeated page, or more than {MAX_PAGES} pages)")]
    Endless,
}

/// One WABA's template listing on the Graph API.
pub struct TemplateListing {
    client: reqwest::Client,
    first: Url,
    token: SecretString,
}

impl std::fmt::Debug for TemplateListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateListing")
            .field("first", &self.first.as_str())
            .finish_non_exhaustive()
    }
}

/// What a listing returned.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// Every template, once per (name, language).
    pub catalog: TemplateCatalog,
    /// Pages read.
    pub pages: usize,
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl TemplateListing {
    /// The listing of `waba_id` at `{base_url}/{version}/{waba_id}/message_templates`.
    pub fn new(
        base_url: &str,
        api_version: &str,
        waba_id: &str,
        page_size: u32,
        token: SecretString,
    ) -> Result<Self, SyncError> {
        let config = GraphConfig {
            base_url: base_url.to_owned(),
            api_version: api_version.to_owned(),
            ..GraphConfig::default()
        };
        // Checks the base URL and the version the way the sender does.
        let prefix = config.messages_url_prefix()?;
        let mut first =
            Url::parse(&format!("{prefix}{waba_id}/message_templates")).map_err(|_| {
                SyncError::Config(GraphConfigError::InvalidBaseUrl(
                    "cannot append the listing path",
                ))
            })?;
        first
            .query_pairs_mut()
            .append_pair("limit", &page_size.to_string());
        let client = reqwest::Client::builder()
            .timeout(PAGE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wa-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SyncError::Http)?;
        Ok(Self {
            client,
            first,
            token,
        })
    }

    /// Read every page, following `paging.next`.
    pub async fn fetch_all(&self, bar: &ProgressBar) -> Result<Listed, SyncError> {
        let mut listed = Listed::default();
        let mut url = self.first.clone();
        let mut visited = HashSet::new();
        loop {
            if listed.pages >= MAX_PAGES || !visited.insert(url.to_string()) {
                return Err(SyncError::Endless);
            }
            let page = self.page(&url).await?;
            listed.pages += 1;
            bar.inc(page.data.len() as u64);
            for template in page.data {
                listed.catalog.insert(template);
            }
            let Some(next) = page.paging.and_then(|p| p.next) else {
                return Ok(listed);
            };
            let origin = || SyncError::ForeignNext {
                origin: self.first.origin().ascii_serialization(),
            };
            let next = Url::parse(&next).map_err(|_| origin())?;
            if !same_origin(&self.first, &next) {
                return Err(origin());
            }
            url = next;
        }
    }

    async fn page(&self, url: &Url) -> Result<TemplatePage, SyncError> {
        let response = self
            .client
            .get(url.clone())
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| SyncError::Http(e.without_url()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| SyncError::Http(e.without_url()))?;
        if !status.is_success() {
            let detail = match GraphError::parse(&body) {
                Ok(e) => format!(
                    "code {} {}",
                    e.code.map_or("?".to_owned(), |c| c.to_string()),
                    e.title().unwrap_or("(no message)")
                ),
                Err(_) => String::from_utf8_lossy(&body).chars().take(200).collect(),
            };
            return Err(SyncError::Graph {
                status: status.as_u16(),
                detail,
            });
        }
        serde_json::from_slice(&body).map_err(SyncError::Body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_scheme_host_and_port_count_as_the_same_origin() {
        let u = |s: &str| Url::parse(s).unwrap();
        let graph = u("https://graph.facebook.com/v25.0/1/message_templates?limit=5");
        assert!(same_origin(
            &graph,
            &u("https://graph.facebook.com:443/v25.0/1/message_templates?after=x")
        ));
        assert!(!same_origin(
            &graph,
            &u("http://graph.facebook.com/v25.0/1")
        ));
        assert!(!same_origin(&graph, &u("https://evil.example/v25.0/1")));
        assert!(!same_origin(
            &graph,
            &u("https://graph.facebook.com:8443/x")
        ));
    }

    #[test]
    fn the_first_page_asks_for_the_page_size_under_the_pinned_version() {
        let listing = TemplateListing::new(
            "http://127.0.0.1:9/",
            "v25.0",
            "102290129340398",
            7,
            SecretString::from("token-never-shown"),
        )
        .unwrap();
        assert_eq!(
            listing.first.as_str(),
            "http://127.0.0.1:9/v25.0/102290129340398/message_templates?limit=7"
        );
        assert!(!format!("{listing:?}").contains("token-never-shown"));
        assert!(TemplateListing::new("ftp://x", "v25.0", "1", 1, SecretString::from("t")).is_err());
        assert!(TemplateListing::new("http://x", "25", "1", 1, SecretString::from("t")).is_err());
    }
}
