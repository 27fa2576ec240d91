//! Standard Webhooks signatures: `whsec_` secrets, signing and verifying.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
//! `v1,` + the standard base64 of its HMAC-SHA256 under the secret's key (the bytes
//! of the base64 after `whsec_`). `webhook-signature` may carry several
//! space-separated signatures (a key rotation); a verifier accepts the request when
//! any `v1` one matches, compared in constant time, and refuses a timestamp more
//! than [`TOLERANCE`] away from its clock (replays).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::Hmac;
use hmac::digest::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// `webhook-id`: the event's id, the same on every attempt (receivers dedupe on it).
pub const HEADER_ID: &str = "webhook-id";
/// `webhook-timestamp`: the attempt's send time, in whole seconds since the epoch.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// `webhook-signature`: `v1,<base64>` (space-separated when there are several).
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The prefix of a secret as the specification writes it.
pub const SECRET_PREFIX: &str = "whsec_";
/// Shortest key accepted (the specification: 24 to 64 random bytes).
pub const MIN_KEY_BYTES: usize = 24;
/// Longest key accepted.
pub const MAX_KEY_BYTES: usize = 64;
/// How far a verifier lets `webhook-timestamp` be from its clock (the specification's 5 minutes).
pub const TOLERANCE_SECS: i64 = 5 * 60;
/// [`TOLERANCE_SECS`] as a duration.
pub const TOLERANCE: std::time::Duration = std::time::Duration::from_secs(TOLERANCE_SECS as u64);

/// An endpoint's signing key. Its `Debug` never shows it, and it is zeroed on drop.
pub struct WebhookSecret {
    key: SecretBox<[u8]>,
}

impl Clone for WebhookSecret {
    fn clone(&self) -> Self {
        Self {
            key: SecretBox::new(self.key.expose_secret().into()),
        }
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_[REDACTED])")
    }
}

/// Why a secret was refused. The messages never quote the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// It does not start with `whsec_`.
    #[error("must start with `whsec_` followed by base64 (the Standard Webhooks format)")]
    MissingPrefix,
    /// What follows the prefix is not base64.
    #[error("the part after `whsec_` is not valid base64")]
    NotBase64,
    /// The key is too short or too long.
    #[error(
        "the key is {0} bytes; 24 to 64 random bytes are required (e.g. `openssl rand -base64 32`)"
    )]
    BadLength(usize),
}

impl WebhookSecret {
    /// Parse `whsec_<base64>`: standard base64, padding optional.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let encoded = encoded.trim_end_matches('=');
        let key = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        Ok(Self::from_key(&key))
    }

    /// A secret from its raw key bytes (tests, generated secrets).
    pub fn from_key(key: &[u8]) -> Self {
        Self {
            key: SecretBox::new(key.into()),
        }
    }

    /// The `whsec_...` text of this secret (to hand it to a receiver; never log it).
    pub fn to_whsec(&self) -> String {
        format!(
            "{SECRET_PREFIX}{}",
            STANDARD.encode(self.key.expose_secret())
        )
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.key.expose_secret())
            .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value of `body` sent as `id` at `timestamp` (seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Verify a request as a receiver would: the three headers' values, the raw body
    /// and the receiver's clock (`now`, seconds).
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let (Some(id), Some(timestamp), Some(signature)) = (id, timestamp, signature) else {
            return Err(VerifyError::MissingHeader);
        };
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::BadTimestamp)?;
        if ts < now - TOLERANCE_SECS {
            return Err(VerifyError::TooOld);
        }
        if ts > now + TOLERANCE_SECS {
            return Err(VerifyError::TooNew);
        }
        let mac = self.mac(id, ts, body);
        for candidate in signature.split(' ') {
            let Some(encoded) = candidate.strip_prefix("v1,") else {
                continue;
            };
            let Ok(tag) = STANDARD.decode(encoded) else {
                continue;
            };
            if mac.clone().verify_slice(&tag).is_ok() {
                return Ok(());
            }
        }
        Err(VerifyError::NoMatch)
    }
}

/// Why a request failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `webhook-id`, `webhook-timestamp` or `webhook-signature` is missing.
    #[error("missing webhook-id, webhook-timestamp or webhook-signature")]
    MissingHeader,
    /// `webhook-timestamp` is not an integer.
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    /// Older than the tolerance (a replay).
    #[error("webhook-timestamp too old")]
    TooOld,
    /// Newer than the tolerance.
    #[error("webhook-timestamp too new")]
    TooNew,
    /// No `v1` signature matches.
    #[error("no matching v1 signature")]
    NoMatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's published example (the reference libraries' tests).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1_614_265_330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn spec() -> WebhookSecret {
        WebhookSecret::parse(SPEC_SECRET).unwrap()
    }

    #[test]
    fn signs_the_specification_test_vector() {
        assert_eq!(
            spec().sign(SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes()),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn verifies_the_test_vector_within_the_tolerance_only() {
        let s = spec();
        let body = SPEC_BODY.as_bytes();
        let check = |now| {
            s.verify(
                Some(SPEC_ID),
                Some("1614265330"),
                Some(SPEC_SIGNATURE),
                body,
                now,
            )
        };
        assert_eq!(check(SPEC_TS), Ok(()));
        assert_eq!(check(SPEC_TS + TOLERANCE_SECS), Ok(()));
        assert_eq!(
            check(SPEC_TS + TOLERANCE_SECS + 1),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            check(SPEC_TS - TOLERANCE_SECS - 1),
            Err(VerifyError::TooNew)
        );
    }

    #[test]
    fn one_matching_signature_among_several_is_enough() {
        let s = spec();
        let body = SPEC_BODY.as_bytes();
        let several = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,{} {SPEC_SIGNATURE}",
            &SPEC_SIGNATURE[3..]
        );
        let ok = s.verify(
            Some(SPEC_ID),
            Some("1614265330"),
            Some(&several),
            body,
            SPEC_TS,
        );
        assert_eq!(ok, Ok(()));
        // The right digest under another version is not accepted.
        let v2 = format!("v2,{}", &SPEC_SIGNATURE[3..]);
        let e = s.verify(Some(SPEC_ID), Some("1614265330"), Some(&v2), body, SPEC_TS);
        assert_eq!(e, Err(VerifyError::NoMatch));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let s = spec();
        let body = SPEC_BODY.as_bytes();
        let sig = Some(SPEC_SIGNATURE);
        let ts = Some("1614265330");
        let other = WebhookSecret::from_key(&[7u8; 32]);
        assert_eq!(
            s.verify(Some("msg_other"), ts, sig, body, SPEC_TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            s.verify(Some(SPEC_ID), Some("1614265331"), sig, body, SPEC_TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            s.verify(Some(SPEC_ID), ts, sig, br#"{"test": 2432232315}"#, SPEC_TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            other.verify(Some(SPEC_ID), ts, sig, body, SPEC_TS),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            s.verify(None, ts, sig, body, SPEC_TS),
            Err(VerifyError::MissingHeader)
        );
        assert_eq!(
            s.verify(Some(SPEC_ID), Some("soon"), sig, body, SPEC_TS),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn secrets_are_checked_and_never_shown() {
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!").unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err(),
            SecretError::BadLength(5)
        );
        // Padded and unpadded base64 are the same key.
        let padded = WebhookSecret::from_key(&[1u8; 32]).to_whsec();
        assert!(padded.ends_with('='));
        let unpadded = WebhookSecret::parse(padded.trim_end_matches('=')).unwrap();
        assert_eq!(unpadded.to_whsec(), padded);
        let shown = format!("{:?}", spec());
        assert!(!shown.contains("MfKQ9r8G"), "{shown}");
        assert_eq!(spec().to_whsec(), SPEC_SECRET);
    }
}
