//! `X-Hub-Signature-256`: Meta signs every webhook POST with HMAC-SHA256 of the raw
//! body bytes, keyed with the app secret (reference §4).
//!
//! The check runs on the raw bytes before any JSON parsing, compares in constant
//! time, and its errors never carry the expected MAC (it would let a caller forge
//! the next request).

use hmac::Hmac;
use hmac::digest::{Digest, Key, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Name of the header Meta puts the signature in.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The scheme prefix of the header value.
const SCHEME: &str = "sha256=";

/// Bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// Why a webhook signature was refused. Each variant is a separate metric label so
/// that "Meta rotated the secret" (mismatch) is told apart from "someone probes us"
/// (missing, malformed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("malformed X-Hub-Signature-256 header: {0}")]
    Malformed(MalformedSignature),
    /// Well-formed, but no configured app secret produces it.
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// What is wrong with a malformed signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedSignature {
    /// The value does not start with `sha256=`.
    #[error("expected the sha256= prefix")]
    WrongScheme,
    /// The digest is not 64 characters long.
    #[error("expected 64 hex digits")]
    WrongLength,
    /// The digest has a character that is not a hex digit.
    #[error("digest is not hexadecimal")]
    NotHex,
}

impl SignatureError {
    /// Stable snake_case label for metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            SignatureError::Missing => "missing",
            SignatureError::Malformed(_) => "malformed",
            SignatureError::Mismatch => "mismatch",
        }
    }
}

/// Check `header` (the value of `X-Hub-Signature-256`, if present) against `raw_body`
/// signed with `app_secret`.
pub fn verify_signature(
    app_secret: &[u8],
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    verify_signature_with_any([app_secret], raw_body, header)
}

/// Like [`verify_signature`], accepting the body if any of `app_secrets` signed it:
/// during a secret rotation the old and the new secret are both configured.
/// An empty list of secrets accepts nothing.
pub fn verify_signature_with_any<I, S>(
    app_secrets: I,
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let tag = parse_header(header)?;
    // Every secret is tried (no early exit), so the time taken does not tell which
    // secret matched or how many were tried before one did.
    let mut matched = false;
    for secret in app_secrets {
        let ok = keyed(secret.as_ref())
            .chain_update(raw_body)
            .verify_slice(&tag)
            .is_ok();
        matched |= ok;
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `X-Hub-Signature-256` value Meta would send for `body` signed with `app_secret`
/// (`sha256=` + 64 lowercase hex digits). Used by the Graph sandbox and by tests:
/// fixtures never store signatures, they are computed.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let tag = keyed(app_secret).chain_update(body).finalize().into_bytes();
    let mut out = String::with_capacity(SCHEME.len() + 2 * TAG_LEN);
    out.push_str(SCHEME);
    out.push_str(&hex::encode(tag));
    out
}

fn parse_header(header: Option<&str>) -> Result<[u8; TAG_LEN], SignatureError> {
    let value = header.ok_or(SignatureError::Missing)?.trim();
    if value.is_empty() {
        return Err(SignatureError::Missing);
    }
    let digest = value
        .strip_prefix(SCHEME)
        .ok_or(SignatureError::Malformed(MalformedSignature::WrongScheme))?;
    if digest.len() != 2 * TAG_LEN {
        return Err(SignatureError::Malformed(MalformedSignature::WrongLength));
    }
    let mut tag = [0u8; TAG_LEN];
    hex::decode_to_slice(digest, &mut tag)
        .map_err(|_| SignatureError::Malformed(MalformedSignature::NotHex))?;
    Ok(tag)
}

/// An HMAC-SHA256 keyed with `secret`, built without a fallible constructor: per
/// RFC 2104 a key longer than the hash block is replaced by its hash, and any key is
/// then zero-padded to the block size, which is exactly what `Key` holds.
fn keyed(secret: &[u8]) -> HmacSha256 {
    let mut key = Key::<HmacSha256>::default();
    if secret.len() > key.len() {
        let digest = Sha256::digest(secret);
        key[..digest.len()].copy_from_slice(&digest);
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    <HmacSha256 as KeyInit>::new(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"app-secret-for-tests";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    #[test]
    fn matches_rfc_4231_vectors_for_short_and_long_keys() {
        // Test case 2: a key shorter than the block.
        let short = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            short,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a 131-byte key, hashed before use.
        let long = sign(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            long,
            "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        // A key of exactly one block is used as is.
        let block = sign(&[0x0b; 64], b"x");
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&[0x0b; 64]).unwrap();
        mac.update(b"x");
        assert_eq!(
            block,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
    }

    #[test]
    fn a_correct_signature_is_accepted() {
        let header = sign(SECRET, BODY);
        assert_eq!(header.len(), 71, "Meta's header is 71 characters");
        assert_eq!(verify_signature(SECRET, BODY, Some(&header)), Ok(()));
    }

    #[test]
    fn uppercase_hex_and_surrounding_whitespace_are_accepted() {
        let header = sign(SECRET, BODY);
        let upper = format!(" sha256={} ", header[SCHEME.len()..].to_uppercase());
        assert_eq!(verify_signature(SECRET, BODY, Some(&upper)), Ok(()));
    }

    #[test]
    fn a_signature_of_another_body_or_secret_is_a_mismatch() {
        let header = sign(SECRET, BODY);
        assert_eq!(
            verify_signature(SECRET, b"{}", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"other-secret", BODY, Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_missing_or_empty_header_is_missing() {
        assert_eq!(
            verify_signature(SECRET, BODY, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(SECRET, BODY, Some("  ")),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        let digest = &sign(SECRET, BODY)[SCHEME.len()..];
        let cases = [
            (format!("sha1={digest}"), MalformedSignature::WrongScheme),
            (digest.to_owned(), MalformedSignature::WrongScheme),
            (format!("SHA256={digest}"), MalformedSignature::WrongScheme),
            (
                format!("sha256={}", &digest[2..]),
                MalformedSignature::WrongLength,
            ),
            (
                format!("sha256={digest}00"),
                MalformedSignature::WrongLength,
            ),
            (
                format!("sha256=zz{}", &digest[2..]),
                MalformedSignature::NotHex,
            ),
        ];
        for (header, why) in cases {
            assert_eq!(
                verify_signature(SECRET, BODY, Some(&header)),
                Err(SignatureError::Malformed(why)),
                "{header}"
            );
        }
    }

    #[test]
    fn errors_never_reveal_the_expected_mac() {
        let expected = &sign(SECRET, BODY)[SCHEME.len()..];
        let wrong = sign(b"other", BODY);
        let err = verify_signature(SECRET, BODY, Some(&wrong)).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(expected));
    }

    #[test]
    fn any_configured_secret_may_have_signed_during_rotation() {
        let old = b"old-secret".as_slice();
        let new = b"new-secret".as_slice();
        let by_old = sign(old, BODY);
        let by_new = sign(new, BODY);
        assert_eq!(
            verify_signature_with_any([new, old], BODY, Some(&by_old)),
            Ok(())
        );
        assert_eq!(
            verify_signature_with_any([new, old], BODY, Some(&by_new)),
            Ok(())
        );
        assert_eq!(
            verify_signature_with_any([new], BODY, Some(&by_old)),
            Err(SignatureError::Mismatch)
        );
        let none: [&[u8]; 0] = [];
        assert_eq!(
            verify_signature_with_any(none, BODY, Some(&by_new)),
            Err(SignatureError::Mismatch)
        );
    }

    proptest! {
        #[test]
        fn sign_then_verify_round_trips_for_any_body_and_secret(
            secret in proptest::collection::vec(any::<u8>(), 0..200),
            body in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let header = sign(&secret, &body);
            prop_assert_eq!(verify_signature(&secret, &body, Some(&header)), Ok(()));
        }

        #[test]
        fn flipping_any_body_bit_breaks_the_signature(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            index in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let header = sign(SECRET, &body);
            let mut tampered = body.clone();
            tampered[index.index(body.len())] ^= 1 << bit;
            prop_assert_eq!(
                verify_signature(SECRET, &tampered, Some(&header)),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn verify_never_panics_on_arbitrary_headers(header in ".{0,100}") {
            let _ = verify_signature(SECRET, BODY, Some(&header));
        }
    }
}
