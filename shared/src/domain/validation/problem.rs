//! One thing wrong with a request, named by the path of the field at fault.

use serde::Serialize;

/// One problem of a request: `{field, code, message}` in a 422 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Path into the request: `to`, `template.body[1]`, `template.body.first_name`,
    /// `template.buttons[0].text`; keys that are not plain words are quoted (`["a.b"]`).
    pub field: String,
    /// Stable snake_case code (see [`code`](super::code)).
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl Problem {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// Stable problem codes; callers may match on them.
pub mod code {
    /// No template of that name in the tenant's catalog.
    pub const UNKNOWN_TEMPLATE: &str = "unknown_template";
    /// The template exists, but not in that exact locale.
    pub const UNKNOWN_LANGUAGE: &str = "unknown_language";
    /// The template's status is not `APPROVED` (paused, pending, rejected, ...).
    pub const TEMPLATE_NOT_APPROVED: &str = "template_not_approved";
    /// The template has a header format or button type this service cannot fill.
    pub const UNSUPPORTED_TEMPLATE: &str = "unsupported_template";
    /// Positional values: wrong number.
    pub const PARAMETER_COUNT_MISMATCH: &str = "parameter_count_mismatch";
    /// A required value is absent or empty.
    pub const MISSING_PARAMETER: &str = "missing_parameter";
    /// A value the template has no variable for.
    pub const UNEXPECTED_PARAMETER: &str = "unexpected_parameter";
    /// Named values for a positional template, or the reverse.
    pub const PARAMETER_FORMAT_MISMATCH: &str = "parameter_format_mismatch";
    /// A `parameter_name` that is not the template's variable.
    pub const PARAMETER_NAME_MISMATCH: &str = "parameter_name_mismatch";
    /// Newline or tab in a template value (Meta: 132018).
    pub const NEWLINE_OR_TAB: &str = "newline_or_tab";
    /// More than 4 consecutive spaces in a template value (Meta: 132018).
    pub const TOO_MANY_CONSECUTIVE_SPACES: &str = "too_many_consecutive_spaces";
    /// A value over its length limit.
    pub const TOO_LONG: &str = "too_long";
    /// A free-form text body over 4096 characters.
    pub const TEXT_TOO_LONG: &str = "text_too_long";
    /// A media link that is not `https://`.
    pub const HEADER_MEDIA_NOT_HTTPS: &str = "header_media_not_https";
    /// A header of another kind than the template's (image for a video header, ...).
    pub const HEADER_KIND_MISMATCH: &str = "header_kind_mismatch";
    /// A button index the template does not have, or given twice.
    pub const BUTTON_INDEX_MISMATCH: &str = "button_index_mismatch";
    /// A button type that does not fit the template's button at that index.
    pub const BUTTON_TYPE_MISMATCH: &str = "button_type_mismatch";
    /// More button values than the template has buttons.
    pub const BUTTON_COUNT_MISMATCH: &str = "button_count_mismatch";
    /// A dynamic URL button without its suffix.
    pub const MISSING_URL_SUFFIX: &str = "missing_url_suffix";
    /// `to` is not a valid E.164 number.
    pub const INVALID_PHONE_NUMBER: &str = "invalid_phone_number";
    /// `from` names a phone number id that is not one of the tenant's numbers.
    pub const UNKNOWN_SENDER_NUMBER: &str = "unknown_sender_number";
    /// A template value holds a control, bidirectional or zero-width character.
    pub const INVISIBLE_CHARACTER: &str = "invisible_character";
    /// `metadata` serializes to more than 1 KiB.
    pub const METADATA_TOO_LARGE: &str = "metadata_too_large";
    /// No content key, or several: a request has exactly one of `template`, `text`,
    /// `image`, `document`, `video`, `audio`, `sticker`, `interactive`, `location` and
    /// `reaction` (the code keeps its first name so callers matching on it still work).
    pub const EXACTLY_ONE_OF_TEMPLATE_OR_TEXT: &str = "exactly_one_of_template_or_text";
    /// A media object with neither or both of `link` and `id`.
    pub const EXACTLY_ONE_OF_LINK_OR_ID: &str = "exactly_one_of_link_or_id";
    /// A media `link` of a free-form message that is not an `https://` URL.
    pub const MEDIA_NOT_HTTPS: &str = "media_not_https";
    /// Too few or too many elements (buttons, sections, rows).
    pub const INVALID_ITEM_COUNT: &str = "invalid_item_count";
    /// A value that must be unique (a button id or title, a row id) given twice.
    pub const DUPLICATE_VALUE: &str = "duplicate_value";
    /// A `message_id` that is not a WhatsApp message id (`wamid.`...).
    pub const INVALID_MESSAGE_ID: &str = "invalid_message_id";
    /// A reaction `emoji` that is not one emoji (or empty, to remove a reaction).
    pub const INVALID_EMOJI: &str = "invalid_emoji";
    /// `context` with a message type that cannot be a quoted reply (template, reaction).
    pub const CONTEXT_NOT_ALLOWED: &str = "context_not_allowed";
    /// `send_at` more than a minute in the past.
    pub const SEND_AT_IN_PAST: &str = "send_at_in_past";
    /// `send_at` more than 30 days ahead.
    pub const SEND_AT_TOO_FAR: &str = "send_at_too_far";
    /// A field this API does not know.
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    /// A field of the wrong JSON type.
    pub const INVALID_TYPE: &str = "invalid_type";
    /// A field of the right type with a value outside its set or range.
    pub const INVALID_VALUE: &str = "invalid_value";
    /// A required field is absent.
    pub const MISSING_FIELD: &str = "missing_field";
}

/// Path of `key` inside the object at `parent` (`""` is the request itself).
pub(crate) fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        // JSON-quoted, so a key like `a.b` or `x[0]` cannot be read as path syntax.
        (_, false) => format!("{parent}[{}]", serde_json::Value::from(key)),
    }
}

/// Path of element `i` of the array at `parent`.
pub(crate) fn item(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
