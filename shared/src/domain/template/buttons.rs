//! Template buttons of every type Meta returns; unknown types are kept verbatim.

use super::tagged::{body, missing_tag, open_string_enum, split_tag, with_tag};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

open_string_enum!(
    /// Kind of an authentication template's OTP button.
    OtpType {
        /// Copies the code to the clipboard.
        CopyCode = "COPY_CODE",
        /// Android autofill with a tap.
        OneTap = "ONE_TAP",
        /// Android autofill without a tap.
        ZeroTap = "ZERO_TAP",
    }
);

/// One button of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Button {
    /// `QUICK_REPLY`: may carry a payload at send time.
    QuickReply(PlainButton),
    /// `URL`: static, or with one `{{1}}` suffix filled at send time.
    Url(UrlButton),
    /// `PHONE_NUMBER`: static.
    PhoneNumber(PhoneNumberButton),
    /// `COPY_CODE`: a coupon code given at send time.
    CopyCode(PlainButton),
    /// `OTP` of an authentication template: the code is sent as a URL text parameter.
    Otp(OtpButton),
    /// `FLOW`: opens a WhatsApp Flow; no parameter needed.
    Flow(PlainButton),
    /// `CATALOG`: opens the catalog; no parameter needed.
    Catalog(PlainButton),
    /// `MPM`: multi-product message; needs product sections at send time.
    Mpm(PlainButton),
    /// Any other type (e.g. `VOICE_CALL`, `SPM`), kept verbatim.
    Other(Value),
}

impl Button {
    /// The type tag as Meta writes it (`QUICK_REPLY`, `URL`, ...).
    pub fn type_name(&self) -> &str {
        match self {
            Button::QuickReply(_) => "QUICK_REPLY",
            Button::Url(_) => "URL",
            Button::PhoneNumber(_) => "PHONE_NUMBER",
            Button::CopyCode(_) => "COPY_CODE",
            Button::Otp(_) => "OTP",
            Button::Flow(_) => "FLOW",
            Button::Catalog(_) => "CATALOG",
            Button::Mpm(_) => "MPM",
            Button::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("UNKNOWN"),
        }
    }
}

impl<'de> Deserialize<'de> for Button {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Some((tag, map)) = split_tag(&value) else {
            return Err(missing_tag("button"));
        };
        Ok(match tag.as_str() {
            "QUICK_REPLY" => Button::QuickReply(body(map, "QUICK_REPLY")?),
            "URL" => Button::Url(body(map, "URL")?),
            "PHONE_NUMBER" => Button::PhoneNumber(body(map, "PHONE_NUMBER")?),
            "COPY_CODE" => Button::CopyCode(body(map, "COPY_CODE")?),
            "OTP" => Button::Otp(body(map, "OTP")?),
            "FLOW" => Button::Flow(body(map, "FLOW")?),
            "CATALOG" => Button::Catalog(body(map, "CATALOG")?),
            "MPM" => Button::Mpm(body(map, "MPM")?),
            _ => Button::Other(value),
        })
    }
}

impl Serialize for Button {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Button::QuickReply(b) => with_tag("QUICK_REPLY", b, serializer),
            Button::Url(b) => with_tag("URL", b, serializer),
            Button::PhoneNumber(b) => with_tag("PHONE_NUMBER", b, serializer),
            Button::CopyCode(b) => with_tag("COPY_CODE", b, serializer),
            Button::Otp(b) => with_tag("OTP", b, serializer),
            Button::Flow(b) => with_tag("FLOW", b, serializer),
            Button::Catalog(b) => with_tag("CATALOG", b, serializer),
            Button::Mpm(b) => with_tag("MPM", b, serializer),
            Button::Other(v) => v.serialize(serializer),
        }
    }
}

/// A button whose only modelled field is its label.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlainButton {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Fields this build does not model (`example`, `flow_id`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `URL` button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlButton {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Target URL; a trailing `{{1}}` is the suffix given at send time.
    pub url: String,
    /// Sample full URLs Meta reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Vec<String>>,
    /// Fields this build does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl UrlButton {
    /// The URL before its `{{1}}` variable, if the URL has one.
    pub fn dynamic_base(&self) -> Option<&str> {
        let start = self.url.find("{{")?;
        self.url[start..].contains("}}").then(|| &self.url[..start])
    }
}

/// A `PHONE_NUMBER` button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneNumberButton {
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Number dialled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Fields this build does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An `OTP` button of an authentication template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtpButton {
    /// COPY_CODE, ONE_TAP or ZERO_TAP.
    pub otp_type: OtpType,
    /// Button label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Fields this build does not model (`supported_apps`, `autofill_text`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
