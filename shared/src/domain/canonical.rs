//! The canonical form of a request body, and its hash, for idempotency: the same
//! `Idempotency-Key` with the same body replays the stored message, with a different
//! body it is a 409 (DESIGN §4.4). "The same body" means the same JSON value, however
//! it was spelled.
//!
//! Canonical form (JCS-like, but simpler and ours, so do not compare it with RFC 8785
//! hashes from elsewhere):
//! - objects: keys sorted by their UTF-8 bytes, recursively. The workspace enables
//!   serde_json's `preserve_order`, so the sort is explicit here;
//! - arrays: order kept (it is meaningful);
//! - no whitespace between tokens;
//! - strings (keys and values): as serde_json escapes them, so `"é"` and `"\u00e9"`
//!   in the source are the same string;
//! - numbers compare by value: an integral number within the 64-bit range is written
//!   as an integer (`1`, `1.0`, `1e0` and `-0.0`/`0` hash alike), any other number in
//!   serde_json's shortest round-trip float form. A caller who re-encodes `1` as
//!   `1.0` is sending the same request; floats are compared at `f64` precision.
//!
//! The hash is the lowercase hex SHA-256 of the canonical form's UTF-8 bytes.

use serde_json::{Number, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Lowercase hex SHA-256 of [`canonical_json`]`(value)`: 64 characters.
pub fn canonical_request_hash(value: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(value).as_bytes()))
}

/// The canonical serialization of `value` (see the module docs).
///
/// Recursive: callers pass values parsed by serde_json, whose depth limit (128)
/// bounds the recursion.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            // Display of a leaf is its compact JSON, with serde_json's escaping.
            let _ = write!(out, "{value}");
        }
        Value::Number(n) => write_number(out, n),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(key.clone()));
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// 2^63 and 2^64 as `f64` (both exact): the bounds of an integral float that
/// converts to `i64`/`u64` without loss.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

fn write_number(out: &mut String, n: &Number) {
    let _ = match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(u), _, _) => write!(out, "{u}"),
        (None, Some(i), _) => write!(out, "{i}"),
        // In range, the casts are exact: the value is integral and representable.
        (None, None, Some(f)) if f.fract() == 0.0 && (-TWO_POW_63..0.0).contains(&f) => {
            write!(out, "{}", f as i64)
        }
        (None, None, Some(f)) if f.fract() == 0.0 && (0.0..TWO_POW_64).contains(&f) => {
            write!(out, "{}", f as u64)
        }
        _ => write!(out, "{n}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, json};
    use std::hash::{Hash, Hasher};

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn keys_are_sorted_recursively_and_whitespace_dropped() {
        let v = parsed(r#"{ "b" : 1, "a" : [ true, null, {"z": "x", "y": -2} ] }"#);
        assert_eq!(
            canonical_json(&v),
            r#"{"a":[true,null,{"y":-2,"z":"x"}],"b":1}"#
        );
    }

    #[test]
    fn the_hash_is_hex_sha256_of_the_canonical_form() {
        // echo -n '{"a":[true,null,{"y":-2,"z":"x"}],"b":1}' | sha256sum
        let v = parsed(r#"{"b":1,"a":[true,null,{"z":"x","y":-2}]}"#);
        assert_eq!(
            canonical_request_hash(&v),
            "887dfee8fee05e6061b34196bc5e8d34af6c7443ed2c6213d11c5f23f32781af"
        );
    }

    #[test]
    fn numerically_equal_numbers_hash_alike() {
        let same = ["1", "1.0", "1e0", "10e-1", "1.000"];
        for text in same {
            assert_eq!(canonical_json(&parsed(text)), "1", "{text}");
        }
        assert_eq!(canonical_json(&parsed("-0.0")), "0");
        assert_eq!(canonical_json(&parsed("-3.0")), "-3");
        assert_eq!(canonical_json(&parsed("1e17")), "100000000000000000");
        assert_eq!(
            canonical_json(&parsed("18446744073709551615")),
            "18446744073709551615"
        );
        assert_eq!(
            canonical_json(&parsed("-9223372036854775808")),
            "-9223372036854775808"
        );
        assert_eq!(canonical_json(&parsed("0.5")), "0.5");
        assert_eq!(canonical_json(&parsed("1e300")), "1e+300");
        assert_ne!(
            canonical_json(&parsed("0.1")),
            canonical_json(&parsed("0.10000001"))
        );
    }

    #[test]
    fn escapes_in_the_source_do_not_matter_but_array_order_does() {
        assert_eq!(
            canonical_request_hash(&parsed(r#"{"name":"Jos\u00e9","k\"":"a\/b"}"#)),
            canonical_request_hash(&parsed(r#"{"k\"":"a/b","name":"José"}"#)),
        );
        assert_eq!(
            canonical_json(&json!({"t": "tab\there"})),
            r#"{"t":"tab\there"}"#
        );
        assert_ne!(
            canonical_request_hash(&json!([1, 2])),
            canonical_request_hash(&json!([2, 1]))
        );
    }

    #[test]
    fn type_changes_change_the_hash() {
        let variants = [
            json!(1),
            json!("1"),
            json!(true),
            json!(null),
            json!([1]),
            json!({"1": 1}),
        ];
        for (i, a) in variants.iter().enumerate() {
            for b in &variants[i + 1..] {
                assert_ne!(
                    canonical_request_hash(a),
                    canonical_request_hash(b),
                    "{a} vs {b}"
                );
            }
        }
    }

    /// Floats that serde_json's default parser reads back exactly (its fast path), so
    /// reserializing a generated value cannot move a float by one ULP.
    fn round_trip_float() -> impl Strategy<Value = f64> {
        (any::<i32>(), 0u32..4).prop_map(|(m, k)| f64::from(m) / 10f64.powi(k as i32))
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            round_trip_float()
                .prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            "\\PC{0,8}".prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\/é😀]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-c]{0,2}|\\PC{0,4}", inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// The same value with every object's keys in a salt-dependent order.
    fn shuffled(value: &Value, salt: u64) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| shuffled(v, salt)).collect()),
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by_key(|(k, _)| {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    (salt, k).hash(&mut h);
                    h.finish()
                });
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), shuffled(v, salt)))
                        .collect(),
                )
            }
            leaf => leaf.clone(),
        }
    }

    /// How many leaves (non-container values) `value` holds.
    fn leaf_count(value: &Value) -> usize {
        match value {
            Value::Array(items) => items.iter().map(leaf_count).sum(),
            Value::Object(map) => map.values().map(leaf_count).sum(),
            _ => 1,
        }
    }

    /// Change the `n`th leaf (depth-first) to a different value of the same kind.
    fn with_leaf_changed(value: &mut Value, n: &mut usize) -> bool {
        match value {
            Value::Array(items) => items.iter_mut().any(|v| with_leaf_changed(v, n)),
            Value::Object(map) => map.values_mut().any(|v| with_leaf_changed(v, n)),
            _ if *n > 0 => {
                *n -= 1;
                false
            }
            leaf => {
                *leaf = match &*leaf {
                    Value::Null => Value::Bool(false),
                    Value::Bool(b) => Value::Bool(!b),
                    Value::String(s) => Value::String(format!("{s}x")),
                    Value::Number(num) => match (num.as_i64(), num.as_u64(), num.as_f64()) {
                        (Some(i), _, _) if i < i64::MAX => Value::from(i + 1),
                        (_, Some(u), _) => Value::from(u - 1),
                        (_, _, Some(f)) if f + 1.0 != f => Value::from(f + 1.0),
                        (_, _, Some(f)) => Value::from(f * 2.0),
                        _ => Value::Null,
                    },
                    container => container.clone(),
                };
                true
            }
        }
    }

    proptest! {
        #[test]
        fn key_order_and_whitespace_do_not_change_the_hash(value in json_value(), salt in any::<u64>()) {
            let expected = canonical_request_hash(&value);
            let reordered = shuffled(&value, salt);
            prop_assert_eq!(canonical_request_hash(&reordered), expected.clone());
            let pretty: Value = serde_json::from_str(&serde_json::to_string_pretty(&reordered).unwrap()).unwrap();
            prop_assert_eq!(canonical_request_hash(&pretty), expected.clone());
            let compact: Value = serde_json::from_str(&serde_json::to_string(&reordered).unwrap()).unwrap();
            prop_assert_eq!(canonical_request_hash(&compact), expected);
        }

        #[test]
        fn the_canonical_form_is_json_of_the_same_value(value in json_value()) {
            let reparsed: Value = serde_json::from_str(&canonical_json(&value)).unwrap();
            prop_assert_eq!(canonical_json(&reparsed), canonical_json(&value));
        }

        #[test]
        fn changing_any_leaf_changes_the_hash(value in json_value(), pick in any::<prop::sample::Index>()) {
            let leaves = leaf_count(&value);
            prop_assume!(leaves > 0);
            let mut changed = value.clone();
            let mut n = pick.index(leaves);
            prop_assert!(with_leaf_changed(&mut changed, &mut n));
            prop_assert_ne!(canonical_request_hash(&changed), canonical_request_hash(&value));
        }
    }
}
