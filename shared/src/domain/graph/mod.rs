//! The Graph API as the sender sees it: reading the answer to a send, classifying
//! failures into [`FailureClass`](super::FailureClass)es, and the
//! `biz_opaque_callback_data` codec that lets status webhooks find our message.
//!
//! - [`response`] — the success body (`messages[0].id` is the wamid) and
//!   [`read_send_reply`], the one call the sender makes on an HTTP answer.
//! - [`error`] — Meta's error envelope, tolerant of HTML and empty bodies.
//! - [`codes`] — the error-code table, one constant.
//! - [`classify`](mod@classify) — code first, then the HTTP status as a fallback.
//! - [`callback`] — `wa1:<tenant>:<message_id>`.
//! - [`endpoint`] — `/messages` or the Marketing Messages API's `/marketing_messages`.
//!
//! Nothing here sees tokens; error texts that reach logs or storage are cut to a
//! short [`excerpt`] so a large or hostile body is never echoed whole.

pub mod callback;
pub mod classify;
pub mod codes;
pub mod endpoint;
pub mod error;
pub mod response;

pub use callback::{CallbackData, CallbackDataError};
pub use classify::{Classification, classify};
pub use codes::{CODE_CLASSES, CodeRule, rule_for};
pub use endpoint::SendEndpoint;
pub use error::{GraphError, GraphErrorData, ReplyParseError};
pub use response::{SendAccepted, SendContact, SendOutcome, read_send_reply};

/// Longest excerpt of foreign text (a body, a Meta message) kept in errors and logs.
pub const EXCERPT_CHARS: usize = 160;

/// At most [`EXCERPT_CHARS`] characters of `text`, with control characters replaced
/// by spaces (so a body cannot forge log lines) and `…` marking a cut.
pub fn excerpt(text: &str) -> String {
    clip(text, EXCERPT_CHARS)
}

/// At most `max` characters of `text`, single-line, `…` marking a cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 3));
    let mut chars = text.chars();
    for c in chars.by_ref().take(max) {
        out.push(if c.is_control() { ' ' } else { c });
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_single_line_and_marked_when_cut() {
        let long = format!("line1\nline2\r{}", "é".repeat(500));
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        assert!(!e.contains('\n') && !e.contains('\r'));
        assert_eq!(excerpt("short"), "short");
        assert_eq!(excerpt(""), "");
    }
}
