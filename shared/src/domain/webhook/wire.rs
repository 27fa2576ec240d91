//! Meta's JSON as serde structs: the shape of the wire, deserialized in one pass with
//! no `Value` walking. Unknown keys are ignored by serde; every field is optional or
//! lenient so that the conversion in `parse` decides what is missing and reports it.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::value::RawValue;
use std::fmt;

#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    pub object: String,
    #[serde(borrow)]
    pub entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
pub(super) struct Entry<'a> {
    pub id: Option<LooseString>,
    pub time: Option<LooseTime>,
    #[serde(borrow)]
    pub changes: Option<Vec<Change<'a>>>,
}

/// `value` is kept raw: Meta puts it *before* `field`, so it cannot be typed until
/// `field` has been read, and a raw slice costs no allocation.
#[derive(Deserialize)]
pub(super) struct Change<'a> {
    pub field: String,
    #[serde(borrow)]
    pub value: Option<&'a RawValue>,
}

/// `value` of a `messages` change. Items stay raw so that one odd item is reported
/// and dropped without losing its neighbours.
#[derive(Deserialize)]
pub(super) struct MessagesValue<'a> {
    pub metadata: Option<Metadata>,
    pub contacts: Option<Vec<Contact>>,
    #[serde(borrow)]
    pub messages: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    pub statuses: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    pub errors: Option<Vec<&'a RawValue>>,
}

/// `value` of a `user_preferences` change.
#[derive(Deserialize)]
pub(super) struct UserPreferencesValue {
    pub metadata: Option<Metadata>,
    pub user_preferences: Option<Vec<UserPreference>>,
}

#[derive(Deserialize)]
pub(super) struct UserPreference {
    pub wa_id: Option<String>,
    pub detail: Option<String>,
    pub category: Option<String>,
    pub value: Option<String>,
    pub timestamp: Option<LooseTime>,
}

#[derive(Deserialize)]
pub(super) struct Metadata {
    pub phone_number_id: Option<LooseString>,
}

#[derive(Deserialize)]
pub(super) struct Contact {
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub profile: Option<Profile>,
}

#[derive(Deserialize)]
pub(super) struct Profile {
    pub name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Status {
    pub id: Option<String>,
    pub status: Option<String>,
    pub timestamp: Option<LooseTime>,
    pub recipient_id: Option<String>,
    pub recipient_user_id: Option<String>,
    pub biz_opaque_callback_data: Option<String>,
    pub errors: Option<Vec<Error>>,
    pub pricing: Option<Pricing>,
    pub conversation: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(super) struct Error {
    pub code: Option<LooseInt>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub error_data: Option<ErrorData>,
    pub href: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ErrorData {
    pub details: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Pricing {
    pub billable: Option<bool>,
    pub pricing_model: Option<String>,
    #[serde(rename = "type")]
    pub pricing_type: Option<String>,
    pub category: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Message {
    pub from: Option<String>,
    pub from_user_id: Option<String>,
    pub id: Option<String>,
    pub timestamp: Option<LooseTime>,
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    pub text: Option<Text>,
    pub button: Option<Button>,
    pub interactive: Option<Interactive>,
    pub image: Option<Media>,
    pub video: Option<Media>,
    pub audio: Option<Media>,
    pub document: Option<Media>,
    pub sticker: Option<Media>,
    pub reaction: Option<Reaction>,
    pub location: Option<Location>,
    pub context: Option<Context>,
    pub errors: Option<Vec<Error>>,
}

#[derive(Deserialize)]
pub(super) struct Media {
    pub id: Option<String>,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub caption: Option<String>,
    pub filename: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Reaction {
    pub message_id: Option<String>,
    pub emoji: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Location {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Text {
    pub body: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Button {
    pub payload: Option<String>,
    pub text: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Interactive {
    pub button_reply: Option<Reply>,
    pub list_reply: Option<Reply>,
}

#[derive(Deserialize)]
pub(super) struct Reply {
    pub id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Context {
    pub id: Option<String>,
    pub from: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct TemplateStatus {
    pub event: String,
    pub message_template_id: Option<LooseString>,
    pub message_template_name: Option<String>,
    pub message_template_language: Option<String>,
    pub reason: Option<String>,
    pub message_template_category: Option<String>,
    pub other_info: Option<OtherInfo>,
    pub disable_info: Option<serde_json::Value>,
    pub rejection_info: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(super) struct OtherInfo {
    pub title: Option<String>,
    pub description: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct TemplateQuality {
    pub message_template_id: Option<LooseString>,
    pub message_template_name: Option<String>,
    pub message_template_language: Option<String>,
    pub previous_quality_score: Option<String>,
    pub new_quality_score: String,
}

#[derive(Deserialize)]
pub(super) struct TemplateCategory {
    pub message_template_id: Option<LooseString>,
    pub message_template_name: Option<String>,
    pub message_template_language: Option<String>,
    pub previous_category: Option<String>,
    pub new_category: Option<String>,
    pub correct_category: Option<String>,
    pub category_update_timestamp: Option<LooseTime>,
}

#[derive(Deserialize)]
pub(super) struct PhoneQuality {
    pub display_phone_number: Option<LooseString>,
    pub event: String,
    pub max_daily_conversations_per_business: Option<String>,
    pub current_limit: Option<String>,
    pub old_limit: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Account {
    pub event: String,
    pub phone_number: Option<LooseString>,
    pub restriction_info: Option<Vec<Restriction>>,
    pub ban_info: Option<serde_json::Value>,
    pub violation_info: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(super) struct Restriction {
    pub restriction_type: String,
    pub expiration: Option<LooseTime>,
}

/// An id Meta sends as a string in one payload and as a number in another
/// (`message_template_id`, `entry.id`).
pub(super) struct LooseString(pub String);

impl<'de> Deserialize<'de> for LooseString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LooseString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseString, E> {
                Ok(LooseString(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<LooseString, E> {
                Ok(LooseString(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LooseString, E> {
                Ok(LooseString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LooseString, E> {
                Ok(LooseString(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer sent as a number or as a numeric string (error `code`); a string that
/// is not a number reads as `None` rather than failing the item.
pub(super) struct LooseInt(pub Option<i64>);

impl<'de> Deserialize<'de> for LooseInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LooseInt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a numeric string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseInt, E> {
                Ok(LooseInt(v.trim().parse().ok()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LooseInt, E> {
                Ok(LooseInt(i64::try_from(v).ok()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LooseInt, E> {
                Ok(LooseInt(Some(v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A Unix time as Meta sends it: usually seconds in a string, sometimes a number,
/// occasionally milliseconds. Kept as read; `parse` interprets it.
pub(super) enum LooseTime {
    /// A JSON number (fractions truncated) or a string of digits.
    Number(i64),
    /// A string that is not an integer, kept for the warning.
    Text(String),
}

impl<'de> Deserialize<'de> for LooseTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LooseTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Unix time as a number or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseTime, E> {
                // The common case (digits) is read here, so it allocates nothing.
                Ok(match v.parse::<i64>() {
                    Ok(n) => LooseTime::Number(n),
                    Err(_) => LooseTime::Text(v.to_owned()),
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LooseTime, E> {
                Ok(match i64::try_from(v) {
                    Ok(n) => LooseTime::Number(n),
                    Err(_) => LooseTime::Text(v.to_string()),
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LooseTime, E> {
                Ok(LooseTime::Number(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LooseTime, E> {
                // `as` saturates and maps NaN to 0; the range check in `parse` then
                // refuses what is not a plausible time.
                Ok(LooseTime::Number(v as i64))
            }
        }
        d.deserialize_any(V)
    }
}
