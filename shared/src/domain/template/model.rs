//! Meta's message-template JSON, exactly as `GET /{waba-id}/message_templates` returns it.
//!
//! Every struct keeps the fields it does not know in `extra`, and unknown component types
//! land in [`Component::Other`], so a catalog synced from Meta round-trips without loss.

use super::buttons::Button;
use super::tagged::{body, missing_tag, open_string_enum, split_tag, with_tag};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

open_string_enum!(
    /// Review status of one language version of a template; only `APPROVED` can be sent.
    TemplateStatus {
        /// Reviewed and sendable.
        Approved = "APPROVED",
        /// Waiting for review.
        Pending = "PENDING",
        /// Refused at review.
        Rejected = "REJECTED",
        /// Paused for low quality or by pacing; sends fail with 132015.
        Paused = "PAUSED",
        /// Disabled for good after repeated pauses; sends fail with 132016.
        Disabled = "DISABLED",
        /// Under appeal.
        InAppeal = "IN_APPEAL",
        /// Scheduled for deletion.
        PendingDeletion = "PENDING_DELETION",
        /// Deleted.
        Deleted = "DELETED",
        /// Archived after a year without use.
        Archived = "ARCHIVED",
        /// Limit exceeded for the WABA.
        LimitExceeded = "LIMIT_EXCEEDED",
    }
);

open_string_enum!(
    /// What a template is for; it decides pricing and some limits (coupon code length).
    TemplateCategory {
        /// Promotions and offers.
        Marketing = "MARKETING",
        /// Transaction updates.
        Utility = "UTILITY",
        /// One-time passwords.
        Authentication = "AUTHENTICATION",
    }
);

open_string_enum!(
    /// Format of a template header.
    HeaderFormat {
        /// Text, with at most one parameter.
        Text = "TEXT",
        /// An image sent with each message.
        Image = "IMAGE",
        /// A video sent with each message.
        Video = "VIDEO",
        /// A document sent with each message.
        Document = "DOCUMENT",
        /// A location sent with each message.
        Location = "LOCATION",
    }
);

/// How the template's variables are written: `{{1}}` (the default) or `{{first_name}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ParameterFormat {
    /// `{{1}}`, `{{2}}`, ...: values are sent in order.
    #[default]
    Positional,
    /// `{{first_name}}`: values carry `parameter_name`, order is free.
    Named,
}

/// One language version of a message template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Template name (lowercase, digits and `_`); shared by all its language versions.
    pub name: String,
    /// Locale code, matched exactly (`en` is not `en_US`).
    pub language: String,
    /// Review status; absent when the sync asked for fewer fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TemplateStatus>,
    /// Category; absent when the sync asked for fewer fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<TemplateCategory>,
    /// Positional unless Meta says `NAMED`.
    #[serde(default)]
    pub parameter_format: ParameterFormat,
    /// Meta's template id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Header, body, footer, buttons and anything else, in Meta's order.
    #[serde(default)]
    pub components: Vec<Component>,
    /// Fields this build does not model (`sub_category`, `quality_score`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Template {
    /// Whether Meta will accept sends of this template now.
    pub fn is_approved(&self) -> bool {
        self.status == Some(TemplateStatus::Approved)
    }

    /// The header component, if any.
    pub fn header(&self) -> Option<&HeaderComponent> {
        self.components.iter().find_map(|c| match c {
            Component::Header(h) => Some(h),
            _ => None,
        })
    }

    /// The body component, if any.
    pub fn body(&self) -> Option<&BodyComponent> {
        self.components.iter().find_map(|c| match c {
            Component::Body(b) => Some(b),
            _ => None,
        })
    }

    /// The buttons in index order (the index a send refers to), empty if none.
    pub fn buttons(&self) -> &[Button] {
        self.components
            .iter()
            .find_map(|c| match c {
                Component::Buttons(b) => Some(b.buttons.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }
}

/// One component of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Component {
    /// `HEADER`.
    Header(HeaderComponent),
    /// `BODY`.
    Body(BodyComponent),
    /// `FOOTER`.
    Footer(FooterComponent),
    /// `BUTTONS`.
    Buttons(ButtonsComponent),
    /// Any other type (e.g. `CAROUSEL`, `LIMITED_TIME_OFFER`), kept verbatim.
    Other(Value),
}

impl<'de> Deserialize<'de> for Component {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Some((tag, map)) = split_tag(&value) else {
            return Err(missing_tag("component"));
        };
        Ok(match tag.as_str() {
            "HEADER" => Component::Header(body(map, "HEADER")?),
            "BODY" => Component::Body(body(map, "BODY")?),
            "FOOTER" => Component::Footer(body(map, "FOOTER")?),
            "BUTTONS" => Component::Buttons(body(map, "BUTTONS")?),
            _ => Component::Other(value),
        })
    }
}

impl Serialize for Component {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Component::Header(c) => with_tag("HEADER", c, serializer),
            Component::Body(c) => with_tag("BODY", c, serializer),
            Component::Footer(c) => with_tag("FOOTER", c, serializer),
            Component::Buttons(c) => with_tag("BUTTONS", c, serializer),
            Component::Other(v) => v.serialize(serializer),
        }
    }
}

/// `HEADER`: text (at most one parameter) or a media/location slot filled at send time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderComponent {
    /// TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION.
    pub format: HeaderFormat,
    /// Header text for `TEXT` headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Sample values Meta reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<HeaderExample>,
    /// Fields this build does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `example` of a header.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HeaderExample {
    /// Positional sample: one value for `{{1}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_text: Option<Vec<String>>,
    /// Named sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_text_named_params: Option<Vec<NamedParamExample>>,
    /// Uploaded sample media handles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_handle: Option<Vec<String>>,
    /// Fields this build does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `BODY`: the text with its variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodyComponent {
    /// Body text with `{{1}}` or `{{name}}` variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Sample values Meta reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<BodyExample>,
    /// Fields this build does not model (`add_security_recommendation`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `example` of a body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BodyExample {
    /// Positional samples: one list of values per example (Meta sends one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<Vec<Vec<String>>>,
    /// Named samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text_named_params: Option<Vec<NamedParamExample>>,
    /// Fields this build does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A sample value of a named parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedParamExample {
    /// The variable name, as written between the braces.
    pub param_name: String,
    /// The sample value.
    pub example: String,
    /// Fields this build does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `FOOTER`: static text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FooterComponent {
    /// Footer text (auth templates may omit it and give `code_expiration_minutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Fields this build does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `BUTTONS`: the buttons, whose position is the index a send refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ButtonsComponent {
    /// Buttons in Meta's order.
    #[serde(default)]
    pub buttons: Vec<Button>,
    /// Fields this build does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
