//! `wa tenants keys list|add|revoke`: a tenant's API keys, on AWS and on wa dev's
//! SQLite file alike (the directory's key entries, see docs/data-model.md).
//!
//! - `list` shows each key's hash (never the key: only the hash is stored), when it
//!   was added and its label.
//! - `add` issues a new random key (as `wa tenants add` does), stores its hash and
//!   prints the key this once.
//! - `revoke` deletes one key's routing entry: the key stops authenticating at once
//!   for new lookups, and within 5 s in warm functions that cached it
//!   (`wa_shared::app::directory_cache::API_KEY_MAX_TTL_MS`). The key is named by its
//!   hash, a unique prefix of it (8 hex digits or more, as `list` shows), or the
//!   key itself.
//!
//! On wa dev's SQLite file, keys of a tenant defined in wa dev's wa.toml are
//! reconciled with the file at each start of wa dev: a key added here to such a
//! tenant is revoked by the next start unless it is in the file's `api_keys`.

use super::super::backend::{Backend, Open};
use super::super::config::BackendArgs;
use super::super::output::Table;
use super::profile::new_api_key;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use std::io::Write;
use wa_shared::domain::TenantId;
use wa_shared::domain::tenant::{ApiKeyEntry, ApiKeyHash};
use wa_shared::ports::Directory;

/// Label of the keys `wa tenants keys add` issues without `--label`.
pub const DEFAULT_LABEL: &str = "wa tenants keys add";
/// Fewest hex digits of a hash `revoke` accepts as a prefix.
pub const MIN_HASH_PREFIX: usize = 8;
/// Hex digits of the hash `list` shows in its table.
const SHOWN_HASH_DIGITS: usize = 16;

/// `wa tenants keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The `wa tenants keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// A tenant's API keys: hash (never the key), when added, label.
    List(ListKeysArgs),
    /// Issue a new API key for a tenant; printed this once (only its hash is stored).
    Add(AddKeyArgs),
    /// Revoke one of a tenant's API keys: it no longer authenticates.
    Revoke(RevokeKeyArgs),
}

/// `wa tenants keys list`.
#[derive(Debug, Args)]
pub struct ListKeysArgs {
    /// The tenant.
    pub tenant: String,
    /// One JSON object per key and line (full hash) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `wa tenants keys add`.
#[derive(Debug, Args)]
pub struct AddKeyArgs {
    /// The tenant.
    pub tenant: String,
    /// What the key is for, shown by `list` [default: "wa tenants keys add"].
    #[arg(long)]
    pub label: Option<String>,
}

/// `wa tenants keys revoke`.
#[derive(Debug, Args)]
pub struct RevokeKeyArgs {
    /// The tenant.
    pub tenant: String,
    /// The key's hash, a unique prefix of it (8+ hex digits, as `list` shows), or the key.
    #[arg(value_name = "KEY_PREFIX_OR_HASH")]
    pub key: String,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Run a `wa tenants keys` subcommand.
pub async fn run(
    backend_args: &BackendArgs,
    args: KeysArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let backend = Backend::open(backend_args, Open::Existing).await?;
    let directory = backend.directory()?;
    let directory = directory.as_ref();
    match args.command {
        KeysCommand::List(list) => {
            let tenant = existing_tenant(directory, &backend, &list.tenant).await?;
            list_keys(directory, &tenant, list.json, out).await
        }
        KeysCommand::Add(add) => {
            let tenant = existing_tenant(directory, &backend, &add.tenant).await?;
            let label = add.label.as_deref().unwrap_or(DEFAULT_LABEL);
            add_key(directory, &tenant, label, out).await?;
            if backend.aws_side().is_none() {
                writeln!(
                    out,
                    "note: if {tenant} is a tenant of wa dev's wa.toml, wa dev's next start \
                     revokes this key unless it is in the file's api_keys"
                )?;
            }
            Ok(())
        }
        KeysCommand::Revoke(revoke) => {
            let tenant = existing_tenant(directory, &backend, &revoke.tenant).await?;
            revoke_key(directory, &tenant, &revoke.key, revoke.dry_run, out).await
        }
    }
}

async fn existing_tenant(
    directory: &dyn Directory,
    backend: &Backend,
    tenant: &str,
) -> anyhow::Result<TenantId> {
    let tenant = TenantId::parse(tenant).context("invalid tenant id")?;
    directory
        .tenant(&tenant)
        .await?
        .with_context(|| format!("no tenant {tenant} on {}", backend.describe()))?;
    Ok(tenant)
}

/// Print `tenant`'s keys: a table, or JSON lines.
pub async fn list_keys(
    directory: &dyn Directory,
    tenant: &TenantId,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let keys = directory.api_keys(tenant).await?;
    if json {
        for key in &keys {
            let line = serde_json::json!({
                "tenant": tenant.as_str(),
                "hash": key.hash.as_str(),
                "added_at": key.added_at.map(|t| t.to_rfc3339()),
                "label": key.label,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    if keys.is_empty() {
        writeln!(out, "tenant {tenant} has no API keys")?;
        return Ok(());
    }
    let mut table = Table::new(&["HASH (SHA-256, PREFIX)", "ADDED", "LABEL"]);
    for key in &keys {
        table.row(vec![
            key.hash.as_str()[..SHOWN_HASH_DIGITS].to_owned(),
            key.added_at
                .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
            key.label.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    table.write(out)?;
    Ok(())
}

/// Issue, store and print a new key of `tenant`.
pub async fn add_key(
    directory: &dyn Directory,
    tenant: &TenantId,
    label: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let key = new_api_key()?;
    let hash = ApiKeyHash::of_key(key.expose_secret());
    let entry = ApiKeyEntry::new(hash.clone(), crate::ops::now(), Some(label));
    directory
        .add_api_key(tenant, &entry)
        .await
        .context("storing the API key's hash")?;
    writeln!(
        out,
        "API key of tenant {tenant} (shown this once; only its hash is stored):"
    )?;
    writeln!(out, "{}", key.expose_secret())?;
    writeln!(
        out,
        "hash {} (wa tenants keys revoke {tenant} {} revokes it)",
        hash.as_str(),
        &hash.as_str()[..SHOWN_HASH_DIGITS]
    )?;
    Ok(())
}

/// Which of `tenant`'s keys `given` names: the key itself, its hash, or a unique
/// hash prefix of 8+ hex digits.
pub async fn resolve_key(
    directory: &dyn Directory,
    tenant: &TenantId,
    given: &str,
) -> anyhow::Result<ApiKeyHash> {
    let given = given.trim();
    let keys = directory.api_keys(tenant).await?;
    let of_key = ApiKeyHash::of_key(given);
    if keys.iter().any(|k| k.hash == of_key) {
        return Ok(of_key);
    }
    let prefix = given.to_ascii_lowercase();
    let is_hex = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex && prefix.len() >= MIN_HASH_PREFIX {
        let matches: Vec<&ApiKeyEntry> = keys
            .iter()
            .filter(|k| k.hash.as_str().starts_with(&prefix))
            .collect();
        match matches.as_slice() {
            [one] => return Ok(one.hash.clone()),
            [] => {}
            many => bail!(
                "{} API keys of tenant {tenant} start with {prefix}: give more digits of the hash",
                many.len()
            ),
        }
    }
    // A key routed to the tenant but not listed (stored before keys were listed).
    for hash in [ApiKeyHash::parse(&prefix).ok(), Some(of_key)]
        .into_iter()
        .flatten()
    {
        if directory.tenant_by_api_key(&hash).await?.as_ref() == Some(tenant) {
            return Ok(hash);
        }
    }
    if is_hex && prefix.len() < MIN_HASH_PREFIX {
        bail!(
            "give at least {MIN_HASH_PREFIX} hex digits of the key's hash (wa tenants keys list {tenant} shows them), or the key itself"
        );
    }
    bail!(
        "no API key of tenant {tenant} matches {}: give the key, its hash or {MIN_HASH_PREFIX}+ hex digits of it (wa tenants keys list {tenant})",
        if is_hex { given } else { "the given key" }
    )
}

/// Revoke the key of `tenant` that `given` names.
pub async fn revoke_key(
    directory: &dyn Directory,
    tenant: &TenantId,
    given: &str,
    dry_run: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let hash = resolve_key(directory, tenant, given).await?;
    if dry_run {
        writeln!(
            out,
            "dry run: API key {} of tenant {tenant} would be revoked",
            hash.as_str()
        )?;
        return Ok(());
    }
    match directory.revoke_api_key(tenant, &hash).await {
        Ok(true) => {
            writeln!(
                out,
                "API key {} of tenant {tenant} revoked: it no longer authenticates (within 5 s where it was cached)",
                hash.as_str()
            )?;
            Ok(())
        }
        Ok(false) => bail!(
            "API key {} is not (or no longer) a key of tenant {tenant}",
            hash.as_str()
        ),
        Err(e) => Err(anyhow::Error::new(e).context("revoking the API key")),
    }
}
