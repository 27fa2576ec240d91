//! The status page of `wa dev`: server-rendered HTML, no build step, refreshing itself.
//!
//! - `GET /`: messages per tenant and state (with totals) and the latest 50 messages;
//!   a friendly hint with a ready curl when the store is empty.
//! - `GET /ui/messages/{tenant}/{id}`: the same page with that message's timeline on
//!   top (every state timestamp and every history entry, in time order). The selection
//!   lives in the URL, so the self-refresh keeps it.
//!
//! With event endpoints configured, an "Event endpoints" table shows each one's
//! health (last success, failing since, backlog, dead letters, disabled).
//!
//! With a traffic series ([`router_with_charts`]), a "Traffic" section comes first:
//! SVG charts of the last hour by minute or the last day by hour (`?range=hour|day`),
//! all tenants or one (`?tenant=<id>`), read from the store's per-minute counters
//! (`charts.rs`), and the tenants on hold with their reasons.
//!
//! It reads the embedded store only (`SqliteMessageStore::overview` and `get`, and
//! the delivery state's `health`).
//! Recipients are masked as in the logs and every stored value is HTML-escaped. A
//! store failure answers an opaque 500 page; the cause goes to the log.

mod charts;
mod charts_svg;
mod costs;
mod endpoints;
mod html;
mod tables;
mod tenants;
mod timeline;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::sync::Arc;
use wa_shared::adapters::SqliteMessageStore;
use wa_shared::adapters::SystemClock;
use wa_shared::adapters::sqlite::overview::Overview;
use wa_shared::domain::tenant::TenantProfile;
use wa_shared::domain::{Message, MessageId, TenantId};
use wa_shared::ports::{Clock, Directory, DirectoryError, MessageStore, StoreError, TrafficSeries};

use crate::events::{DeliveryError, DeliveryStore, EndpointHealth};
pub use costs::router_with_costs;

/// How many of the newest messages the page lists.
pub const LATEST: usize = 50;

/// The page's routes (`GET /`, `GET /ui/messages/{tenant}/{id}`) with their state
/// applied, ready to merge into `wa dev`'s router.
pub fn router(store: Arc<SqliteMessageStore>) -> Router {
    routes(PageState {
        store,
        deliveries: None,
        directory: None,
        series: None,
        costs: None,
    })
}

/// [`router`], with the event endpoints' health table read from `deliveries` and the
/// tenants' state (holds, number quality, account events) from `directory`.
pub fn router_with_events(
    store: Arc<SqliteMessageStore>,
    deliveries: DeliveryStore,
    directory: Arc<dyn Directory>,
) -> Router {
    routes(PageState {
        store,
        deliveries: Some(deliveries),
        directory: Some(directory),
        series: None,
        costs: None,
    })
}

/// [`router_with_events`], with the traffic charts (`#charts`, `?range=hour|day`,
/// `?tenant=<id>`) read from the store's per-minute counters in `series`.
pub fn router_with_charts(
    store: Arc<SqliteMessageStore>,
    deliveries: DeliveryStore,
    directory: Arc<dyn Directory>,
    series: Arc<dyn TrafficSeries>,
) -> Router {
    routes(PageState {
        store,
        deliveries: Some(deliveries),
        directory: Some(directory),
        series: Some(series),
        costs: None,
    })
}

fn routes(state: PageState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui/messages/{tenant}/{id}", get(message))
        .with_state(state)
}

/// What the page reads.
#[derive(Clone)]
struct PageState {
    store: Arc<SqliteMessageStore>,
    deliveries: Option<DeliveryStore>,
    directory: Option<Arc<dyn Directory>>,
    series: Option<Arc<dyn TrafficSeries>>,
    /// The `#costs` panel's ledger (none: no panel).
    costs: Option<Arc<dyn wa_shared::ports::CostLedger>>,
}

/// Why a page could not be rendered (the visitor only sees a generic 500).
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error("reading the message store failed")]
    Store(#[from] StoreError),
    #[error("reading the event deliveries failed")]
    Deliveries(#[from] DeliveryError),
    #[error("reading the tenants failed")]
    Directory(#[from] DirectoryError),
    #[error("rendering the page failed")]
    Render(#[from] std::fmt::Error),
    #[error("drawing the charts failed")]
    Charts(#[from] charts::PageChartError),
    #[error("the costs panel failed")]
    Costs(#[from] costs::CostPanelError),
}

/// The message a page shows the timeline of.
enum Selected {
    Nothing,
    Found(Box<Message>),
    Missing { tenant: String, id: String },
}

async fn index(
    State(state): State<PageState>,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    respond(&state, &headers, None, &charts::ChartQuery::parse(&params)).await
}

async fn message(
    State(state): State<PageState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let query = charts::ChartQuery::default();
    respond(&state, &headers, Some((tenant, id)), &query).await
}

async fn respond(
    state: &PageState,
    headers: &HeaderMap,
    wanted: Option<(String, String)>,
    query: &charts::ChartQuery,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    match build(state, wanted, host, query).await {
        Ok((status, body)) => (status, no_store(), Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "status page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                no_store(),
                Html(ERROR_PAGE),
            )
                .into_response()
        }
    }
}

/// The page and its status: 404 when the URL names a message that does not exist.
async fn build(
    state: &PageState,
    wanted: Option<(String, String)>,
    host: &str,
    query: &charts::ChartQuery,
) -> Result<(StatusCode, String), PageError> {
    let (overview, selected) = load(&state.store, wanted).await?;
    let endpoints = match &state.deliveries {
        Some(d) => d.health(None).await?,
        None => Vec::new(),
    };
    let tenants = match &state.directory {
        Some(d) => d.list_tenants().await?,
        None => Vec::new(),
    };
    let status = match selected {
        Selected::Missing { .. } => StatusCode::NOT_FOUND,
        Selected::Nothing | Selected::Found(_) => StatusCode::OK,
    };
    let charts = match &state.series {
        Some(series) => Some(charts_html(series, &overview, &tenants, query).await?),
        None => None,
    };
    let costs = match &state.costs {
        Some(ledger) => Some(costs_html(&**ledger, &overview, &tenants).await?),
        None => None,
    };
    let page = Page {
        costs: costs.as_deref(),
        overview: &overview,
        selected: &selected,
        endpoints: &endpoints,
        tenants: &tenants,
        charts: charts.as_deref(),
    };
    Ok((status, render(&page, host)?))
}

/// The `#charts` section over every tenant known (directory and store) or the one asked.
async fn charts_html(
    series: &Arc<dyn TrafficSeries>,
    overview: &Overview,
    profiles: &[TenantProfile],
    query: &charts::ChartQuery,
) -> Result<String, PageError> {
    let mut ids: Vec<TenantId> = profiles.iter().map(|p| p.id.clone()).collect();
    ids.extend(overview.counts.iter().map(|c| c.tenant.clone()));
    ids.sort();
    ids.dedup();
    let data = charts::load(series, &ids, query, SystemClock.now()).await?;
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<style>");
    out.push_str(charts::CSS);
    out.push_str("</style>");
    charts::charts(&mut out, &data, query, &ids, profiles)?;
    Ok(out)
}

/// The `#costs` panel over every tenant known (directory and store).
async fn costs_html(
    ledger: &dyn wa_shared::ports::CostLedger,
    overview: &Overview,
    profiles: &[TenantProfile],
) -> Result<String, PageError> {
    let mut ids: Vec<TenantId> = profiles.iter().map(|p| p.id.clone()).collect();
    ids.extend(overview.counts.iter().map(|c| c.tenant.clone()));
    ids.sort();
    ids.dedup();
    Ok(costs::panel(ledger, &ids, SystemClock.now()).await?)
}

/// The overview, and the selected message when the URL names one.
async fn load(
    store: &SqliteMessageStore,
    wanted: Option<(String, String)>,
) -> Result<(Overview, Selected), PageError> {
    let overview = store.overview(LATEST).await?;
    let Some((tenant, id)) = wanted else {
        return Ok((overview, Selected::Nothing));
    };
    let found = match (TenantId::parse(&tenant), MessageId::parse(&id)) {
        (Ok(t), Ok(i)) => store.get(&t, &i).await?,
        _ => None,
    };
    let selected = match found {
        Some(m) => Selected::Found(Box::new(m)),
        None => Selected::Missing { tenant, id },
    };
    Ok((overview, selected))
}

/// What one page shows.
struct Page<'a> {
    overview: &'a Overview,
    selected: &'a Selected,
    endpoints: &'a [EndpointHealth],
    tenants: &'a [TenantProfile],
    /// The `#charts` section, already rendered (none without a series).
    charts: Option<&'a str>,
    /// The `#costs` panel, already rendered (none without a cost ledger).
    costs: Option<&'a str>,
}

fn render(page: &Page<'_>, host: &str) -> Result<String, PageError> {
    let Page {
        overview,
        selected,
        endpoints,
        tenants,
        charts,
        costs,
    } = *page;
    let mut out = String::with_capacity(32 * 1024 + charts.map_or(0, str::len));
    html::page(&mut out, SystemClock.now(), |out| {
        let message = match selected {
            Selected::Nothing => None,
            Selected::Found(m) => {
                timeline::timeline(out, m)?;
                Some(m.as_ref())
            }
            Selected::Missing { tenant, id } => {
                timeline::not_found(out, tenant, id)?;
                None
            }
        };
        if let Some(charts) = charts {
            out.push_str(charts);
        }
        if overview.latest.is_empty() {
            tables::empty(out, host)?;
        } else {
            tables::counts(out, &overview.counts)?;
            tables::latest(out, &overview.latest, message)?;
        }
        tenants::tenants(out, tenants)?;
        if let Some(costs) = costs {
            out.push_str(costs);
        }
        endpoints::endpoints(out, endpoints)
    })?;
    Ok(out)
}

/// The page is live data: never serve it from a cache.
fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// The whole answer to a failure: nothing about the cause (that is in the log).
const ERROR_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
    <meta http-equiv=\"refresh\" content=\"5\"><title>wa dev · status unavailable</title></head>\
    <body><h1>Status unavailable</h1><p>The status page could not read the message store. \
    The cause is in the <code>wa dev</code> log; this page retries every 5 seconds.</p>\
    </body></html>\n";

#[cfg(test)]
mod tests {
    use super::*;
    use wa_shared::adapters::sqlite::{SqliteDb, SqliteError};
    use wa_shared::domain::{LifecyclePolicy, NewMessage, PhoneNumber, Timestamp};

    async fn serve(store: Arc<SqliteMessageStore>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(store)).await });
        format!("http://{addr}")
    }

    async fn store() -> (Arc<SqliteMessageStore>, SqliteDb) {
        let db = SqliteDb::open_in_memory().await.unwrap();
        let store = SqliteMessageStore::new(db.clone()).await.unwrap();
        (Arc::new(store), db)
    }

    fn queued(tenant: &str) -> Message {
        let new = NewMessage {
            tenant: TenantId::parse(tenant).unwrap(),
            id: MessageId::generate(),
            to: PhoneNumber::parse("+14155550123").unwrap(),
            template_name: None,
            template_language: None,
            request: serde_json::json!({}),
            request_hash: "h".into(),
            metadata: None,
        };
        Message::new_queued(new, Timestamp::from_secs(1), &LifecyclePolicy::default())
    }

    async fn get(url: &str) -> (u16, String) {
        let response = reqwest::get(url).await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(response.headers()["cache-control"], "no-store");
        (status, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn an_empty_store_shows_the_curl_hint_for_the_host_asked() {
        let (store, _db) = store().await;
        let base = serve(store).await;
        let (status, body) = get(&format!("{base}/")).await;
        assert_eq!(status, 200);
        assert!(body.contains("No messages yet"), "{body}");
        let host = base.trim_start_matches("http://");
        assert!(body.contains(&format!("curl -s http://{host}/v1/messages")));
        assert!(!body.contains("id=\"counts\""));
    }

    #[tokio::test]
    async fn a_message_page_shows_the_timeline_and_an_unknown_one_is_a_404() {
        let (store, _db) = store().await;
        let m = queued("acme");
        store.create_if_absent(&m).await.unwrap();
        let base = serve(store).await;

        let (status, body) = get(&format!("{base}/")).await;
        assert_eq!(status, 200);
        assert!(body.contains("data-tenant=\"acme\" data-state=\"queued\">1</td>"));
        assert!(!body.contains("id=\"timeline\""));

        let (status, body) = get(&format!("{base}/ui/messages/acme/{}", m.id)).await;
        assert_eq!(status, 200);
        assert!(body.contains(&format!("<section id=\"timeline\" data-id=\"{}\"", m.id)));
        assert!(body.contains("data-event=\"intake.queued\""));
        assert!(body.contains("class=\"selected\""));

        for path in [
            format!("/ui/messages/other/{}", m.id),
            "/ui/messages/acme/msg_nope".to_owned(),
            "/ui/messages/NOT%20A%20TENANT/x".to_owned(),
        ] {
            let (status, body) = get(&format!("{base}{path}")).await;
            assert_eq!(status, 404, "{path}");
            assert!(body.contains("No such message"), "{path}");
            assert!(
                body.contains("id=\"counts\""),
                "the overview is still shown"
            );
        }
    }

    #[tokio::test]
    async fn a_store_failure_is_an_opaque_500() {
        let (store, db) = store().await;
        let base = serve(store).await;
        db.call(|c| {
            c.execute_batch("DROP TABLE store_messages")
                .map_err(SqliteError::from)
        })
        .await
        .unwrap();
        let (status, body) = get(&format!("{base}/")).await;
        assert_eq!(status, 500);
        assert!(body.contains("Status unavailable"));
        assert!(!body.to_lowercase().contains("sqlite") && !body.contains("store_messages"));
    }
}
