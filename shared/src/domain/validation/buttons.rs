//! Button rules: index, type and count against the template, and each value's limits.

use super::rules::{
    MAX_COUPON_CHARS, MAX_OTP_CHARS, MAX_PAYLOAD_CHARS, MAX_URL_CHARS, max_chars, not_empty,
};
use super::{Problem, child, code, item};
use crate::domain::request::{
    ButtonParam, ButtonValue, ParamValue, PartialBody, PartialTemplate, Slot,
};
use crate::domain::template::ButtonRequirement;

/// Button limits when there is no template to compare with.
pub(super) fn check_buttons_alone(buttons: &Slot<Vec<Slot<ButtonParam>>>, p: &mut Vec<Problem>) {
    for (i, button) in given_buttons(buttons) {
        check_button_value(&button.value, &item("template.buttons", i), None, p);
    }
}

fn given_buttons(buttons: &Slot<Vec<Slot<ButtonParam>>>) -> Vec<(usize, &ButtonParam)> {
    buttons
        .present()
        .map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(i, b)| Some((i, b.present()?)))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn check_buttons(
    t: &mut PartialTemplate,
    needs: &[ButtonRequirement],
    p: &mut Vec<Problem>,
) {
    let at = "template.buttons";
    if let Some(list) = t.buttons.present().filter(|l| l.len() > needs.len()) {
        p.push(Problem::new(
            at,
            code::BUTTON_COUNT_MISMATCH,
            format!(
                "the template has {} buttons, {} values given",
                needs.len(),
                list.len()
            ),
        ));
    }
    let mut seen = vec![false; needs.len()];
    for (i, button) in given_buttons(&t.buttons) {
        let path = item(at, i);
        let Some(need) = needs.get(button.index) else {
            p.push(Problem::new(
                child(&path, "index"),
                code::BUTTON_INDEX_MISMATCH,
                format!(
                    "the template has no button {} (it has {})",
                    button.index,
                    needs.len()
                ),
            ));
            continue;
        };
        if std::mem::replace(&mut seen[button.index], true) {
            p.push(Problem::new(
                child(&path, "index"),
                code::BUTTON_INDEX_MISMATCH,
                format!("button {} is given more than once", button.index),
            ));
            continue;
        }
        let expected = match need {
            ButtonRequirement::UrlSuffix { .. } | ButtonRequirement::OtpCode => "url",
            ButtonRequirement::CouponCode { .. } => "copy_code",
            ButtonRequirement::QuickReplyPayload => "quick_reply",
            ButtonRequirement::Unsupported(_) => continue,
            ButtonRequirement::Nothing => {
                p.push(Problem::new(
                    path,
                    code::UNEXPECTED_PARAMETER,
                    format!("button {} is static and takes no value", button.index),
                ));
                continue;
            }
        };
        if button.value.type_name() != expected {
            p.push(Problem::new(
                child(&path, "type"),
                code::BUTTON_TYPE_MISMATCH,
                format!(
                    "button {} is a {expected} button, not {}",
                    button.index,
                    button.value.type_name()
                ),
            ));
            continue;
        }
        check_button_value(&button.value, &path, Some(need), p);
    }
    fill_missing_buttons(t, needs, &seen, p);
}

/// Report required buttons that were not given; an OTP button takes the body's code,
/// since Meta wants the same code in both places.
fn fill_missing_buttons(
    t: &mut PartialTemplate,
    needs: &[ButtonRequirement],
    seen: &[bool],
    p: &mut Vec<Problem>,
) {
    let at = "template.buttons";
    let code_in_body = match t.body.present() {
        Some(PartialBody::Positional(values)) if values.len() == 1 => match values.first() {
            Some(Slot::Present(ParamValue::Text(code))) => Some(code.clone()),
            _ => None,
        },
        _ => None,
    };
    for (index, need) in needs
        .iter()
        .enumerate()
        .filter(|(i, _)| !seen.get(*i).copied().unwrap_or(false))
    {
        match need {
            ButtonRequirement::UrlSuffix { .. } => p.push(Problem::new(
                at,
                code::MISSING_URL_SUFFIX,
                format!("button {index} is a dynamic URL: give {{\"index\": {index}, \"type\": \"url\", \"text\": ...}}"),
            )),
            ButtonRequirement::CouponCode { .. } => p.push(Problem::new(
                at,
                code::MISSING_PARAMETER,
                format!("button {index} copies a code: give {{\"index\": {index}, \"type\": \"copy_code\", \"coupon_code\": ...}}"),
            )),
            ButtonRequirement::OtpCode => match &code_in_body {
                Some(code_value) => {
                    // The code was given in the body, so that is where a bad code is reported.
                    max_chars(code_value, MAX_OTP_CHARS, "template.body[0]", p);
                    let filled = ButtonParam { index, value: ButtonValue::Url { text: code_value.clone() } };
                    match &mut t.buttons {
                        Slot::Present(list) => list.push(Slot::Present(filled)),
                        Slot::Absent => t.buttons = Slot::Present(vec![Slot::Present(filled)]),
                        Slot::Invalid => {}
                    }
                }
                None => p.push(Problem::new(
                    at,
                    code::MISSING_URL_SUFFIX,
                    format!("button {index} is the one-time code button: give the code as {{\"index\": {index}, \"type\": \"url\", \"text\": ...}}"),
                )),
            },
            _ => {}
        }
    }
}

fn check_button_value(
    value: &ButtonValue,
    at: &str,
    need: Option<&ButtonRequirement>,
    p: &mut Vec<Problem>,
) {
    match value {
        ButtonValue::Url { text } => {
            let limit = match need {
                Some(ButtonRequirement::UrlSuffix { max_chars }) => *max_chars,
                Some(ButtonRequirement::OtpCode) => MAX_OTP_CHARS,
                _ => MAX_URL_CHARS,
            };
            let path = child(at, "text");
            not_empty(text, &path, p);
            max_chars(text, limit, &path, p);
        }
        ButtonValue::CopyCode { coupon_code } => {
            let limit = match need {
                Some(ButtonRequirement::CouponCode { max_chars }) => *max_chars,
                _ => MAX_COUPON_CHARS,
            };
            let path = child(at, "coupon_code");
            not_empty(coupon_code, &path, p);
            max_chars(coupon_code, limit, &path, p);
        }
        ButtonValue::QuickReply {
            payload: Some(payload),
        } => {
            let path = child(at, "payload");
            not_empty(payload, &path, p);
            max_chars(payload, MAX_PAYLOAD_CHARS, &path, p);
        }
        ButtonValue::QuickReply { payload: None } => {}
    }
}
