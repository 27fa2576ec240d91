//! Failures that are not a Graph answer, mapped to failure classes.
//!
//! The line that matters is whether the request may have reached Meta (DESIGN §3):
//! before it was written a retry is safe (`transient`); after it, Meta may have
//! accepted the message, so a retry could send it twice (`ambiguous`).
//!
//! | what failed | reqwest says | class | why |
//! | --- | --- | --- | --- |
//! | our bearer header | (checked before sending) | tenant | the token itself is unusable |
//! | building the request | `is_builder` | transient | nothing was sent |
//! | DNS, TCP connect, TLS handshake, connect timeout | `is_connect` (a connect timeout is also `is_timeout`) | transient | no HTTP byte is written before the connection is up |
//! | total timeout, no status line yet | `is_timeout`, not `is_connect` | ambiguous | the connect timeout is shorter, so the connection was up and the request may have been written |
//! | reset, closed or garbled before the status line | anything else | ambiguous | same; unknown errors take the side that never duplicates |
//! | reading the body after a status line | any error, or a body over [`MAX_REPLY_BYTES`] | by status, via [`classify()`] | the status is Meta's word: a 2xx without a readable wamid is ambiguous, a 5xx transient, a 4xx rejected |

use crate::domain::FailureClass;
use crate::domain::graph::{Classification, classify, clip};
use std::error::Error as _;

/// Largest answer body read. Meta's replies are a few hundred bytes; a bigger
/// body is not a Graph reply, and reading it whole would let a proxy exhaust memory.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Longest transport detail kept: the error chain, without the URL.
const DETAIL_CHARS: usize = 300;

/// Classify an error of `RequestBuilder::send`, i.e. one that came before any
/// status line (see the table above).
pub(super) fn send_error(error: reqwest::Error) -> Classification {
    let (class, title) = if error.is_builder() {
        (FailureClass::Transient, "request could not be built")
    } else if error.is_connect() {
        (
            FailureClass::Transient,
            "could not connect; nothing was sent",
        )
    } else if error.is_timeout() {
        (
            FailureClass::Ambiguous,
            "no answer before the timeout; the request may have been received",
        )
    } else {
        (
            FailureClass::Ambiguous,
            "connection failed after the request was sent",
        )
    };
    transport(class, title, error_chain(&error.without_url()))
}

/// Why an answer's body could not be used.
#[derive(Debug)]
pub(super) enum BodyProblem {
    /// The connection failed or timed out while reading it.
    Read(reqwest::Error),
    /// It exceeded [`MAX_REPLY_BYTES`].
    TooLarge,
}

/// Classify an answer whose status line arrived but whose body did not: the
/// status decides, as for any unreadable body, and the detail says what happened.
pub(super) fn body_problem(http_status: u16, problem: BodyProblem) -> Classification {
    let detail = match problem {
        BodyProblem::Read(error) => format!(
            "response body could not be read: {}",
            error_chain(&error.without_url())
        ),
        BodyProblem::TooLarge => format!("response body exceeds {MAX_REPLY_BYTES} bytes"),
    };
    Classification {
        detail: Some(clip(&detail, DETAIL_CHARS)),
        ..classify(http_status, None)
    }
}

/// The tenant's token cannot be sent as a bearer header (empty, or characters
/// HTTP forbids). Nothing about the token is repeated.
pub(super) fn unusable_token(reason: &str) -> Classification {
    transport(FailureClass::Tenant, reason, String::new())
}

fn transport(class: FailureClass, title: &str, detail: String) -> Classification {
    Classification {
        class,
        code: None,
        title: title.to_owned(),
        detail: (!detail.is_empty()).then(|| clip(&detail, DETAIL_CHARS)),
        suggested_delay: None,
        fbtrace_id: None,
    }
}

/// `error: source: source…`, skipping a source that repeats its parent.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let shown = cause.to_string();
        if shown != last && !last.ends_with(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        last = shown;
        source = cause.source();
    }
    text
}
