//! Mutations: JSON-aware ones on inputs that parse (replace a node with an odd value,
//! a huge number, deep nesting or a subtree of another seed; drop or add keys and
//! items; mutate JSON or base64 JSON embedded in a string), and byte-level ones on
//! everything (bit flips, odd bytes and tokens, cuts, copies, splices).

use base64::Engine;
use rand::rngs::ChaCha8Rng;
use rand::{Rng, RngExt};
use serde_json::{Map, Number, Value};

/// Inputs are cut to this many bytes (intake refuses bodies over 64 KiB, the webhook
/// over 3 MiB; longer inputs only slow the loop down).
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// Deepest nesting a mutation wraps a node in: past serde_json's recursion limit
/// (128), well within the test thread's stack when the value is serialized.
const MAX_WRAP_DEPTH: usize = 200;

/// How many levels of JSON-in-a-string a mutation descends into.
const MAX_EMBEDDED_DEPTH: usize = 3;

/// Byte sequences that tend to break parsers: JSON punctuation, escapes, lone
/// surrogates, huge or odd numbers, invalid UTF-8, a BOM.
const TOKENS: &[&[u8]] = &[
    b"null",
    b"true",
    b"{}",
    b"[]",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\"\\ud800\"",
    b"\"\\udfff\\ud800\"",
    b"\"\\uDBFF\\uDFFF\"",
    b"1e999",
    b"-1e999",
    b"-0",
    b"0.0000000000000000000000000001",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"123456789012345678901234567890123456789",
    b"NaN",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x00",
    b"\r\n",
    b"\"\":\"\",",
    b"wa1:",
    b"msg_",
    b"sha256=",
];

/// Odd string values: empty, whitespace, control and invisible characters,
/// right-to-left marks, emoji, combining marks, format strings, near-valid ids.
const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\n\t\r",
    "     x",
    "\u{200b}",
    "\u{202e}abc",
    "\u{feff}",
    "\u{1F600}\u{1F3FD}",
    "e\u{301}\u{301}\u{301}",
    "\u{10FFFF}",
    "%s%n%x{0}",
    "../../etc/passwd",
    "wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3",
    "wa1::",
    "wa1:a:b:c",
    "msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A",
    "+14155550123",
    "+1415555012345678901234567890",
    "00",
    "+",
    "sha256=",
    "1700000000",
    "17000000000000",
    "-1",
    "9999999999999999999999",
    "true",
    "null",
    "{{1}}",
    "{{first_name}}",
    "https://",
    "en_US",
    "whatsapp_business_account",
];

/// A mutator over one target's corpus: `others` are spliced in, `dictionary` tokens
/// (keys and short strings of the seeds) are inserted.
#[derive(Debug, Clone, Copy)]
pub struct Mutator<'a> {
    /// Inputs to splice from.
    pub others: &'a [Vec<u8>],
    /// Keys and short strings of the seeds.
    pub dictionary: &'a [String],
}

impl Mutator<'_> {
    /// One to four stacked mutations of `input`, at most [`MAX_INPUT_BYTES`] long.
    pub fn mutate(&self, rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
        let mut data = input.to_vec();
        // Mostly structured rounds, which keep the input JSON so it reaches past the
        // parser; otherwise byte rounds, which mostly break it.
        let structured = if rng.random_bool(0.7) { 1.0 } else { 0.2 };
        for _ in 0..rng.random_range(1..=4) {
            data = if rng.random_bool(structured) {
                match serde_json::from_slice::<Value>(&data) {
                    Ok(mut value) => {
                        self.mutate_json(rng, &mut value, 0);
                        serialize(rng, &value)
                    }
                    Err(_) => self.mutate_bytes(rng, data),
                }
            } else {
                self.mutate_bytes(rng, data)
            };
        }
        data.truncate(MAX_INPUT_BYTES);
        data
    }

    /// One byte-level mutation.
    pub fn mutate_bytes(&self, rng: &mut ChaCha8Rng, mut data: Vec<u8>) -> Vec<u8> {
        if data.is_empty() {
            data.extend_from_slice(self.token(rng));
            return data;
        }
        let len = data.len();
        match rng.random_range(0..9) {
            0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..len);
                data[i] = *pick(rng, b"\x00\xff\x7f\x80\"\\{}[]:,0-9eE.+ \n");
            }
            2 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..=16.max(len / 4))).min(len);
                data.drain(start..end);
            }
            3 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..=64)).min(len);
                let chunk = data[start..end].to_vec();
                let at = rng.random_range(0..=len);
                let times = if rng.random_bool(0.1) {
                    rng.random_range(2..64)
                } else {
                    1
                };
                for _ in 0..times {
                    data.splice(at..at, chunk.iter().copied());
                }
            }
            4 => data.truncate(rng.random_range(0..len)),
            5 if !self.others.is_empty() => {
                let other = pick(rng, self.others);
                let cut = rng.random_range(0..=len);
                let from = rng.random_range(0..=other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            6 if !self.dictionary.is_empty() => {
                let word = pick(rng, self.dictionary);
                let at = rng.random_range(0..=len);
                let text = if rng.random_bool(0.5) {
                    format!("\"{word}\"")
                } else {
                    word.clone()
                };
                data.splice(at..at, text.bytes());
            }
            7 => {
                // Swap two bytes: reorders punctuation, keys and digits.
                let (a, b) = (rng.random_range(0..len), rng.random_range(0..len));
                data.swap(a, b);
            }
            _ => {
                let at = rng.random_range(0..=len);
                let token = self.token(rng).to_vec();
                data.splice(at..at, token);
            }
        }
        data
    }

    fn token<'t>(&'t self, rng: &mut ChaCha8Rng) -> &'t [u8] {
        if !self.dictionary.is_empty() && rng.random_bool(0.3) {
            pick(rng, self.dictionary).as_bytes()
        } else {
            pick::<&[u8], _>(rng, TOKENS)
        }
    }

    /// One JSON-aware mutation of a random node of `value`.
    pub fn mutate_json(&self, rng: &mut ChaCha8Rng, value: &mut Value, depth: usize) {
        let count = count_nodes(value);
        let mut k = rng.random_range(0..count);
        let Some(node) = nth_mut(value, &mut k) else {
            return;
        };
        // Half of the time a change that keeps the node's type, so that the input
        // still gets past the structural checks to the rules behind them.
        match rng.random_range(0..12) {
            0 => *node = self.odd_value(rng),
            1 => {
                if let Some(other) = self.other_subtree(rng) {
                    *node = other;
                }
            }
            2 => remove_child(rng, node),
            3 => self.add_child(rng, node),
            4 => *node = wrap(rng, node.take()),
            5 => *node = Value::Number(huge_number(rng)),
            _ => self.mutate_scalar(rng, node, depth),
        }
    }

    fn mutate_scalar(&self, rng: &mut ChaCha8Rng, node: &mut Value, depth: usize) {
        match node {
            Value::String(s) => {
                if rng.random_bool(0.3) {
                    *s = self.odd_string(rng);
                } else if let Some(inner) = self.mutate_embedded(rng, s, depth) {
                    *s = inner;
                } else {
                    let bytes = self.mutate_bytes(rng, std::mem::take(s).into_bytes());
                    *s = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
            Value::Number(_) => *node = Value::Number(huge_number(rng)),
            Value::Bool(b) => *b = !*b,
            Value::Null => *node = self.odd_value(rng),
            Value::Object(_) | Value::Array(_) => {
                if rng.random_bool(0.5) {
                    self.add_child(rng, node);
                } else {
                    remove_child(rng, node);
                }
            }
        }
    }

    /// A string holding JSON (an API Gateway or SQS body), or base64 of JSON, mutated
    /// inside and written back the same way.
    fn mutate_embedded(&self, rng: &mut ChaCha8Rng, s: &str, depth: usize) -> Option<String> {
        if depth >= MAX_EMBEDDED_DEPTH {
            return None;
        }
        if let Ok(mut inner) = serde_json::from_str::<Value>(s)
            && (inner.is_object() || inner.is_array())
        {
            self.mutate_json(rng, &mut inner, depth + 1);
            return Some(String::from_utf8_lossy(&serialize(rng, &inner)).into_owned());
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let decoded = b64.decode(s).ok()?;
        let mutated = match serde_json::from_slice::<Value>(&decoded) {
            Ok(mut inner) => {
                self.mutate_json(rng, &mut inner, depth + 1);
                serialize(rng, &inner)
            }
            Err(_) => self.mutate_bytes(rng, decoded),
        };
        Some(b64.encode(mutated))
    }

    fn odd_string(&self, rng: &mut ChaCha8Rng) -> String {
        match self.odd_value(rng) {
            Value::String(s) => s,
            _ => (*pick(rng, ODD_STRINGS)).to_owned(),
        }
    }

    fn odd_value(&self, rng: &mut ChaCha8Rng) -> Value {
        match rng.random_range(0..9) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 => Value::Number(huge_number(rng)),
            3 => Value::Array(Vec::new()),
            4 => Value::Object(Map::new()),
            5 => {
                let unit = pick(rng, &["a", "é", "\u{1F600}", " ", "\n", "{{1}}", "9"]);
                let n = if rng.random_bool(0.02) {
                    70_000
                } else {
                    *pick(rng, &[63, 64, 65, 255, 256, 1024, 1025, 4096, 4097])
                };
                Value::String(unit.repeat(n))
            }
            6 if !self.dictionary.is_empty() => Value::String(pick(rng, self.dictionary).clone()),
            7 => wrap(rng, Value::Null),
            _ => Value::String((*pick(rng, ODD_STRINGS)).to_owned()),
        }
    }

    fn add_child(&self, rng: &mut ChaCha8Rng, node: &mut Value) {
        let value = if rng.random_bool(0.5) {
            self.odd_value(rng)
        } else {
            self.other_subtree(rng).unwrap_or(Value::Null)
        };
        match node {
            Value::Object(map) => {
                let key = if !self.dictionary.is_empty() && rng.random_bool(0.8) {
                    pick(rng, self.dictionary).clone()
                } else {
                    (*pick(rng, ODD_STRINGS)).to_owned()
                };
                map.insert(key, value);
            }
            Value::Array(items) => {
                if !items.is_empty() && rng.random_bool(0.5) {
                    // Repeat an existing item: many statuses, many entries.
                    let item = items[rng.random_range(0..items.len())].clone();
                    let most = if rng.random_bool(0.1) { 200 } else { 3 };
                    let times = rng.random_range(1..=most);
                    items.extend(std::iter::repeat_n(item, times));
                } else {
                    let at = rng.random_range(0..=items.len());
                    items.insert(at, value);
                }
            }
            other => *other = value,
        }
    }

    /// A random node of a random other input that parses as JSON.
    fn other_subtree(&self, rng: &mut ChaCha8Rng) -> Option<Value> {
        if self.others.is_empty() {
            return None;
        }
        let other: &Vec<u8> = pick(rng, self.others);
        let mut value = serde_json::from_slice::<Value>(other).ok()?;
        let mut k = rng.random_range(0..count_nodes(&value));
        nth_mut(&mut value, &mut k).map(Value::take)
    }
}

fn remove_child(rng: &mut ChaCha8Rng, node: &mut Value) {
    match node {
        Value::Object(map) if !map.is_empty() => {
            let i = rng.random_range(0..map.len());
            if let Some(key) = map.keys().nth(i).cloned() {
                map.remove(&key);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            items.remove(rng.random_range(0..items.len()));
        }
        other => *other = Value::Null,
    }
}

/// `value` inside 1 to [`MAX_WRAP_DEPTH`] arrays or single-key objects.
fn wrap(rng: &mut ChaCha8Rng, mut value: Value) -> Value {
    let depth = if rng.random_bool(0.5) {
        rng.random_range(1..4)
    } else {
        rng.random_range(100..=MAX_WRAP_DEPTH)
    };
    let as_object = rng.random_bool(0.5);
    for _ in 0..depth {
        value = if as_object {
            let mut map = Map::new();
            map.insert("value".to_owned(), value);
            Value::Object(map)
        } else {
            Value::Array(vec![value])
        };
    }
    value
}

fn huge_number(rng: &mut ChaCha8Rng) -> Number {
    match rng.random_range(0..10) {
        0 => Number::from(u64::MAX),
        1 => Number::from(i64::MIN),
        2 => Number::from(i64::MAX),
        3 => Number::from(0u64),
        4 => Number::from(-1i64),
        5 => Number::from((1u64 << 53) + 1),
        6 => Number::from_f64(*pick(rng, &[1e308, -1e308, 0.5, -0.0, 5e-324, 1e-7]))
            .unwrap_or_else(|| Number::from(0u64)),
        7 => Number::from(rng.random_range(1_000_000_000_000u64..100_000_000_000_000)),
        8 => Number::from(rng.random::<u32>()),
        _ => Number::from(rng.random::<i64>()),
    }
}

fn serialize(rng: &mut ChaCha8Rng, value: &Value) -> Vec<u8> {
    let bytes = if rng.random_bool(0.2) {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    bytes.unwrap_or_default()
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Object(map) => map.values().map(count_nodes).sum(),
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The `k`-th node of `value` in pre-order.
fn nth_mut<'v>(value: &'v mut Value, k: &mut usize) -> Option<&'v mut Value> {
    if *k == 0 {
        return Some(value);
    }
    *k -= 1;
    match value {
        Value::Object(map) => map.values_mut().find_map(|child| nth_mut(child, k)),
        Value::Array(items) => items.iter_mut().find_map(|child| nth_mut(child, k)),
        _ => None,
    }
}

fn pick<'a, T, R: Rng + ?Sized>(rng: &mut R, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}
