//! The tenant's intake quota on `POST /v1/messages` (docs/quotas.md).
//!
//! - The **rate** (requests per second with a burst) is taken right after
//!   authentication, before the body is read: every send request counts, valid or
//!   not, replays included, and a refusal costs no parsing.
//! - The **day** (new messages per UTC day) is counted after validation and policy,
//!   just before the message is stored, so a 422 never uses it; when the store says
//!   the key was already used (a replay, a 409) the count is given back. A replay of
//!   a stored message is answered even when the day is full.
//!
//! A refusal is a 429 ([`ApiError::QuotaExceeded`]), logged with the tenant and
//! counted (`QuotaRefused`, by `Reason`). When the ledger itself fails the request
//! is let through, logged and counted (`QuotaCheckFailed`): a quota protects the
//! other tenants, it is not worth refusing sends over; the stage-wide API Gateway
//! throttle still bounds the total.

use crate::app::IntakeDeps;
use crate::app::errors::ErrorChain;
use crate::app::http::ApiError;
use crate::domain::Timestamp;
use crate::domain::quota::{QuotaRefusal, UtcDay, until_next_day};
use crate::domain::tenant::TenantProfile;
use crate::ports::{Admission, QuotaError};
use tracing::{error, info};

/// A message counted on the tenant's day, to give back if it was no new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DayCount {
    /// The tenant has no daily cap: nothing was counted.
    Uncapped,
    /// One message counted on this day.
    Counted(UtcDay),
}

/// Take one request from the tenant's rate; a 429 when over it.
pub(super) async fn take_request(
    deps: &IntakeDeps,
    tenant: &TenantProfile,
    now: Timestamp,
) -> Result<(), ApiError> {
    let quota = &tenant.intake_quota;
    match deps.quotas.take_request(&tenant.id, quota, now).await {
        Ok(Admission::Admitted) => Ok(()),
        Ok(Admission::Refused { retry_after }) => Err(refuse(
            deps,
            tenant,
            QuotaRefusal::RateLimited {
                requests_per_second: quota.requests_per_second,
                burst: quota.burst,
                retry_after,
            },
        )),
        Err(e) => {
            let_through(deps, tenant, "take_request", &e);
            Ok(())
        }
    }
}

/// Count one new message on the tenant's day; the refusal when the day is full (the
/// caller answers a replay instead, or refuses with [`refuse`]).
pub(super) async fn count_message(
    deps: &IntakeDeps,
    tenant: &TenantProfile,
    now: Timestamp,
) -> Result<DayCount, QuotaRefusal> {
    let Some(limit) = tenant.intake_quota.messages_per_day else {
        return Ok(DayCount::Uncapped);
    };
    let day = UtcDay::of(now);
    match deps.quotas.reserve_message(&tenant.id, day, limit).await {
        Ok(true) => Ok(DayCount::Counted(day)),
        Ok(false) => Err(QuotaRefusal::DailyQuotaExceeded {
            messages_per_day: limit,
            retry_after: until_next_day(now),
        }),
        Err(e) => {
            let_through(deps, tenant, "reserve_message", &e);
            Ok(DayCount::Uncapped)
        }
    }
}

/// Give back a message counted by [`count_message`]: the request stored nothing new.
pub(super) async fn give_back(deps: &IntakeDeps, tenant: &TenantProfile, count: DayCount) {
    let DayCount::Counted(day) = count else {
        return;
    };
    if let Err(e) = deps.quotas.release_message(&tenant.id, day).await {
        // The day keeps one message too many: the safe side of a quota.
        error!(error = %ErrorChain(&e), %day, "could not give back a counted message");
    }
}

/// Log and count a refusal; the 429 to answer.
pub(super) fn refuse(deps: &IntakeDeps, tenant: &TenantProfile, refusal: QuotaRefusal) -> ApiError {
    info!(
        code = refusal.code(),
        retry_after_ms = u64::try_from(refusal.retry_after().as_millis()).unwrap_or(u64::MAX),
        requests_per_second = tenant.intake_quota.requests_per_second,
        burst = tenant.intake_quota.burst,
        messages_per_day = tenant.intake_quota.messages_per_day,
        "refused: over the tenant's intake quota"
    );
    deps.ports.metrics.count(
        "QuotaRefused",
        &[("Tenant", tenant.id.as_str()), ("Reason", refusal.code())],
    );
    ApiError::QuotaExceeded(refusal)
}

fn let_through(deps: &IntakeDeps, tenant: &TenantProfile, operation: &'static str, e: &QuotaError) {
    error!(
        operation,
        error = %ErrorChain(e),
        "quota ledger failed; the request is let through"
    );
    deps.ports
        .metrics
        .count("QuotaCheckFailed", &[("Tenant", tenant.id.as_str())]);
}
