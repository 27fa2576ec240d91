//! Checks a template send (Meta's `template` object) against the sandbox's catalog,
//! answering the codes Meta answers: 132001 unknown template or locale (or not
//! approved), 132015 paused, 132016 disabled, 132000 parameter count, 132012 parameter
//! format, 132018 newline/tab/5+ spaces in a text value, 131008/131009 missing or
//! invalid fields. What each component needs comes from [`SendRequirements::of`].
//!
//! When a send has several problems the one reported is the first by
//! [`PRIORITY`]: counts before formats before contents, as Meta's own checks run.

use super::meta_error::MetaError;
use serde_json::{Map, Value};
use wa_shared::domain::template::{
    ButtonRequirement, HeaderRequirement, Lookup, ParamSlots, ParameterFormat, SendRequirements,
    Template, TemplateCatalog, TemplateStatus,
};

/// Which problem wins when a send has several.
const PRIORITY: [i64; 5] = [131008, 132000, 132012, 131009, 132018];

/// The template a send names, if it may be sent with these parameters.
pub fn check_template<'c>(
    catalog: &'c TemplateCatalog,
    template: &Map<String, Value>,
) -> Result<&'c Template, MetaError> {
    let name = template.get("name").and_then(Value::as_str);
    let language = template
        .get("language")
        .and_then(|l| l.get("code"))
        .and_then(Value::as_str);
    let (Some(name), Some(language)) = (name, language) else {
        return Err(MetaError::new(
            131008,
            "template.name and template.language.code are required",
        ));
    };
    let found = match catalog.lookup(name, language) {
        Lookup::Found(t) => t,
        Lookup::OtherLanguages(_) | Lookup::Unknown => {
            return Err(MetaError::new(
                132001,
                format!("template name ({name}) does not exist in {language}"),
            ));
        }
    };
    match &found.status {
        Some(TemplateStatus::Approved) => {}
        Some(TemplateStatus::Paused) => {
            return Err(MetaError::new(
                132015,
                format!("Template {name} ({language}) is paused due to low quality."),
            ));
        }
        Some(TemplateStatus::Disabled) => {
            return Err(MetaError::new(
                132016,
                format!("Template {name} ({language}) has been disabled."),
            ));
        }
        _ => {
            return Err(MetaError::new(
                132001,
                format!("template name ({name}) is not approved in {language}"),
            ));
        }
    }
    let mut problems = Problems::default();
    check_components(&SendRequirements::of(found), template, &mut problems);
    match problems.worst() {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

#[derive(Default)]
struct Problems(Vec<MetaError>);

impl Problems {
    fn push(&mut self, code: i64, details: impl Into<String>) {
        self.0.push(MetaError::new(code, details));
    }

    fn worst(self) -> Option<MetaError> {
        let rank = |e: &MetaError| PRIORITY.iter().position(|c| *c == e.code).unwrap_or(0);
        self.0.into_iter().min_by_key(rank)
    }
}

fn check_components(req: &SendRequirements, template: &Map<String, Value>, p: &mut Problems) {
    let components = match template.get("components") {
        None => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => return p.push(131009, "template.components must be an array"),
    };
    let (mut header, mut body, mut buttons) = (None, None, Vec::new());
    for (i, c) in components.iter().enumerate() {
        let kind = c
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let params = match c.get("parameters") {
            None => &[][..],
            Some(Value::Array(list)) => list.as_slice(),
            Some(_) => {
                return p.push(
                    131009,
                    format!("components[{i}].parameters must be an array"),
                );
            }
        };
        match kind.as_deref() {
            Some("header") if header.is_none() => header = Some(params),
            Some("body") if body.is_none() => body = Some(params),
            Some("button") => buttons.push((c, params)),
            Some("header" | "body") => p.push(131009, format!("components[{i}] is repeated")),
            _ => p.push(
                131009,
                format!("components[{i}].type is not header, body or button"),
            ),
        }
    }
    check_header(req, header.unwrap_or(&[]), p);
    check_text_params(
        "body",
        req.parameter_format,
        &req.body,
        body.unwrap_or(&[]),
        true,
        p,
    );
    check_buttons(&req.buttons, &buttons, p);
}

fn check_header(req: &SendRequirements, params: &[Value], p: &mut Problems) {
    match &req.header {
        HeaderRequirement::None => {
            if !params.is_empty() {
                p.push(132000, "header: the template's header takes no parameters");
            }
        }
        HeaderRequirement::Text(slots) => {
            check_text_params("header", req.parameter_format, slots, params, false, p);
        }
        HeaderRequirement::Media(kind) => check_single(params, kind.as_str(), p),
        HeaderRequirement::Location => check_single(params, "location", p),
        HeaderRequirement::Unsupported(format) => check_single(params, &format.to_lowercase(), p),
    }
}

/// A media or location header: exactly one parameter of the expected type.
fn check_single(params: &[Value], expected: &str, p: &mut Problems) {
    let received = params
        .first()
        .and_then(|v| v.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN");
    if params.len() > 1 {
        return p.push(132000, "header: expected 1 parameter");
    }
    if !received.eq_ignore_ascii_case(expected) {
        return p.push(
            132012,
            format!(
                "header: Format mismatch, expected {}, received {}",
                expected.to_uppercase(),
                received.to_uppercase()
            ),
        );
    }
    let object = params.first().and_then(|v| v.get(expected));
    let usable = match expected {
        "location" => {
            object.is_some_and(|o| o.get("latitude").is_some() && o.get("longitude").is_some())
        }
        _ => object.is_some_and(|o| o.get("link").is_some() || o.get("id").is_some()),
    };
    if !usable {
        p.push(
            131008,
            format!("header: {expected} needs its link/id or coordinates"),
        );
    }
}

fn check_text_params(
    component: &str,
    format: ParameterFormat,
    slots: &ParamSlots,
    params: &[Value],
    rich: bool,
    p: &mut Problems,
) {
    if params.len() != slots.len() {
        return p.push(
            132000,
            format!(
                "{component}: number of localizable_params ({}) does not match the expected number of params ({})",
                params.len(),
                slots.len()
            ),
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, param) in params.iter().enumerate() {
        let kind = param.get("type").and_then(Value::as_str).unwrap_or("");
        let allowed = kind == "text" || (rich && (kind == "currency" || kind == "date_time"));
        if !allowed {
            p.push(
                132012,
                format!("{component}: parameter {i} has type {kind:?}"),
            );
            continue;
        }
        let name = param.get("parameter_name").and_then(Value::as_str);
        match (slots, name) {
            (ParamSlots::Named(names), Some(n))
                if names.iter().any(|x| x == n) && !seen.contains(&n) =>
            {
                seen.push(n);
            }
            (ParamSlots::Positional(_), None) => {}
            _ => p.push(
                132012,
                format!(
                    "{component}: parameter {i} does not match the template's {format:?} parameters"
                ),
            ),
        }
        let text = match kind {
            "text" => param.get("text").and_then(Value::as_str),
            other => param
                .get(other)
                .and_then(|o| o.get("fallback_value"))
                .and_then(Value::as_str),
        };
        match text {
            None => p.push(131008, format!("{component}: parameter {i} has no {kind} value")),
            Some(t) if has_forbidden_whitespace(t) => p.push(
                132018,
                format!("{component}: Param text cannot have new-line/tab characters or more than 4 consecutive spaces"),
            ),
            Some(_) => {}
        }
    }
}

/// Newline, tab, or more than four consecutive spaces: Meta's 132018.
pub fn has_forbidden_whitespace(text: &str) -> bool {
    text.contains(['\n', '\r', '\t']) || text.contains("     ")
}

fn check_buttons(reqs: &[ButtonRequirement], given: &[(&Value, &[Value])], p: &mut Problems) {
    let mut filled = vec![false; reqs.len()];
    for (component, params) in given {
        let index = match component.get("index") {
            Some(Value::String(s)) => s.parse::<usize>().ok(),
            Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
            _ => None,
        };
        let Some(index) = index.filter(|i| *i < reqs.len()) else {
            p.push(
                131009,
                "button: index does not match a button of the template",
            );
            continue;
        };
        filled[index] = true;
        let sub_type = component
            .get("sub_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (expected_sub, param_type, max) = match &reqs[index] {
            ButtonRequirement::UrlSuffix { .. } | ButtonRequirement::OtpCode => ("url", "text", 1),
            ButtonRequirement::CouponCode { .. } => ("copy_code", "coupon_code", 1),
            ButtonRequirement::QuickReplyPayload => ("quick_reply", "payload", 1),
            ButtonRequirement::Nothing | ButtonRequirement::Unsupported(_) => (sub_type, "", 0),
        };
        if !sub_type.eq_ignore_ascii_case(expected_sub) {
            p.push(
                132012,
                format!("button {index}: sub_type {sub_type:?}, expected {expected_sub:?}"),
            );
            continue;
        }
        let required = reqs[index].is_required();
        if params.len() > max || (required && params.len() != 1) {
            p.push(
                132000,
                format!(
                    "button {index}: expected {max} parameter(s), got {}",
                    params.len()
                ),
            );
            continue;
        }
        if let Some(param) = params.first()
            && param.get("type").and_then(Value::as_str) != Some(param_type)
        {
            p.push(
                132012,
                format!("button {index}: parameter type must be {param_type}"),
            );
        }
    }
    for (index, req) in reqs.iter().enumerate() {
        if req.is_required() && !filled[index] {
            p.push(132000, format!("button {index}: a parameter is required"));
        }
    }
}
