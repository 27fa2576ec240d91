//! The template rules: the request's header, body and buttons against the template's
//! [`SendRequirements`], plus the limits that hold whatever the template.

use super::buttons;
use super::formatting::{self, FormattingPolicy, Sanitized};
use super::{Problem, child, code, item};
use crate::domain::request::{HeaderParam, ParamValue, PartialBody, PartialTemplate, Slot};
use crate::domain::template::{
    ButtonRequirement, HeaderRequirement, Lookup, ParamSlots, SendRequirements,
};

/// Longest text header value.
pub const MAX_HEADER_PARAM_CHARS: usize = 60;
/// Longest body value.
pub const MAX_BODY_PARAM_CHARS: usize = 1024;
/// Longest body value when the template is nothing but a body.
pub const MAX_BODY_ONLY_PARAM_CHARS: usize = 32768;
/// Longest quick-reply payload we accept (Meta documents none; this keeps it sane).
pub const MAX_PAYLOAD_CHARS: usize = 256;
/// Longest URL suffix when the template is unknown (Meta's whole-URL limit).
pub(super) const MAX_URL_CHARS: usize = 2000;
/// Longest code of an OTP button.
pub(super) const MAX_OTP_CHARS: usize = 15;
/// Longest coupon code when the template is unknown.
pub(super) const MAX_COUPON_CHARS: usize = 20;

pub(super) fn check_template(
    t: &mut PartialTemplate,
    lookup: Lookup<'_>,
    policy: FormattingPolicy,
    p: &mut Vec<Problem>,
    changes: &mut Vec<Sanitized>,
) {
    let reqs = resolve(t, lookup, p);
    format_values(t, policy, p, changes);
    let body_limit = match &reqs {
        Some(r) if r.body_only => MAX_BODY_ONLY_PARAM_CHARS,
        _ => MAX_BODY_PARAM_CHARS,
    };
    check_header_value(&t.header, p);
    check_body_values(&t.body, body_limit, p);
    let Some(reqs) = reqs else {
        buttons::check_buttons_alone(&t.buttons, p);
        return;
    };
    check_header(&mut t.header, &reqs.header, p);
    check_body(&t.body, &reqs.body, p);
    buttons::check_buttons(t, &reqs.buttons, p);
    if matches!(reqs.header, HeaderRequirement::Unsupported(_))
        || reqs
            .buttons
            .iter()
            .any(|b| matches!(b, ButtonRequirement::Unsupported(_)))
    {
        p.push(Problem::new(
            "template.name",
            code::UNSUPPORTED_TEMPLATE,
            "this template has a header or button this service cannot fill",
        ));
    }
}

/// The requirements of the requested template, or the problem of not finding it.
fn resolve(
    t: &PartialTemplate,
    lookup: Lookup<'_>,
    p: &mut Vec<Problem>,
) -> Option<SendRequirements> {
    let (Some(name), Some(language)) = (t.name.present(), t.language.present()) else {
        return None;
    };
    match lookup {
        Lookup::Found(template) => {
            if !template.is_approved() {
                let status = template
                    .status
                    .as_ref()
                    .map_or("without a status", |s| s.as_str());
                p.push(Problem::new(
                    "template.name",
                    code::TEMPLATE_NOT_APPROVED,
                    format!("template `{name}` ({language}) is {status}; only APPROVED templates can be sent"),
                ));
            }
            Some(SendRequirements::of(template))
        }
        Lookup::OtherLanguages(languages) => {
            p.push(Problem::new(
                "template.language",
                code::UNKNOWN_LANGUAGE,
                format!(
                    "template `{name}` exists in {}, not in `{language}`",
                    languages.join(", ")
                ),
            ));
            None
        }
        Lookup::Unknown => {
            p.push(Problem::new(
                "template.name",
                code::UNKNOWN_TEMPLATE,
                format!("no template named `{name}`"),
            ));
            None
        }
    }
}

/// Paths and mutable texts of every value Meta's formatting rule covers.
fn format_values(
    t: &mut PartialTemplate,
    policy: FormattingPolicy,
    p: &mut Vec<Problem>,
    changes: &mut Vec<Sanitized>,
) {
    if let Some(HeaderParam::Text { text, .. }) = t.header.present_mut() {
        formatting::apply(policy, text, "template.header.text", p, changes);
    }
    for (path, value) in body_values_mut(&mut t.body) {
        let path = match value {
            ParamValue::Text(_) => path,
            _ => child(&path, "fallback_value"),
        };
        formatting::apply(policy, value.visible_text_mut(), &path, p, changes);
    }
}

fn body_values_mut(body: &mut Slot<PartialBody>) -> Vec<(String, &mut ParamValue)> {
    match body.present_mut() {
        None => Vec::new(),
        Some(PartialBody::Positional(values)) => values
            .iter_mut()
            .enumerate()
            .filter_map(|(i, v)| Some((item("template.body", i), v.present_mut()?)))
            .collect(),
        Some(PartialBody::Named(values)) => values
            .iter_mut()
            .filter_map(|(k, v)| Some((child("template.body", k), v.present_mut()?)))
            .collect(),
    }
}

fn check_header_value(header: &Slot<HeaderParam>, p: &mut Vec<Problem>) {
    match header.present() {
        Some(HeaderParam::Text { text, .. }) => {
            not_empty(text, "template.header.text", p);
            max_chars(text, MAX_HEADER_PARAM_CHARS, "template.header.text", p);
        }
        Some(
            HeaderParam::Image { link }
            | HeaderParam::Video { link }
            | HeaderParam::Document { link, .. },
        ) => {
            let https = link
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
                && link.len() > 8;
            if !https {
                p.push(Problem::new(
                    "template.header.link",
                    code::HEADER_MEDIA_NOT_HTTPS,
                    "media links must be https:// URLs",
                ));
            }
        }
        Some(HeaderParam::Location(_)) | None => {}
    }
}

fn check_body_values(body: &Slot<PartialBody>, limit: usize, p: &mut Vec<Problem>) {
    let values: Vec<(String, &ParamValue)> = match body.present() {
        None => Vec::new(),
        Some(PartialBody::Positional(values)) => values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((item("template.body", i), v.present()?)))
            .collect(),
        Some(PartialBody::Named(values)) => values
            .iter()
            .filter_map(|(k, v)| Some((child("template.body", k), v.present()?)))
            .collect(),
    };
    for (path, value) in values {
        let path = match value {
            ParamValue::Text(_) => path,
            _ => child(&path, "fallback_value"),
        };
        not_empty(value.visible_text(), &path, p);
        max_chars(value.visible_text(), limit, &path, p);
    }
}

fn check_header(header: &mut Slot<HeaderParam>, need: &HeaderRequirement, p: &mut Vec<Problem>) {
    let at = "template.header";
    let given = match header {
        Slot::Invalid => return,
        Slot::Absent => {
            let wanted = match need {
                HeaderRequirement::None | HeaderRequirement::Unsupported(_) => return,
                HeaderRequirement::Text(_) => "a text value",
                HeaderRequirement::Media(kind) => kind.as_str(),
                HeaderRequirement::Location => "a location",
            };
            p.push(Problem::new(
                at,
                code::MISSING_PARAMETER,
                format!("the template's header needs {wanted}"),
            ));
            return;
        }
        Slot::Present(h) => h,
    };
    let kind_fits = match need {
        HeaderRequirement::None => {
            p.push(Problem::new(
                at,
                code::UNEXPECTED_PARAMETER,
                "the template's header takes no value",
            ));
            return;
        }
        HeaderRequirement::Unsupported(_) => return,
        HeaderRequirement::Text(_) => matches!(given, HeaderParam::Text { .. }),
        HeaderRequirement::Media(kind) => given.media_kind() == Some(*kind),
        HeaderRequirement::Location => matches!(given, HeaderParam::Location(_)),
    };
    if !kind_fits {
        let wanted = match need {
            HeaderRequirement::Media(kind) => kind.as_str(),
            HeaderRequirement::Location => "location",
            _ => "text",
        };
        p.push(Problem::new(
            child(at, "type"),
            code::HEADER_KIND_MISMATCH,
            format!(
                "the template's header is {wanted}, not {}",
                given.type_name()
            ),
        ));
        return;
    }
    if let (HeaderRequirement::Text(slots), HeaderParam::Text { parameter_name, .. }) =
        (need, given)
    {
        match (slots, parameter_name.as_deref()) {
            (ParamSlots::Named(names), given_name) => {
                let Some(expected) = names.first() else {
                    return;
                };
                match given_name {
                    Some(n) if n != expected => p.push(Problem::new(
                        child(at, "parameter_name"),
                        code::PARAMETER_NAME_MISMATCH,
                        format!("the header's variable is `{expected}`, not `{n}`"),
                    )),
                    _ => *parameter_name = Some(expected.clone()),
                }
            }
            (ParamSlots::Positional(_), Some(_)) => p.push(Problem::new(
                child(at, "parameter_name"),
                code::PARAMETER_FORMAT_MISMATCH,
                "the template is positional: its header value has no parameter_name",
            )),
            (ParamSlots::Positional(_), None) => {}
        }
    }
}

fn check_body(body: &Slot<PartialBody>, need: &ParamSlots, p: &mut Vec<Problem>) {
    let at = "template.body";
    let given = match body {
        Slot::Invalid => return,
        Slot::Absent => {
            if !need.is_empty() {
                let wanted = match need {
                    ParamSlots::Positional(n) => format!("{n} values"),
                    ParamSlots::Named(names) => format!("the values {}", names.join(", ")),
                };
                p.push(Problem::new(
                    at,
                    code::MISSING_PARAMETER,
                    format!("the template's body needs {wanted}"),
                ));
            }
            return;
        }
        Slot::Present(b) => b,
    };
    match (need, given) {
        (ParamSlots::Positional(n), PartialBody::Positional(values)) => {
            if values.len() != *n {
                p.push(Problem::new(
                    at,
                    code::PARAMETER_COUNT_MISMATCH,
                    format!(
                        "the template's body takes {n} values, {} given",
                        values.len()
                    ),
                ));
            }
        }
        (ParamSlots::Named(names), PartialBody::Named(values)) => {
            for name in names
                .iter()
                .filter(|n| !values.iter().any(|(k, _)| k == *n))
            {
                p.push(Problem::new(
                    child(at, name),
                    code::MISSING_PARAMETER,
                    format!("the body variable `{name}` has no value"),
                ));
            }
            for (key, _) in values.iter().filter(|(k, _)| !names.contains(k)) {
                p.push(Problem::new(
                    child(at, key),
                    code::UNEXPECTED_PARAMETER,
                    format!("the template's body has no variable `{key}`"),
                ));
            }
        }
        (ParamSlots::Positional(0), PartialBody::Named(v)) if v.is_empty() => {}
        (ParamSlots::Named(names), PartialBody::Positional(v))
            if names.is_empty() && v.is_empty() => {}
        (ParamSlots::Positional(_), PartialBody::Named(_)) => p.push(Problem::new(
            at,
            code::PARAMETER_FORMAT_MISMATCH,
            "the template is positional: give the body as an array",
        )),
        (ParamSlots::Named(_), PartialBody::Positional(_)) => p.push(Problem::new(
            at,
            code::PARAMETER_FORMAT_MISMATCH,
            "the template uses named variables: give the body as an object",
        )),
    }
}

pub(super) fn not_empty(text: &str, path: &str, p: &mut Vec<Problem>) {
    if text.trim().is_empty() {
        p.push(Problem::new(
            path,
            code::MISSING_PARAMETER,
            format!("`{path}` must not be empty"),
        ));
    }
}

pub(super) fn max_chars(text: &str, limit: usize, path: &str, p: &mut Vec<Problem>) {
    let chars = text.chars().count();
    if chars > limit {
        p.push(Problem::new(
            path,
            code::TOO_LONG,
            format!("`{path}` has {chars} characters; the limit is {limit}"),
        ));
    }
}
