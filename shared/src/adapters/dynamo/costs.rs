//! `DynamoCostLedger`: the [`CostLedger`] port on the `quotas` table
//! (docs/data-model.md): counters with a TTL, beside intake's quotas and the pacing
//! schedules.
//!
//! - `pk = "costseen#{tenant}#{message_id}#{category}"`: the marker of one message
//!   counted in one category (`day`, `expires_at` [`MARKER_KEEP_SECS`] after the day).
//! - `pk = "cost#{tenant}#{YYYY-MM-DD}"`: the tenant's day, one number attribute per
//!   counter, named `n#{category}#{b|f}#{calling code}` (`b` billable, `f` free);
//!   `tenant`, `day`, `expires_at` [`COUNTER_KEEP_SECS`] after the day.
//!
//! Counting is one `TransactWriteItems`: a `Put` of the marker on the condition
//! `attribute_not_exists(pk)` and an `Update` `ADD` of one to the counter. A
//! cancellation whose first reason is `ConditionalCheckFailed` means the message was
//! counted already: nothing changed. A conflict with a concurrent transaction on the
//! day's item (statuses of one body are applied 16 at a time) is tried again after a
//! short, growing pause. Reading a period is one `BatchGetItem` per 100 days.

use super::batch_get::batch_get_by_pk;
use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::TenantId;
use crate::domain::costs::{CallingCode, CostCount, PricedStatus, parse_category};
use crate::domain::quota::UtcDay;
use crate::ports::costs::period_days;
use crate::ports::{CostLedger, CostLedgerError};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use std::collections::HashMap;
use std::time::Duration;

/// How long a marker is kept after its day: past the webhook inbox's 14 days of
/// retention and Meta's 7 days of retries, so a replayed status still finds it.
pub const MARKER_KEEP_SECS: i64 = 35 * 86_400;
/// How long a day's counters are kept after the day (13 months, for year-on-year).
pub const COUNTER_KEEP_SECS: i64 = 400 * 86_400;
/// Transactions tried when they keep conflicting with concurrent ones.
const ATTEMPTS: u32 = 8;

/// The DynamoDB [`CostLedger`].
#[derive(Debug)]
pub struct DynamoCostLedger {
    client: Client,
    table: String,
    calls: CallCounter,
}

fn backend(
    operation: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> CostLedgerError {
    CostLedgerError::Backend {
        operation,
        source: e.into(),
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The key of the marker of one message counted in one category.
pub fn marker_key(status: &PricedStatus) -> String {
    format!(
        "costseen#{}#{}#{}",
        status.tenant, status.message_id, status.category
    )
}

/// The key of a tenant's day of counters.
pub fn day_key(tenant: &TenantId, day: UtcDay) -> String {
    format!("cost#{tenant}#{}", day.key())
}

/// The attribute of one counter of a day's item.
pub fn counter_attribute(category: &str, billable: bool, code: &CallingCode) -> String {
    let kind = if billable { "b" } else { "f" };
    format!("n#{category}#{kind}#{}", code.as_str())
}

/// The counter an attribute name holds, if it is one.
fn parse_counter(name: &str) -> Result<Option<(String, bool, CallingCode)>, CostLedgerError> {
    let Some(rest) = name.strip_prefix("n#") else {
        return Ok(None);
    };
    let corrupt = || CostLedgerError::Corrupt(format!("counter attribute {name:?}"));
    let mut parts = rest.split('#');
    let (Some(category), Some(kind), Some(code), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt());
    };
    let billable = match kind {
        "b" => true,
        "f" => false,
        _ => return Err(corrupt()),
    };
    let category = parse_category(category).map_err(|_| corrupt())?;
    let code = CallingCode::parse(code).map_err(|_| corrupt())?;
    Ok(Some((category, billable, code)))
}

/// The counters of one day's item.
fn counts_of(
    day: UtcDay,
    item: &HashMap<String, AttributeValue>,
) -> Result<Vec<CostCount>, CostLedgerError> {
    let mut out = Vec::new();
    for (name, value) in item {
        let Some((category, billable, calling_code)) = parse_counter(name)? else {
            continue;
        };
        let messages = match value {
            AttributeValue::N(text) => text.parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| CostLedgerError::Corrupt(format!("counter {name:?} is not a count")))?;
        if messages > 0 {
            out.push(CostCount {
                day,
                category,
                billable,
                calling_code,
                messages,
            });
        }
    }
    Ok(out)
}

/// What a cancelled transaction says.
enum Cancelled {
    /// The marker exists: counted already.
    Counted,
    /// Another transaction held one of the items: try again.
    Conflict,
}

fn cancelled<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Cancelled> {
    let Some(TransactWriteItemsError::TransactionCanceledException(c)) = err.as_service_error()
    else {
        return match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                Some(Cancelled::Conflict)
            }
            _ => None,
        };
    };
    let codes: Vec<&str> = c
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("None"))
        .collect();
    if codes.first() == Some(&"ConditionalCheckFailed") {
        Some(Cancelled::Counted)
    } else if codes.contains(&"TransactionConflict") {
        Some(Cancelled::Conflict)
    } else {
        None
    }
}

impl DynamoCostLedger {
    /// A ledger on `table` (the stage's `quotas` table), with a client built from
    /// `config` (once per process).
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

    fn transaction(&self, s: &PricedStatus) -> Result<[TransactWriteItem; 2], CostLedgerError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| backend("TransactWriteItems", e);
        let end_secs = s.day.end().as_secs();
        let marker = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(marker_key(s)))
            .item("day", AttributeValue::S(s.day.key()))
            .item("expires_at", n(end_secs + MARKER_KEEP_SECS))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        let counter = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(day_key(&s.tenant, s.day)))
            .update_expression("ADD #c :one SET #tenant = :tenant, #day = :day, #exp = :exp")
            .expression_attribute_names(
                "#c",
                counter_attribute(&s.category, s.billable, &s.calling_code),
            )
            .expression_attribute_names("#tenant", "tenant")
            .expression_attribute_names("#day", "day")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":tenant", AttributeValue::S(s.tenant.to_string()))
            .expression_attribute_values(":day", AttributeValue::S(s.day.key()))
            .expression_attribute_values(":exp", n(end_secs + COUNTER_KEEP_SECS))
            .build()
            .map_err(build)?;
        Ok([
            TransactWriteItem::builder().put(marker).build(),
            TransactWriteItem::builder().update(counter).build(),
        ])
    }
}

#[async_trait]
impl CostLedger for DynamoCostLedger {
    async fn record_pricing(&self, status: &PricedStatus) -> Result<bool, CostLedgerError> {
        let [marker, counter] = self.transaction(status)?;
        for attempt in 1..=ATTEMPTS {
            self.calls.record("TransactWriteItems");
            let sent = self
                .client
                .transact_write_items()
                .transact_items(marker.clone())
                .transact_items(counter.clone())
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(true),
                Err(err) => err,
            };
            match cancelled(&err) {
                Some(Cancelled::Counted) => return Ok(false),
                Some(Cancelled::Conflict) if attempt < ATTEMPTS => {
                    // 10, 20, 40... ms plus a little spread, so the losers do not
                    // collide again in step (the clock's nanoseconds differ per caller;
                    // every message id has the same length, so it cannot spread them).
                    let spread = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::from(d.subsec_nanos() % 10));
                    let pause = 10u64 << (attempt - 1).min(5);
                    tokio::time::sleep(Duration::from_millis(pause + spread)).await;
                }
                _ => return Err(backend("TransactWriteItems", err)),
            }
        }
        Err(CostLedgerError::Backend {
            operation: "TransactWriteItems",
            source: format!("conflicting transactions after {ATTEMPTS} attempts").into(),
        })
    }

    async fn cost_totals(
        &self,
        tenant: &TenantId,
        since: UtcDay,
        until: UtcDay,
    ) -> Result<Vec<CostCount>, CostLedgerError> {
        let days = period_days(since, until)?;
        let by_key: HashMap<String, UtcDay> =
            days.iter().map(|&d| (day_key(tenant, d), d)).collect();
        let pks: Vec<String> = by_key.keys().cloned().collect();
        let read = batch_get_by_pk(&self.client, &self.table, &pks, &self.calls)
            .await
            .map_err(|e| backend("BatchGetItem", e))?;
        let mut out = Vec::new();
        for item in &read.items {
            let day = match item.get("pk") {
                Some(AttributeValue::S(pk)) => by_key.get(pk).copied(),
                _ => None,
            }
            .ok_or_else(|| CostLedgerError::Corrupt("an item of another key".into()))?;
            out.extend(counts_of(day, item)?);
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageId;
    use crate::domain::costs::parse_day;

    #[test]
    fn keys_and_counters_name_the_tenant_day_category_and_code() {
        let day = parse_day("2026-06-03").unwrap();
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(day_key(&acme, day), "cost#acme#2026-06-03");
        let s = PricedStatus {
            tenant: acme,
            message_id: MessageId::parse("msg_01J0000000000000000000000A")
                .unwrap_or_else(|_| MessageId::generate()),
            day,
            category: "utility".into(),
            billable: true,
            calling_code: CallingCode::parse("44").unwrap(),
        };
        assert!(marker_key(&s).starts_with("costseen#acme#"));
        assert!(marker_key(&s).ends_with("#utility"));
        let name = counter_attribute("utility", true, &s.calling_code);
        assert_eq!(name, "n#utility#b#44");
        assert_eq!(
            parse_counter(&name).unwrap(),
            Some(("utility".into(), true, CallingCode::parse("44").unwrap()))
        );
        assert_eq!(parse_counter("tenant").unwrap(), None);
        assert!(parse_counter("n#utility#x#44").is_err());
        assert!(parse_counter("n#utility#b").is_err());
    }

    #[test]
    fn a_days_item_reads_as_its_non_zero_counters() {
        let day = parse_day("2026-06-03").unwrap();
        let item = HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S("cost#acme#2026-06-03".into()),
            ),
            ("n#marketing#b#1415".to_owned(), n(3)),
            ("n#service#f#44".to_owned(), n(0)),
            ("expires_at".to_owned(), n(1)),
        ]);
        let counts = counts_of(day, &item).unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].messages, 3);
        assert_eq!(counts[0].calling_code.as_str(), "1415");
        let bad = HashMap::from([(
            "n#marketing#b#1415".to_owned(),
            AttributeValue::S("x".into()),
        )]);
        assert!(counts_of(day, &bad).is_err());
    }
}
