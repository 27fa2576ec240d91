//! `DynamoPacingLedger`: the [`PacingLedger`] port on the `quotas` table
//! (docs/data-model.md, docs/pacing.md), beside intake's quota items.
//!
//! One item per key, `pk = "pace#number#{phone_number_id}"` or
//! `"pace#pair#{phone_number_id}#{recipient}"`, changed only by conditional
//! `UpdateItem`s: `rested_at_us`, `burst_start_us`, `burst_sends`, `slow_until_us`
//! (a [`PaceState`]) and `expires_at` (the table's TTL, an hour after the key went
//! idle; an absent key is an idle one).
//!
//! A reservation is a guess written under a condition that holds only when the guess
//! is right, so concurrent senders never need a lock and never take one slot twice:
//!
//! - a busy number (one-send bursts): `SET rested_at_us = rested_at_us + :step`, on
//!   the condition that the key is busy within the horizon. No read, and concurrent
//!   writers all succeed (DynamoDB orders the updates of one item): one write per send.
//! - an absent or rested key (most recipients): a new burst from now, on the
//!   condition that the key is still absent or rested.
//! - anything else (a recipient inside or after a burst): the state the domain decided
//!   from the item as read, on the condition that the item is unchanged.
//!
//! A failed condition returns the item (`ALL_OLD`); the domain's rule then defers the
//! send or says which write to try next. Each guess also states whether the key is
//! slowed, so a slowdown written by another sender applies at once.

use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::Timestamp;
use crate::domain::pacing::{
    PaceDecision, PaceKey, PaceRule, PaceState, PaceStep, micros_of, timestamp_at_or_after,
};
use crate::ports::{PacingError, PacingLedger, Reservation};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;
use std::time::Duration;

/// Rounds of conditional writes before [`PacingError::Contended`].
const ATTEMPTS: usize = 6;
/// How long an idle item is kept (it means the same as an absent one).
const IDLE_KEEP_SECS: i64 = 3600;

const NOT_SLOWED: &str = "(attribute_not_exists(#slow) OR #slow <= :now)";
const SLOWED: &str = "#slow > :now";

/// The DynamoDB [`PacingLedger`].
#[derive(Debug)]
pub struct DynamoPacingLedger {
    client: Client,
    table: String,
    calls: CallCounter,
}

fn backend(
    operation: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> PacingError {
    PacingError::Backend {
        operation,
        source: e.into(),
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match item.get(name)? {
        AttributeValue::N(text) => text.parse().ok(),
        _ => None,
    }
}

/// The item's key of `key`.
pub fn item_key(key: &PaceKey) -> String {
    format!("pace#{}", key.storage_key())
}

/// The state an item holds; `None` for an absent item (or one without a schedule).
fn state_of(item: Option<&HashMap<String, AttributeValue>>) -> Option<PaceState> {
    let item = item?;
    let rested_at_us = number(item, "rested_at_us")?;
    Some(PaceState {
        rested_at_us,
        burst_start_us: number(item, "burst_start_us").unwrap_or(rested_at_us),
        burst_sends: number(item, "burst_sends")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(1),
        slow_until_us: number(item, "slow_until_us"),
    })
}

/// `expires_at` (epoch seconds) of an item idle from `idle_from_us`.
fn expires(idle_from_us: i64) -> AttributeValue {
    n(idle_from_us.div_euclid(1_000_000) + 1 + IDLE_KEEP_SECS)
}

/// The next conditional write of a reservation.
#[derive(Debug, Clone, Copy)]
enum Guess {
    /// [`PaceStep::NextInLine`].
    NextInLine { slowed: bool },
    /// [`PaceStep::StartNow`].
    StartNow { slowed: bool },
    /// [`PaceStep::Swap`]: `next` if the item still holds `old`.
    Swap {
        old: PaceState,
        next: PaceState,
        slot_us: i64,
    },
}

/// What one conditional write did.
enum Written {
    /// The slot is taken.
    Slot(i64),
    /// The condition failed; the item as it was.
    Found(Option<PaceState>),
}

impl DynamoPacingLedger {
    /// A ledger on `table` (the `quotas` table), with a client built from `config`.
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            table: table.into(),
            calls: CallCounter::new(),
        }
    }

    /// AWS calls made so far, by operation (the cost tests count them).
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    fn update(&self, key: &PaceKey) -> UpdateItemFluentBuilder {
        self.calls.record("UpdateItem");
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(item_key(key)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// Send `request`; a failed condition is [`Written::Found`], success is `slot`
    /// (computed from the attributes written when `None` is not enough).
    async fn conditional(
        request: UpdateItemFluentBuilder,
        slot: impl FnOnce(Option<&HashMap<String, AttributeValue>>) -> Option<i64>,
    ) -> Result<Written, PacingError> {
        match request.send().await {
            Ok(out) => slot(out.attributes())
                .map(Written::Slot)
                .ok_or_else(|| backend("UpdateItem", "the update returned no schedule")),
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    Ok(Written::Found(state_of(failed.item.as_ref())))
                }
                other => Err(backend("UpdateItem", other)),
            },
        }
    }

    async fn write(
        &self,
        key: &PaceKey,
        rule: &PaceRule,
        guess: Guess,
        now_us: i64,
        horizon_us: i64,
    ) -> Result<Written, PacingError> {
        match guess {
            Guess::NextInLine { slowed } => {
                let step = rule.step_us(slowed);
                let latest_slot = now_us.saturating_add(horizon_us);
                let request = self
                    .update(key)
                    .update_expression("SET #rested = #rested + :step, #exp = :exp")
                    .condition_expression(format!(
                        "#rested > :now AND #rested <= :latest AND {}",
                        if slowed { SLOWED } else { NOT_SLOWED }
                    ))
                    .expression_attribute_names("#rested", "rested_at_us")
                    .expression_attribute_names("#exp", "expires_at")
                    .expression_attribute_names("#slow", "slow_until_us")
                    .expression_attribute_values(":step", n(step))
                    .expression_attribute_values(":now", n(now_us))
                    .expression_attribute_values(":latest", n(latest_slot))
                    .expression_attribute_values(":exp", expires(latest_slot.saturating_add(step)))
                    .return_values(ReturnValue::UpdatedNew);
                Self::conditional(request, |new| {
                    Some(number(new?, "rested_at_us")?.saturating_sub(step))
                })
                .await
            }
            Guess::StartNow { slowed } => {
                let rested = now_us.saturating_add(rule.step_us(slowed));
                let request = self
                    .update(key)
                    .update_expression(
                        "SET #rested = :rested, #start = :now, #sends = :one, #exp = :exp",
                    )
                    .condition_expression(format!(
                        "(attribute_not_exists(#rested) OR #rested <= :now) AND {}",
                        if slowed { SLOWED } else { NOT_SLOWED }
                    ))
                    .expression_attribute_names("#rested", "rested_at_us")
                    .expression_attribute_names("#start", "burst_start_us")
                    .expression_attribute_names("#sends", "burst_sends")
                    .expression_attribute_names("#slow", "slow_until_us")
                    .expression_attribute_names("#exp", "expires_at")
                    .expression_attribute_values(":rested", n(rested))
                    .expression_attribute_values(":now", n(now_us))
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":exp", expires(rested));
                Self::conditional(request, |_| Some(now_us)).await
            }
            Guess::Swap { old, next, slot_us } => {
                let request = self
                    .update(key)
                    .update_expression(
                        "SET #rested = :rested, #start = :start, #sends = :sends, #exp = :exp",
                    )
                    .condition_expression("#rested = :old_rested AND #sends = :old_sends")
                    .expression_attribute_names("#rested", "rested_at_us")
                    .expression_attribute_names("#exp", "expires_at")
                    .expression_attribute_names("#start", "burst_start_us")
                    .expression_attribute_names("#sends", "burst_sends")
                    .expression_attribute_values(":rested", n(next.rested_at_us))
                    .expression_attribute_values(":start", n(next.burst_start_us))
                    .expression_attribute_values(":sends", n(i64::from(next.burst_sends)))
                    .expression_attribute_values(":old_rested", n(old.rested_at_us))
                    .expression_attribute_values(":old_sends", n(i64::from(old.burst_sends)))
                    .expression_attribute_values(":exp", expires(next.idle_from_us()));
                Self::conditional(request, |_| Some(slot_us)).await
            }
        }
    }
}

#[async_trait]
impl PacingLedger for DynamoPacingLedger {
    async fn reserve(
        &self,
        key: &PaceKey,
        rule: &PaceRule,
        now: Timestamp,
        horizon: Duration,
    ) -> Result<Reservation, PacingError> {
        let now_us = micros_of(now);
        let horizon_us = i64::try_from(horizon.as_micros()).unwrap_or(i64::MAX);
        // Under load a number is busy; most recipients are absent or rested.
        let mut guess = if rule.burst() == 1 {
            Guess::NextInLine { slowed: false }
        } else {
            Guess::StartNow { slowed: false }
        };
        for _ in 0..ATTEMPTS {
            let found = match self.write(key, rule, guess, now_us, horizon_us).await? {
                Written::Slot(slot_us) => {
                    return Ok(Reservation::Reserved {
                        slot: timestamp_at_or_after(slot_us),
                    });
                }
                Written::Found(found) => found,
            };
            let (slot_us, next) = match rule.reserve(found.as_ref(), now_us, horizon_us) {
                PaceDecision::Defer { ready_us } => {
                    return Ok(Reservation::Deferred {
                        ready_at: timestamp_at_or_after(ready_us),
                    });
                }
                PaceDecision::Reserve { slot_us, next } => (slot_us, next),
            };
            let slowed = found
                .and_then(|s| s.slow_until_us)
                .is_some_and(|until| until > now_us);
            guess = match (rule.step_kind(found.as_ref(), now_us), found) {
                (PaceStep::StartNow, _) | (PaceStep::Swap, None) => Guess::StartNow { slowed },
                (PaceStep::NextInLine, _) => Guess::NextInLine { slowed },
                (PaceStep::Swap, Some(old)) => Guess::Swap { old, next, slot_us },
            };
        }
        Err(PacingError::Contended { attempts: ATTEMPTS })
    }

    async fn hold(
        &self,
        key: &PaceKey,
        rule: &PaceRule,
        until: Timestamp,
        slow_until: Option<Timestamp>,
    ) -> Result<(), PacingError> {
        let until_us = micros_of(until);
        let burst = n(i64::from(rule.burst()));
        let pushed = self
            .update(key)
            .update_expression(
                "SET #rested = :until, #start = if_not_exists(#start, :until), #sends = :burst, \
                 #exp = :exp",
            )
            .condition_expression("attribute_not_exists(#rested) OR #rested < :until")
            .expression_attribute_names("#rested", "rested_at_us")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_names("#start", "burst_start_us")
            .expression_attribute_names("#sends", "burst_sends")
            .expression_attribute_values(":until", n(until_us))
            .expression_attribute_values(":burst", burst.clone())
            .expression_attribute_values(":exp", expires(until_us));
        let pushed = Self::conditional(pushed, |_| Some(until_us)).await?;
        if matches!(pushed, Written::Found(_)) && rule.burst() > 1 {
            // Rested later than `until` already: only end the current burst.
            let ended = self
                .update(key)
                .update_expression("SET #sends = :burst")
                .condition_expression("attribute_exists(#rested)")
                .expression_attribute_names("#rested", "rested_at_us")
                .expression_attribute_names("#sends", "burst_sends")
                .expression_attribute_values(":burst", burst);
            Self::conditional(ended, |_| Some(until_us)).await?;
        }
        if let Some(slow_until) = slow_until {
            let slow_us = micros_of(slow_until);
            let slowed = self
                .update(key)
                .update_expression("SET #slow = :slow, #exp = :exp")
                .condition_expression("attribute_not_exists(#slow) OR #slow < :slow")
                .expression_attribute_names("#slow", "slow_until_us")
                .expression_attribute_names("#exp", "expires_at")
                .expression_attribute_values(":slow", n(slow_us))
                .expression_attribute_values(":exp", expires(slow_us.max(until_us)));
            Self::conditional(slowed, |_| Some(slow_us)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PhoneNumber, PhoneNumberId};

    #[test]
    fn items_are_named_apart_from_intakes_quota_items() {
        let number = PhoneNumberId::parse("106540352242922").unwrap();
        let to = PhoneNumber::parse("+14155550123").unwrap();
        assert_eq!(
            item_key(&PaceKey::Number(number.clone())),
            "pace#number#106540352242922"
        );
        assert_eq!(
            item_key(&PaceKey::Pair(number, to)),
            "pace#pair#106540352242922#+14155550123"
        );
    }

    #[test]
    fn a_state_is_read_only_from_an_item_with_a_schedule() {
        assert_eq!(state_of(None), None);
        let mut item = HashMap::from([("slow_until_us".to_owned(), n(9))]);
        assert_eq!(
            state_of(Some(&item)),
            None,
            "a slowdown alone is no schedule"
        );
        item.insert("rested_at_us".into(), n(42));
        assert_eq!(
            state_of(Some(&item)),
            Some(PaceState {
                rested_at_us: 42,
                burst_start_us: 42,
                burst_sends: 1,
                slow_until_us: Some(9),
            })
        );
        assert_eq!(expires(1_780_481_730_000_000), n(1_780_481_730 + 1 + 3600));
    }
}
