//! DynamoDB's item size and capacity rules, on items in the JSON wire format
//! (`{"S": ...}`, `{"N": ...}`, ...), as DynamoDB documents them ("Item sizes and
//! formats"; "Read/write capacity mode"): what a request is billed, computed from the
//! item, since moto reports a constant `ConsumedCapacity`.

use serde_json::{Map, Value};

/// The size in bytes DynamoDB bills an item (a map of attribute name to typed value).
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

/// The size of one typed value (`{"S": "abc"}` is 3).
pub fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner.as_str().map_or(0, base64_len),
        "BOOL" | "NULL" => 1,
        "SS" => each_str(inner, |s| s.len() as u64),
        "NS" => each_str(inner, number_size),
        "BS" => each_str(inner, base64_len),
        // A list or map: 3 bytes of overhead and 1 byte per element.
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |l| l.iter().map(|v| 1 + value_size(v)).sum())
        }
        "M" => {
            3 + inner.as_object().map_or(0, |m| {
                m.iter()
                    .map(|(k, v)| 1 + k.len() as u64 + value_size(v))
                    .sum()
            })
        }
        _ => 0,
    }
}

fn each_str(inner: &Value, size: impl Fn(&str) -> u64) -> u64 {
    inner
        .as_array()
        .map_or(0, |l| l.iter().filter_map(Value::as_str).map(&size).sum())
}

/// A number: 1 byte per two significant digits, plus 1.
fn number_size(text: &str) -> u64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1
}

/// The decoded length of standard base64 text.
fn base64_len(text: &str) -> u64 {
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count() as u64;
    (text.len() as u64 / 4) * 3 - padding.min(2)
}

/// Write request units of a write touching an item of `bytes` (1 per KB started, at
/// least 1); doubled inside a transaction.
pub fn write_units(bytes: u64, transactional: bool) -> f64 {
    let units = bytes.div_ceil(1024).max(1) as f64;
    if transactional { units * 2.0 } else { units }
}

/// Read request units of reading `bytes` (1 per 4 KB started, at least 1) when
/// strongly consistent, half when eventually consistent, doubled in a transaction.
pub fn read_units(bytes: u64, consistent: bool, transactional: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    match (consistent, transactional) {
        (_, true) => units * 2.0,
        (true, false) => units,
        (false, false) => units / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn strings_numbers_and_names_add_up() {
        // "pk" (2) + "abc" (3); "n" (1) + 12345 (3 digits-pairs + 1 = 4).
        assert_eq!(
            item_size(&item(json!({"pk": {"S": "abc"}, "n": {"N": "12345"}}))),
            10
        );
        // Leading and trailing zeros do not count.
        assert_eq!(value_size(&json!({"N": "1000"})), 2);
        assert_eq!(value_size(&json!({"BOOL": true})), 1);
        assert_eq!(value_size(&json!({"B": "AAEC"})), 3);
    }

    #[test]
    fn lists_and_maps_carry_their_overhead() {
        assert_eq!(value_size(&json!({"L": []})), 3);
        // 3 + (1 + 1) + (1 + 2)
        assert_eq!(value_size(&json!({"L": [{"S": "a"}, {"S": "bc"}]})), 8);
        // 3 + (1 + "k" 1 + "v" 1)
        assert_eq!(value_size(&json!({"M": {"k": {"S": "v"}}})), 6);
    }

    #[test]
    fn units_round_up_per_started_block() {
        assert_eq!(write_units(0, false), 1.0);
        assert_eq!(write_units(1024, false), 1.0);
        assert_eq!(write_units(1025, false), 2.0);
        assert_eq!(write_units(1025, true), 4.0);
        assert_eq!(read_units(4097, true, false), 2.0);
        assert_eq!(read_units(100, false, false), 0.5);
        assert_eq!(read_units(100, false, true), 2.0);
    }
}
