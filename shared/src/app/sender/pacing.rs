//! Pacing (DESIGN §5 "Throughput", docs/pacing.md): Meta's throughput per phone number
//! (130429) and its pair rate per recipient (131056), kept *before* sending by every
//! sender instance together.
//!
//! Before a record's message is claimed, [`before_claim`] reserves two slots in the
//! shared [`PacingLedger`](crate::ports::PacingLedger): the recipient's (the pair rule:
//! one message per 6 s on average, bursts of up to 45 in 6 s borrowed from future
//! quota) and then the number's (even spacing at the tenant's `throughput_mps`). The
//! ledger is one store for every instance (DynamoDB on Lambda, the SQLite file in
//! `wa dev`), so four senders or forty share one schedule per number and per pair.
//!
//! A slot within the policy's wait is waited for in the invocation. A later one is not:
//! the record goes back on the queue as a delayed copy and is deleted, unclaimed, so the
//! wait spends neither an attempt (only a claim does) nor a receive (the DLQ counts
//! those), and the sender's concurrency serves other recipients meanwhile.
//!
//! After the Graph call, [`throttled`]: a 131056 holds only that pair (no slot for a
//! few intervals, its burst ended), so other recipients go on at full rate; a 130429
//! (or another number-wide throttle) pauses the number and runs it slower for a while,
//! for every instance, because the hold is written to the ledger.

use super::record::Again;
use crate::app::SenderDeps;
use crate::app::errors::ErrorChain;
use crate::domain::lifecycle::Guard;
use crate::domain::pacing::{PaceKey, PaceRule};
use crate::domain::tenant::TenantProfile;
use crate::domain::{PhoneNumber, PhoneNumberId, Timestamp};
use crate::ports::queue::MAX_DELAY;
use crate::ports::{QueueRef, ReceiptHandle, Reservation};
use crate::queues::SendQueueMessage;
use aws_lambda_events::sqs::SqsMessage;
use std::time::Duration;
use tracing::{error, info, warn};

/// Meta's pair rate: one message to one recipient every 6 s on average.
pub const PAIR_INTERVAL: Duration = Duration::from_secs(6);
/// Meta's pair rate: bursts of up to 45 messages...
pub const PAIR_BURST: u32 = 45;
/// ...within 6 s of the burst's first message.
pub const PAIR_WINDOW: Duration = Duration::from_secs(6);

/// Meta's code for a send over the pair rate limit.
pub const PAIR_RATE_HIT: i64 = 131056;
/// Meta's per-user marketing cap: the message waits 24 h on its own, other messages to
/// the recipient are not limited, so nothing is paced.
pub const PER_USER_MARKETING_CAP: i64 = 131049;

/// How the sender paces sends (part of [`super::SenderSettings`]). The default is
/// Meta's documented limits with small margins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingPolicy {
    /// One message per this to one recipient on average (Meta: 6 s).
    pub pair_interval: Duration,
    /// Messages a burst to one recipient may hold (Meta: 45).
    pub pair_burst: u32,
    /// A burst's messages go within this of its first (Meta: 6 s).
    pub pair_window: Duration,
    /// Margin for Meta seeing a send later than its slot: taken off every burst
    /// window, added to every rest (default 500 ms).
    pub pair_guard: Duration,
    /// Longest wait for a recipient's slot inside an invocation (default 2 s); a later
    /// slot defers the record, unclaimed.
    pub max_pair_wait: Duration,
    /// Longest wait for the number's slot inside an invocation (default 5 s).
    pub max_number_wait: Duration,
    /// After a 131056, no message to that recipient for this long (default 12 s).
    pub pair_penalty: Duration,
    /// After a 130429, no message from the number for this long (default 1 s)...
    pub throttle_pause: Duration,
    /// ...then this long (default 60 s)...
    pub throttle_slowdown: Duration,
    /// ...at its throughput divided by this (default 4).
    pub throttle_divisor: u32,
}

impl Default for PacingPolicy {
    fn default() -> Self {
        Self {
            pair_interval: PAIR_INTERVAL,
            pair_burst: PAIR_BURST,
            pair_window: PAIR_WINDOW,
            pair_guard: Duration::from_millis(500),
            max_pair_wait: Duration::from_secs(2),
            max_number_wait: Duration::from_secs(5),
            pair_penalty: 2 * PAIR_INTERVAL,
            throttle_pause: Duration::from_secs(1),
            throttle_slowdown: Duration::from_secs(60),
            throttle_divisor: 4,
        }
    }
}

impl PacingPolicy {
    /// The rule of one number to one recipient.
    pub fn pair_rule(&self) -> PaceRule {
        PaceRule::bursts(
            self.pair_interval,
            self.pair_burst,
            self.pair_window,
            self.pair_guard,
        )
    }

    /// The rule of a number sending `throughput_mps` messages a second.
    pub fn number_rule(&self, throughput_mps: u32) -> PaceRule {
        PaceRule::per_second(throughput_mps, self.throttle_divisor)
    }
}

/// What pacing decided before the claim.
pub(super) enum BeforeClaim {
    /// The slots are reserved and reached: claim and send now.
    Claim,
    /// Do not claim; the record is done with (deferred as a delayed copy) or comes back.
    Skip(Again),
}

/// Reserve the recipient's and then the number's slot for the message `reference`
/// names, and wait for them; or defer the record when one is too far away.
pub(super) async fn before_claim(
    deps: &SenderDeps,
    record: &SqsMessage,
    reference: &SendQueueMessage,
) -> BeforeClaim {
    let profile = match deps.ports.directory.tenant(&reference.tenant).await {
        Ok(Some(profile)) => profile,
        // The claim's path fails a message whose tenant is gone.
        Ok(None) => return BeforeClaim::Claim,
        Err(e) => {
            error!(error = %ErrorChain(&e), "tenant unreadable before the claim");
            return BeforeClaim::Skip(Again::Yes);
        }
    };
    // A read, not the claim: a message that has to wait must not spend an attempt.
    let now = deps.ports.clock.now();
    let message = match deps.ports.store.get(&reference.tenant, &reference.id).await {
        Ok(Some(m)) if (Guard::Claimable { now }).holds(&m) => m,
        // Absent, held by another sender, or settled: the claim drops the record, and
        // nothing is sent, so nothing is paced.
        Ok(_) => return BeforeClaim::Claim,
        Err(e) => {
            error!(error = %ErrorChain(&e), "message unreadable before the claim");
            return BeforeClaim::Skip(Again::Yes);
        }
    };
    let policy = &deps.settings.pacing;
    // The number it goes out from: the one the caller chose, when still the tenant's
    // (the sender refuses the send otherwise, after the claim).
    let from = message.requested_from();
    let number = profile
        .sending_number(from.as_ref())
        .unwrap_or(&profile.phone_number_id);
    let pair = PaceKey::Pair(number.clone(), message.to.clone());
    let pair_slot = match take_slot(deps, &pair, &policy.pair_rule(), policy.max_pair_wait).await {
        Slot::At(slot) => slot,
        Slot::Later(ready_at) => {
            let wait = policy.max_pair_wait;
            let again = defer(deps, record, &profile, ready_at, wait, "recipient").await;
            return BeforeClaim::Skip(again);
        }
    };
    let number_key = PaceKey::Number(number.clone());
    let number_rule = policy.number_rule(profile.throughput_mps);
    let number_slot = match take_slot(deps, &number_key, &number_rule, policy.max_number_wait).await
    {
        Slot::At(slot) => slot,
        Slot::Later(ready_at) => {
            let wait = policy.max_number_wait;
            let again = defer(deps, record, &profile, ready_at, wait, "number").await;
            return BeforeClaim::Skip(again);
        }
    };
    let wait_ms = pair_slot
        .max(number_slot)
        .millis_since(deps.ports.clock.now());
    if wait_ms > 0 {
        tokio::time::sleep(Duration::from_millis(wait_ms.unsigned_abs())).await;
    }
    BeforeClaim::Claim
}

/// Meta throttled a send of `profile`'s `number` to `to` (class `Throttled`, `code`):
/// hold the pair (131056) or the number (the others) in the ledger, for every sender.
pub(super) async fn throttled(
    deps: &SenderDeps,
    profile: &TenantProfile,
    number: &PhoneNumberId,
    to: &PhoneNumber,
    code: Option<i64>,
) {
    let policy = &deps.settings.pacing;
    let now = deps.ports.clock.now();
    let number = number.clone();
    let (held, key, rule, until, slow_until) = match code {
        Some(PER_USER_MARKETING_CAP) => return,
        Some(PAIR_RATE_HIT) => (
            "recipient",
            PaceKey::Pair(number, to.clone()),
            policy.pair_rule(),
            after(now, policy.pair_penalty),
            None,
        ),
        _ => (
            "number",
            PaceKey::Number(number),
            policy.number_rule(profile.throughput_mps),
            after(now, policy.throttle_pause),
            Some(after(now, policy.throttle_slowdown)),
        ),
    };
    match deps.pacing.hold(&key, &rule, until, slow_until).await {
        Ok(()) => info!(held, ?code, "throttled: held in the pacing ledger"),
        Err(e) => {
            warn!(held, ?code, error = %ErrorChain(&e), "throttled, but the hold was not recorded")
        }
    }
}

/// A reserved slot, or when the first one is.
enum Slot {
    /// Reserved (or, with the ledger unreachable, now: sends go unpaced).
    At(Timestamp),
    /// Beyond the wait; nothing reserved.
    Later(Timestamp),
}

async fn take_slot(deps: &SenderDeps, key: &PaceKey, rule: &PaceRule, horizon: Duration) -> Slot {
    let now = deps.ports.clock.now();
    match deps.pacing.reserve(key, rule, now, horizon).await {
        Ok(Reservation::Reserved { slot }) => Slot::At(slot),
        Ok(Reservation::Deferred { ready_at }) => Slot::Later(ready_at),
        Err(e) => {
            // Like intake's quotas: an unreachable ledger must not stop sending. Meta's
            // own limits still hold (130429 and 131056 are retried).
            error!(error = %ErrorChain(&e), "pacing ledger unavailable; sending unpaced");
            Slot::At(now)
        }
    }
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    t.plus_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long a deferred copy stays hidden: until the slot is within `horizon`, plus a
/// random part of `horizon` (`jitter` in `[0, 1)`), so copies deferred together come
/// back spread out; at most SQS's 15 minutes (a longer wait is deferred again).
pub(super) fn deferral_delay(
    now: Timestamp,
    ready_at: Timestamp,
    horizon: Duration,
    jitter: f64,
) -> Duration {
    let horizon_ms = i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX);
    let until_reachable = ready_at.millis_since(now).saturating_sub(horizon_ms).max(0);
    let spread = (horizon_ms as f64 * jitter.clamp(0.0, 1.0)) as i64;
    Duration::from_millis(until_reachable.saturating_add(spread).unsigned_abs()).min(MAX_DELAY)
}

/// Put a delayed copy of `record` on the tenant's queue and let the record be deleted
/// (`No`); if the copy cannot be sent, delay the record itself (`Yes`, one receive).
/// `waiting_for` names the slot that is too far away (`recipient`, `number`).
async fn defer(
    deps: &SenderDeps,
    record: &SqsMessage,
    profile: &TenantProfile,
    ready_at: Timestamp,
    horizon: Duration,
    waiting_for: &'static str,
) -> Again {
    let delay = deferral_delay(deps.ports.clock.now(), ready_at, horizon, jitter());
    let queue = QueueRef::new(profile.queue.clone());
    let body = record.body.as_deref().unwrap_or_default();
    match deps.ports.queue.send(&queue, body, delay).await {
        Ok(_) => {
            info!(
                waiting_for,
                delay_ms = delay.as_millis() as u64,
                "send slot too far away: a delayed copy waits on the queue, unclaimed"
            );
            Again::No
        }
        Err(e) => {
            warn!(waiting_for, error = %ErrorChain(&e), "could not queue a delayed copy; delaying the record");
            if let Some(receipt) = record.receipt_handle.as_deref().map(ReceiptHandle::new)
                && let Err(e) = deps
                    .ports
                    .queue
                    .change_visibility(&queue, &receipt, delay)
                    .await
            {
                warn!(error = %ErrorChain(&e), "could not delay the record either");
            }
            Again::Yes
        }
    }
}

/// A uniform draw from `[0, 1)`, from the OS-seeded generator behind ULIDs.
fn jitter() -> f64 {
    let bits = ulid::Ulid::generate().random() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_780_481_730_000);

    #[test]
    fn the_default_policy_is_metas_pair_rate_and_a_numbers_throughput() {
        let policy = PacingPolicy::default();
        let pair = policy.pair_rule();
        assert_eq!(pair.burst(), 45);
        assert_eq!(pair.interval_us(false), 6_000_000);
        let number = policy.number_rule(80);
        assert_eq!((number.burst(), number.interval_us(false)), (1, 12_500));
        assert_eq!(number.interval_us(true), 50_000);
    }

    #[test]
    fn a_deferred_copy_comes_back_when_its_slot_is_within_the_wait() {
        let wait = Duration::from_secs(2);
        let ready = NOW.plus_millis(10_000);
        assert_eq!(
            deferral_delay(NOW, ready, wait, 0.0),
            Duration::from_secs(8)
        );
        assert_eq!(
            deferral_delay(NOW, ready, wait, 0.5),
            Duration::from_secs(9)
        );
        // Already reachable: only the spread.
        assert_eq!(
            deferral_delay(NOW, NOW.plus_millis(500), wait, 0.25),
            Duration::from_millis(500)
        );
        // SQS hides a message for at most 15 minutes.
        let far = NOW.plus_millis(3_600_000);
        assert_eq!(deferral_delay(NOW, far, wait, 0.9), MAX_DELAY);
    }

    #[test]
    fn jitter_stays_in_the_unit_interval() {
        assert!((0..100).map(|_| jitter()).all(|j| (0.0..1.0).contains(&j)));
    }
}
