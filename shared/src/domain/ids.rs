//! Validated identifiers used at every boundary.
//!
//! Each newtype can only be built through `parse` (or a constructor that cannot
//! produce an invalid value), so code past the boundary never re-checks them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Why an identifier was refused; `code` is the stable snake_case code shown to callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IdError {
    /// Stable machine-readable code, e.g. `invalid_tenant_id`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl IdError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        string_newtype!($(#[$doc])* $name, stored = parse);
    };
    ($(#[$doc:meta])* $name:ident, stored = $stored:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        /// How a stored or serialized value is read back (serde's `try_from`).
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::$stored(&s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// A tenant (one product team or customer): 1–64 of `a-z`, `0-9`, `-`, `_`.
    TenantId
);
string_newtype!(
    /// Our id of one outbound message: `msg_` + 26 Crockford base32 characters.
    MessageId
);
string_newtype!(
    /// Meta's id of an accepted message (`wamid.…`), the key of every status webhook.
    Wamid
);
string_newtype!(
    /// A caller's `Idempotency-Key`: 1–255 printable ASCII characters.
    IdempotencyKey
);
string_newtype!(
    /// Meta's id of a business phone number (digits), the path of the send endpoint.
    PhoneNumberId
);
string_newtype!(
    /// A recipient in E.164 form, always with the leading `+` (e.g. `+14155550123`).
    ///
    /// Deserializing reads the canonical form this type serializes (checked by
    /// [`PhoneNumber::from_canonical`]), not a caller's input: input goes through
    /// [`PhoneNumber::parse`].
    PhoneNumber, stored = from_canonical
);

impl TenantId {
    /// Parse a tenant id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::new(
                "invalid_tenant_id",
                "tenant id must be 1-64 characters of a-z, 0-9, '-' or '_'",
            ))
        }
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl MessageId {
    /// Parse a message id (`msg_` + 26 Crockford base32 characters).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = s.len() == 30
            && s.starts_with("msg_")
            && s.as_bytes()[4..].iter().all(|b| CROCKFORD.contains(b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::new(
                "invalid_message_id",
                "message id must look like msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3",
            ))
        }
    }

    /// A new, time-ordered random id (ULID) for a message sent without an idempotency key.
    pub fn generate() -> Self {
        Self(format!("msg_{}", ulid::Ulid::generate()))
    }

    /// The id of the message identified by `(tenant, key)`: the same pair always gives the
    /// same id, so the conditional put of the message item is the idempotency check.
    pub fn for_idempotency_key(tenant: &TenantId, key: &IdempotencyKey) -> Self {
        let mut h = Sha256::new();
        h.update(tenant.as_str().as_bytes());
        h.update([0u8]);
        h.update(key.as_str().as_bytes());
        let digest = h.finalize();
        // 26 base32 characters carry 130 bits; take them from the first 17 bytes.
        let mut bits: u128 = 0;
        for b in &digest[..16] {
            bits = (bits << 8) | u128::from(*b);
        }
        let mut out = [0u8; 26];
        // First character from the top 2 bits of byte 16 keeps all 26 characters used.
        out[0] = CROCKFORD[usize::from(digest[16] >> 6)];
        for (i, slot) in out[1..].iter_mut().enumerate() {
            let shift = 125 - 5 * i as u32;
            *slot = CROCKFORD[((bits >> shift) & 31) as usize];
        }
        // `out` holds only ASCII from CROCKFORD.
        let s: String = out.iter().map(|&b| b as char).collect();
        Self(format!("msg_{s}"))
    }
}

impl Wamid {
    /// Parse a wamid: 1–512 visible ASCII characters (Meta's ids are opaque; we do not
    /// insist on the `wamid.` prefix so that sandbox and real ids are treated alike).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty() && s.len() <= 512 && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::new(
                "invalid_wamid",
                "wamid must be 1-512 visible ASCII characters",
            ))
        }
    }
}

impl IdempotencyKey {
    /// Parse an `Idempotency-Key` header value: 1–255 printable ASCII characters.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| (0x20..0x7f).contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::new(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1-255 printable ASCII characters",
            ))
        }
    }
}

impl PhoneNumberId {
    /// Parse a phone number id: 1–32 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::new(
                "invalid_phone_number_id",
                "phone number id must be 1-32 digits",
            ))
        }
    }
}

impl PhoneNumber {
    /// Parse a recipient: must start with `+` and be a valid number for its country
    /// (checked with libphonenumber's metadata). Spaces, dashes and parentheses are
    /// accepted and removed; the stored form is E.164.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let trimmed = s.trim();
        if !trimmed.starts_with('+') {
            // Without '+', Meta prefixes the *business* number's country code, which can
            // deliver to the wrong person: refuse rather than guess.
            return Err(IdError::new(
                "invalid_phone_number",
                "recipient must be in E.164 form with a leading '+' and country code",
            ));
        }
        let parsed = phonenumber::parse(None, trimmed).map_err(|_| {
            IdError::new(
                "invalid_phone_number",
                "recipient is not a parseable phone number",
            )
        })?;
        if !phonenumber::is_valid(&parsed) {
            return Err(IdError::new(
                "invalid_phone_number",
                "recipient is not a valid phone number for its country code",
            ));
        }
        Ok(Self(
            parsed.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// The number of a WhatsApp user from Meta's `wa_id` (digits, no `+`: an inbound
    /// `from`, a status's `recipient_id`, a `user_preferences` `wa_id`), in the E.164
    /// form a caller writes for the same user, so both key the same contact. Meta's
    /// `wa_id` can differ from it: Brazilian mobiles registered before the ninth digit
    /// keep the old eight-digit form (`551187654303` is `+5511987654303`), and Mexican
    /// mobiles keep the `1` Mexico dropped in 2019 (`5215512345678` is
    /// `+525512345678`). Anything else is the digits with a `+`, checked like
    /// [`PhoneNumber::parse`].
    pub fn from_wa_id(digits: &str) -> Result<Self, IdError> {
        let digits = digits.trim().trim_start_matches('+');
        let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        if all_digits {
            // 55 + two-digit area + eight-digit mobile (first digit 6-9): add the 9.
            if digits.len() == 12
                && digits.starts_with("55")
                && matches!(digits.as_bytes()[4], b'6'..=b'9')
            {
                let (area, subscriber) = digits[2..].split_at(2);
                if let Ok(number) = Self::parse(&format!("+55{area}9{subscriber}")) {
                    return Ok(number);
                }
            }
            // 52 1 + ten digits: the pre-2019 mobile prefix.
            if digits.len() == 13
                && let Some(national) = digits.strip_prefix("521")
                && let Ok(number) = Self::parse(&format!("+52{national}"))
            {
                return Ok(number);
            }
        }
        Self::parse(&format!("+{digits}"))
    }

    /// A number in the canonical E.164 form [`PhoneNumber::parse`] produces (`+`, then
    /// 2-15 digits, the first not 0), as stored and serialized: checked for that shape
    /// only. Re-validating against libphonenumber's metadata on every stored message
    /// read cost more CPU than the rest of a webhook's work (issue 15), and loading
    /// that metadata made every function's first invocation 70-120 ms slower.
    pub fn from_canonical(s: &str) -> Result<Self, IdError> {
        let digits = s.strip_prefix('+').unwrap_or_default();
        let ok = (2..=15).contains(&digits.len())
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::new(
                "invalid_phone_number",
                "a stored recipient must be E.164: '+' and 2-15 digits",
            ))
        }
    }

    /// Load libphonenumber's metadata (its first parse: about 130 ms on a release
    /// build here, then 2-5 ms for each new country and 8-15 us a number).
    pub fn warm_up() {
        for sample in ["+14155550123", "+447911123456"] {
            let _ = Self::parse(sample);
        }
    }

    /// [`PhoneNumber::warm_up`] on a thread of its own, started at the init of a
    /// function whose every request parses a number (intake, sender): Init does not
    /// wait for it (its time stays the hello-world's), and it overlaps the runtime's
    /// first poll and the first request's network calls instead of adding to that
    /// request. A parse that comes first waits for the load, no longer. The webhook
    /// does not start it: status bodies, most of its traffic, parse no number.
    pub fn warm_up_in_background() {
        std::thread::spawn(Self::warm_up);
    }

    /// The number without the leading `+`, as Meta writes `wa_id` and `recipient_id`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// The number with all but the last four digits masked, for logs (`+1******0123`).
    pub fn masked(&self) -> String {
        let n = self.0.len();
        let keep = 4.min(n.saturating_sub(2));
        let mut out = String::with_capacity(n);
        out.push_str(&self.0[..2]);
        out.extend(std::iter::repeat_n('*', n - 2 - keep));
        out.push_str(&self.0[n - keep..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wa_id_maps_to_the_number_a_caller_writes_for_that_user() {
        let e164 = |s: &str| PhoneNumber::parse(s).unwrap();
        // Brazil: the eight-digit wa_id of a nine-digit mobile.
        assert_eq!(
            PhoneNumber::from_wa_id("551187654303").unwrap(),
            e164("+5511987654303")
        );
        assert_eq!(
            PhoneNumber::from_wa_id("5511987654303").unwrap(),
            e164("+5511987654303")
        );
        // A Brazilian landline (first digit 2-5) keeps its eight digits.
        assert_eq!(
            PhoneNumber::from_wa_id("551133334444").unwrap(),
            e164("+551133334444")
        );
        // Mexico: the old mobile `1`.
        assert_eq!(
            PhoneNumber::from_wa_id("5215512345678").unwrap(),
            e164("+525512345678")
        );
        // Everyone else: the digits with a `+`.
        assert_eq!(
            PhoneNumber::from_wa_id("16505551234").unwrap(),
            e164("+16505551234")
        );
        assert!(PhoneNumber::from_wa_id("").is_err());
        assert!(PhoneNumber::from_wa_id("12ab").is_err());
    }

    #[test]
    fn tenant_ids_accept_slugs_and_refuse_everything_else() {
        assert!(TenantId::parse("acme-billing_2").is_ok());
        for bad in ["", "Acme", "a b", "a/b", &"x".repeat(65)] {
            assert_eq!(
                TenantId::parse(bad).unwrap_err().code,
                "invalid_tenant_id",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn idempotent_message_ids_are_stable_distinct_and_well_formed() {
        let t = TenantId::parse("acme").unwrap();
        let k1 = IdempotencyKey::parse("order-1234").unwrap();
        let k2 = IdempotencyKey::parse("order-1235").unwrap();
        let a = MessageId::for_idempotency_key(&t, &k1);
        assert_eq!(a, MessageId::for_idempotency_key(&t, &k1));
        assert_ne!(a, MessageId::for_idempotency_key(&t, &k2));
        let other = TenantId::parse("globex").unwrap();
        assert_ne!(a, MessageId::for_idempotency_key(&other, &k1));
        assert!(MessageId::parse(a.as_str()).is_ok(), "{a}");
        assert!(MessageId::parse(MessageId::generate().as_str()).is_ok());
    }

    #[test]
    fn message_ids_refuse_foreign_shapes() {
        for bad in [
            "",
            "msg_",
            "msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2AU",
            "abc_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3",
        ] {
            assert!(MessageId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn idempotency_keys_are_printable_and_bounded() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in [
            String::new(),
            "k".repeat(256),
            "tab\there".into(),
            "é".into(),
        ] {
            assert!(IdempotencyKey::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phone_numbers_are_normalised_to_e164_and_checked_per_country() {
        assert_eq!(
            PhoneNumber::parse("+1 (415) 555-0123").unwrap().as_str(),
            "+14155550123"
        );
        assert_eq!(
            PhoneNumber::parse("+447911123456").unwrap().digits(),
            "447911123456"
        );
        for bad in ["14155550123", "+1415", "+999123456789", "hello", ""] {
            assert_eq!(
                PhoneNumber::parse(bad).unwrap_err().code,
                "invalid_phone_number",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn masked_numbers_keep_country_prefix_and_last_four_digits() {
        assert_eq!(
            PhoneNumber::parse("+14155550123").unwrap().masked(),
            "+1******0123"
        );
    }

    #[test]
    fn ids_round_trip_through_serde_and_refuse_bad_values() {
        let w: Wamid = serde_json::from_str("\"wamid.HBgL\"").unwrap();
        assert_eq!(serde_json::to_string(&w).unwrap(), "\"wamid.HBgL\"");
        assert!(serde_json::from_str::<TenantId>("\"NO\"").is_err());
        assert!(serde_json::from_str::<PhoneNumberId>("\"10650\"").is_ok());
    }

    #[test]
    fn a_stored_recipient_is_read_back_by_its_shape_and_input_is_fully_validated() {
        let parsed = PhoneNumber::parse("+44 7911 123456").unwrap();
        let json = serde_json::to_string(&parsed).unwrap();
        assert_eq!(json, "\"+447911123456\"");
        assert_eq!(serde_json::from_str::<PhoneNumber>(&json).unwrap(), parsed);
        for bad in [
            "\"447911123456\"",
            "\"+0123\"",
            "\"+1\"",
            "\"+1234567890123456\"",
            "\"+44 7911\"",
        ] {
            assert!(serde_json::from_str::<PhoneNumber>(bad).is_err(), "{bad}");
        }
        // The shape is all deserializing checks; a caller's input still meets the metadata.
        assert!(serde_json::from_str::<PhoneNumber>("\"+10000000000\"").is_ok());
        assert_eq!(
            PhoneNumber::parse("+10000000000").unwrap_err().code,
            "invalid_phone_number"
        );
        assert_eq!(
            "+10000000000".parse::<PhoneNumber>().unwrap_err().code,
            "invalid_phone_number"
        );
    }
}
