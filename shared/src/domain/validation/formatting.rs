//! Meta's rule for template values (132018): no newline or tab, at most 4 spaces in a
//! row; and ours: no control, bidirectional-override or zero-width character, which a
//! recipient cannot see but which change how a value reads (a reversed amount, a
//! spoofed link) or break Meta's checks.

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
    /// Replace newlines and tabs with a space, remove invisible and control characters,
    /// shorten runs of more than 4 spaces to 4, and report each change in
    /// [`ValidatedRequest::sanitized`](super::ValidatedRequest::sanitized).
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

/// Characters refused in template values (other than line breaks and tabs): C0 and C1
/// controls and DEL (NUL included), bidirectional embeddings, overrides, isolates and
/// marks, zero-width spaces and joiners, the word joiner and the BOM. A zero-width
/// joiner between two non-ASCII characters (an emoji sequence, an Indic conjunct) is
/// kept: see [`invisible_at`].
pub fn is_invisible_or_control(c: char) -> bool {
    !is_line_break_or_tab(c)
        && (c.is_control()
            || matches!(
                c,
                '\u{061C}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{FEFF}'
            ))
}

/// Whether the character at `i` of `chars` is refused: [`is_invisible_or_control`],
/// except a zero-width joiner (U+200D) between two non-ASCII characters.
fn invisible_at(chars: &[char], i: usize) -> bool {
    let c = chars[i];
    if c == '\u{200D}' {
        let around = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|n| !n.is_ascii() && !is_invisible_or_control(*n))
        };
        return !(around(i.checked_sub(1)) && around(i.checked_add(1)));
    }
    is_invisible_or_control(c)
}

/// The first refused invisible or control character of `text`, if any.
fn first_invisible(text: &str) -> Option<char> {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len())
        .find(|&i| invisible_at(&chars, i))
        .map(|i| chars[i])
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
    if let Some(c) = first_invisible(text) {
        problems.push(Problem::new(
            field,
            code::INVISIBLE_CHARACTER,
            format!(
                "template values must not contain control, bidirectional or zero-width characters (found U+{:04X})",
                u32::from(c)
            ),
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

/// `text` with line breaks and tabs replaced by a space, invisible and control
/// characters removed, and runs of more than 4 spaces shortened to 4 (Meta allows 4),
/// and a description of what changed (`None` if nothing did).
pub fn sanitize(text: &str) -> (String, Option<String>) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let (mut replaced, mut removed, mut shortened) = (0usize, 0usize, 0usize);
    let mut run = 0usize;
    for i in 0..chars.len() {
        if invisible_at(&chars, i) {
            removed += 1;
            continue;
        }
        let c = if is_line_break_or_tab(chars[i]) {
            replaced += 1;
            ' '
        } else {
            chars[i]
        };
        run = if c == ' ' { run + 1 } else { 0 };
        if run > MAX_CONSECUTIVE_SPACES {
            shortened += 1;
            continue;
        }
        out.push(c);
    }
    let mut parts = Vec::new();
    if replaced > 0 {
        parts.push(format!("replaced {replaced} newline/tab with a space"));
    }
    if removed > 0 {
        parts.push(format!("removed {removed} invisible or control characters"));
    }
    if shortened > 0 {
        parts.push(format!("removed {shortened} spaces past 4 in a row"));
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

/// How a free-form text field may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FreeText {
    /// Message text (a text body, a caption, an interactive body or footer): line
    /// breaks and tabs allowed, invisible and control characters not.
    MultiLine,
    /// A label (a title, a header, a file name): no line break or tab either.
    SingleLine,
}

/// `text` with invisible and control characters removed, and under
/// [`FreeText::SingleLine`] line breaks and tabs replaced by a space first, with a
/// description of what changed. Strictly valid afterwards: a kept zero-width joiner sits
/// between two visible non-ASCII characters, and those are never removed.
fn sanitize_free(text: &str, kind: FreeText) -> (String, Option<String>) {
    let mut replaced = 0usize;
    let chars: Vec<char> = text
        .chars()
        .map(|c| {
            if kind == FreeText::SingleLine && is_line_break_or_tab(c) {
                replaced += 1;
                ' '
            } else {
                c
            }
        })
        .collect();
    let kept: String = (0..chars.len())
        .filter(|&i| !invisible_at(&chars, i))
        .map(|i| chars[i])
        .collect();
    let removed = chars.len() - kept.chars().count();
    let mut parts = Vec::new();
    if replaced > 0 {
        parts.push(format!("replaced {replaced} newline/tab with a space"));
    }
    if removed > 0 {
        parts.push(format!("removed {removed} invisible or control characters"));
    }
    let change = (!parts.is_empty()).then(|| parts.join("; "));
    (kept, change)
}

/// Problems of a free-form `text` under the strict rule, reported at `field`.
pub(crate) fn check_free(text: &str, kind: FreeText, field: &str, problems: &mut Vec<Problem>) {
    if kind == FreeText::SingleLine && text.chars().any(is_line_break_or_tab) {
        problems.push(Problem::new(
            field,
            code::NEWLINE_OR_TAB,
            format!("`{field}` must be one line: no newline or tab"),
        ));
    }
    if let Some(c) = first_invisible(text) {
        problems.push(Problem::new(
            field,
            code::INVISIBLE_CHARACTER,
            format!(
                "`{field}` must not contain control, bidirectional or zero-width characters (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
}

/// Apply `policy` to one free-form text: sanitize it in place (recording the change) or
/// check it.
pub(crate) fn apply_free(
    policy: FormattingPolicy,
    kind: FreeText,
    text: &mut String,
    field: &str,
    problems: &mut Vec<Problem>,
    changes: &mut Vec<Sanitized>,
) {
    match policy {
        FormattingPolicy::Strict => check_free(text, kind, field, problems),
        FormattingPolicy::Sanitize => {
            let (clean, change) = sanitize_free(text, kind);
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
    fn sanitize_replaces_breaks_keeps_four_spaces_and_says_so() {
        let (clean, change) = sanitize("Hi\r\nAna,   welcome\t!      end");
        // Meta allows up to 4 spaces in a row: "\r\n" -> 2, 3 kept, 6 -> 4.
        assert_eq!(clean, "Hi  Ana,   welcome !    end");
        assert_eq!(
            change.as_deref(),
            Some("replaced 3 newline/tab with a space; removed 2 spaces past 4 in a row")
        );
        assert_eq!(sanitize("clean text"), ("clean text".to_owned(), None));
    }

    #[test]
    fn invisible_and_control_characters_are_refused_or_removed() {
        for bad in [
            "pay\u{0}ment",
            "total \u{202E}001$",
            "a\u{2066}b\u{2069}",
            "zero\u{200B}width",
            "\u{FEFF}bom",
            "bell\u{7}",
            "c1\u{9B}",
            "mark\u{200F}",
        ] {
            let mut p = Vec::new();
            check(bad, "template.body[0]", &mut p);
            assert_eq!(p.len(), 1, "{bad:?}");
            assert_eq!(p[0].code, code::INVISIBLE_CHARACTER);
            assert_eq!(p[0].field, "template.body[0]");
            let (clean, change) = sanitize(bad);
            assert!(first_invisible(&clean).is_none(), "{clean:?}");
            assert!(change.unwrap().contains("invisible or control"));
        }
        // An emoji sequence keeps its joiner; a joiner between ASCII letters does not.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        let mut p = Vec::new();
        check(family, "x", &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(sanitize(family), (family.to_owned(), None));
        check("a\u{200D}b", "x", &mut p);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn free_form_texts_keep_line_breaks_where_allowed_and_lose_invisible_characters() {
        let mut p = Vec::new();
        check_free("Hi\nthere\t!", FreeText::MultiLine, "text.body", &mut p);
        assert!(p.is_empty(), "{p:?}");
        check_free("Yes\nplease", FreeText::SingleLine, "t", &mut p);
        assert_eq!(p[0].code, code::NEWLINE_OR_TAB);
        p.clear();
        check_free(
            "pay\u{202E}ment",
            FreeText::MultiLine,
            "image.caption",
            &mut p,
        );
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].field.as_str(), p[0].code),
            ("image.caption", code::INVISIBLE_CHARACTER)
        );
        // Five spaces are fine outside templates.
        p.clear();
        check_free("a     b", FreeText::SingleLine, "t", &mut p);
        assert!(p.is_empty());

        let (clean, change) = sanitize_free("Line\n\u{200B}two", FreeText::MultiLine);
        assert_eq!(clean, "Line\ntwo");
        assert_eq!(
            change.as_deref(),
            Some("removed 1 invisible or control characters")
        );
        let (clean, _) = sanitize_free("Yes\u{2028}\u{200D}\u{00E9}", FreeText::SingleLine);
        assert_eq!(clean, "Yes \u{00E9}");
        let family = "\u{1F468}\u{200D}\u{1F469}";
        assert_eq!(
            sanitize_free(family, FreeText::SingleLine),
            (family.to_owned(), None)
        );
    }

    #[test]
    fn sanitized_free_form_texts_pass_the_strict_check() {
        for text in [
            "a\u{2028}\u{200D}\u{00E9}",
            "\u{00E9}\u{200D}\u{200D}\u{00E9}",
            "\u{0}\u{7}x\r\n",
            "\u{00E9}\u{85}\u{200D}\u{00E9}",
        ] {
            for kind in [FreeText::MultiLine, FreeText::SingleLine] {
                let (clean, _) = sanitize_free(text, kind);
                let mut p = Vec::new();
                check_free(&clean, kind, "x", &mut p);
                assert!(p.is_empty(), "{text:?} -> {clean:?}: {p:?}");
            }
        }
    }
}
