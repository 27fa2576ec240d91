//! `wa messages get|list`: what happened to a message, read from the store.
//!
//! `get` prints the same view as `GET /v1/messages/{id}` (timestamps, failure,
//! history); `list` pages through the tenant's messages, newest first.

use super::backend::{Backend, Open};
use super::config::BackendArgs;
use super::output::Table;
use super::since::parse_since;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::Write;
use wa_shared::app::intake::view::message_view;
use wa_shared::domain::{Message, MessageId, MessageState, PhoneNumber, TenantId};
use wa_shared::ports::{MessageQuery, MessageStore};

/// Largest page asked of the store.
const PAGE: usize = 100;

/// `wa messages`.
#[derive(Debug, Args)]
pub struct MessagesArgs {
    /// Backend and stack outputs.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: MessagesCommand,
}

/// The `wa messages` subcommands.
#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// One message: status, timestamps, failure and history (as GET /v1/messages/{id}).
    Get(GetArgs),
    /// A tenant's messages, newest first.
    List(ListArgs),
}

/// `wa messages get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The message id (msg_...).
    pub id: String,
    /// Its tenant.
    #[arg(long)]
    pub tenant: String,
    /// The stored item with internal fields (attempt, lease, sweep key) instead of the API view.
    #[arg(long)]
    pub raw: bool,
}

fn recipient(value: &str) -> Result<PhoneNumber, String> {
    PhoneNumber::parse(value).map_err(|e| e.to_string())
}

fn state(value: &str) -> Result<MessageState, String> {
    MessageState::parse(value).ok_or_else(|| {
        let names: Vec<&str> = MessageState::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// `wa messages list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// Only messages in this state.
    #[arg(long, value_parser = state)]
    pub status: Option<MessageState>,
    /// Only messages created since: RFC 3339 (2026-06-01T08:00:00Z) or a duration back from now (90s, 15m, 1h, 2d, 1w).
    #[arg(long)]
    pub since: Option<String>,
    /// Only messages created before: RFC 3339 or a duration back from now.
    #[arg(long)]
    pub until: Option<String>,
    /// Only messages to this recipient (E.164, e.g. +14155550123).
    #[arg(long, value_parser = recipient)]
    pub to: Option<PhoneNumber>,
    /// Most messages shown.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON view per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run a `wa messages` subcommand, printing to stdout.
pub async fn run(args: MessagesArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let backend = Backend::open(&args.backend, Open::Existing).await?;
    let store = backend.store()?;
    match args.command {
        MessagesCommand::Get(get) => get_message(store.as_ref(), &get, &mut out).await,
        MessagesCommand::List(list) => {
            let window = |t: &Option<String>| {
                t.as_deref()
                    .map(|s| parse_since(s, super::now()))
                    .transpose()
            };
            let query = MessageQuery {
                state: list.status,
                to: list.to.clone(),
                since: window(&list.since)?,
                until: window(&list.until)?,
            };
            list_messages(store.as_ref(), &list, &query, &mut out).await
        }
    }
}

/// Print one message as pretty JSON.
pub async fn get_message(
    store: &dyn MessageStore,
    args: &GetArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant).context("invalid tenant id")?;
    let id = MessageId::parse(&args.id).context("invalid message id")?;
    let message = store
        .get(&tenant, &id)
        .await?
        .with_context(|| format!("no message {id} of tenant {tenant}"))?;
    let value = if args.raw {
        serde_json::to_value(&message)?
    } else {
        message_view(&message)
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    Ok(())
}

/// Up to `limit` messages matching `query`, newest first; whether more were left.
pub async fn fetch_messages(
    store: &dyn MessageStore,
    tenant: &TenantId,
    query: &MessageQuery,
    limit: usize,
) -> anyhow::Result<(Vec<Message>, bool)> {
    let mut messages = Vec::new();
    let mut cursor: Option<String> = None;
    while messages.len() < limit {
        let want = (limit - messages.len()).min(PAGE);
        let page = store
            .list_messages(tenant, query, want, cursor.as_deref())
            .await?;
        messages.extend(page.items);
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    messages.truncate(limit);
    Ok((messages, cursor.is_some()))
}

fn failure(m: &Message) -> String {
    match (&m.failure, &m.suppression) {
        (Some(f), _) => match f.code {
            Some(code) => format!("{} {code}", f.class.as_str()),
            None => f.class.as_str().to_owned(),
        },
        (None, Some(s)) => serde_json::to_value(s.reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        (None, None) => String::new(),
    }
}

/// Print a tenant's messages as a table (recipients masked) or JSON lines (full views).
pub async fn list_messages(
    store: &dyn MessageStore,
    args: &ListArgs,
    query: &MessageQuery,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant).context("invalid tenant id")?;
    let (messages, more) = fetch_messages(store, &tenant, query, args.limit).await?;
    if args.json {
        for m in &messages {
            writeln!(out, "{}", serde_json::to_string(&message_view(m))?)?;
        }
    } else if messages.is_empty() {
        writeln!(out, "no messages")?;
    } else {
        let mut table = Table::new(&[
            "ID", "STATUS", "TO", "TEMPLATE", "CREATED", "UPDATED", "FAILURE",
        ]);
        for m in &messages {
            let template = match (&m.template_name, &m.template_language) {
                (Some(n), Some(l)) => format!("{n}/{l}"),
                (Some(n), None) => n.clone(),
                (None, _) => "(text)".to_owned(),
            };
            table.row(vec![
                m.id.to_string(),
                m.state.as_str().to_owned(),
                m.to.masked(),
                template,
                m.created_at.to_rfc3339(),
                m.updated_at.to_rfc3339(),
                failure(m),
            ]);
        }
        table.write(out)?;
    }
    if more {
        eprintln!(
            "(the first {} shown; raise --limit for more)",
            messages.len()
        );
    }
    Ok(())
}
