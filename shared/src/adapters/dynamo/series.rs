//! `DynamoTrafficSeries`: the [`TrafficSeries`] port on the `quotas` table
//! (docs/data-model.md).
//!
//! One item per tenant and UTC hour, `pk = "series#{tenant}#{hour}"` (`hour`: hours
//! since the epoch), holding one number attribute per minute and metric,
//! `"{MM}|{metric key}"` (`MM` the minute in the hour, `00`-`59`), raised with `ADD`,
//! and `expires_at` (the table's TTL) two days after the hour ended. A `record` is
//! one `UpdateItem` per tenant-hour it touches (one per transition), so concurrent
//! writers never lose a count; a day's read is one `BatchGetItem` of 25 items.

use super::batch_get::batch_get_by_pk;
use crate::adapters::aws::{CallCounter, SdkConfig};
use crate::domain::TenantId;
use crate::domain::series::{KEEP_MINUTES, Minute, SeriesMetric, SeriesPoint};
use crate::ports::series::{check_range, step_start};
use crate::ports::{SeriesError, TrafficSeries};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};

/// The DynamoDB [`TrafficSeries`].
#[derive(Debug)]
pub struct DynamoTrafficSeries {
    client: Client,
    table: String,
    calls: CallCounter,
}

fn backend(
    operation: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> SeriesError {
    SeriesError::Backend {
        operation,
        source: e.into(),
    }
}

/// The key of `tenant`'s item for the hour `hour` (hours since the epoch).
pub fn hour_key(tenant: &TenantId, hour: i64) -> String {
    format!("series#{tenant}#{hour}")
}

/// The attribute of `metric` in minute `minute` of its hour's item.
fn attribute(minute: Minute, metric: &SeriesMetric) -> String {
    format!("{:02}|{}", minute.index().rem_euclid(60), metric.key())
}

impl DynamoTrafficSeries {
    /// A series on `table` (the stage's `quotas` table), with a client built from
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
}

#[async_trait]
impl TrafficSeries for DynamoTrafficSeries {
    async fn record(&self, points: &[SeriesPoint]) -> Result<(), SeriesError> {
        // Summed per item and attribute: one UpdateItem per tenant-hour.
        let mut items: BTreeMap<(String, i64), BTreeMap<String, u64>> = BTreeMap::new();
        for p in points {
            let hour = p.minute.index().div_euclid(60);
            let slot = items
                .entry((p.tenant.as_str().to_owned(), hour))
                .or_default()
                .entry(attribute(p.minute, &p.metric))
                .or_default();
            *slot = slot.saturating_add(p.count);
        }
        for ((tenant, hour), counts) in items {
            let expires = (hour + 1).saturating_mul(3600) + KEEP_MINUTES * 60;
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(format!("series#{tenant}#{hour}")))
                .expression_attribute_names("#exp", "expires_at")
                .expression_attribute_values(":exp", AttributeValue::N(expires.to_string()));
            let mut adds = Vec::with_capacity(counts.len());
            for (i, (name, n)) in counts.into_iter().enumerate() {
                adds.push(format!("#a{i} :a{i}"));
                update = update
                    .expression_attribute_names(format!("#a{i}"), name)
                    .expression_attribute_values(
                        format!(":a{i}"),
                        AttributeValue::N(n.to_string()),
                    );
            }
            self.calls.record("UpdateItem");
            update
                .update_expression(format!("SET #exp = :exp ADD {}", adds.join(", ")))
                .send()
                .await
                .map_err(|e| backend("UpdateItem", e.into_service_error()))?;
        }
        Ok(())
    }

    async fn read(
        &self,
        tenant: &TenantId,
        from: Minute,
        until: Minute,
        step: i64,
    ) -> Result<Vec<SeriesPoint>, SeriesError> {
        check_range(from, until)?;
        let first = from.index().div_euclid(60);
        let last = (until.index() - 1).div_euclid(60);
        let by_key: HashMap<String, i64> =
            (first..=last).map(|h| (hour_key(tenant, h), h)).collect();
        let pks: Vec<String> = by_key.keys().cloned().collect();
        let read = batch_get_by_pk(&self.client, &self.table, &pks, &self.calls)
            .await
            .map_err(|e| backend("BatchGetItem", e))?;
        let mut out = Vec::new();
        for item in &read.items {
            let Some(hour) = (match item.get("pk") {
                Some(AttributeValue::S(pk)) => by_key.get(pk).copied(),
                _ => None,
            }) else {
                continue;
            };
            out.extend(points_of(tenant, hour, item, from, until));
        }
        // Summed per step, ordered by minute then key.
        let mut steps: BTreeMap<(Minute, String), SeriesPoint> = BTreeMap::new();
        for mut p in out {
            p.minute = step_start(from, p.minute, step);
            match steps.entry((p.minute, p.metric.key())) {
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    let sum = &mut e.get_mut().count;
                    *sum = sum.saturating_add(p.count);
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(p);
                }
            }
        }
        Ok(steps.into_values().collect())
    }
}

/// The non-zero counters of one hour's item within `from..until`; attributes not of
/// ours (`pk`, `expires_at`, unknown keys) are skipped.
fn points_of(
    tenant: &TenantId,
    hour: i64,
    item: &HashMap<String, AttributeValue>,
    from: Minute,
    until: Minute,
) -> Vec<SeriesPoint> {
    item.iter()
        .filter_map(|(name, value)| {
            let (mm, key) = name.split_once('|')?;
            let mm: i64 = mm.parse().ok().filter(|m| (0..60).contains(m))?;
            let minute = Minute::from_index(hour * 60 + mm);
            let count: u64 = match value {
                AttributeValue::N(n) => n.parse().ok()?,
                _ => return None,
            };
            (count > 0 && minute >= from && minute < until).then_some(SeriesPoint {
                tenant: tenant.clone(),
                minute,
                metric: SeriesMetric::parse(key)?,
                count,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_per_tenant_hour_and_attributes_per_minute_and_metric() {
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(hour_key(&acme, 494_578), "series#acme#494578");
        let m = Minute::from_index(494_578 * 60 + 7);
        assert_eq!(attribute(m, &SeriesMetric::Accepted), "07|accepted");
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(hour_key(&acme, 494_578))),
            ("expires_at".to_owned(), AttributeValue::N("1".into())),
            ("07|accepted".to_owned(), AttributeValue::N("3".into())),
            ("08|accepted".to_owned(), AttributeValue::N("0".into())),
            ("09|nonsense".to_owned(), AttributeValue::N("1".into())),
            ("61|accepted".to_owned(), AttributeValue::N("1".into())),
        ]);
        let points = points_of(&acme, 494_578, &item, m, m.plus(60));
        assert_eq!(
            points,
            vec![SeriesPoint {
                tenant: acme.clone(),
                minute: m,
                metric: SeriesMetric::Accepted,
                count: 3
            }]
        );
        assert!(points_of(&acme, 494_578, &item, m.plus(1), m.plus(60)).is_empty());
    }
}
