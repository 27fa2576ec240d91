//! The reconciler (DESIGN §7): every minute, sweep the sparse, sharded sweep index and
//! act on what is overdue, within a time budget and with bounded pages. It also
//! releases `scheduled` messages whose `send_at` has come (their sweep deadline), so a
//! schedule is kept to within one run's interval.
//!
//! Every action is a lifecycle event written through [`record_event`]
//! (crate::ports::record_event): conditional on the situation the sweep found, so a
//! webhook racing the reconciler wins, and a second, overlapping run finds nothing left
//! to do. The queue is touched only after the write succeeded, so only the run whose
//! write won enqueues.

mod actions;

use crate::app::ReconcilerDeps;
use crate::domain::MessageState;
pub use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};
use tracing::{error, info, warn};

/// The reconciler's settings (read by its `Config` at cold start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerSettings {
    /// Stop starting new work after this long (`WA_RECONCILER_BUDGET_MS`), well under
    /// the Lambda timeout, so runs rarely overlap and never die half way through a page.
    /// An invocation with a deadline also stops [`Self::deadline_margin`] before it,
    /// whichever comes first, so a budget configured past the timeout is harmless.
    pub budget: Duration,
    /// How long before the invocation's deadline a run stops starting work
    /// (`WA_RECONCILER_DEADLINE_MARGIN_MS`): room for the item in progress (a few
    /// conditional writes and one enqueue, with the SDK's retries) and the report.
    pub deadline_margin: Duration,
    /// Items per sweep query.
    pub page_size: usize,
    /// Most pages read per sweep key and run: one busy shard cannot eat the budget.
    pub max_pages_per_key: usize,
    /// Most stale `queued` messages of one tenant enqueued again per run: a tenant's
    /// deep backlog is drained by its queue, not duplicated into it wholesale.
    pub max_requeues_per_tenant: usize,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(45),
            deadline_margin: Duration::from_secs(5),
            page_size: 100,
            max_pages_per_key: 10,
            max_requeues_per_tenant: 100,
        }
    }
}

/// One action the reconciler takes on one message; its name is the `Action` dimension
/// of the `ReconcilerAction` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A stale `queued` message was enqueued again and its deadline pushed out.
    Reenqueued,
    /// A `sending` message whose lease expired went back to `queued` and was enqueued.
    Requeued,
    /// A `sending` message whose lease expired on its last attempt failed as `exhausted`.
    Exhausted,
    /// A `sending` message whose lease expired after its Graph call was dispatched
    /// (the outcome was never recorded) was marked ambiguous: never requeued, since
    /// Meta may have it; the webhook or the tenant's policy resolves it.
    DispatchLapsed,
    /// An ambiguous send past its grace failed (`on_ambiguous = fail`).
    AmbiguousFailed,
    /// An ambiguous send past its grace went back to `queued` (`on_ambiguous = retry`).
    AmbiguousRetried,
    /// `accepted`/`sent` past the webhook horizon failed as `unconfirmed`.
    Unconfirmed,
    /// A `scheduled` message reached its `send_at`: released to `queued` and enqueued.
    Released,
}

impl Action {
    /// The snake_case name (metric dimension, logs).
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Reenqueued => "reenqueued",
            Action::Requeued => "requeued",
            Action::Exhausted => "exhausted",
            Action::DispatchLapsed => "dispatch_lapsed",
            Action::AmbiguousFailed => "ambiguous_failed",
            Action::AmbiguousRetried => "ambiguous_retried",
            Action::Unconfirmed => "unconfirmed",
            Action::Released => "released",
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Overdue items looked at.
    pub scanned: u32,
    /// Actions taken, by kind.
    pub actions: BTreeMap<Action, u32>,
    /// Overdue items that needed nothing any more (a webhook or another run got there first).
    pub already_handled: u32,
    /// Stale `queued` items left for a later run by the per-tenant cap.
    pub deferred: u32,
    /// How overdue the most overdue item of each state was, in ms (0: none overdue).
    pub oldest_overdue_ms: BTreeMap<&'static str, i64>,
    /// Items or shards that failed (logged, counted as `ReconcilerError`).
    pub errors: u32,
    /// Whether the run stopped early because its budget ran out.
    pub budget_exhausted: bool,
}

impl RunReport {
    /// How many times `action` was taken.
    pub fn count(&self, action: Action) -> u32 {
        self.actions.get(&action).copied().unwrap_or(0)
    }
}

/// Why a run is reported as failed to Lambda (its report was still logged).
#[derive(Debug, thiserror::Error)]
pub enum ReconcilerError {
    /// Some shards or items failed; the rest of the run completed.
    #[error("reconciler run had {errors} error(s)")]
    Incomplete {
        /// How many.
        errors: u32,
        /// What the run did anyway.
        report: Box<RunReport>,
    },
}

impl ReconcilerError {
    /// The error type Lambda reports (CloudWatch shows this, not a Rust type name).
    pub const fn kind(&self) -> &'static str {
        match self {
            ReconcilerError::Incomplete { .. } => "ReconcilerIncomplete",
        }
    }
}

/// The states the sweep visits, in order: recover stuck sends first, since they hold
/// messages nobody else will pick up, then release due schedules.
const SWEPT: [MessageState; 5] = [
    MessageState::Sending,
    MessageState::Scheduled,
    MessageState::Queued,
    MessageState::Accepted,
    MessageState::Sent,
];

/// How long a run may keep starting work: the configured `budget`, or the time left
/// before the invocation's deadline less `margin`, whichever is shorter. `remaining`
/// is `None` without a deadline (`wa dev`), and zero once the deadline has passed.
pub fn work_window(budget: Duration, remaining: Option<Duration>, margin: Duration) -> Duration {
    match remaining {
        Some(left) => budget.min(left.saturating_sub(margin)),
        None => budget,
    }
}

/// Handle one scheduled invocation (the event's content is not used). `deadline` is
/// the Lambda invocation's (`LambdaEvent::context.deadline()`): the run stops starting
/// work [`ReconcilerSettings::deadline_margin`] before it, or when its budget is
/// spent, whichever comes first.
pub async fn handle(
    deps: &ReconcilerDeps,
    event: EventBridgeEvent,
    deadline: Option<SystemTime>,
) -> Result<RunReport, ReconcilerError> {
    info!(source = %event.source, id = ?event.id, "reconciler run");
    run_until(deps, deadline).await
}

/// One sweep over every state's shards within the configured budget (no invocation
/// deadline: `wa dev`'s timer and tests).
pub async fn run(deps: &ReconcilerDeps) -> Result<RunReport, ReconcilerError> {
    run_until(deps, None).await
}

/// One sweep over every state's shards, starting no work after the budget or after
/// `deadline` less the margin (see [`work_window`]).
#[tracing::instrument(skip_all)]
pub async fn run_until(
    deps: &ReconcilerDeps,
    deadline: Option<SystemTime>,
) -> Result<RunReport, ReconcilerError> {
    let started = Instant::now();
    // A deadline already past gives a zero window: nothing is started.
    let remaining = deadline.map(|d| {
        d.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    });
    let window = work_window(
        deps.settings.budget,
        remaining,
        deps.settings.deadline_margin,
    );
    let out_of_time = || started.elapsed() >= window;
    let mut sweep = actions::Sweep::new(deps);
    'states: for state in SWEPT {
        sweep.report.oldest_overdue_ms.insert(state.as_str(), 0);
        for key in deps.ports.lifecycle.sweep_keys(state) {
            let mut cursor: Option<String> = None;
            for _ in 0..deps.settings.max_pages_per_key {
                if out_of_time() {
                    sweep.report.budget_exhausted = true;
                    break 'states;
                }
                let page = deps
                    .ports
                    .store
                    .sweep(&key, sweep.now, deps.settings.page_size, cursor.as_deref())
                    .await;
                let page = match page {
                    Ok(page) => page,
                    Err(e) => {
                        sweep.error(&e, "sweep query failed");
                        break;
                    }
                };
                for message in &page.items {
                    // Checked per item too: a page of slow writes must not run past
                    // the deadline.
                    if out_of_time() {
                        sweep.report.budget_exhausted = true;
                        break 'states;
                    }
                    sweep.act(state, message).await;
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    let report = sweep.finish();
    for (state, ms) in &report.oldest_overdue_ms {
        deps.ports
            .metrics
            .millis("OldestOverdueMs", *ms, &[("State", state)]);
    }
    if report.budget_exhausted {
        warn!(?report, "reconciler budget ran out; the next run continues");
    } else {
        info!(?report, "reconciler run done");
    }
    if report.errors > 0 {
        error!(errors = report.errors, "reconciler run had errors");
        return Err(ReconcilerError::Incomplete {
            errors: report.errors,
            report: Box::new(report),
        });
    }
    Ok(report)
}
