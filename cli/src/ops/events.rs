//! `wa events list|replay`: the events the pipeline emitted, and sending them again
//! to the tenants' signed HTTP endpoints.
//!
//! Both work on AWS (the deployed stack) and on the SQLite file of `wa dev` (`--data`).
//!
//! - `list` pages through each tenant's event log: the `events` table on AWS (stack
//!   output `EventsTableName`), the outbox in the SQLite file. Without `--tenant` it
//!   reads the log of every tenant of the directory, one after the other.
//! - `replay` enables the endpoints again, queues their dead letters again and every
//!   event logged since `--since` (for each endpoint that wants its type).
//!   - On AWS it goes through [`wa_shared::app::delivery::replay`]: the endpoints are
//!     those `wa tenants endpoints add` registered in the directory table, and the
//!     deliveries are jobs on the `deliveries` queue (stack output
//!     `DeliveriesQueueUrl`), which the `delivery` function sends within seconds.
//!     `--endpoint` takes an endpoint's id (or its URL); every dead letter of the
//!     endpoints is queued again, whatever its time; `--only-dead` queues the dead
//!     letters and no logged event.
//!   - On the SQLite file it queues deliveries again in the tables `wa dev`'s
//!     dispatcher works from (`wa_local::events`); a running `wa dev` picks them up
//!     within its poll interval. `--endpoint` is the URL in wa.toml.
//!
//! Without `--tenant`, `replay` covers every tenant with an endpoint. Receivers dedupe
//! on the event id (`webhook-id`), so an event delivered twice is harmless.
//!
//! `--since` is an RFC 3339 instant or a duration back from now (`90s`, `1h`, `2d`),
//! compared with each event's `timestamp`.

use super::backend::{Backend, Open};
use super::config::BackendArgs;
use super::output::Table;
use super::since::parse_since;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use wa_local::events::store::event_millis;
use wa_local::events::{DeliveryStore, check_url};
use wa_shared::adapters::sqlite::{SqliteDb, SqliteOptions};
use wa_shared::adapters::{DynamoEventLog, SqliteDirectory, SqliteEventLog};
use wa_shared::app::delivery::{DeliveryDeps, DeliverySettings, ReplaySummary};
use wa_shared::config::{CommonConfig, DeliveryConfig};
use wa_shared::domain::events::{Event, EventType};
use wa_shared::domain::{LifecyclePolicy, TenantId};
use wa_shared::ports::{Directory, EventLog, MAX_EVENT_PAGE};

/// `wa events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Backend (`--data` names wa dev's SQLite file).
    #[command(flatten)]
    pub backend: BackendArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: EventsCommand,
}

/// The `wa events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// The events emitted since a time, in log order (every tenant, or one).
    List(ListArgs),
    /// Deliver the events since a time again to the tenants' endpoints (dead letters
    /// included) and enable the endpoints again.
    Replay(ReplayArgs),
}

/// `wa events list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// RFC 3339 time (2026-06-01T08:00:00Z) or duration back from now (90s, 15m, 1h, 2d).
    #[arg(long)]
    pub since: String,
    /// Only this tenant [default: every tenant].
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only these types (repeatable), e.g. `--type message.delivered`.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Most events listed per tenant.
    #[arg(long, default_value_t = 1000)]
    pub max: usize,
    /// One event JSON per line (the body the endpoints receive) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `wa events replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// RFC 3339 time or duration back from now: events with a timestamp since then.
    #[arg(long)]
    pub since: String,
    /// Only this tenant [default: every tenant with endpoints].
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this endpoint: on AWS its id (ep_..., see wa tenants endpoints list) or URL; on wa dev's file its URL (as in wa.toml).
    #[arg(long, value_name = "ID|URL")]
    pub endpoint: Option<String>,
    /// Only dead letters (deliveries given up on), no other logged event.
    #[arg(long)]
    pub only_dead: bool,
}

/// Run a `wa events` subcommand, printing to stdout.
pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(path) = args.backend.data.as_deref() {
        let files = Files::open(path).await?;
        return match args.command {
            EventsCommand::List(list) => {
                let tenants = files.tenants(list.tenant.as_deref()).await?;
                list_events(files.log.as_ref(), &tenants, &list, &mut out).await
            }
            EventsCommand::Replay(replay) => replay_events(&files, &replay, &mut out).await,
        };
    }
    let backend = Backend::open(&args.backend, Open::Existing).await?;
    match args.command {
        EventsCommand::List(list) => {
            let log = aws_event_log(&backend)?;
            let tenants = match list.tenant.as_deref() {
                Some(t) => vec![TenantId::parse(t).context("invalid tenant id")?],
                None => every_tenant(backend.directory()?.as_ref()).await?,
            };
            list_events(log.as_ref(), &tenants, &list, &mut out).await
        }
        EventsCommand::Replay(replay) => {
            let deps = aws_delivery_deps(&backend)?;
            replay_on_aws(&deps, backend.directory()?.as_ref(), &replay, &mut out).await
        }
    }
}

/// Every tenant of `directory`, by id.
async fn every_tenant(directory: &dyn Directory) -> anyhow::Result<Vec<TenantId>> {
    Ok(directory
        .list_tenants()
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect())
}

/// The tenants' event logs on AWS (the `events` table).
fn aws_event_log(backend: &Backend) -> anyhow::Result<Arc<dyn EventLog>> {
    let aws = backend
        .aws_side()
        .context("the AWS backend has no AWS side")?;
    Ok(Arc::new(DynamoEventLog::new(
        &aws.sdk,
        aws.settings.events_table()?,
    )))
}

/// The `delivery` function's deps as a replay needs them, from the stack outputs
/// (directory, events table, deliveries queue). A replay reads no secret, so the
/// endpoint secret prefix is optional here (without it no secret can be read).
pub fn aws_delivery_deps(backend: &Backend) -> anyhow::Result<DeliveryDeps> {
    let aws = backend
        .aws_side()
        .context("the AWS backend has no AWS side")?;
    let s = &aws.settings;
    let config = DeliveryConfig {
        common: CommonConfig {
            // Only the metric lines' dimension, and a replay writes none.
            stage: "wa-cli".to_owned(),
            messages_table: s.messages_table().unwrap_or_default().to_owned(),
            directory_table: s.directory_table()?.to_owned(),
            events_table: s.events_table()?.to_owned(),
            lifecycle: LifecyclePolicy::default(),
        },
        queue_url: s.deliveries_queue_url()?.to_owned(),
        secret_prefix: s.endpoint_secret_prefix().unwrap_or_default().to_owned(),
        settings: DeliverySettings::default(),
    };
    Ok(wa_shared::wiring::aws::delivery_with_sdk(
        &config, &aws.sdk,
    )?)
}

/// What the commands read and write in the SQLite file.
pub struct Files {
    log: Arc<SqliteEventLog>,
    directory: Arc<SqliteDirectory>,
    deliveries: DeliveryStore,
}

impl Files {
    /// Open wa dev's SQLite file at `path` (it must exist).
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            bail!("no SQLite file at {} (wa dev creates it)", path.display());
        }
        let db = SqliteDb::open(path, SqliteOptions::default())
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            log: Arc::new(SqliteEventLog::new(db.clone()).await?),
            directory: Arc::new(SqliteDirectory::new(db.clone()).await?),
            deliveries: DeliveryStore::open(db).await?,
        })
    }

    /// `--tenant`, or every tenant of the directory.
    async fn tenants(&self, tenant: Option<&str>) -> anyhow::Result<Vec<TenantId>> {
        match tenant {
            Some(t) => Ok(vec![TenantId::parse(t).context("invalid tenant id")?]),
            None => Ok(self
                .directory
                .list_tenants()
                .await?
                .into_iter()
                .map(|p| p.id)
                .collect()),
        }
    }
}

/// `tenant`'s events with a timestamp at or after `since_ms`, in log order, at most
/// `max`; and whether more were left out.
async fn events_since(
    log: &dyn EventLog,
    tenant: &TenantId,
    since_ms: i64,
    types: &[EventType],
    max: usize,
) -> anyhow::Result<(Vec<Event>, bool)> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = log.list(tenant, after.as_deref(), MAX_EVENT_PAGE).await?;
        for logged in &page.events {
            let e = &logged.event;
            if event_millis(e) >= since_ms && (types.is_empty() || types.contains(&e.event_type)) {
                if out.len() == max {
                    return Ok((out, true));
                }
                out.push(e.clone());
            }
        }
        match page.events.last() {
            Some(last) if page.more => after = Some(last.position.clone()),
            _ => return Ok((out, false)),
        }
    }
}

/// What a table row says about an event beyond its type.
fn detail(e: &Event) -> String {
    let text = |k: &str| e.data.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    match e.event_type {
        EventType::MessageReceived => format!("from {}", text("from")),
        EventType::ContactOptedOut | EventType::ContactOptedIn => text("contact").to_owned(),
        EventType::TemplateStatusChanged => {
            format!("{}/{} {}", text("name"), text("language"), text("status"))
        }
        _ => format!(
            "{} #{}",
            text("message_id"),
            e.data
                .get("sequence")
                .map(|s| s.to_string())
                .unwrap_or_default()
        ),
    }
}

/// Print the events of `tenants` since `--since`, from `log`.
pub async fn list_events(
    log: &dyn EventLog,
    tenants: &[TenantId],
    args: &ListArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let since = parse_since(&args.since, super::now())?;
    let types = args
        .types
        .iter()
        .map(|t| t.parse::<EventType>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut table = Table::new(&["TIME", "TENANT", "TYPE", "ID", "DETAIL"]);
    let mut count = 0;
    for tenant in tenants {
        let (events, truncated) =
            events_since(log, tenant, since.as_millis(), &types, args.max).await?;
        count += events.len();
        for e in &events {
            if args.json {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            } else {
                table.row(vec![
                    e.timestamp.clone(),
                    e.tenant.to_string(),
                    e.event_type.to_string(),
                    e.id.clone(),
                    detail(e),
                ]);
            }
        }
        if truncated {
            eprintln!(
                "tenant {tenant}: only the first {} events are listed (--max)",
                args.max
            );
        }
    }
    if args.json {
        return Ok(());
    }
    if table.is_empty() {
        writeln!(out, "no events since {}", since.to_rfc3339())?;
        return Ok(());
    }
    table.write(out)?;
    writeln!(out, "{count} event(s) since {}", since.to_rfc3339())?;
    Ok(())
}

/// Queue the deliveries since `--since` again.
pub async fn replay_events(
    files: &Files,
    args: &ReplayArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let since = parse_since(&args.since, super::now())?;
    let url = args
        .endpoint
        .as_deref()
        .map(check_url)
        .transpose()
        .context("--endpoint")?;
    let tenants: Vec<TenantId> = match &args.tenant {
        Some(t) => vec![TenantId::parse(t).context("invalid tenant id")?],
        None => {
            let mut with_endpoints: Vec<TenantId> = Vec::new();
            for h in files.deliveries.health(None).await? {
                let t = TenantId::parse(&h.tenant)?;
                if !with_endpoints.contains(&t) {
                    with_endpoints.push(t);
                }
            }
            if with_endpoints.is_empty() {
                bail!(
                    "no tenant has an event endpoint (wa dev registers the endpoints of its wa.toml)"
                );
            }
            with_endpoints
        }
    };
    let mut total = 0;
    let mut matched = false;
    for tenant in &tenants {
        let replayed = match files
            .deliveries
            .replay(
                files.log.as_ref(),
                tenant,
                since.as_millis(),
                url.as_deref(),
                args.only_dead,
                wa_local::events::dispatcher::now_ms(),
            )
            .await
        {
            Ok(r) => r,
            // Every tenant was asked: one without this endpoint is not an error.
            Err(wa_local::events::DeliveryError::NoEndpoint(_))
                if args.tenant.is_none() && url.is_some() =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for r in replayed {
            matched = true;
            total += r.requeued;
            writeln!(
                out,
                "tenant {tenant} endpoint {}: {} deliver{} queued again, endpoint enabled",
                r.url,
                r.requeued,
                if r.requeued == 1 { "y" } else { "ies" }
            )?;
        }
    }
    if !matched {
        bail!(
            "no tenant has an event endpoint at {}",
            url.unwrap_or_default()
        );
    }
    writeln!(
        out,
        "{total} deliver{} queued again since {}{}",
        if total == 1 { "y" } else { "ies" },
        since.to_rfc3339(),
        if args.only_dead {
            " (dead letters only)"
        } else {
            ""
        }
    )?;
    Ok(())
}

/// Whether `wanted` (`--endpoint`) names `endpoint`: its id, or its URL.
fn names_endpoint(endpoint: &wa_shared::domain::endpoints::Endpoint, wanted: &str) -> bool {
    let wanted = wanted.trim();
    endpoint.id == wanted
        || endpoint.url == wanted
        || reqwest::Url::parse(wanted).is_ok_and(|u| u.as_str() == endpoint.url)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `replay` on AWS: for each tenant (with endpoints), or each endpoint `--endpoint`
/// names, [`wa_shared::app::delivery::replay`]; prints what it queued.
pub async fn replay_on_aws(
    deps: &DeliveryDeps,
    directory: &dyn Directory,
    args: &ReplayArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let since = parse_since(&args.since, super::now())?;
    let tenants = match &args.tenant {
        Some(t) => {
            let tenant = TenantId::parse(t).context("invalid tenant id")?;
            if directory.tenant(&tenant).await?.is_none() {
                bail!("no tenant {tenant} in the directory");
            }
            vec![tenant]
        }
        None => every_tenant(directory).await?,
    };
    let mut total = ReplaySummary::default();
    let mut matched = false;
    for tenant in &tenants {
        let endpoints = deps.registry.list(tenant).await?;
        let chosen: Vec<Option<&wa_shared::domain::endpoints::Endpoint>> =
            match args.endpoint.as_deref() {
                None if endpoints.is_empty() => Vec::new(),
                None => vec![None],
                Some(wanted) => endpoints
                    .iter()
                    .filter(|e| names_endpoint(e, wanted))
                    .map(Some)
                    .collect(),
            };
        if chosen.is_empty() {
            match (&args.tenant, &args.endpoint) {
                (Some(_), None) => bail!(
                    "tenant {tenant} has no event endpoint (wa tenants endpoints add --tenant {tenant} --url ...)"
                ),
                (Some(_), Some(wanted)) => bail!(
                    "tenant {tenant} has no endpoint {wanted} (wa tenants endpoints list --tenant {tenant})"
                ),
                _ => continue,
            }
        }
        for endpoint in chosen {
            let summary = wa_shared::app::delivery::replay(
                deps,
                tenant,
                endpoint.map(|e| e.id.as_str()),
                (!args.only_dead).then_some(since),
            )
            .await?;
            matched = true;
            let which = match endpoint {
                Some(e) => format!("tenant {tenant} endpoint {} ({})", e.id, e.url),
                None => format!(
                    "tenant {tenant} ({})",
                    plural(endpoints.len(), "endpoint", "endpoints")
                ),
            };
            writeln!(
                out,
                "{which}: {} and {} queued{}",
                plural(summary.dead_letters, "dead letter", "dead letters"),
                plural(
                    summary.events,
                    "delivery of a logged event",
                    "deliveries of logged events"
                ),
                match (endpoint, summary.enabled) {
                    (_, 0) => String::new(),
                    (Some(_), _) => "; enabled again".to_owned(),
                    (None, n) => format!("; {} enabled again", plural(n, "endpoint", "endpoints")),
                },
            )?;
            total.enabled += summary.enabled;
            total.dead_letters += summary.dead_letters;
            total.events += summary.events;
        }
    }
    if !matched {
        match &args.endpoint {
            Some(wanted) => bail!("no tenant has an event endpoint {wanted}"),
            None => bail!(
                "no tenant has an event endpoint (wa tenants endpoints add --tenant T --url URL)"
            ),
        }
    }
    let queued = total.dead_letters + total.events;
    let what = if args.only_dead {
        format!(
            "{} (dead letters only)",
            plural(total.dead_letters, "dead letter", "dead letters")
        )
    } else {
        format!(
            "{} and {} for events since {}",
            plural(total.dead_letters, "dead letter", "dead letters"),
            total.events,
            since.to_rfc3339()
        )
    };
    writeln!(
        out,
        "{} queued on the deliveries queue: {what}; the delivery function sends them within seconds",
        plural(queued, "delivery", "deliveries"),
    )?;
    Ok(())
}
