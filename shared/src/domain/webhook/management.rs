//! Management changes: template status, quality and category, phone number quality,
//! account updates. They carry `entry.id` = WABA id and `entry.time`, and no `metadata`.

use super::parse::{Origin, read_time};
use super::wire;
use crate::domain::{PhoneNumberId, Timestamp};

/// `message_template_status_update`: a template was approved, paused, disabled, …
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateStatusUpdate {
    /// `entry.id`: the WABA.
    pub waba_id: String,
    /// `entry.time`.
    pub time: Option<Timestamp>,
    /// `event`: `APPROVED`, `PAUSED`, `DISABLED`, `REJECTED`, … (reference §2).
    pub event: String,
    /// `message_template_id`.
    pub template_id: Option<String>,
    /// `message_template_name`.
    pub name: Option<String>,
    /// `message_template_language`.
    pub language: Option<String>,
    /// `reason` (`NONE` when paused, `null` when scheduled for deletion).
    pub reason: Option<String>,
    /// `message_template_category`.
    pub category: Option<String>,
    /// `other_info.title`: `FIRST_PAUSE`, `SECOND_PAUSE`, `UNPAUSE`, `DISABLED`, …
    pub other_info_title: Option<String>,
    /// `other_info.description`.
    pub other_info_description: Option<String>,
    /// `disable_info` as sent (e.g. `disable_date`).
    pub disable_info: Option<serde_json::Value>,
    /// `rejection_info` as sent.
    pub rejection_info: Option<serde_json::Value>,
}

/// `message_template_quality_update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateQualityUpdate {
    /// `entry.id`: the WABA.
    pub waba_id: String,
    /// `entry.time`.
    pub time: Option<Timestamp>,
    /// `message_template_id`.
    pub template_id: Option<String>,
    /// `message_template_name`.
    pub name: Option<String>,
    /// `message_template_language`.
    pub language: Option<String>,
    /// `previous_quality_score`: `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
    pub previous_quality_score: Option<String>,
    /// `new_quality_score`.
    pub new_quality_score: String,
}

/// `template_category_update`: either announced (`correct_category` and when) or done
/// (`previous_category` -> `new_category`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateCategoryUpdate {
    /// `entry.id`: the WABA.
    pub waba_id: String,
    /// `entry.time`.
    pub time: Option<Timestamp>,
    /// `message_template_id`.
    pub template_id: Option<String>,
    /// `message_template_name`.
    pub name: Option<String>,
    /// `message_template_language`.
    pub language: Option<String>,
    /// `previous_category` (completed form).
    pub previous_category: Option<String>,
    /// `new_category` (completed form).
    pub new_category: Option<String>,
    /// `correct_category` (announcement).
    pub correct_category: Option<String>,
    /// `category_update_timestamp`: when the announced change takes effect.
    pub category_update_timestamp: Option<Timestamp>,
}

/// `phone_number_quality_update`: a number's messaging tier or quality changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumberQualityUpdate {
    /// `entry.id`: the WABA.
    pub waba_id: String,
    /// `entry.time`.
    pub time: Option<Timestamp>,
    /// `display_phone_number`.
    pub display_phone_number: Option<String>,
    /// `event`: `THROUGHPUT_UPGRADE`, `ONBOARDING`, `FLAGGED`, `DOWNGRADE`, `UPGRADE`, …
    pub event: String,
    /// `max_daily_conversations_per_business`: `TIER_250` … `TIER_UNLIMITED`.
    pub max_daily_conversations_per_business: Option<String>,
    /// `current_limit` (older payloads).
    pub current_limit: Option<String>,
    /// `old_limit` (older payloads).
    pub old_limit: Option<String>,
}

/// `account_update`: restrictions, bans, deletion, … of the WABA.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountUpdate {
    /// `entry.id`: the WABA.
    pub waba_id: String,
    /// `entry.time`.
    pub time: Option<Timestamp>,
    /// `event`: `ACCOUNT_RESTRICTION`, `ACCOUNT_VIOLATION`, `DISABLED_UPDATE`, …
    pub event: String,
    /// `phone_number`, when the update concerns one number.
    pub phone_number: Option<String>,
    /// `restriction_info[]`.
    pub restrictions: Vec<AccountRestriction>,
    /// `ban_info` as sent.
    pub ban_info: Option<serde_json::Value>,
    /// `violation_info` as sent.
    pub violation_info: Option<serde_json::Value>,
}

/// One `restriction_info[]` item of an `account_update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRestriction {
    /// `restriction_type`, e.g. `RESTRICTED_BIZ_INITIATED_MESSAGING`.
    pub restriction_type: String,
    /// `expiration`: when it lifts.
    pub expiration: Option<Timestamp>,
}

pub(super) fn template_status(origin: Origin<'_>, v: wire::TemplateStatus) -> TemplateStatusUpdate {
    let (other_info_title, other_info_description) = match v.other_info {
        Some(info) => (info.title, info.description),
        None => (None, None),
    };
    TemplateStatusUpdate {
        waba_id: origin.waba_id.to_owned(),
        time: origin.time,
        event: v.event,
        template_id: v.message_template_id.map(|id| id.0),
        name: v.message_template_name,
        language: v.message_template_language,
        reason: v.reason,
        category: v.message_template_category,
        other_info_title,
        other_info_description,
        disable_info: v.disable_info,
        rejection_info: v.rejection_info,
    }
}

pub(super) fn template_quality(
    origin: Origin<'_>,
    v: wire::TemplateQuality,
) -> TemplateQualityUpdate {
    TemplateQualityUpdate {
        waba_id: origin.waba_id.to_owned(),
        time: origin.time,
        template_id: v.message_template_id.map(|id| id.0),
        name: v.message_template_name,
        language: v.message_template_language,
        previous_quality_score: v.previous_quality_score,
        new_quality_score: v.new_quality_score,
    }
}

pub(super) fn template_category(
    origin: Origin<'_>,
    v: wire::TemplateCategory,
) -> TemplateCategoryUpdate {
    TemplateCategoryUpdate {
        waba_id: origin.waba_id.to_owned(),
        time: origin.time,
        template_id: v.message_template_id.map(|id| id.0),
        name: v.message_template_name,
        language: v.message_template_language,
        previous_category: v.previous_category,
        new_category: v.new_category,
        correct_category: v.correct_category,
        category_update_timestamp: v.category_update_timestamp.and_then(|t| read_time(&t).ok()),
    }
}

pub(super) fn phone_quality(origin: Origin<'_>, v: wire::PhoneQuality) -> PhoneNumberQualityUpdate {
    PhoneNumberQualityUpdate {
        waba_id: origin.waba_id.to_owned(),
        time: origin.time,
        display_phone_number: v.display_phone_number.map(|n| n.0),
        event: v.event,
        max_daily_conversations_per_business: v.max_daily_conversations_per_business,
        current_limit: v.current_limit,
        old_limit: v.old_limit,
    }
}

pub(super) fn account(origin: Origin<'_>, v: wire::Account) -> AccountUpdate {
    AccountUpdate {
        waba_id: origin.waba_id.to_owned(),
        time: origin.time,
        event: v.event,
        phone_number: v.phone_number.map(|n| n.0),
        restrictions: v
            .restriction_info
            .into_iter()
            .flatten()
            .map(|r| AccountRestriction {
                restriction_type: r.restriction_type,
                expiration: r.expiration.and_then(|t| read_time(&t).ok()),
            })
            .collect(),
        ban_info: v.ban_info,
        violation_info: v.violation_info,
    }
}

/// A user's marketing preference (`user_preferences` change, one per item): they
/// stopped or resumed marketing messages from the business number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPreferenceUpdate {
    /// `entry.id`: the WABA.
    pub waba_id: String,
    /// `value.metadata.phone_number_id`: the business number concerned.
    pub phone_number_id: Option<PhoneNumberId>,
    /// `wa_id`: the user.
    pub wa_id: Option<String>,
    /// `category` (`marketing_messages`).
    pub category: Option<String>,
    /// `value`: `stop` or `resume` as Meta sent it.
    pub value: Option<String>,
    /// `detail`: Meta's description.
    pub detail: Option<String>,
    /// `timestamp` (else `entry.time`).
    pub time: Option<Timestamp>,
}

impl UserPreferenceUpdate {
    /// `Some(true)` for a stop of marketing messages, `Some(false)` for a resume,
    /// `None` for anything else (another category or value).
    pub fn marketing_opted_out(&self) -> Option<bool> {
        if self.category.as_deref() != Some("marketing_messages") {
            return None;
        }
        match self.value.as_deref() {
            Some(v) if v.eq_ignore_ascii_case("stop") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("resume") => Some(false),
            _ => None,
        }
    }
}

pub(super) fn user_preferences(
    origin: Origin<'_>,
    v: wire::UserPreferencesValue,
) -> Vec<UserPreferenceUpdate> {
    let phone_number_id = v
        .metadata
        .and_then(|m| m.phone_number_id)
        .and_then(|id| PhoneNumberId::parse(&id.0).ok());
    v.user_preferences
        .into_iter()
        .flatten()
        .map(|p| UserPreferenceUpdate {
            waba_id: origin.waba_id.to_owned(),
            phone_number_id: phone_number_id.clone(),
            wa_id: p.wa_id,
            category: p.category,
            value: p.value,
            detail: p.detail,
            time: p.timestamp.and_then(|t| read_time(&t).ok()).or(origin.time),
        })
        .collect()
}
