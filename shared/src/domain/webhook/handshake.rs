//! The subscription handshake (`GET /webhook`): Meta sends `hub.mode=subscribe`,
//! `hub.verify_token` and `hub.challenge`; if the token is ours we answer 200 with the
//! bare challenge as `text/plain`, anything else is a 403 (reference §4).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only `hub.mode` Meta sends.
const SUBSCRIBE: &str = "subscribe";

/// Longest challenge we echo back. Meta sends a short integer; the bound (and the
/// visible-ASCII rule) keeps the endpoint from reflecting arbitrary content.
const MAX_CHALLENGE_LEN: usize = 256;

/// The query parameters of a handshake request, as the HTTP layer decoded them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandshakeQuery<'a> {
    /// `hub.mode`: `subscribe` when Meta verifies the callback URL.
    pub mode: Option<&'a str>,
    /// `hub.verify_token`: the token entered in the app dashboard.
    pub verify_token: Option<&'a str>,
    /// `hub.challenge`: the value to echo back.
    pub challenge: Option<&'a str>,
}

impl<'a> HandshakeQuery<'a> {
    /// Pick the three `hub.*` parameters out of decoded `(name, value)` pairs (e.g. API
    /// Gateway's `queryStringParameters`); other parameters are ignored, and when a
    /// name repeats the first value wins.
    pub fn from_pairs<I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut query = Self::default();
        for (name, value) in pairs {
            let slot = match name {
                "hub.mode" => &mut query.mode,
                "hub.verify_token" => &mut query.verify_token,
                "hub.challenge" => &mut query.challenge,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        query
    }
}

/// Why a handshake was refused (answer 403). Variants are metric labels; none carries
/// the configured token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeRefusal {
    /// Our verify token is empty: no request may verify against it.
    #[error("no verify token is configured")]
    NotConfigured,
    /// `hub.mode` is absent or not `subscribe`.
    #[error("hub.mode is not subscribe")]
    WrongMode,
    /// `hub.verify_token` is absent.
    #[error("hub.verify_token is missing")]
    MissingToken,
    /// `hub.verify_token` is not our token.
    #[error("hub.verify_token does not match")]
    TokenMismatch,
    /// `hub.challenge` is absent or empty.
    #[error("hub.challenge is missing")]
    MissingChallenge,
    /// `hub.challenge` is too long or has characters other than visible ASCII.
    #[error("hub.challenge is not 1-256 visible ASCII characters")]
    InvalidChallenge,
}

impl HandshakeRefusal {
    /// Stable snake_case label for metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            HandshakeRefusal::NotConfigured => "not_configured",
            HandshakeRefusal::WrongMode => "wrong_mode",
            HandshakeRefusal::MissingToken => "missing_token",
            HandshakeRefusal::TokenMismatch => "token_mismatch",
            HandshakeRefusal::MissingChallenge => "missing_challenge",
            HandshakeRefusal::InvalidChallenge => "invalid_challenge",
        }
    }
}

/// Answer a handshake: `Ok(challenge)` is the body of a `200 text/plain` answer,
/// `Err` is a 403.
pub fn answer_handshake<'a>(
    query: &HandshakeQuery<'a>,
    configured_token: &str,
) -> Result<&'a str, HandshakeRefusal> {
    if configured_token.is_empty() {
        return Err(HandshakeRefusal::NotConfigured);
    }
    if query.mode != Some(SUBSCRIBE) {
        return Err(HandshakeRefusal::WrongMode);
    }
    let offered = query.verify_token.ok_or(HandshakeRefusal::MissingToken)?;
    if !tokens_equal(offered, configured_token) {
        return Err(HandshakeRefusal::TokenMismatch);
    }
    let challenge = query
        .challenge
        .filter(|c| !c.is_empty())
        .ok_or(HandshakeRefusal::MissingChallenge)?;
    let printable = challenge.bytes().all(|b| b.is_ascii_graphic());
    if challenge.len() > MAX_CHALLENGE_LEN || !printable {
        return Err(HandshakeRefusal::InvalidChallenge);
    }
    Ok(challenge)
}

/// Constant-time token comparison. Hashing both sides first makes the compared
/// slices equally long, so not even the token's length leaks through timing.
fn tokens_equal(offered: &str, configured: &str) -> bool {
    let a = Sha256::digest(offered.as_bytes());
    let b = Sha256::digest(configured.as_bytes());
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "meatball-verify-7f3a";

    fn query<'a>(
        mode: Option<&'a str>,
        token: Option<&'a str>,
        challenge: Option<&'a str>,
    ) -> HandshakeQuery<'a> {
        HandshakeQuery {
            mode,
            verify_token: token,
            challenge,
        }
    }

    #[test]
    fn handshake_matrix() {
        let long = "9".repeat(MAX_CHALLENGE_LEN + 1);
        let longest = "9".repeat(MAX_CHALLENGE_LEN);
        let s = Some("subscribe");
        let t = Some(TOKEN);
        let c = Some("1158201444");
        let cases: Vec<(HandshakeQuery<'_>, &str, Result<&str, HandshakeRefusal>)> = vec![
            (query(s, t, c), TOKEN, Ok("1158201444")),
            (query(s, t, Some(&longest)), TOKEN, Ok(&longest)),
            (query(s, t, c), "", Err(HandshakeRefusal::NotConfigured)),
            (
                query(s, Some(""), c),
                "",
                Err(HandshakeRefusal::NotConfigured),
            ),
            (query(None, t, c), TOKEN, Err(HandshakeRefusal::WrongMode)),
            (
                query(Some("unsubscribe"), t, c),
                TOKEN,
                Err(HandshakeRefusal::WrongMode),
            ),
            (
                query(Some("SUBSCRIBE"), t, c),
                TOKEN,
                Err(HandshakeRefusal::WrongMode),
            ),
            (
                query(s, None, c),
                TOKEN,
                Err(HandshakeRefusal::MissingToken),
            ),
            (
                query(s, Some(""), c),
                TOKEN,
                Err(HandshakeRefusal::TokenMismatch),
            ),
            (
                query(s, Some("meatball-verify-7f3b"), c),
                TOKEN,
                Err(HandshakeRefusal::TokenMismatch),
            ),
            (
                query(s, Some("meatball-verify-7f3a "), c),
                TOKEN,
                Err(HandshakeRefusal::TokenMismatch),
            ),
            (
                query(s, t, None),
                TOKEN,
                Err(HandshakeRefusal::MissingChallenge),
            ),
            (
                query(s, t, Some("")),
                TOKEN,
                Err(HandshakeRefusal::MissingChallenge),
            ),
            (
                query(s, t, Some("<script>x</script> y")),
                TOKEN,
                Err(HandshakeRefusal::InvalidChallenge),
            ),
            (
                query(s, t, Some(&long)),
                TOKEN,
                Err(HandshakeRefusal::InvalidChallenge),
            ),
        ];
        for (q, configured, expected) in cases {
            assert_eq!(answer_handshake(&q, configured), expected, "{q:?}");
        }
    }

    #[test]
    fn a_wrong_token_is_refused_before_the_challenge_is_looked_at() {
        let q = query(Some("subscribe"), Some("guess"), None);
        assert_eq!(
            answer_handshake(&q, TOKEN),
            Err(HandshakeRefusal::TokenMismatch)
        );
    }

    #[test]
    fn query_pairs_are_picked_by_name_and_the_first_value_wins() {
        let pairs = [
            ("foo", "bar"),
            ("hub.challenge", "42"),
            ("hub.mode", "subscribe"),
            ("hub.verify_token", TOKEN),
            ("hub.challenge", "43"),
        ];
        let q = HandshakeQuery::from_pairs(pairs);
        assert_eq!(q, query(Some("subscribe"), Some(TOKEN), Some("42")));
        assert_eq!(answer_handshake(&q, TOKEN), Ok("42"));
    }

    #[test]
    fn refusal_labels_are_distinct() {
        let all = [
            HandshakeRefusal::NotConfigured,
            HandshakeRefusal::WrongMode,
            HandshakeRefusal::MissingToken,
            HandshakeRefusal::TokenMismatch,
            HandshakeRefusal::MissingChallenge,
            HandshakeRefusal::InvalidChallenge,
        ];
        let labels: std::collections::HashSet<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
