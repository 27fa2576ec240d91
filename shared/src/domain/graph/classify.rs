//! From a Graph answer to a [`Classification`]: the error code first (via
//! [`CODE_CLASSES`](super::CODE_CLASSES)), the HTTP status only when the code is
//! missing or unknown (reference §3: throttles come back as 400 in one table and
//! 429 in another, so the status is a hint).

use super::codes::rule_for;
use super::error::GraphError;
use super::{clip, excerpt};
use crate::domain::failure::{Failure, FailureClass, FailureSource};
use std::time::Duration;

/// Longest `detail` kept from Meta: enough for `error_data.details`, bounded for storage.
const DETAIL_CHARS: usize = 1_000;

/// What a failed (or unreadable) send answer means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Drives retries and alarms.
    pub class: FailureClass,
    /// Meta's error code, when the answer had one (known or not).
    pub code: Option<i64>,
    /// Short title: Meta's message without the `(#code)` prefix, else ours.
    pub title: String,
    /// Meta's `error_data.details` (else `error_user_msg`), or what we could not read.
    pub detail: Option<String>,
    /// A floor on the wait before retrying, from Meta's guidance for this code.
    pub suggested_delay: Option<Duration>,
    /// Meta's trace id, for support tickets.
    pub fbtrace_id: Option<String>,
}

impl Classification {
    /// Delay before retry number `attempt`: the class's backoff (see
    /// [`FailureClass::retry_delay`]) but never less than [`Self::suggested_delay`].
    /// `None` when the class is not retried.
    pub fn retry_delay(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        let backoff = self.class.retry_delay(attempt, jitter)?;
        Some(
            self.suggested_delay
                .map_or(backoff, |floor| backoff.max(floor)),
        )
    }

    /// The failure to store on the message.
    pub fn to_failure(&self, source: FailureSource) -> Failure {
        Failure {
            class: self.class,
            code: self.code,
            title: self.title.clone(),
            detail: self.detail.clone(),
            source,
        }
    }
}

/// Classify a send that did not yield a wamid. `error` is Meta's error envelope when
/// the body had one. Known codes decide alone; otherwise the status does:
///
/// | status | class | why |
/// | --- | --- | --- |
/// | 2xx | ambiguous | "success" without a readable wamid: Meta may have taken it, so never blind-retry |
/// | 401, 403 | tenant | without a known code these are the token or the app's permissions |
/// | 408 | transient | the server gave up reading the request, so it was not processed |
/// | 429 | throttled | |
/// | other 4xx | rejected | the same request would fail again |
/// | 5xx | transient | Meta or a proxy failed; reference §3 says retry unparseable 5xx |
/// | anything else | transient | not a Graph answer (a redirect, a proxy); the retry budget ends it |
pub fn classify(http_status: u16, error: Option<&GraphError>) -> Classification {
    let code = error.and_then(|e| e.code);
    let rule = code.and_then(rule_for);
    let (class, fallback_title) = match rule {
        Some(rule) => (rule.class, rule.reason.to_owned()),
        None => {
            let (class, reason) = class_for_status(http_status);
            (class, format!("HTTP {http_status}: {reason}"))
        }
    };
    let title = error
        .and_then(|e| e.title().or(e.error_user_title.as_deref()))
        .map_or(fallback_title, excerpt);
    let detail = error
        .and_then(|e| e.details().or(e.error_user_msg.as_deref()))
        .map(|d| clip(d, DETAIL_CHARS));
    Classification {
        class,
        code,
        title,
        detail,
        suggested_delay: rule.and_then(|r| r.min_delay),
        fbtrace_id: error.and_then(|e| e.fbtrace_id.as_deref()).map(excerpt),
    }
}

fn class_for_status(status: u16) -> (FailureClass, &'static str) {
    match status {
        200..=299 => (
            FailureClass::Ambiguous,
            "success without a readable message id",
        ),
        401 | 403 => (FailureClass::Tenant, "not authorised"),
        408 => (FailureClass::Transient, "request timeout"),
        429 => (FailureClass::Throttled, "too many requests"),
        400..=499 => (FailureClass::Rejected, "request refused"),
        500..=599 => (FailureClass::Transient, "server error"),
        _ => (FailureClass::Transient, "unexpected status"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::graph::CODE_CLASSES;

    fn with_code(code: i64) -> GraphError {
        GraphError {
            code: Some(code),
            ..GraphError::default()
        }
    }

    #[test]
    fn known_codes_win_over_the_http_status() {
        // Throttles arrive as 400 or 429 depending on who you ask; both are throttles.
        for status in [400, 429, 500] {
            assert_eq!(
                classify(status, Some(&with_code(131056))).class,
                FailureClass::Throttled
            );
        }
        assert_eq!(
            classify(500, Some(&with_code(132001))).class,
            FailureClass::Rejected
        );
        assert_eq!(
            classify(400, Some(&with_code(131000))).class,
            FailureClass::Transient
        );
        assert_eq!(
            classify(401, Some(&with_code(131026))).class,
            FailureClass::Recipient
        );
    }

    #[test]
    fn every_table_row_classifies_the_same_through_classify() {
        for rule in CODE_CLASSES {
            for code in [rule.first, rule.last] {
                let c = classify(400, Some(&with_code(code)));
                assert_eq!(c.class, rule.class, "code {code}");
                assert_eq!(c.code, Some(code));
                assert_eq!(c.suggested_delay, rule.min_delay, "code {code}");
                assert_eq!(c.title, rule.reason, "code {code}");
            }
        }
    }

    #[test]
    fn without_a_known_code_the_status_decides() {
        let cases: &[(u16, FailureClass)] = &[
            (200, FailureClass::Ambiguous),
            (201, FailureClass::Ambiguous),
            (400, FailureClass::Rejected),
            (401, FailureClass::Tenant),
            (403, FailureClass::Tenant),
            (404, FailureClass::Rejected),
            (408, FailureClass::Transient),
            (409, FailureClass::Rejected),
            (429, FailureClass::Throttled),
            (500, FailureClass::Transient),
            (502, FailureClass::Transient),
            (503, FailureClass::Transient),
            (599, FailureClass::Transient),
            (302, FailureClass::Transient),
            (0, FailureClass::Transient),
            (600, FailureClass::Transient),
        ];
        for &(status, class) in cases {
            let none = classify(status, None);
            assert_eq!(none.class, class, "status {status} without error");
            assert_eq!(none.code, None);
            assert!(
                none.title.starts_with(&format!("HTTP {status}")),
                "{}",
                none.title
            );
            let unknown = classify(status, Some(&with_code(424242)));
            assert_eq!(unknown.class, class, "status {status} with unknown code");
            assert_eq!(
                unknown.code,
                Some(424242),
                "unknown codes are still reported"
            );
            assert_eq!(unknown.suggested_delay, None);
        }
    }

    #[test]
    fn an_error_without_a_code_falls_back_to_the_status_but_keeps_meta_texts() {
        let e = GraphError::parse(br#"{"error":{"message":"Something broke","fbtrace_id":"T1"}}"#)
            .unwrap();
        let c = classify(503, Some(&e));
        assert_eq!(c.class, FailureClass::Transient);
        assert_eq!(c.title, "Something broke");
        assert_eq!(c.fbtrace_id.as_deref(), Some("T1"));
    }

    #[test]
    fn realistic_bodies_classify_with_meta_texts_and_waits() {
        let read = |body: &[u8]| GraphError::parse(body).unwrap();
        let pair = classify(
            400,
            Some(&read(include_bytes!(
                "testdata/error-131056-pair-rate.json"
            ))),
        );
        assert_eq!(pair.class, FailureClass::Throttled);
        assert_eq!(pair.code, Some(131056));
        assert_eq!(
            pair.title,
            "(Business Account, Consumer Account) pair rate limit hit"
        );
        assert!(
            pair.detail
                .as_deref()
                .unwrap()
                .starts_with("Message failed to send")
        );
        assert_eq!(pair.fbtrace_id.as_deref(), Some("AazXvLr2dT3u3HC6ngxPuz8"));

        let token = classify(
            401,
            Some(&read(include_bytes!(
                "testdata/error-190-token-expired.json"
            ))),
        );
        assert_eq!(token.class, FailureClass::Tenant);
        assert_eq!(
            token.detail.as_deref(),
            Some("Your session has expired. Please log in again.")
        );

        let template = classify(
            404,
            Some(&read(include_bytes!(
                "testdata/error-132001-template-missing.json"
            ))),
        );
        assert_eq!(template.class, FailureClass::Rejected);
        assert_eq!(
            template.title,
            "Template name does not exist in the translation"
        );
        assert_eq!(
            template.detail.as_deref(),
            Some("template name (order_update) does not exist in en_US")
        );

        let throughput = classify(
            400,
            Some(&read(include_bytes!(
                "testdata/error-130429-throughput.json"
            ))),
        );
        assert_eq!(throughput.class, FailureClass::Throttled);

        let cap = classify(
            400,
            Some(&read(include_bytes!(
                "testdata/error-131049-marketing-cap.json"
            ))),
        );
        assert_eq!(cap.class, FailureClass::Throttled);
        assert_eq!(cap.suggested_delay, Some(Duration::from_secs(24 * 3600)));

        let payment = classify(
            400,
            Some(&read(include_bytes!("testdata/error-131042-payment.json"))),
        );
        assert_eq!(payment.class, FailureClass::Tenant);
    }

    #[test]
    fn retry_delay_honours_meta_floor_and_class_backoff() {
        let cap = classify(400, Some(&with_code(131049)));
        assert_eq!(
            cap.retry_delay(1, 0.0),
            Some(Duration::from_secs(24 * 3600))
        );
        let pair = classify(400, Some(&with_code(131056)));
        // The throttle backoff (15 s at attempt 1) is already above the 6 s floor.
        assert_eq!(
            pair.retry_delay(1, 0.0),
            FailureClass::Throttled.retry_delay(1, 0.0)
        );
        assert_eq!(
            classify(400, Some(&with_code(132001))).retry_delay(1, 0.5),
            None
        );
    }

    #[test]
    fn long_meta_texts_are_clipped() {
        let e = GraphError {
            code: Some(100),
            message: Some("T".repeat(10_000)),
            error_data: Some(crate::domain::graph::GraphErrorData {
                messaging_product: None,
                details: Some("D".repeat(10_000)),
            }),
            ..GraphError::default()
        };
        let c = classify(400, Some(&e));
        assert!(c.title.chars().count() <= crate::domain::graph::EXCERPT_CHARS + 1);
        assert!(c.detail.unwrap().chars().count() <= DETAIL_CHARS + 1);
    }

    #[test]
    fn classifications_become_stored_failures() {
        let f = classify(400, Some(&with_code(131026))).to_failure(FailureSource::Graph);
        assert_eq!(f.class, FailureClass::Recipient);
        assert_eq!(f.code, Some(131026));
        assert_eq!(f.source, FailureSource::Graph);
        assert_eq!(f.title, "message undeliverable to this recipient");
    }
}
