//! The cost model's inputs: capacity units DynamoDB reports per operation, and an
//! estimate of the write units a write costs from DynamoDB's published sizing rules.
//!
//! Both are needed: real DynamoDB reports the units of a successful write
//! (`ReturnConsumedCapacity = TOTAL`, table and indexes together), but moto reports
//! constants (1.0 per put, 0.5 per update whatever the item), and nobody reports
//! the units of a write whose condition failed (it still costs at least one).

use super::schema::{IndexProjection, TableSpec};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// Capacity units reported by DynamoDB, summed by operation name (`PutItem`, ...).
#[derive(Debug, Default)]
pub struct CapacityMeter {
    units: Mutex<BTreeMap<&'static str, f64>>,
}

impl CapacityMeter {
    /// A meter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add what one `operation` consumed (nothing when the answer carries no figure).
    pub fn record(&self, operation: &'static str, consumed: Option<&ConsumedCapacity>) {
        let Some(units) = consumed.and_then(ConsumedCapacity::capacity_units) else {
            return;
        };
        // A poisoned lock only means a panic elsewhere; the map is still valid.
        let mut map = self.units.lock().unwrap_or_else(PoisonError::into_inner);
        *map.entry(operation).or_insert(0.0) += units;
    }

    /// The sums so far, by operation name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, f64> {
        self.units
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The write units one write costs, by DynamoDB's sizing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteEstimate {
    /// Units of the table write: the larger of the item before and after, per KB.
    pub table: u64,
    /// Units of the index writes (a moved index key is a delete plus a put).
    pub indexes: u64,
}

impl WriteEstimate {
    /// Table and index units together.
    pub const fn total(self) -> u64 {
        self.table + self.indexes
    }
}

/// Bytes DynamoDB adds to every index entry.
const INDEX_ENTRY_OVERHEAD: usize = 100;
const WRITE_UNIT_BYTES: usize = 1024;

/// Write units of an item of `bytes` (at least one).
pub fn write_units(bytes: usize) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as u64
}

/// The size DynamoDB bills for `item`: attribute names plus values.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.max(1).div_ceil(2) + 1
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        // Containers: 3 bytes, plus 1 per element, plus the elements.
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// The write units of changing `old` into `new` (a put when `old` is `None`) in a
/// table of `spec`.
pub fn estimate_write(
    spec: &TableSpec,
    old: Option<&HashMap<String, AttributeValue>>,
    new: &HashMap<String, AttributeValue>,
) -> WriteEstimate {
    let new_size = item_size(new);
    let table = write_units(old.map_or(new_size, |o| item_size(o).max(new_size)));
    let mut indexes = 0;
    for index in spec.indexes {
        let key_names: Vec<&str> = [Some(spec.hash), spec.range, Some(index.hash), index.range]
            .into_iter()
            .flatten()
            .map(|a| a.name)
            .collect();
        let index_key = |item: &HashMap<String, AttributeValue>| {
            let hash = item.get(index.hash.name)?;
            let range = match index.range {
                Some(r) => Some(item.get(r.name)?),
                None => None,
            };
            Some((hash.clone(), range.cloned()))
        };
        let projected = |item: &HashMap<String, AttributeValue>| {
            INDEX_ENTRY_OVERHEAD
                + match index.projection {
                    IndexProjection::All => item_size(item),
                    IndexProjection::KeysOnly => item
                        .iter()
                        .filter(|(name, _)| key_names.contains(&name.as_str()))
                        .map(|(name, value)| name.len() + value_size(value))
                        .sum(),
                }
        };
        let before = old.and_then(|o| index_key(o).map(|k| (k, projected(o))));
        let after = index_key(new).map(|k| (k, projected(new)));
        indexes += match (before, after) {
            (None, None) => 0,
            (None, Some((_, size))) | (Some((_, size)), None) => write_units(size),
            (Some((old_key, old_size)), Some((new_key, new_size))) => {
                if old_key != new_key {
                    write_units(old_size) + write_units(new_size)
                } else if index.projection == IndexProjection::KeysOnly || old == Some(new) {
                    0
                } else {
                    write_units(old_size.max(new_size))
                }
            }
        };
    }
    WriteEstimate { table, indexes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::dynamo::schema::MESSAGES;

    fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn sizes_follow_the_published_rules() {
        assert_eq!(value_size(&AttributeValue::S("abc".into())), 3);
        // 1750000000000 has 3 significant digits: 2 bytes + 1.
        assert_eq!(value_size(&AttributeValue::N("1750000000000".into())), 3);
        assert_eq!(value_size(&AttributeValue::N("0".into())), 2);
        assert_eq!(value_size(&AttributeValue::Bool(true)), 1);
        let map = AttributeValue::M(item(&[("ab", AttributeValue::S("xyz".into()))]));
        assert_eq!(value_size(&map), 3 + 1 + 2 + 3);
        assert_eq!(
            item_size(&item(&[("pk", AttributeValue::S("a#b".into()))])),
            5
        );
    }

    #[test]
    fn units_round_up_per_kilobyte() {
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
    }

    #[test]
    fn moving_a_sparse_index_key_costs_a_delete_and_a_put() {
        let base = [
            ("pk", AttributeValue::S("acme#m".into())),
            ("tenant_shard", AttributeValue::S("acme#1".into())),
            ("created_at", AttributeValue::N("1".into())),
        ];
        let mut old = item(&base);
        old.insert("sweep_key".into(), AttributeValue::S("queued#1".into()));
        old.insert("sweep_at".into(), AttributeValue::N("5".into()));
        let mut new = old.clone();
        new.insert("sweep_key".into(), AttributeValue::S("sending#1".into()));
        // Table 1 + by_sweep delete and put 2; by_tenant is keys only and its key
        // stays, so nothing is written to it; no wamid.
        assert_eq!(
            estimate_write(&MESSAGES, Some(&old), &new),
            WriteEstimate {
                table: 1,
                indexes: 2
            }
        );
        let mut done = item(&base);
        done.insert("wamid".into(), AttributeValue::S("wamid.x".into()));
        // Leaves by_sweep (1), enters by_wamid (1).
        assert_eq!(estimate_write(&MESSAGES, Some(&old), &done).indexes, 2);
        // A put lands in every index whose key it has.
        assert_eq!(estimate_write(&MESSAGES, None, &old).indexes, 2);
    }

    #[test]
    fn the_meter_sums_reported_units_by_operation() {
        let meter = CapacityMeter::new();
        let one = ConsumedCapacity::builder().capacity_units(1.0).build();
        meter.record("PutItem", Some(&one));
        meter.record("PutItem", Some(&one));
        meter.record("UpdateItem", None);
        assert_eq!(meter.snapshot(), BTreeMap::from([("PutItem", 2.0)]));
    }
}
