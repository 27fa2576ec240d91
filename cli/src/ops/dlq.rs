//! `wa dlq list|redrive`: a tenant's dead letters, and moving them back.
//!
//! Both go through the `WorkQueue` port (`dead_letters`, `redrive_dead_letters`:
//! receive, send, delete), which works on SQS, on moto (no `StartMessageMoveTask`
//! there) and on SQLite. A dead letter is only a reference `{"tenant","id"}`: `list`
//! shows the referenced message's state from the store, since the store (not the
//! queue) is the truth; a redriven reference of a finished message is harmless, the
//! sender's claim drops it.

use super::backend::{Backend, Open};
use super::config::BackendArgs;
use super::output::{Table, progress};
use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use clap::{Args, Subcommand};
use std::io::Write;
use wa_shared::app::intake::view::message_view;
use wa_shared::domain::TenantId;
use wa_shared::ports::queue::MAX_RECEIVE_BATCH;
use wa_shared::ports::{DeadLetter, MessageStore, QueueRef};
use wa_shared::queues::SendQueueMessage;

/// Empty redrive rounds in a row after which `redrive` stops: SQS short polling may
/// answer nothing although a few messages remain.
const EMPTY_ROUNDS: usize = 3;

/// `wa dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    /// Backend and stack outputs.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: DlqCommand,
}

/// The `wa dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// The dead letters of a tenant's send queue, with each message's current state.
    List(ListArgs),
    /// Move a tenant's dead letters back to its send queue.
    Redrive(RedriveArgs),
}

/// `wa dlq list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// Most dead letters listed.
    #[arg(long, default_value_t = 100)]
    pub max: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `wa dlq redrive`.
#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// Move at most this many [default: all there are when the command starts].
    #[arg(long)]
    pub max: Option<usize>,
    /// Count what would move, move nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Run a `wa dlq` subcommand, printing to stdout.
pub async fn run(args: DlqArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let backend = Backend::open(&args.backend, Open::Existing).await?;
    match args.command {
        DlqCommand::List(list) => list_dead_letters(&backend, &list, &mut out).await,
        DlqCommand::Redrive(redrive) => redrive_dead_letters(&backend, &redrive, &mut out).await,
    }
}

async fn tenant_queue(backend: &Backend, tenant: &str) -> anyhow::Result<(TenantId, QueueRef)> {
    let tenant = TenantId::parse(tenant).context("invalid tenant id")?;
    let profile = backend
        .directory()?
        .tenant(&tenant)
        .await?
        .with_context(|| format!("no tenant {tenant} on {}", backend.describe()))?;
    Ok((tenant, QueueRef::new(profile.queue)))
}

/// The referenced message, when the body is a reference and the message exists.
async fn referenced(
    store: &dyn MessageStore,
    letter: &DeadLetter,
) -> anyhow::Result<Option<wa_shared::domain::Message>> {
    let Some(reference) = SendQueueMessage::parse(&letter.body) else {
        return Ok(None);
    };
    Ok(store.get(&reference.tenant, &reference.id).await?)
}

/// Print up to `--max` dead letters and the state of the message each refers to.
pub async fn list_dead_letters(
    backend: &Backend,
    args: &ListArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (tenant, queue) = tenant_queue(backend, &args.tenant).await?;
    let store = backend.store()?;
    let letters = backend
        .queue()
        .dead_letters(&queue, args.max)
        .await
        .with_context(|| format!("reading the dead letters of {queue}"))?;
    let bar = progress(Some(letters.len() as u64), "looking up messages");
    let mut rows = Vec::with_capacity(letters.len());
    for letter in &letters {
        rows.push((letter, referenced(store.as_ref(), letter).await?));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if args.json {
        for (letter, message) in &rows {
            let line = serde_json::json!({
                "dead_letter_id": letter.id.as_str(),
                "body": letter.body,
                "message": message.as_ref().map(message_view),
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no dead letters for tenant {tenant}")?;
        return Ok(());
    }
    let mut table = Table::new(&["DEAD LETTER", "MESSAGE", "STATUS", "UPDATED", "FAILURE"]);
    for (letter, message) in &rows {
        let (id, status, updated, failure) = match message {
            Some(m) => (
                m.id.to_string(),
                m.state.as_str().to_owned(),
                m.updated_at.to_rfc3339(),
                m.failure
                    .as_ref()
                    .map(|f| f.class.as_str().to_owned())
                    .unwrap_or_default(),
            ),
            None => (
                letter.body.chars().take(60).collect(),
                "(not in the store)".to_owned(),
                String::new(),
                String::new(),
            ),
        };
        table.row(vec![
            letter.id.as_str().to_owned(),
            id,
            status,
            updated,
            failure,
        ]);
    }
    table.write(out)?;
    writeln!(out, "{} dead letter(s) of tenant {tenant}", rows.len())?;
    Ok(())
}

/// About how many dead letters `queue` has: SQS's approximate count of the DLQ named
/// by its redrive policy, or the exact count on SQLite.
async fn dead_letter_count(backend: &Backend, queue: &QueueRef) -> anyhow::Result<u64> {
    let Some(aws) = backend.aws_side() else {
        let letters = backend.queue().dead_letters(queue, usize::MAX).await?;
        return Ok(letters.len() as u64);
    };
    let sqs = aws_sdk_sqs::Client::new(&aws.sdk);
    let attributes = |url: String, name: QueueAttributeName| {
        let sqs = sqs.clone();
        async move {
            let out = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(name.clone())
                .send()
                .await?;
            Ok::<_, anyhow::Error>(out.attributes().and_then(|a| a.get(&name)).cloned())
        }
    };
    let policy = attributes(queue.to_string(), QueueAttributeName::RedrivePolicy)
        .await
        .context("reading the queue's redrive policy")?
        .with_context(|| format!("queue {queue} has no dead-letter queue"))?;
    let policy: serde_json::Value = serde_json::from_str(&policy)?;
    let dlq_name = policy
        .get("deadLetterTargetArn")
        .and_then(|a| a.as_str())
        .and_then(|arn| arn.rsplit(':').next())
        .context("the redrive policy names no dead-letter queue")?;
    let url = sqs
        .get_queue_url()
        .queue_name(dlq_name)
        .send()
        .await
        .with_context(|| format!("looking up queue {dlq_name}"))?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let visible = attributes(url, QueueAttributeName::ApproximateNumberOfMessages)
        .await
        .context("reading the dead-letter queue's depth")?;
    Ok(visible.and_then(|n| n.parse().ok()).unwrap_or(0))
}

/// Move dead letters back in rounds of up to ten, with a progress bar.
pub async fn redrive_dead_letters(
    backend: &Backend,
    args: &RedriveArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (tenant, queue) = tenant_queue(backend, &args.tenant).await?;
    let waiting = dead_letter_count(backend, &queue).await?;
    // With --max, try for that many even if the (approximate) count says fewer.
    let target = args.max.map_or(waiting, |max| max as u64);
    if target == 0 || (waiting == 0 && args.max.is_none()) {
        writeln!(out, "no dead letters for tenant {tenant}")?;
        return Ok(());
    }
    if args.dry_run {
        writeln!(
            out,
            "dry run: {} of about {waiting} dead letter(s) of tenant {tenant} would move back to {queue}",
            target.min(waiting)
        )?;
        return Ok(());
    }
    let bar = progress(Some(target), "redriving");
    let queues = backend.queue();
    let mut moved: u64 = 0;
    let mut empty_rounds = 0;
    while moved < target && empty_rounds < EMPTY_ROUNDS {
        let round = usize::try_from(target - moved)
            .unwrap_or(usize::MAX)
            .min(MAX_RECEIVE_BATCH);
        let n = queues
            .redrive_dead_letters(&queue, round)
            .await
            .with_context(|| format!("redriving into {queue} after {moved} moved"))?;
        if n == 0 {
            empty_rounds += 1;
        } else {
            empty_rounds = 0;
        }
        moved += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    writeln!(
        out,
        "moved {moved} dead letter(s) of tenant {tenant} back to {queue}"
    )?;
    let left = dead_letter_count(backend, &queue).await?;
    if left > 0 {
        writeln!(out, "about {left} dead letter(s) remain")?;
    }
    Ok(())
}
