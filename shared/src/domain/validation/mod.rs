//! Validation of a send request against the tenant's template catalog (DESIGN §4 step 2).
//!
//! [`validate`] returns every problem at once, each with the path of the field at fault,
//! so a caller fixes a request in one round trip. A [`ValidatedRequest`] can only come
//! from here: holding one means the request fits its template as the catalog knew it.

mod buttons;
mod formatting;
mod free_form;
mod problem;
mod rules;

#[cfg(test)]
mod free_form_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use formatting::{FormattingPolicy, Sanitized, is_line_break_or_tab, sanitize};
pub use free_form::{
    MAX_BUTTON_ID_CHARS, MAX_BUTTON_TITLE_CHARS, MAX_BUTTONS_BODY_CHARS, MAX_CAPTION_CHARS,
    MAX_FOOTER_CHARS, MAX_INTERACTIVE_HEADER_CHARS, MAX_LIST_BODY_CHARS, MAX_LIST_BUTTON_CHARS,
    MAX_LIST_ROWS, MAX_LIST_SECTIONS, MAX_REPLY_BUTTONS, MAX_ROW_DESCRIPTION_CHARS,
    MAX_ROW_ID_CHARS, MAX_ROW_TITLE_CHARS, MAX_SECTION_TITLE_CHARS, is_single_emoji,
};
pub use problem::{Problem, code};
pub(crate) use problem::{child, item};
pub use rules::{
    MAX_BODY_ONLY_PARAM_CHARS, MAX_BODY_PARAM_CHARS, MAX_HEADER_PARAM_CHARS, MAX_PAYLOAD_CHARS,
};

use crate::domain::ids::{PhoneNumber, PhoneNumberId};
use crate::domain::request::{Content, SendRequest, Slot, parse_partial};
use crate::domain::template::{Lookup, TemplateCatalog};
use serde_json::Value;

/// Largest serialized `metadata` accepted.
pub const MAX_METADATA_BYTES: usize = 1024;
/// Longest free-form text body.
pub const MAX_TEXT_BODY_CHARS: usize = 4096;

/// A request that passed validation, normalised: `to` in E.164, template values and
/// free-form texts sanitized (under [`FormattingPolicy::Sanitize`]), a named text header's
/// `parameter_name` filled in, and an OTP button given the body's code when omitted.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedRequest {
    request: SendRequest,
    to: PhoneNumber,
    sanitized: Vec<Sanitized>,
}

impl ValidatedRequest {
    /// The normalised request.
    pub fn request(&self) -> &SendRequest {
        &self.request
    }

    /// The recipient.
    pub fn to(&self) -> &PhoneNumber {
        &self.to
    }

    /// The template name, for template sends (`None`: a free-form message, allowed only
    /// inside the 24-hour customer service window).
    pub fn template_name(&self) -> Option<&str> {
        match &self.request.content {
            Content::Template(t) => Some(&t.name),
            _ => None,
        }
    }

    /// What sanitizing changed (empty under [`FormattingPolicy::Strict`]).
    pub fn sanitized(&self) -> &[Sanitized] {
        &self.sanitized
    }

    /// The canonical JSON of the normalised request: what intake stores and hashes, and
    /// what re-validates unchanged under [`FormattingPolicy::Strict`].
    pub fn to_json(&self) -> Value {
        self.request.to_json()
    }
}

/// `(name, language)` of the template a raw request asks for, if both are strings; lets
/// a caller load just that template's language versions before calling [`validate`].
pub fn requested_template(request: &Value) -> Option<(&str, &str)> {
    let t = request.get("template")?;
    Some((t.get("name")?.as_str()?, t.get("language")?.as_str()?))
}

/// Validate a raw request against `catalog` (only the template's language versions
/// need to be in it). Free-form sends (text, media, interactive, ...) ignore the catalog.
pub fn validate(
    request: &Value,
    catalog: &TemplateCatalog,
    policy: FormattingPolicy,
) -> Result<ValidatedRequest, Vec<Problem>> {
    let lookup = match requested_template(request) {
        Some((name, language)) => catalog.lookup(name, language),
        None => Lookup::Unknown,
    };
    validate_with(request, lookup, policy)
}

/// Like [`validate`], with the catalog lookup already done by the caller.
pub fn validate_with(
    request: &Value,
    lookup: Lookup<'_>,
    policy: FormattingPolicy,
) -> Result<ValidatedRequest, Vec<Problem>> {
    let (mut partial, mut problems) = parse_partial(request);
    let mut sanitized = Vec::new();

    let to = partial
        .to
        .present()
        .and_then(|raw| match PhoneNumber::parse(raw) {
            Ok(number) => Some(number),
            Err(e) => {
                problems.push(Problem::new("to", code::INVALID_PHONE_NUMBER, e.message));
                None
            }
        });
    if let Some(to) = &to {
        partial.to = Slot::Present(to.as_str().to_owned());
    }
    if let Some(from) = partial.from.present()
        && let Err(e) = PhoneNumberId::parse(from)
    {
        problems.push(Problem::new(
            "from",
            code::INVALID_VALUE,
            format!("`from` must be a business phone number id: {e}"),
        ));
        partial.from = Slot::Invalid;
    }
    if let Some(metadata) = partial.metadata.present() {
        let size = Value::Object(metadata.clone()).to_string().len();
        if size > MAX_METADATA_BYTES {
            problems.push(Problem::new(
                "metadata",
                code::METADATA_TOO_LARGE,
                format!("metadata is {size} bytes serialized; the limit is {MAX_METADATA_BYTES}"),
            ));
        }
    }
    if let Some(content) = partial.free_form.present_mut() {
        free_form::check_content(content, policy, &mut problems, &mut sanitized);
    }
    if let Some(template) = partial.template.present_mut() {
        rules::check_template(template, lookup, policy, &mut problems, &mut sanitized);
    }
    if let Some(context) = partial.context.present() {
        let content = match (&partial.template, &partial.free_form) {
            (Slot::Absent, Slot::Present(c)) => Some(c.type_name()),
            (Slot::Absent, _) => None,
            _ => Some("template"),
        };
        free_form::check_context(context, content, &mut problems);
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    match (partial.into_request(), to) {
        (Some(request), Some(to)) => Ok(ValidatedRequest {
            request,
            to,
            sanitized,
        }),
        // Every path that leaves a field unusable records a problem; this is a guard.
        _ => Err(vec![Problem::new(
            "",
            code::INVALID_VALUE,
            "the request could not be read",
        )]),
    }
}
