//! The limits of the free-form message types (text, media, interactive, location,
//! reaction) and of a reply `context`, as Meta documents them:
//!
//! | Field | Limit | Source |
//! |---|---|---|
//! | `text.body` | 1–4096 characters | Meta "Text messages" |
//! | media `caption` | ≤ 1024 characters; image, document, video only | Meta "Image/Document/Video messages" |
//! | media `link` / `id` | exactly one; `link` https | Meta media message pages |
//! | reply buttons | 1–3; `title` ≤ 20 and unique; `id` ≤ 256 and unique | Meta "Interactive reply buttons messages" |
//! | reply-buttons `body.text` | ≤ 1024 characters | same |
//! | list `action.button` | ≤ 20 characters | Meta "Interactive list messages" |
//! | list `body.text` | ≤ 4096 characters | same (Nov 2025; older pages and SDKs say 1024) |
//! | list sections | 1–10, at most 10 rows in all; `title` ≤ 24, required with several sections | same |
//! | list rows | `id` ≤ 200 and unique, `title` ≤ 24, `description` ≤ 72 | same |
//! | `header` | text ≤ 60 (lists: text only); buttons also image, video, document | both pages |
//! | `footer.text` | ≤ 60 characters | both pages |
//! | `location` | latitude −90..90, longitude −180..180 (checked when parsing) | Meta "Location messages" |
//! | `reaction` | `message_id` a wamid; `emoji` one emoji or `""` (removes) | Meta "Reaction messages" |
//! | `context` | a wamid; not with reactions ("cannot be sent as a contextual reply") nor templates (the quote is not shown) | Meta "Contextual replies" |
//!
//! Texts a recipient reads follow the tenant's [`FormattingPolicy`]: control,
//! bidirectional and zero-width characters are refused (or removed), and labels must
//! be one line. Identifiers (ids, links, wamids) are never rewritten: they are refused.

use super::formatting::{self, FormattingPolicy, FreeText, Sanitized};
use super::rules::{max_chars, not_empty};
use super::{MAX_TEXT_BODY_CHARS, Problem, child, code, item};
use crate::domain::request::{
    Content, InteractiveAction, InteractiveHeader, InteractiveMessage, MediaMessage, MediaSource,
    ReplyContext,
};
use std::collections::HashSet;

/// Longest media caption.
pub const MAX_CAPTION_CHARS: usize = 1024;
/// Most reply buttons.
pub const MAX_REPLY_BUTTONS: usize = 3;
/// Longest reply button title.
pub const MAX_BUTTON_TITLE_CHARS: usize = 20;
/// Longest reply button id.
pub const MAX_BUTTON_ID_CHARS: usize = 256;
/// Longest body of a reply-buttons message.
pub const MAX_BUTTONS_BODY_CHARS: usize = 1024;
/// Longest body of a list message.
pub const MAX_LIST_BODY_CHARS: usize = 4096;
/// Longest label of a list's button.
pub const MAX_LIST_BUTTON_CHARS: usize = 20;
/// Most sections of a list.
pub const MAX_LIST_SECTIONS: usize = 10;
/// Most rows of a list, all sections together.
pub const MAX_LIST_ROWS: usize = 10;
/// Longest section title.
pub const MAX_SECTION_TITLE_CHARS: usize = 24;
/// Longest row title.
pub const MAX_ROW_TITLE_CHARS: usize = 24;
/// Longest row description.
pub const MAX_ROW_DESCRIPTION_CHARS: usize = 72;
/// Longest row id.
pub const MAX_ROW_ID_CHARS: usize = 200;
/// Longest interactive text header.
pub const MAX_INTERACTIVE_HEADER_CHARS: usize = 60;
/// Longest interactive footer.
pub const MAX_FOOTER_CHARS: usize = 60;

/// Check (and under [`FormattingPolicy::Sanitize`] clean) a free-form content.
pub(super) fn check_content(
    content: &mut Content,
    policy: FormattingPolicy,
    p: &mut Vec<Problem>,
    changes: &mut Vec<Sanitized>,
) {
    let key = content.type_name();
    let mut fmt = |text: &mut String, kind: FreeText, path: &str, p: &mut Vec<Problem>| {
        formatting::apply_free(policy, kind, text, path, p, changes);
    };
    match content {
        Content::Template(_) => {}
        Content::Text(text) => {
            fmt(&mut text.body, FreeText::MultiLine, "text.body", p);
            if text.body.trim().is_empty() {
                p.push(Problem::new(
                    "text.body",
                    code::MISSING_PARAMETER,
                    "text.body must not be empty",
                ));
            }
            let chars = text.body.chars().count();
            if chars > MAX_TEXT_BODY_CHARS {
                p.push(Problem::new(
                    "text.body",
                    code::TEXT_TOO_LONG,
                    format!("text.body has {chars} characters; the limit is {MAX_TEXT_BODY_CHARS}"),
                ));
            }
        }
        Content::Image(m)
        | Content::Document(m)
        | Content::Video(m)
        | Content::Audio(m)
        | Content::Sticker(m) => check_media(m, key, &mut fmt, p),
        Content::Interactive(i) => check_interactive(i, &mut fmt, p),
        Content::Location(l) => {
            if let Some(name) = &mut l.name {
                fmt(name, FreeText::SingleLine, "location.name", p);
                not_empty(name, "location.name", p);
            }
            if let Some(address) = &mut l.address {
                fmt(address, FreeText::MultiLine, "location.address", p);
                not_empty(address, "location.address", p);
            }
        }
        Content::Reaction(r) => {
            check_wamid(&r.message_id, "reaction.message_id", p);
            if !r.emoji.is_empty() && !is_single_emoji(&r.emoji) {
                p.push(Problem::new(
                    "reaction.emoji",
                    code::INVALID_EMOJI,
                    "reaction.emoji must be one emoji, or empty to remove the reaction",
                ));
            }
        }
    }
}

/// A reply `context` for `content`.
pub(super) fn check_context(context: &ReplyContext, content: Option<&str>, p: &mut Vec<Problem>) {
    check_wamid(&context.message_id, "context.message_id", p);
    match content {
        Some("reaction") => p.push(Problem::new(
            "context",
            code::CONTEXT_NOT_ALLOWED,
            "a reaction cannot be sent as a reply: leave out `context`",
        )),
        Some("template") => p.push(Problem::new(
            "context",
            code::CONTEXT_NOT_ALLOWED,
            "WhatsApp does not show a template as a reply: leave out `context`",
        )),
        _ => {}
    }
}

type Fmt<'a> = dyn FnMut(&mut String, FreeText, &str, &mut Vec<Problem>) + 'a;

fn check_media(m: &mut MediaMessage, at: &str, fmt: &mut Fmt<'_>, p: &mut Vec<Problem>) {
    match &m.source {
        MediaSource::Link(link) => check_link(link, &child(at, "link"), p),
        MediaSource::Id(id) => {
            let path = child(at, "id");
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                p.push(Problem::new(
                    path,
                    code::INVALID_VALUE,
                    format!("`{at}.id` must be the numeric id of media uploaded to WhatsApp"),
                ));
            }
        }
    }
    if let Some(caption) = &mut m.caption {
        let path = child(at, "caption");
        fmt(caption, FreeText::MultiLine, &path, p);
        not_empty(caption, &path, p);
        max_chars(caption, MAX_CAPTION_CHARS, &path, p);
    }
    if let Some(filename) = &mut m.filename {
        let path = child(at, "filename");
        fmt(filename, FreeText::SingleLine, &path, p);
        not_empty(filename, &path, p);
    }
}

fn check_link(link: &str, path: &str, p: &mut Vec<Problem>) {
    let https = link
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        && link.len() > 8
        && !link
            .chars()
            .any(|c| c.is_whitespace() || formatting::is_invisible_or_control(c));
    if !https {
        p.push(Problem::new(
            path,
            code::MEDIA_NOT_HTTPS,
            "media links must be https:// URLs without spaces or control characters",
        ));
    }
}

/// An identifier the recipient's reply echoes back: never rewritten, so refused when
/// empty, too long, or holding a line break or an invisible character.
fn check_id(id: &str, limit: usize, path: &str, p: &mut Vec<Problem>) {
    not_empty(id, path, p);
    max_chars(id, limit, path, p);
    formatting::check_free(id, FreeText::SingleLine, path, p);
}

fn check_wamid(id: &str, path: &str, p: &mut Vec<Problem>) {
    let ok = id
        .strip_prefix("wamid.")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_graphic()));
    if !ok {
        p.push(Problem::new(
            path,
            code::INVALID_MESSAGE_ID,
            format!("`{path}` must be a WhatsApp message id (wamid.…)"),
        ));
    }
}

/// A label: formatted, not empty, at most `limit` characters.
fn label(text: &mut String, limit: usize, path: &str, fmt: &mut Fmt<'_>, p: &mut Vec<Problem>) {
    fmt(text, FreeText::SingleLine, path, p);
    not_empty(text, path, p);
    max_chars(text, limit, path, p);
}

fn check_interactive(i: &mut InteractiveMessage, fmt: &mut Fmt<'_>, p: &mut Vec<Problem>) {
    let at = "interactive";
    let is_list = matches!(i.action, InteractiveAction::List(_));
    if let Some(header) = &mut i.header {
        let path = child(at, "header");
        if is_list && !matches!(header, InteractiveHeader::Text { .. }) {
            p.push(Problem::new(
                child(&path, "type"),
                code::INVALID_VALUE,
                format!(
                    "a list message takes a text header only, not {}",
                    header.type_name()
                ),
            ));
        }
        let media_path = child(&path, header.type_name());
        match header {
            InteractiveHeader::Text { text } => label(
                text,
                MAX_INTERACTIVE_HEADER_CHARS,
                &child(&path, "text"),
                fmt,
                p,
            ),
            other => {
                if let Some(media) = other.media_mut() {
                    check_media(media, &media_path, fmt, p);
                }
            }
        }
    }
    let body_path = "interactive.body.text";
    fmt(&mut i.body.text, FreeText::MultiLine, body_path, p);
    not_empty(&i.body.text, body_path, p);
    let body_limit = if is_list {
        MAX_LIST_BODY_CHARS
    } else {
        MAX_BUTTONS_BODY_CHARS
    };
    max_chars(&i.body.text, body_limit, body_path, p);
    if let Some(footer) = &mut i.footer {
        let path = "interactive.footer.text";
        fmt(&mut footer.text, FreeText::MultiLine, path, p);
        not_empty(&footer.text, path, p);
        max_chars(&footer.text, MAX_FOOTER_CHARS, path, p);
    }
    let action = "interactive.action";
    match &mut i.action {
        InteractiveAction::Button(b) => {
            let path = child(action, "buttons");
            if b.buttons.is_empty() || b.buttons.len() > MAX_REPLY_BUTTONS {
                p.push(Problem::new(
                    &path,
                    code::INVALID_ITEM_COUNT,
                    format!(
                        "a reply-buttons message has 1 to {MAX_REPLY_BUTTONS} buttons, not {}",
                        b.buttons.len()
                    ),
                ));
            }
            let (mut ids, mut titles) = (HashSet::new(), HashSet::new());
            for (n, button) in b.buttons.iter_mut().enumerate() {
                let reply = child(&item(&path, n), "reply");
                let id_path = child(&reply, "id");
                check_id(&button.id, MAX_BUTTON_ID_CHARS, &id_path, p);
                unique(&mut ids, &button.id, &id_path, "button id", p);
                let title_path = child(&reply, "title");
                label(
                    &mut button.title,
                    MAX_BUTTON_TITLE_CHARS,
                    &title_path,
                    fmt,
                    p,
                );
                unique(&mut titles, &button.title, &title_path, "button title", p);
            }
        }
        InteractiveAction::List(l) => {
            label(
                &mut l.button,
                MAX_LIST_BUTTON_CHARS,
                &child(action, "button"),
                fmt,
                p,
            );
            let path = child(action, "sections");
            let rows: usize = l.sections.iter().map(|s| s.rows.len()).sum();
            if l.sections.is_empty() || l.sections.len() > MAX_LIST_SECTIONS {
                p.push(Problem::new(
                    &path,
                    code::INVALID_ITEM_COUNT,
                    format!(
                        "a list has 1 to {MAX_LIST_SECTIONS} sections, not {}",
                        l.sections.len()
                    ),
                ));
            } else if rows > MAX_LIST_ROWS {
                p.push(Problem::new(
                    &path,
                    code::INVALID_ITEM_COUNT,
                    format!(
                        "a list has at most {MAX_LIST_ROWS} rows in all its sections, not {rows}"
                    ),
                ));
            }
            let several = l.sections.len() > 1;
            let mut ids = HashSet::new();
            for (s, section) in l.sections.iter_mut().enumerate() {
                let section_path = item(&path, s);
                let title_path = child(&section_path, "title");
                match &mut section.title {
                    Some(title) => label(title, MAX_SECTION_TITLE_CHARS, &title_path, fmt, p),
                    None if several => p.push(Problem::new(
                        &title_path,
                        code::MISSING_FIELD,
                        "each section needs a title when a list has several sections",
                    )),
                    None => {}
                }
                let rows_path = child(&section_path, "rows");
                if section.rows.is_empty() {
                    p.push(Problem::new(
                        &rows_path,
                        code::INVALID_ITEM_COUNT,
                        "a section needs at least one row",
                    ));
                }
                for (r, row) in section.rows.iter_mut().enumerate() {
                    let row_path = item(&rows_path, r);
                    let id_path = child(&row_path, "id");
                    check_id(&row.id, MAX_ROW_ID_CHARS, &id_path, p);
                    unique(&mut ids, &row.id, &id_path, "row id", p);
                    label(
                        &mut row.title,
                        MAX_ROW_TITLE_CHARS,
                        &child(&row_path, "title"),
                        fmt,
                        p,
                    );
                    if let Some(d) = &mut row.description {
                        label(
                            d,
                            MAX_ROW_DESCRIPTION_CHARS,
                            &child(&row_path, "description"),
                            fmt,
                            p,
                        );
                    }
                }
            }
        }
    }
}

fn unique(seen: &mut HashSet<String>, value: &str, path: &str, what: &str, p: &mut Vec<Problem>) {
    if !seen.insert(value.to_owned()) {
        p.push(Problem::new(
            path,
            code::DUPLICATE_VALUE,
            format!("{what} `{value}` is given twice; each must be unique"),
        ));
    }
}

/// Whether `s` is exactly one emoji: a pictographic character (or a keycap, or a flag
/// of two regional indicators, or a tag sequence), with its variation selector and skin
/// tone, possibly joined to more of them by zero-width joiners (👩‍👩‍👧, 🏳️‍🌈).
pub fn is_single_emoji(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    loop {
        let Some(next) = emoji_element(&chars, i) else {
            return false;
        };
        i = next;
        match chars.get(i) {
            None => return true,
            Some('\u{200D}') => i += 1,
            Some(_) => return false,
        }
    }
}

/// The end of one emoji element starting at `i`.
fn emoji_element(chars: &[char], i: usize) -> Option<usize> {
    let c = *chars.get(i)?;
    let regional = |c: char| ('\u{1F1E6}'..='\u{1F1FF}').contains(&c);
    if regional(c) {
        return chars.get(i + 1).filter(|n| regional(**n)).map(|_| i + 2);
    }
    let mut j = i + 1;
    if c.is_ascii_digit() || c == '#' || c == '*' {
        // A keycap: digit, optional VS16, then U+20E3.
        if chars.get(j) == Some(&'\u{FE0F}') {
            j += 1;
        }
        return (chars.get(j) == Some(&'\u{20E3}')).then_some(j + 1);
    }
    if !is_pictographic(c) {
        return None;
    }
    if chars.get(j) == Some(&'\u{FE0F}') {
        j += 1;
    }
    if chars
        .get(j)
        .is_some_and(|m| ('\u{1F3FB}'..='\u{1F3FF}').contains(m))
    {
        j += 1;
    }
    // Tag sequences (subdivision flags): tags, then CANCEL TAG.
    let tags_start = j;
    while chars
        .get(j)
        .is_some_and(|t| ('\u{E0020}'..='\u{E007E}').contains(t))
    {
        j += 1;
    }
    if j > tags_start {
        if chars.get(j) != Some(&'\u{E007F}') {
            return None;
        }
        j += 1;
    }
    Some(j)
}

/// Characters that are emoji by themselves (an approximation of Unicode's
/// Extended_Pictographic property, without a Unicode table crate).
fn is_pictographic(c: char) -> bool {
    matches!(
        c,
        '\u{00A9}'
            | '\u{00AE}'
            | '\u{203C}'
            | '\u{2049}'
            | '\u{2122}'
            | '\u{2139}'
            | '\u{2194}'..='\u{2199}'
            | '\u{21A9}'..='\u{21AA}'
            | '\u{231A}'..='\u{231B}'
            | '\u{2328}'
            | '\u{23CF}'
            | '\u{23E9}'..='\u{23F3}'
            | '\u{23F8}'..='\u{23FA}'
            | '\u{24C2}'
            | '\u{25AA}'..='\u{25AB}'
            | '\u{25B6}'
            | '\u{25C0}'
            | '\u{25FB}'..='\u{25FE}'
            | '\u{2600}'..='\u{27BF}'
            | '\u{2934}'..='\u{2935}'
            | '\u{2B05}'..='\u{2B07}'
            | '\u{2B1B}'..='\u{2B1C}'
            | '\u{2B50}'
            | '\u{2B55}'
            | '\u{3030}'
            | '\u{303D}'
            | '\u{3297}'
            | '\u{3299}'
            | '\u{1F000}'..='\u{1F1E5}'
            | '\u{1F200}'..='\u{1F3FA}'
            | '\u{1F400}'..='\u{1FAFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_emojis_are_recognised() {
        for ok in [
            "👍",
            "👍🏽",
            "❤️",
            "❤",
            "👩‍👩‍👧",
            "🏳️‍🌈",
            "🇵🇹",
            "1️⃣",
            "#⃣",
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            "😀",
        ] {
            assert!(is_single_emoji(ok), "{ok:?}");
        }
        for bad in [
            "",
            "a",
            "ok",
            "👍👍",
            "👍 ",
            " 👍",
            "🇵",
            "1",
            "👍\u{200D}",
            "\u{200D}👍",
            ":+1:",
            "👍a",
        ] {
            assert!(!is_single_emoji(bad), "{bad:?}");
        }
    }
}
