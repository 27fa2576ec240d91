//! `wa events list|replay`: the events the pipeline emitted, and sending them again
//! to the tenants' HTTP endpoints.
//!
//! Both work on the SQLite file of `wa dev` (`--data`): `list` pages through the
//! event log (the outbox), `replay` queues deliveries again in the delivery tables
//! `wa dev`'s dispatcher works from (`wa_local::events`), dead letters included,
//! and enables the endpoints again; a running `wa dev` picks them up within its
//! poll interval. On AWS neither is available yet: the command says so.
//!
//! `--since` is an RFC 3339 instant or a duration back from now (`90s`, `1h`, `2d`),
//! compared with each event's `timestamp`.

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
use wa_shared::adapters::{SqliteDirectory, SqliteEventLog};
use wa_shared::domain::TenantId;
use wa_shared::domain::events::{Event, EventType};
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
    /// Only the endpoint at this URL (as in wa.toml).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Only dead letters (deliveries that exhausted their retries).
    #[arg(long)]
    pub only_dead: bool,
}

/// Run a `wa events` subcommand, printing to stdout.
pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let Some(path) = args.backend.data.as_deref() else {
        bail!(
            "wa events is not available on AWS yet (no endpoint deliveries there); \
             give --data PATH to work on wa dev's SQLite file (.wa/dev.sqlite)"
        );
    };
    let files = Files::open(path).await?;
    let mut out = std::io::stdout().lock();
    match args.command {
        EventsCommand::List(list) => list_events(&files, &list, &mut out).await,
        EventsCommand::Replay(replay) => replay_events(&files, &replay, &mut out).await,
    }
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

/// Print the events since `--since`.
pub async fn list_events(
    files: &Files,
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
    for tenant in files.tenants(args.tenant.as_deref()).await? {
        let (events, truncated) = events_since(
            files.log.as_ref(),
            &tenant,
            since.as_millis(),
            &types,
            args.max,
        )
        .await?;
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
