//! Opaque page cursors: a query's `LastEvaluatedKey` (string and number attributes
//! only, as every key is) carried to the caller as URL-safe base64 of JSON.
//!
//! The cursor is not signed: it only says where to continue within a query whose
//! partition the caller already chose, so a forged one can only skip items of that
//! same query.

use crate::ports::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::{BTreeMap, HashMap};

/// A DynamoDB key as plain data.
pub(crate) type Key = HashMap<String, AttributeValue>;

/// One key attribute value (keys are only ever strings or numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum KeyValue {
    /// String.
    S(String),
    /// Number, as DynamoDB's decimal string.
    N(String),
}

/// A key in a form that serialises.
pub(crate) type KeyData = BTreeMap<String, KeyValue>;

/// `key` as data; `None` if it holds anything but strings and numbers.
pub(crate) fn key_data(key: &Key) -> Option<KeyData> {
    key.iter()
        .map(|(name, value)| {
            let value = match value {
                AttributeValue::S(s) => KeyValue::S(s.clone()),
                AttributeValue::N(n) => KeyValue::N(n.clone()),
                _ => return None,
            };
            Some((name.clone(), value))
        })
        .collect()
}

/// The DynamoDB key of `data`.
pub(crate) fn key_of(data: &KeyData) -> Key {
    data.iter()
        .map(|(name, value)| {
            let value = match value {
                KeyValue::S(s) => AttributeValue::S(s.clone()),
                KeyValue::N(n) => AttributeValue::N(n.clone()),
            };
            (name.clone(), value)
        })
        .collect()
}

/// Encode any cursor state as an opaque string.
pub(crate) fn encode<T: Serialize>(state: &T) -> Result<String, StoreError> {
    let json = serde_json::to_vec(state).map_err(|e| StoreError::Backend {
        operation: "encode_cursor",
        source: e.into(),
    })?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Decode a cursor made by [`encode`]; anything else is [`StoreError::InvalidCursor`].
pub(crate) fn decode<T: DeserializeOwned>(cursor: &str) -> Result<T, StoreError> {
    let json = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    serde_json::from_slice(&json).map_err(|_| StoreError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_the_cursor_round_trip() {
        let key: Key = [
            ("pk".to_owned(), AttributeValue::S("acme#msg_1".into())),
            (
                "sweep_at".to_owned(),
                AttributeValue::N("1750000000000".into()),
            ),
        ]
        .into();
        let data = key_data(&key).unwrap();
        let cursor = encode(&data).unwrap();
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let back: KeyData = decode(&cursor).unwrap();
        assert_eq!(key_of(&back), key);
    }

    #[test]
    fn garbage_is_an_invalid_cursor() {
        assert!(matches!(
            decode::<KeyData>("not base64!"),
            Err(StoreError::InvalidCursor)
        ));
        let not_a_key = URL_SAFE_NO_PAD.encode(b"[1,2]");
        assert!(matches!(
            decode::<KeyData>(&not_a_key),
            Err(StoreError::InvalidCursor)
        ));
    }

    #[test]
    fn keys_with_other_types_are_not_cursors() {
        let key: Key = [("flag".to_owned(), AttributeValue::Bool(true))].into();
        assert!(key_data(&key).is_none());
    }
}
