//! `wa tenants add`: look at every resource of the tenant, print the plan, then make
//! exactly the changes it lists (none with `--dry-run`).
//!
//! Resources, in the order they are made (infra/README.md, "What the CLI must create"):
//! send queue and DLQ (`WorkQueue::ensure_queue` with `wa_shared::queues::SEND`, SSE
//! included; on AWS the visibility, receive count and batch size come from the stack
//! outputs, which default to the same definition), on AWS the token
//! secret, the event source mapping and the DLQ alarm, then the API key and last the
//! profile with its routing: the profile is what makes the tenant exist, so a run
//! that fails half-way leaves no tenant, and the next run finishes the job. A key is
//! issued only when the tenant is new (or with `--new-key`), and printed once.

use super::AddArgs;
use super::aws::{AwsTenant, Observed, SecretState};
use super::profile::{
    DEV_TOKEN_REF, ProfileFlags, Routing, new_api_key, profile_diffs, wanted_profile,
};
use crate::ops::backend::Backend;
use crate::ops::plan::{Change, Step, count_changes, write_steps};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use wa_shared::domain::TenantId;
use wa_shared::domain::tenant::{ApiKeyEntry, ApiKeyHash, TenantProfile};
use wa_shared::ports::queue::{DEAD_LETTER_SUFFIX, MAX_QUEUE_NAME_LEN};
use wa_shared::ports::{Directory, QueueError, QueueRef, QueueSpec, WorkQueue};
use wa_shared::queues::{MAXIMUM_CONCURRENCY_BOUNDS, SEND};

/// Name prefix of the send queues on SQLite (shared with `wa dev`): `send-<tenant>`.
pub const SQLITE_QUEUE_PREFIX: &str = "send-";

/// What the plan found and decided.
struct Plan {
    tenant: TenantId,
    queue_name: String,
    spec: QueueSpec,
    current: Option<TenantProfile>,
    /// The profile settings given as flags.
    flags: ProfileFlags,
    /// The profile's token reference.
    token_ref: String,
    /// The queue's address if it exists now.
    queue: Option<QueueRef>,
    aws: Option<(AwsTenant, Observed)>,
    queue_steps: Vec<Step>,
    secret: Option<Step>,
    mapping: Option<Step>,
    alarm: Option<Step>,
    profile: Step,
    key: Step,
    max_concurrency: u32,
}

impl Plan {
    fn steps(&self) -> Vec<Step> {
        let mut steps = self.queue_steps.clone();
        steps.extend(
            [&self.secret, &self.mapping, &self.alarm]
                .into_iter()
                .flatten()
                .cloned(),
        );
        steps.push(self.profile.clone());
        steps.push(self.key.clone());
        steps
    }
}

/// Refuse names SQS cannot take, and a tenant whose queue would be another's DLQ.
fn check_queue_name(tenant: &TenantId, queue_name: &str) -> anyhow::Result<()> {
    if tenant.as_str().ends_with(DEAD_LETTER_SUFFIX) {
        anyhow::bail!(
            "tenant id {tenant} ends with {DEAD_LETTER_SUFFIX}: its queue would be the dead-letter queue of another tenant's"
        );
    }
    let valid = queue_name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid || queue_name.len() > MAX_QUEUE_NAME_LEN {
        anyhow::bail!(
            "queue name {queue_name} is not usable: at most {MAX_QUEUE_NAME_LEN} characters (SQS allows 80 with {DEAD_LETTER_SUFFIX}) of A-Z a-z 0-9 - _; choose a shorter tenant id"
        );
    }
    Ok(())
}

/// The SQLite queue `name` if it exists. On SQLite a queue's address is its name.
async fn existing_sqlite_queue(
    queues: &dyn WorkQueue,
    name: &str,
) -> anyhow::Result<Option<QueueRef>> {
    let probe = QueueRef::new(name);
    match queues.approximate_depth(&probe).await {
        Ok(_) => Ok(Some(probe)),
        Err(QueueError::QueueNotFound(_)) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("looking up queue {name}")),
    }
}

async fn make_plan(
    backend: &Backend,
    directory: &dyn Directory,
    args: &AddArgs,
) -> anyhow::Result<Plan> {
    let tenant = TenantId::parse(&args.tenant).context("invalid tenant id")?;
    let flags = ProfileFlags::from_args(args)?;
    // Every setting is checked before the first call.
    let aws = match backend.aws_side() {
        Some(side) => {
            if args.token_ref.is_some() {
                anyhow::bail!(
                    "--token-ref is for SQLite: on AWS the token lives in the tenant's secret (--graph-token stores it)"
                );
            }
            let aws = AwsTenant::new(side, &tenant)?;
            check_queue_name(&tenant, &aws.names.queue)?;
            Some(aws)
        }
        None => None,
    };
    let current = directory.tenant(&tenant).await?;
    let queues = backend.queue();

    let (queue_name, spec, queue, aws, token_ref) = match aws {
        Some(aws) => {
            let observed = aws.observe(args.graph_token.as_ref()).await?;
            let queue = observed.queue.as_ref().map(|q| QueueRef::new(&q.url));
            let token_ref = aws.names.secret.clone();
            (
                aws.names.queue.clone(),
                *aws.spec(),
                queue,
                Some((aws, observed)),
                token_ref,
            )
        }
        None => {
            let name = format!("{SQLITE_QUEUE_PREFIX}{tenant}");
            check_queue_name(&tenant, &name)?;
            let queue = existing_sqlite_queue(queues.as_ref(), &name).await?;
            let token_ref = args
                .token_ref
                .clone()
                .or_else(|| current.as_ref().map(|c| c.token_ref.clone()))
                .unwrap_or_else(|| DEV_TOKEN_REF.to_owned());
            (name, SEND.spec, queue, None, token_ref)
        }
    };

    // Until the queue exists its address is unknown on AWS; assume the current one.
    let planned_queue = match (&queue, &current, &aws) {
        (Some(q), _, _) => q.to_string(),
        (None, Some(c), Some(_)) => c.queue.clone(),
        (None, None, Some(_)) => format!("(URL of {queue_name})"),
        (None, _, None) => queue_name.clone(),
    };
    let wanted = wanted_profile(
        &tenant,
        current.as_ref(),
        &flags,
        planned_queue,
        token_ref.clone(),
        crate::ops::now(),
    )?;
    if aws.is_some() && !MAXIMUM_CONCURRENCY_BOUNDS.contains(&wanted.max_concurrency) {
        anyhow::bail!(
            "max_concurrency {} is outside {}..={} (the mapping's MaximumConcurrency): pass --max-concurrency",
            wanted.max_concurrency,
            MAXIMUM_CONCURRENCY_BOUNDS.start(),
            MAXIMUM_CONCURRENCY_BOUNDS.end()
        );
    }
    let routing = Routing::of(directory, &wanted).await?;
    routing.check_not_taken(&wanted)?;

    let queue_steps = match &aws {
        Some((a, observed)) => a.queue_steps(observed).to_vec(),
        None => {
            let change = if queue.is_some() {
                Change::Keep
            } else {
                Change::Create
            };
            vec![Step::new("queue", &queue_name, change).with_detail(format!(
                "maxReceiveCount={}, with its dead-letter queue",
                spec.max_receive_count
            ))]
        }
    };
    let (secret, mapping, alarm) = match &aws {
        Some((a, observed)) => (
            Some(a.secret_step(observed, args.graph_token.as_ref())),
            Some(a.mapping_step(observed, wanted.max_concurrency)),
            Some(a.alarm_step(observed)),
        ),
        None => (None, None, None),
    };
    let profile = match &current {
        None => Step::new("profile", tenant.as_str(), Change::Create).with_detail(format!(
            "phone number id {}, WABA {}, max_concurrency {}, throughput {}/s, intake quota {}, token_ref {}, with its phone and WABA routing",
            wanted.phone_number_id,
            wanted.waba_id,
            wanted.max_concurrency,
            wanted.throughput_mps,
            wanted.intake_quota,
            wanted.token_ref
        )),
        Some(current) => {
            let mut diffs = profile_diffs(current, &wanted);
            diffs.extend(routing.diffs(&wanted));
            let change = if diffs.is_empty() {
                Change::Keep
            } else {
                Change::Update(diffs)
            };
            Step::new("profile", tenant.as_str(), change)
        }
    };
    let key = if current.is_none() || args.new_key {
        Step::new("api key", format!("for {tenant}"), Change::Create)
            .with_detail("printed once below; only its SHA-256 is stored")
    } else {
        Step::new("api key", format!("for {tenant}"), Change::Keep)
    };
    Ok(Plan {
        tenant,
        queue_name,
        spec,
        max_concurrency: wanted.max_concurrency,
        current,
        flags,
        token_ref,
        queue,
        aws,
        queue_steps,
        secret,
        mapping,
        alarm,
        profile,
        key,
    })
}

/// Plan, print, and (unless `--dry-run`) apply. Prints the new API key, if any.
pub async fn add(backend: &Backend, args: &AddArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let directory = backend.directory()?;
    if backend.aws_side().is_none() && args.graph_token.is_some() {
        eprintln!(
            "note: the Graph token is not stored on SQLite (wa dev resolves token_ref); ignoring it"
        );
    }
    let plan = make_plan(backend, directory.as_ref(), args).await?;
    let steps = plan.steps();
    let changes = count_changes(&steps);
    let dry = if args.dry_run {
        " (dry run: nothing is changed)"
    } else {
        ""
    };
    writeln!(out, "tenant {} on {}{dry}", plan.tenant, backend.describe())?;
    write_steps(out, &steps)?;
    if changes == 0 {
        writeln!(
            out,
            "nothing to change: tenant {} is up to date",
            plan.tenant
        )?;
        return Ok(());
    }
    if args.dry_run {
        writeln!(out, "dry run: {changes} change(s) would be made")?;
        return Ok(());
    }
    let key = apply(
        &plan,
        backend,
        directory.as_ref(),
        args.graph_token.as_ref(),
    )
    .await?;
    writeln!(out, "{changes} change(s) made")?;
    if let Some((aws, observed)) = &plan.aws
        && observed.secret == SecretState::Missing
        && args.graph_token.is_none()
    {
        let name = &aws.names.secret;
        writeln!(
            out,
            "note: secret {name} holds no token yet; store the tenant's Graph token before sending:\n  aws secretsmanager put-secret-value --secret-id {name} --secret-string \"$TOKEN\""
        )?;
    }
    if let Some(key) = key {
        writeln!(
            out,
            "API key of tenant {} (shown this once; only its hash is stored):",
            plan.tenant
        )?;
        writeln!(out, "{}", key.expose_secret())?;
    }
    Ok(())
}

/// Label of the keys `wa tenants add` issues (`wa tenants keys list` shows it).
pub const ADD_LABEL: &str = "wa tenants add";

/// Make the planned changes; the new API key, if one was issued.
async fn apply(
    plan: &Plan,
    backend: &Backend,
    directory: &dyn Directory,
    token: Option<&SecretString>,
) -> anyhow::Result<Option<SecretString>> {
    let mut queue = plan.queue.clone();
    if plan.queue_steps.iter().any(Step::changes) {
        queue = Some(
            backend
                .queue()
                .ensure_queue(&plan.queue_name, &plan.spec)
                .await
                .with_context(|| format!("creating queue {}", plan.queue_name))?,
        );
    }
    let queue = queue.with_context(|| format!("queue {} does not exist", plan.queue_name))?;

    let mut token_updated = false;
    if let Some((aws, observed)) = &plan.aws {
        if plan.secret.as_ref().is_some_and(Step::changes) {
            aws.apply_secret(observed, token).await?;
            token_updated = token.is_some();
        }
        if plan.mapping.as_ref().is_some_and(Step::changes) {
            aws.apply_mapping(observed, queue.as_str(), plan.max_concurrency)
                .await?;
        }
        if plan.alarm.as_ref().is_some_and(Step::changes) {
            aws.apply_alarm().await?;
        }
    }

    let key = if plan.key.changes() {
        let key = new_api_key()?;
        let entry = ApiKeyEntry::new(
            ApiKeyHash::of_key(key.expose_secret()),
            crate::ops::now(),
            Some(ADD_LABEL),
        );
        directory
            .add_api_key(&plan.tenant, &entry)
            .await
            .context("storing the API key's hash")?;
        Some(key)
    } else {
        None
    };

    // The profile goes last, with the queue's real address; compared again, since
    // the plan could only guess the URL of a queue it had yet to create.
    let now = crate::ops::now();
    let mut wanted = wanted_profile(
        &plan.tenant,
        plan.current.as_ref(),
        &plan.flags,
        queue.to_string(),
        plan.token_ref.clone(),
        now,
    )?;
    let routing = Routing::of(directory, &wanted).await?;
    let changed = match &plan.current {
        None => true,
        Some(current) => !profile_diffs(current, &wanted).is_empty(),
    };
    if changed || !routing.diffs(&wanted).is_empty() {
        routing.check_not_taken(&wanted)?;
        wanted.updated_at = now;
        directory
            .put_tenant(&wanted)
            .await
            .context("writing the tenant profile")?;
    }
    // A new token ends a hold (an expired token is the usual cause): the waiting
    // messages are enqueued again rather than waiting for the next probe.
    if token_updated
        && plan.current.as_ref().is_some_and(|c| c.hold.is_some())
        && directory.release_hold(&plan.tenant).await?
    {
        let enqueued = wa_shared::app::sender::resume_with(
            backend.store()?.as_ref(),
            backend.queue().as_ref(),
            &plan.tenant,
            &queue,
            "",
        )
        .await
        .map_err(|e| anyhow::anyhow!("enqueuing the held messages failed: {e}"))?;
        eprintln!(
            "tenant {}'s hold ended with the new token; {enqueued} waiting message(s) enqueued again",
            plan.tenant
        );
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_must_fit_sqs_and_not_look_like_a_dlq() {
        let t = |s: &str| TenantId::parse(s).unwrap();
        assert!(check_queue_name(&t("acme"), "dev-wa-send-acme").is_ok());
        assert!(check_queue_name(&t("acme-dlq"), "dev-wa-send-acme-dlq").is_err());
        let long = "a".repeat(64);
        assert!(check_queue_name(&t(&long), &format!("prod-wa-send-{long}")).is_err());
        assert!(check_queue_name(&t("acme"), "dev.wa.send-acme").is_err());
    }
}
