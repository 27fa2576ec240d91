//! `wa tenants add|list|suspend|resume|endpoints`.
//!
//! `add` provisions everything a tenant needs and is idempotent (see [`add`]);
//! `suspend`/`resume` flip the profile's status, which intake and the sender
//! read (suspended tenants' messages are suppressed); `resume` also ends a hold
//! (the sender's, after a tenant-class failure) and enqueues the waiting messages; `list` shows the profiles;
//! `endpoints` manages the tenants' signed HTTP event endpoints on AWS ([`endpoints`]);
//! `keys` lists, adds and revokes a tenant's API keys on both backends ([`keys`]).

pub mod add;
pub mod aws;
pub mod endpoints;
pub mod keys;
pub mod profile;

use super::backend::{Backend, Open};
use super::config::BackendArgs;
use super::output::Table;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use secrecy::SecretString;
use std::io::Write;
use wa_shared::domain::TenantId;
use wa_shared::domain::tenant::{OnAmbiguous, TenantStatus};
use wa_shared::domain::validation::FormattingPolicy;
use wa_shared::ports::Directory;

/// `wa tenants`.
#[derive(Debug, Args)]
pub struct TenantsArgs {
    /// Backend and stack outputs.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: TenantsCommand,
}

/// The `wa tenants` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant, or bring it up to date: send queue + DLQ, and on AWS the
    /// event source mapping, token secret and DLQ alarm; profile with phone and WABA
    /// routing; an API key for a new tenant (printed once). Idempotent.
    Add(AddArgs),
    /// Every tenant's profile.
    List(ListArgs),
    /// Stop a tenant: intake and the sender suppress its messages until `resume`.
    Suspend(StatusArgs),
    /// Let a suspended tenant send again, and end its hold (after a tenant-class failure
    /// such as an expired token): its waiting messages are enqueued again.
    Resume(StatusArgs),
    /// A tenant's signed HTTP event endpoints on AWS: add, list, remove (wa dev's are in wa.toml).
    Endpoints(endpoints::EndpointsArgs),
    /// A tenant's API keys: list (hashes only), add (printed once), revoke.
    Keys(keys::KeysArgs),
}

/// How template values with newlines, tabs or long runs of spaces are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Formatting {
    /// Refuse the request (422).
    Strict,
    /// Fix the values and report the changes.
    Sanitize,
}

impl From<Formatting> for FormattingPolicy {
    fn from(f: Formatting) -> Self {
        match f {
            Formatting::Strict => FormattingPolicy::Strict,
            Formatting::Sanitize => FormattingPolicy::Sanitize,
        }
    }
}

/// What the reconciler does with a send whose Graph answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ambiguous {
    /// At most once: fail it unless a webhook proves it was sent.
    Fail,
    /// At least once: send it again (may duplicate).
    Retry,
}

impl From<Ambiguous> for OnAmbiguous {
    fn from(a: Ambiguous) -> Self {
        match a {
            Ambiguous::Fail => OnAmbiguous::Fail,
            Ambiguous::Retry => OnAmbiguous::Retry,
        }
    }
}

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

/// `wa tenants add`: flags left out keep the tenant's current values (defaults for a
/// new tenant).
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Tenant id: 1-64 of a-z 0-9 - _ (part of its queue names).
    pub tenant: String,
    /// Business phone number id its messages are sent from (required for a new tenant).
    #[arg(long)]
    pub phone_number_id: Option<String>,
    /// A further business phone number id it owns (repeat for several; a send picks one
    /// with `from`). Given at all: replaces the list; `--other-phone-number-id ''` clears it.
    #[arg(long = "other-phone-number-id")]
    pub other_phone_number_ids: Vec<String>,
    /// WhatsApp Business Account id (required for a new tenant).
    #[arg(long)]
    pub waba_id: Option<String>,
    /// Most concurrent sender invocations for this tenant (the mapping's MaximumConcurrency) [new: 5].
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub max_concurrency: Option<u32>,
    /// Messages per second its phone number may send [new: 80].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub throughput_mps: Option<u32>,
    /// Intake quota: steady POST /v1/messages requests per second [new: 50].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub requests_per_second: Option<u32>,
    /// Intake quota: requests admitted at once after a quiet spell [new: 100].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub burst: Option<u32>,
    /// Intake quota: new messages per UTC day; 0 removes the cap [new: no cap].
    #[arg(long)]
    pub messages_per_day: Option<u32>,
    /// Template values with newlines, tabs or runs of spaces [new: strict].
    #[arg(long, value_enum)]
    pub formatting: Option<Formatting>,
    /// Sends whose answer was lost [new: fail].
    #[arg(long, value_enum)]
    pub on_ambiguous: Option<Ambiguous>,
    /// Send MARKETING templates through Meta's Marketing Messages API
    /// (/marketing_messages) [new: false].
    #[arg(long, value_name = "BOOL")]
    pub marketing_messages_api: Option<bool>,
    /// SQLite only: where wa dev finds the Graph token, e.g. env:VAR [new: dev:sandbox].
    #[arg(long)]
    pub token_ref: Option<String>,
    /// AWS only: the Graph token to keep in the tenant's secret (never printed).
    #[arg(long, env = "WA_GRAPH_TOKEN", hide_env_values = true, value_parser = secret)]
    pub graph_token: Option<SecretString>,
    /// Issue another API key although the tenant has one (issued keys stay valid).
    #[arg(long)]
    pub new_key: bool,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `wa tenants list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// One JSON profile per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `wa tenants suspend|resume`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The tenant.
    pub tenant: String,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Run a `wa tenants` subcommand, printing to stdout.
pub async fn run(args: TenantsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match args.command {
        TenantsCommand::Add(add) => {
            let open = if add.dry_run {
                Open::DryRun
            } else {
                Open::Create
            };
            let backend = Backend::open(&args.backend, open).await?;
            add::add(&backend, &add, &mut out).await
        }
        TenantsCommand::List(list) => {
            let backend = Backend::open(&args.backend, Open::Existing).await?;
            list_tenants(backend.directory()?.as_ref(), list.json, &mut out).await
        }
        TenantsCommand::Suspend(s) => {
            set_status(&args.backend, &s, TenantStatus::Suspended, &mut out).await
        }
        TenantsCommand::Resume(s) => {
            set_status(&args.backend, &s, TenantStatus::Active, &mut out).await
        }
        TenantsCommand::Endpoints(e) => endpoints::run(&args.backend, e, &mut out).await,
        TenantsCommand::Keys(k) => keys::run(&args.backend, k, &mut out).await,
    }
}

/// Print every profile: a table, or JSON lines.
pub async fn list_tenants(
    directory: &dyn Directory,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tenants = directory.list_tenants().await?;
    if json {
        for t in &tenants {
            writeln!(out, "{}", serde_json::to_string(t)?)?;
        }
        return Ok(());
    }
    let mut table = Table::new(&[
        "TENANT",
        "STATUS",
        "PHONE NUMBER ID",
        "WABA ID",
        "CONCURRENCY",
        "MPS",
        "INTAKE QUOTA",
        "NUMBER QUALITY",
        "ACCOUNT",
        "QUEUE",
    ]);
    for t in &tenants {
        table.row(vec![
            t.id.to_string(),
            match &t.hold {
                Some(h) => format!(
                    "{} (on hold since {}: {}{})",
                    status_name(t.status),
                    h.since.to_rfc3339(),
                    h.code.map(|c| format!("{c} ")).unwrap_or_default(),
                    h.reason
                ),
                None => status_name(t.status).to_owned(),
            },
            t.phone_number_ids()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            t.waba_id.clone(),
            t.max_concurrency.to_string(),
            t.throughput_mps.to_string(),
            t.intake_quota.to_string(),
            match &t.phone_quality {
                Some(q) if wa_shared::domain::account_state::marketing_held(t) => {
                    format!("{q} (marketing held)")
                }
                Some(q) => q.clone(),
                None => "-".to_owned(),
            },
            t.account_event.clone().unwrap_or_else(|| "-".to_owned()),
            t.queue.clone(),
        ]);
    }
    if table.is_empty() {
        writeln!(out, "no tenants")?;
    } else {
        table.write(out)?;
    }
    Ok(())
}

fn status_name(status: TenantStatus) -> &'static str {
    match status {
        TenantStatus::Active => "active",
        TenantStatus::Suspended => "suspended",
    }
}

async fn set_status(
    backend_args: &BackendArgs,
    args: &StatusArgs,
    status: TenantStatus,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant).context("invalid tenant id")?;
    let backend = Backend::open(backend_args, Open::Existing).await?;
    let directory = backend.directory()?;
    let mut profile = directory
        .tenant(&tenant)
        .await?
        .with_context(|| format!("no tenant {tenant} on {}", backend.describe()))?;
    let name = status_name(status);
    // `resume` also ends a hold (a tenant-class failure such as an expired token).
    let hold = profile
        .hold
        .clone()
        .filter(|_| status == TenantStatus::Active);
    if profile.status == status && hold.is_none() {
        writeln!(out, "tenant {tenant} is already {name}: nothing to change")?;
        return Ok(());
    }
    if args.dry_run {
        if profile.status != status {
            writeln!(out, "dry run: tenant {tenant} would become {name}")?;
        }
        if let Some(h) = &hold {
            writeln!(
                out,
                "dry run: tenant {tenant}'s hold ({}, since {}) would end and its waiting messages be enqueued again",
                h.reason,
                h.since.to_rfc3339()
            )?;
        }
        return Ok(());
    }
    if profile.status != status {
        // A partial write: a hold placed meanwhile by the sender is kept.
        directory
            .set_tenant_status(&tenant, status, super::now())
            .await?;
        profile.status = status;
        writeln!(out, "tenant {tenant} is now {name}")?;
    }
    if let Some(h) = hold
        && directory.release_hold(&tenant).await?
    {
        let queue = wa_shared::ports::QueueRef::new(profile.queue.clone());
        let store = backend.store()?;
        let enqueued = wa_shared::app::sender::resume_with(
            store.as_ref(),
            backend.queue().as_ref(),
            &tenant,
            &queue,
            "",
        )
        .await
        .map_err(|e| anyhow::anyhow!("enqueuing the waiting messages failed: {e}"))?;
        writeln!(
            out,
            "tenant {tenant}'s hold ({}, since {}) ended; {enqueued} waiting message(s) enqueued again",
            h.reason,
            h.since.to_rfc3339()
        )?;
    }
    Ok(())
}
