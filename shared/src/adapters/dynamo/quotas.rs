//! `DynamoQuotaLedger`: the [`QuotaLedger`] port on the `quotas` table
//! (docs/data-model.md, docs/quotas.md).
//!
//! Two items per tenant, each changed only by conditional `UpdateItem`s, so every
//! intake instance sees one bucket and one count:
//!
//! - `pk = "rate#{tenant}"`: `tat_us`, the theoretical arrival time of the rate rule.
//!   A busy bucket is taken with `SET tat_us = tat_us + :interval` on the condition
//!   that it is ahead of now but within the burst (no read, and concurrent writers
//!   all succeed while there is room); an idle one (absent, or behind now) is restarted
//!   from now on the condition that it still is idle. A failed condition returns the
//!   item (`ALL_OLD`), from which the domain rule either refuses with `Retry-After` or
//!   says which write to try next. Usually one write; two when the bucket was idle.
//! - `pk = "day#{tenant}#{YYYY-MM-DD}"`: `messages`, the day's count, raised with
//!   `ADD` on the condition that it is under the limit.
//!
//! Items carry `expires_at` (epoch seconds, the table's TTL): a bucket an hour after
//! it went idle (an absent bucket is an idle one), a day two days after it ended.

use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::quota::{IntakeQuota, RateDecision, UtcDay, micros};
use crate::domain::{TenantId, Timestamp};
use crate::ports::{Admission, QuotaError, QuotaLedger};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

/// Rounds of conditional writes before [`QuotaError::Contended`].
const ATTEMPTS: usize = 4;
/// How long an idle bucket is kept (it means the same as an absent one).
const BUCKET_KEEP_SECS: i64 = 3600;
/// How long a day's count is kept after the day ended (for operators).
const DAY_KEEP_SECS: i64 = 2 * 86_400;

/// The DynamoDB [`QuotaLedger`].
#[derive(Debug)]
pub struct DynamoQuotaLedger {
    client: Client,
    table: String,
    calls: CallCounter,
}

fn backend(
    operation: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> QuotaError {
    QuotaError::Backend {
        operation,
        source: e.into(),
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn number(item: Option<&HashMap<String, AttributeValue>>, name: &str) -> Option<i64> {
    match item?.get(name)? {
        AttributeValue::N(text) => text.parse().ok(),
        _ => None,
    }
}

/// The key of a tenant's rate bucket.
pub fn rate_key(tenant: &TenantId) -> String {
    format!("rate#{tenant}")
}

/// The key of a tenant's count of one day.
pub fn day_key(tenant: &TenantId, day: UtcDay) -> String {
    format!("day#{tenant}#{}", day.key())
}

/// What one conditional write of the bucket did.
enum Step {
    /// Written: the request is admitted.
    Taken,
    /// The condition failed; the bucket's `tat_us` as it was (`None`: absent).
    Found(Option<i64>),
}

impl DynamoQuotaLedger {
    /// A ledger on `table`, with a client built from `config` (once per process).
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

    /// One conditional update of the bucket of `tenant`.
    async fn bucket_write(
        &self,
        tenant: &TenantId,
        update: &str,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<Step, QuotaError> {
        self.calls.record("UpdateItem");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(rate_key(tenant)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#tat", "tat_us")
            .expression_attribute_names("#exp", "expires_at")
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Step::Taken),
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    Ok(Step::Found(number(failed.item.as_ref(), "tat_us")))
                }
                other => Err(backend("UpdateItem", other)),
            },
        }
    }
}

#[async_trait]
impl QuotaLedger for DynamoQuotaLedger {
    async fn take_request(
        &self,
        tenant: &TenantId,
        quota: &IntakeQuota,
        now: Timestamp,
    ) -> Result<Admission, QuotaError> {
        let rate = quota.rate();
        let now_us = micros(now);
        let limit = rate.admits_up_to(now_us);
        let expires = |tat_us: i64| n(tat_us / 1_000_000 + BUCKET_KEEP_SECS);
        // Busy first: under load (when it matters) that is the one write it takes.
        let mut busy = true;
        for _ in 0..ATTEMPTS {
            let step = if busy {
                let values = HashMap::from([
                    (":interval".to_owned(), n(rate.interval_us())),
                    (":now".to_owned(), n(now_us)),
                    (":limit".to_owned(), n(limit)),
                    (":exp".to_owned(), expires(limit + rate.interval_us())),
                ]);
                self.bucket_write(
                    tenant,
                    "SET #tat = #tat + :interval, #exp = :exp",
                    "#tat > :now AND #tat <= :limit",
                    values,
                )
                .await?
            } else {
                let next = now_us + rate.interval_us();
                let values = HashMap::from([
                    (":next".to_owned(), n(next)),
                    (":now".to_owned(), n(now_us)),
                    (":exp".to_owned(), expires(next)),
                ]);
                self.bucket_write(
                    tenant,
                    "SET #tat = :next, #exp = :exp",
                    "attribute_not_exists(#tat) OR #tat <= :now",
                    values,
                )
                .await?
            };
            let found = match step {
                Step::Taken => return Ok(Admission::Admitted),
                Step::Found(found) => found,
            };
            match rate.decide(found, now_us) {
                RateDecision::Refuse { retry_after } => {
                    return Ok(Admission::Refused { retry_after });
                }
                // Admissible: idle (absent or behind now) takes the restart, else the
                // bucket moved between our writes and the busy write fits again.
                RateDecision::Admit { .. } => busy = found.is_some_and(|tat| tat > now_us),
            }
        }
        Err(QuotaError::Contended { attempts: ATTEMPTS })
    }

    async fn reserve_message(
        &self,
        tenant: &TenantId,
        day: UtcDay,
        limit: u32,
    ) -> Result<bool, QuotaError> {
        self.calls.record("UpdateItem");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(day_key(tenant, day)))
            .update_expression("ADD #messages :one SET #exp = :exp")
            .condition_expression("attribute_not_exists(#messages) OR #messages < :limit")
            .expression_attribute_names("#messages", "messages")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(i64::from(limit)))
            .expression_attribute_values(":exp", n(day.end().as_secs() + DAY_KEEP_SECS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(false),
                other => Err(backend("UpdateItem", other)),
            },
        }
    }

    async fn release_message(&self, tenant: &TenantId, day: UtcDay) -> Result<(), QuotaError> {
        self.calls.record("UpdateItem");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(day_key(tenant, day)))
            .update_expression("ADD #messages :minus_one")
            .condition_expression("#messages > :zero")
            .expression_attribute_names("#messages", "messages")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                // Nothing counted that day: nothing to give back.
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(backend("UpdateItem", other)),
            },
        }
    }

    async fn messages_counted(&self, tenant: &TenantId, day: UtcDay) -> Result<u64, QuotaError> {
        self.calls.record("GetItem");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(day_key(tenant, day)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e.into_service_error()))?;
        let counted = number(out.item.as_ref(), "messages").unwrap_or(0);
        Ok(u64::try_from(counted).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_tenant_and_the_utc_day() {
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(rate_key(&acme), "rate#acme");
        let day = UtcDay::of(Timestamp::from_millis(1_780_481_730_000));
        assert_eq!(day_key(&acme, day), "day#acme#2026-06-03");
    }

    #[test]
    fn numbers_are_read_only_from_number_attributes() {
        let item = HashMap::from([
            ("tat_us".to_owned(), n(42)),
            ("pk".to_owned(), AttributeValue::S("rate#acme".into())),
        ]);
        assert_eq!(number(Some(&item), "tat_us"), Some(42));
        assert_eq!(number(Some(&item), "pk"), None);
        assert_eq!(number(Some(&item), "messages"), None);
        assert_eq!(number(None, "tat_us"), None);
    }
}
