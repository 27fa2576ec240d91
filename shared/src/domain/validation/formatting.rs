//! Meta's rule for template values (132018): no newline or tab, at most 4 spaces in a row.

use super::{Problem, code};
use serde::{Deserialize, Serialize};

/// Longest run of spaces Meta accepts inside a template value.
const MAX_CONSECUTIVE_SPACES: usize = 4;

/// What to do with template values that break Meta's formatting rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormattingPolicy {
    /// Refuse them with `newline_or_tab` / `too_many_consecutive_spaces`.
    #[default]
    Strict,
    /// Replace newlines and tabs with a space, collapse runs of spaces to one, and report
    /// each change in [`ValidatedRequest::sanitized`](super::ValidatedRequest::sanitized).
    Sanitize,
}

/// One value that [`FormattingPolicy::Sanitize`] rewrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sanitized {
    /// Path of the value in the request.
    pub field: String,
    /// What was done, e.g. `replaced 1 newline/tab with a space; collapsed 2 runs of spaces`.
    pub change: String,
}

/// Characters Meta treats as a line break or tab inside a template value.
pub fn is_line_break_or_tab(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\t' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// The longest run of U+0020 spaces in `text`.
fn longest_space_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == ' ' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// Problems of `text` under the strict rule, reported at `field`.
pub(crate) fn check(text: &str, field: &str, problems: &mut Vec<Problem>) {
    if text.chars().any(is_line_break_or_tab) {
        problems.push(Problem::new(
            field,
            code::NEWLINE_OR_TAB,
            "template values must not contain newlines or tabs",
        ));
    }
    if longest_space_run(text) > MAX_CONSECUTIVE_SPACES {
        problems.push(Problem::new(
            field,
            code::TOO_MANY_CONSECUTIVE_SPACES,
            "template values must not contain more than 4 consecutive spaces",
        ));
    }
}

/// `text` with line breaks and tabs replaced by a space and runs of spaces collapsed to
/// one, and a description of what changed (`None` if nothing did).
pub fn sanitize(text: &str) -> (String, Option<String>) {
    let mut out = String::with_capacity(text.len());
    let (mut replaced, mut collapsed) = (0usize, 0usize);
    let mut previous_space = false;
    for c in text.chars() {
        let c = if is_line_break_or_tab(c) {
            replaced += 1;
            ' '
        } else {
            c
        };
        if c == ' ' && previous_space {
            collapsed += 1;
            continue;
        }
        previous_space = c == ' ';
        out.push(c);
    }
    let mut parts = Vec::new();
    if replaced > 0 {
        parts.push(format!("replaced {replaced} newline/tab with a space"));
    }
    if collapsed > 0 {
        parts.push(format!("removed {collapsed} repeated spaces"));
    }
    let change = (!parts.is_empty()).then(|| parts.join("; "));
    (out, change)
}

/// Apply `policy` to one value: sanitize it in place (recording the change) or check it.
pub(crate) fn apply(
    policy: FormattingPolicy,
    text: &mut String,
    field: &str,
    problems: &mut Vec<Problem>,
    changes: &mut Vec<Sanitized>,
) {
    match policy {
        FormattingPolicy::Strict => check(text, field, problems),
        FormattingPolicy::Sanitize => {
            let (clean, change) = sanitize(text);
            if let Some(change) = change {
                *text = clean;
                changes.push(Sanitized {
                    field: field.to_owned(),
                    change,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_check_reports_line_breaks_and_long_space_runs() {
        let mut p = Vec::new();
        check("a\tb     c", "template.body[0]", &mut p);
        let codes: Vec<_> = p.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [code::NEWLINE_OR_TAB, code::TOO_MANY_CONSECUTIVE_SPACES]
        );
        p.clear();
        check("four    spaces are fine", "x", &mut p);
        assert!(p.is_empty());
    }

    #[test]
    fn sanitize_replaces_breaks_and_collapses_spaces_and_says_so() {
        let (clean, change) = sanitize("Hi\r\nAna,   welcome\t!");
        assert_eq!(clean, "Hi Ana, welcome !");
        assert_eq!(
            change.as_deref(),
            Some("replaced 3 newline/tab with a space; removed 3 repeated spaces")
        );
        assert_eq!(sanitize("clean text"), ("clean text".to_owned(), None));
    }
}
