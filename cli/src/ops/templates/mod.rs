//! `wa templates sync|load`: a tenant's message templates into the directory.
//!
//! `sync` pages through `GET /{version}/{waba_id}/message_templates` (following
//! `paging.next`, only ever on the Graph origin it started from, so the token is
//! never sent elsewhere); `load` reads Meta's template JSON from a file. Both write
//! only the templates that are new or differ from the stored ones.
//!
//! - [`listing`]: the Graph API's paged template listing.

pub mod listing;

use super::backend::{Backend, Open};
use super::config::{BackendArgs, FileConfig};
use super::output::progress;
use anyhow::Context;
use clap::{Args, Subcommand};
use listing::TemplateListing;
use secrecy::SecretString;
use std::io::Write;
use std::path::PathBuf;
use wa_shared::adapters::graph::{GRAPH_API_VERSION, GRAPH_BASE_URL};
use wa_shared::adapters::tokens::{ENV_PREFIX, EnvTokenSource, SecretsManagerTokenSource};
use wa_shared::domain::template::{Template, TemplateCatalog};
use wa_shared::domain::{TenantId, Timestamp};
use wa_shared::ports::{Directory, TokenSource};

/// `wa templates`.
#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// Backend and stack outputs.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: TemplatesCommand,
}

/// The `wa templates` subcommands.
#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Pull the tenant's WABA templates from the Graph API into the directory.
    Sync(SyncArgs),
    /// Load Meta-format template JSON ({"data": [...]}, an array, or one template) from FILE.
    Load(LoadArgs),
}

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

/// `wa templates sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The tenant whose WABA is listed.
    #[arg(long)]
    pub tenant: String,
    /// Graph API origin [default: GraphBaseUrl in the --config file's graph table, else Meta's graph.facebook.com].
    #[arg(long, env = "WA_GRAPH_BASE_URL")]
    pub graph_base_url: Option<String>,
    /// Graph API version [default: GraphApiVersion in the --config file's graph table, else the pinned v25.0].
    #[arg(long, env = "WA_GRAPH_API_VERSION")]
    pub graph_api_version: Option<String>,
    /// Token with access to the WABA (never printed) [default: the tenant's own, from its token_ref].
    #[arg(long, env = "WA_GRAPH_TOKEN", hide_env_values = true, value_parser = secret)]
    pub graph_token: Option<SecretString>,
    /// Templates per page asked of Graph.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,
    /// Fetch and compare, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `wa templates load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The tenant the templates belong to.
    #[arg(long)]
    pub tenant: String,
    /// The JSON file; `-` reads standard input.
    pub file: PathBuf,
    /// Compare, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// How many templates were new, changed or already stored as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Not in the directory before.
    pub new: usize,
    /// Stored with other content or status.
    pub changed: usize,
    /// Stored exactly so.
    pub unchanged: usize,
}

fn status_of(t: &Template) -> &str {
    t.status.as_ref().map_or("(no status)", |s| s.as_str())
}

/// Write the templates of `catalog` that are new or differ (all of them are compared,
/// none written when `dry_run`), printing one line per write.
pub async fn store_templates(
    directory: &dyn Directory,
    tenant: &TenantId,
    catalog: &TemplateCatalog,
    dry_run: bool,
    now: Timestamp,
    out: &mut impl Write,
) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    let bar = progress(Some(catalog.len() as u64), "comparing templates");
    for template in catalog.iter() {
        bar.inc(1);
        let key = format!("{}/{}", template.name, template.language);
        let stored = directory
            .template(tenant, &template.name, &template.language)
            .await
            .with_context(|| format!("reading template {key}"))?;
        let line = match stored {
            None => {
                counts.new += 1;
                format!("  new     {key}  {}", status_of(template))
            }
            Some(s) if s.template == *template => {
                counts.unchanged += 1;
                continue;
            }
            Some(s) if s.template.status != template.status => {
                counts.changed += 1;
                format!(
                    "  update  {key}  status {} -> {}",
                    status_of(&s.template),
                    status_of(template)
                )
            }
            Some(_) => {
                counts.changed += 1;
                format!("  update  {key}  content")
            }
        };
        bar.suspend(|| writeln!(out, "{line}"))?;
        if !dry_run {
            directory
                .put_template(tenant, template, now)
                .await
                .with_context(|| format!("writing template {key}"))?;
        }
    }
    bar.finish_and_clear();
    Ok(counts)
}

fn summary(counts: Counts, dry_run: bool) -> String {
    let verb = if dry_run {
        "would be written"
    } else {
        "written"
    };
    format!(
        "{} new, {} changed ({verb}), {} unchanged",
        counts.new, counts.changed, counts.unchanged
    )
}

/// Run a `wa templates` subcommand, printing to stdout.
pub async fn run(args: TemplatesArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match args.command {
        TemplatesCommand::Sync(sync) => run_sync(&args.backend, &sync, &mut out).await,
        TemplatesCommand::Load(load) => run_load(&args.backend, &load, &mut out).await,
    }
}

async fn tenant_waba(
    directory: &dyn Directory,
    tenant: &TenantId,
    backend: &Backend,
) -> anyhow::Result<wa_shared::domain::tenant::TenantProfile> {
    directory
        .tenant(tenant)
        .await?
        .with_context(|| format!("no tenant {tenant} on {}", backend.describe()))
}

/// The token for the listing: the flag or env var, else the tenant's own (`env:`
/// references, or its secret on AWS).
async fn graph_token(
    backend: &Backend,
    given: Option<&SecretString>,
    token_ref: &str,
) -> anyhow::Result<SecretString> {
    if let Some(token) = given {
        return Ok(token.clone());
    }
    let missing = || {
        anyhow::anyhow!(
            "no Graph token: pass --graph-token or set WA_GRAPH_TOKEN (the tenant's token_ref {token_ref:?} cannot be read here)"
        )
    };
    if token_ref.starts_with(ENV_PREFIX) {
        return EnvTokenSource::resolve(token_ref).map_err(|_| missing());
    }
    let Some(aws) = backend.aws_side() else {
        return Err(missing());
    };
    let prefix = aws.settings.tenant_secret_prefix().unwrap_or_default();
    let source = SecretsManagerTokenSource::new(
        aws_sdk_secretsmanager::Client::new(&aws.sdk),
        prefix.to_owned(),
    );
    source
        .graph_token(token_ref)
        .await
        .with_context(|| format!("reading the tenant's token from {token_ref}"))
}

async fn run_sync(
    backend_args: &BackendArgs,
    args: &SyncArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant).context("invalid tenant id")?;
    let file = FileConfig::load(backend_args.config.as_deref())?;
    let backend = Backend::open(backend_args, Open::Existing).await?;
    let directory = backend.directory()?;
    let profile = tenant_waba(directory.as_ref(), &tenant, &backend).await?;
    let base_url = args
        .graph_base_url
        .clone()
        .or(file.graph.graph_base_url)
        .unwrap_or_else(|| GRAPH_BASE_URL.to_owned());
    let version = args
        .graph_api_version
        .clone()
        .or(file.graph.graph_api_version)
        .unwrap_or_else(|| GRAPH_API_VERSION.to_owned());
    let token = graph_token(&backend, args.graph_token.as_ref(), &profile.token_ref).await?;
    let listing =
        TemplateListing::new(&base_url, &version, &profile.waba_id, args.page_size, token)?;
    let bar = progress(None, "fetching templates");
    let listed = listing
        .fetch_all(&bar)
        .await
        .with_context(|| format!("listing the templates of WABA {}", profile.waba_id))?;
    bar.finish_and_clear();
    writeln!(
        out,
        "tenant {tenant}: {} template(s) in {} page(s) from WABA {}",
        listed.catalog.len(),
        listed.pages,
        profile.waba_id
    )?;
    let counts = store_templates(
        directory.as_ref(),
        &tenant,
        &listed.catalog,
        args.dry_run,
        super::now(),
        out,
    )
    .await?;
    writeln!(out, "{}", summary(counts, args.dry_run))?;
    Ok(())
}

async fn run_load(
    backend_args: &BackendArgs,
    args: &LoadArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant).context("invalid tenant id")?;
    let text = crate::cli::read_input(&args.file)?;
    let catalog = TemplateCatalog::from_json(&text)
        .with_context(|| format!("{} is not Meta's template JSON", args.file.display()))?;
    let backend = Backend::open(backend_args, Open::Existing).await?;
    let directory = backend.directory()?;
    tenant_waba(directory.as_ref(), &tenant, &backend).await?;
    writeln!(
        out,
        "tenant {tenant}: {} template(s) in {}",
        catalog.len(),
        args.file.display()
    )?;
    let counts = store_templates(
        directory.as_ref(),
        &tenant,
        &catalog,
        args.dry_run,
        super::now(),
        out,
    )
    .await?;
    writeln!(out, "{}", summary(counts, args.dry_run))?;
    Ok(())
}
