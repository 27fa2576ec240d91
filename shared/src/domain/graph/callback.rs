//! `biz_opaque_callback_data`: our tenant and message id, echoed by Meta in every
//! status webhook, so the webhook finds the message without a wamid lookup and a
//! send whose answer was lost is still matched (DESIGN §5.3).
//!
//! Format: `wa1:<tenant>:<message_id>`. `wa1` names the format and its version;
//! neither id can contain `:`, so the split is unambiguous. At most
//! 4 + 64 + 1 + 30 = 99 characters, well under Meta's 512. Other integrations on the
//! same WABA may set their own strings: those decode to [`CallbackDataError::Foreign`].

use crate::domain::ids::{IdError, MessageId, TenantId};
use std::fmt;

/// Prefix of the current format.
const PREFIX_V1: &str = "wa1:";

/// Meta's limit on `biz_opaque_callback_data`.
pub const MAX_CALLBACK_DATA_CHARS: usize = 512;

/// What we put in `biz_opaque_callback_data`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallbackData {
    /// The tenant that sent the message.
    pub tenant: TenantId,
    /// Our id of the message.
    pub message_id: MessageId,
}

/// Why a `biz_opaque_callback_data` string is not ours to read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackDataError {
    /// Not our format (no `wa1:` prefix): set by someone else, or not at all.
    #[error("callback data is not in a format of ours")]
    Foreign,
    /// Our prefix, but not `tenant:message_id` after it.
    #[error("callback data has our prefix but not two fields")]
    Malformed,
    /// The tenant field is not a valid tenant id.
    #[error("callback data has an invalid tenant: {0}")]
    InvalidTenant(#[source] IdError),
    /// The message field is not a valid message id.
    #[error("callback data has an invalid message id: {0}")]
    InvalidMessageId(#[source] IdError),
}

impl CallbackData {
    /// Bundle the two ids.
    pub fn new(tenant: TenantId, message_id: MessageId) -> Self {
        Self { tenant, message_id }
    }

    /// The string to send as `biz_opaque_callback_data`.
    pub fn encode(&self) -> String {
        format!("{PREFIX_V1}{}:{}", self.tenant, self.message_id)
    }

    /// Read back what [`encode`](Self::encode) wrote. Any other string is a typed
    /// error, never a panic.
    pub fn decode(data: &str) -> Result<Self, CallbackDataError> {
        let rest = data
            .strip_prefix(PREFIX_V1)
            .ok_or(CallbackDataError::Foreign)?;
        let (tenant, message_id) = rest.split_once(':').ok_or(CallbackDataError::Malformed)?;
        Ok(Self {
            tenant: TenantId::parse(tenant).map_err(CallbackDataError::InvalidTenant)?,
            message_id: MessageId::parse(message_id)
                .map_err(CallbackDataError::InvalidMessageId)?,
        })
    }
}

impl fmt::Display for CallbackData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(tenant: &str, message: &str) -> CallbackData {
        CallbackData::new(
            TenantId::parse(tenant).unwrap(),
            MessageId::parse(message).unwrap(),
        )
    }

    #[test]
    fn encoding_is_compact_versioned_and_readable() {
        let data = ids("acme", "msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3");
        assert_eq!(data.encode(), "wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3");
        assert_eq!(data.to_string(), data.encode());
        assert_eq!(CallbackData::decode(&data.encode()), Ok(data));
    }

    #[test]
    fn the_longest_encoding_fits_metas_limit_many_times_over() {
        let data = ids(&"t".repeat(64), "msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3");
        assert_eq!(data.encode().len(), 99);
        assert!(data.encode().len() < MAX_CALLBACK_DATA_CHARS / 5);
    }

    #[test]
    fn foreign_and_broken_strings_are_typed_errors() {
        use CallbackDataError::*;
        type Check = fn(&CallbackDataError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| *e == Foreign),
            ("out_msg_9f2c", |e| *e == Foreign),
            ("WA1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3", |e| *e == Foreign),
            ("wa2:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3", |e| *e == Foreign),
            ("wa1:", |e| *e == Malformed),
            ("wa1:acme", |e| *e == Malformed),
            ("wa1::msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3", |e| {
                matches!(e, InvalidTenant(_))
            }),
            ("wa1:Acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3", |e| {
                matches!(e, InvalidTenant(_))
            }),
            ("wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3:extra", |e| {
                matches!(e, InvalidMessageId(_))
            }),
            ("wa1:acme:", |e| matches!(e, InvalidMessageId(_))),
        ];
        for (input, check) in cases {
            let err = CallbackData::decode(input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(
            tenant in "[a-z0-9_-]{1,64}",
            message in "msg_[0-9A-HJKMNP-TV-Z]{26}",
        ) {
            let data = ids(&tenant, &message);
            let encoded = data.encode();
            prop_assert!(encoded.len() <= MAX_CALLBACK_DATA_CHARS);
            prop_assert_eq!(CallbackData::decode(&encoded), Ok(data));
        }

        #[test]
        fn decoding_arbitrary_strings_never_panics(s in any::<String>()) {
            let _ = CallbackData::decode(&s);
        }

        #[test]
        fn decoding_arbitrary_strings_with_our_prefix_never_panics(s in "wa1:.{0,120}") {
            if let Ok(data) = CallbackData::decode(&s) {
                // Whatever decodes must be exactly what it encodes to.
                prop_assert_eq!(data.encode(), s);
            }
        }
    }
}
