//! What a send of a template must supply, derived once from Meta's template JSON.
//!
//! Validation and the payload builder read only this, never the raw components, so the
//! rules "which button needs what" live in one place.

use super::buttons::{Button, UrlButton};
use super::model::{HeaderFormat, ParameterFormat, Template, TemplateCategory};

/// Meta's limit on a whole button URL; the suffix gets what the base leaves.
const MAX_URL_CHARS: usize = 2000;
/// Coupon codes of marketing templates (raised in Dec 2025).
const MAX_MARKETING_COUPON_CHARS: usize = 20;
/// Copy codes and one-time passwords elsewhere.
const MAX_CODE_CHARS: usize = 15;

/// The variables of one text component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamSlots {
    /// `{{1}}..{{n}}`: this many values, in order.
    Positional(usize),
    /// `{{name}}`: these names, in order of first appearance.
    Named(Vec<String>),
}

impl ParamSlots {
    /// Number of values to send.
    pub fn len(&self) -> usize {
        match self {
            ParamSlots::Positional(n) => *n,
            ParamSlots::Named(names) => names.len(),
        }
    }

    /// Whether the component takes no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The kind of media a media header expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `image`.
    Image,
    /// `video`.
    Video,
    /// `document`.
    Document,
}

impl MediaKind {
    /// Lowercase name used in requests and Graph payloads.
    pub const fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
        }
    }
}

/// What the header needs at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderRequirement {
    /// Nothing: no header, or a text header without a variable.
    None,
    /// A text header with one variable (named templates name it).
    Text(ParamSlots),
    /// An image, video or document by `link`.
    Media(MediaKind),
    /// A location.
    Location,
    /// A header format this build cannot fill (e.g. `GIF`).
    Unsupported(String),
}

/// What one button (by index) needs at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonRequirement {
    /// Nothing: static URL, phone number, flow, catalog, unknown types.
    Nothing,
    /// A quick reply; a `payload` may be given.
    QuickReplyPayload,
    /// The `{{1}}` suffix of a URL button, at most `max_chars` characters.
    UrlSuffix {
        /// Characters left under Meta's 2000-character URL limit.
        max_chars: usize,
    },
    /// A `COPY_CODE` coupon code of at most `max_chars` characters.
    CouponCode {
        /// 20 for marketing templates, 15 otherwise.
        max_chars: usize,
    },
    /// The one-time code of an `OTP` button, sent as a URL text parameter (≤ 15 characters).
    OtpCode,
    /// A button this build cannot fill (`MPM` needs product sections).
    Unsupported(String),
}

impl ButtonRequirement {
    /// Whether a send must give a value for this button.
    pub fn is_required(&self) -> bool {
        matches!(
            self,
            ButtonRequirement::UrlSuffix { .. }
                | ButtonRequirement::CouponCode { .. }
                | ButtonRequirement::OtpCode
        )
    }
}

/// Everything a send of one template must supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequirements {
    /// Named or positional, as the template says.
    pub parameter_format: ParameterFormat,
    /// The header's needs.
    pub header: HeaderRequirement,
    /// The body's variables.
    pub body: ParamSlots,
    /// One entry per button, by index.
    pub buttons: Vec<ButtonRequirement>,
    /// The template has nothing but a body, which lifts a body value's limit to 32768.
    pub body_only: bool,
}

impl SendRequirements {
    /// Derive the requirements of a template.
    pub fn of(template: &Template) -> Self {
        let format = template.parameter_format;
        let header = match template.header() {
            None => HeaderRequirement::None,
            Some(h) => match &h.format {
                HeaderFormat::Text => {
                    let from_example = h.example.as_ref().map(|e| {
                        example_slots(
                            format,
                            e.header_text.as_ref().map(Vec::len),
                            e.header_text_named_params
                                .as_ref()
                                .map(|p| p.iter().map(|x| x.param_name.clone()).collect()),
                        )
                    });
                    let slots = slots_of(format, h.text.as_deref(), from_example);
                    if slots.is_empty() {
                        HeaderRequirement::None
                    } else {
                        HeaderRequirement::Text(slots)
                    }
                }
                HeaderFormat::Image => HeaderRequirement::Media(MediaKind::Image),
                HeaderFormat::Video => HeaderRequirement::Media(MediaKind::Video),
                HeaderFormat::Document => HeaderRequirement::Media(MediaKind::Document),
                HeaderFormat::Location => HeaderRequirement::Location,
                HeaderFormat::Other(f) => HeaderRequirement::Unsupported(f.clone()),
            },
        };
        let body = match template.body() {
            None => slots_of(format, None, None),
            Some(b) => {
                let from_example = b.example.as_ref().map(|e| {
                    example_slots(
                        format,
                        e.body_text
                            .as_ref()
                            .and_then(|rows| rows.first())
                            .map(Vec::len),
                        e.body_text_named_params
                            .as_ref()
                            .map(|p| p.iter().map(|x| x.param_name.clone()).collect()),
                    )
                });
                slots_of(format, b.text.as_deref(), from_example)
            }
        };
        let marketing = template.category == Some(TemplateCategory::Marketing);
        let buttons = template
            .buttons()
            .iter()
            .map(|b| button_requirement(b, marketing))
            .collect();
        let body_only = template.components.len() == 1 && template.body().is_some();
        Self {
            parameter_format: format,
            header,
            body,
            buttons,
            body_only,
        }
    }
}

fn button_requirement(button: &Button, marketing: bool) -> ButtonRequirement {
    match button {
        Button::QuickReply(_) => ButtonRequirement::QuickReplyPayload,
        Button::Url(url) => url_requirement(url),
        Button::CopyCode(_) => ButtonRequirement::CouponCode {
            max_chars: if marketing {
                MAX_MARKETING_COUPON_CHARS
            } else {
                MAX_CODE_CHARS
            },
        },
        Button::Otp(_) => ButtonRequirement::OtpCode,
        Button::Mpm(_) => ButtonRequirement::Unsupported("MPM".to_owned()),
        Button::PhoneNumber(_) | Button::Flow(_) | Button::Catalog(_) | Button::Other(_) => {
            ButtonRequirement::Nothing
        }
    }
}

fn url_requirement(url: &UrlButton) -> ButtonRequirement {
    // Authentication templates can come back from GET as URL buttons pointing at
    // whatsapp.com/otp with a `{{1}}`: that slot is the code, not a free suffix.
    if url.url.contains("whatsapp.com/otp/") && url.dynamic_base().is_some() {
        return ButtonRequirement::OtpCode;
    }
    match url.dynamic_base() {
        Some(base) => ButtonRequirement::UrlSuffix {
            max_chars: MAX_URL_CHARS.saturating_sub(base.chars().count()),
        },
        None => ButtonRequirement::Nothing,
    }
}

/// Slots from the text when there is text, else from the reviewed example.
fn slots_of(
    format: ParameterFormat,
    text: Option<&str>,
    from_example: Option<ParamSlots>,
) -> ParamSlots {
    match (text, from_example) {
        (Some(text), _) => slots_in_text(format, text),
        (None, Some(slots)) => slots,
        (None, None) => match format {
            ParameterFormat::Positional => ParamSlots::Positional(0),
            ParameterFormat::Named => ParamSlots::Named(Vec::new()),
        },
    }
}

fn example_slots(
    format: ParameterFormat,
    positional: Option<usize>,
    named: Option<Vec<String>>,
) -> ParamSlots {
    match format {
        ParameterFormat::Positional => ParamSlots::Positional(positional.unwrap_or(0)),
        ParameterFormat::Named => ParamSlots::Named(named.unwrap_or_default()),
    }
}

/// The variables written in `text`: for positional templates the highest `{{n}}` (Meta
/// numbers them 1..n), for named ones the distinct names in order of appearance.
pub fn slots_in_text(format: ParameterFormat, text: &str) -> ParamSlots {
    let mut highest = 0usize;
    let mut names: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let inner = after[..close].trim();
        if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = inner.parse::<usize>() {
                highest = highest.max(n);
            }
        } else if !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !names.iter().any(|n| n == inner)
        {
            names.push(inner.to_owned());
        }
        rest = &after[close + 2..];
    }
    match format {
        ParameterFormat::Positional => ParamSlots::Positional(highest),
        ParameterFormat::Named => ParamSlots::Named(names),
    }
}
