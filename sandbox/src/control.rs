//! Things Meta would post on its own, posted on request (by the handle or by
//! `POST /_sandbox/...`): inbound text messages (which open the service window; "STOP"
//! and "START" are just texts), template status updates (which also change the
//! sandbox's catalog, so a PAUSED template then fails sends with 132015), template
//! quality updates and phone number quality updates; and, for tests of tenant holds,
//! an access token that expires for a while (`POST /_sandbox/token_expiry`).

use super::SandboxError;
use super::state::{Shared, unix_seconds};
use super::webhooks::Outgoing;
use super::webhooks::envelope::{change_envelope, inbound_text_value};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;
use wa_shared::domain::template::TemplateStatus;

/// A user writes to one of the sandbox's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundText {
    /// The business number written to.
    pub phone_number_id: String,
    /// The user's number (digits, `+` allowed).
    pub from: String,
    /// What they wrote.
    pub text: String,
    /// Their profile name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A template changes status (`message_template_status_update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateStatusChange {
    /// The WABA; every WABA holding the template when absent.
    #[serde(default)]
    pub waba_id: Option<String>,
    /// Template name.
    pub name: String,
    /// Exact locale.
    pub language: String,
    /// `APPROVED`, `PAUSED`, `DISABLED`, `REJECTED`, `REINSTATED`, ... (`REINSTATED`
    /// and `UNPAUSED` make the template `APPROVED` again).
    pub event: String,
    /// `reason` (default `NONE`).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A template's quality score changes (`message_template_quality_update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateQualityChange {
    /// The WABA; every WABA holding the template when absent.
    #[serde(default)]
    pub waba_id: Option<String>,
    /// Template name.
    pub name: String,
    /// Exact locale.
    pub language: String,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    pub new_quality_score: String,
}

/// A user stops (or resumes) marketing messages from one business number (Meta's
/// `user_preferences` webhook); while stopped, MARKETING templates to them fail by
/// webhook with 131050.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPreference {
    /// The business number.
    pub phone_number_id: String,
    /// The user (digits).
    pub wa_id: String,
    /// `stop` or `resume`.
    pub value: String,
    /// Post the `user_preferences` webhook (default); `false` only changes what later
    /// sends get (a pipeline that missed the webhook then learns it from a 131050).
    #[serde(default = "yes")]
    pub notify: bool,
}

fn yes() -> bool {
    true
}

/// A user reaches Meta's per-user marketing cap (or leaves it): MARKETING templates to
/// them fail by webhook with 131049 meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketingCap {
    /// The user (digits).
    pub wa_id: String,
    /// Whether they are capped.
    pub capped: bool,
}

/// A template's category changes (the completed `template_category_update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCategoryChange {
    /// The WABA; every WABA holding the template when absent.
    #[serde(default)]
    pub waba_id: Option<String>,
    /// Template name.
    pub name: String,
    /// Exact locale.
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub new_category: String,
}

/// A phone number's access token expires for a while (sends answer 190).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenExpiry {
    /// The number whose token expires.
    pub phone_number_id: String,
    /// For how long, in milliseconds (0: valid again now).
    pub duration_ms: u64,
}

/// A phone number's quality or limit changes (`phone_number_quality_update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneQualityChange {
    /// The number.
    pub phone_number_id: String,
    /// `THROUGHPUT_UPGRADE`, `ONBOARDING`, `FLAGGED`, `DOWNGRADE`, `UPGRADE`, ...
    pub event: String,
    /// `TIER_250`, `TIER_2K`, ... when given.
    #[serde(default)]
    pub max_daily_conversations_per_business: Option<String>,
}

impl Shared {
    /// Open the window of `(phone, from)` and post the inbound message; returns its wamid.
    pub fn inbound_text(&self, m: &InboundText) -> Result<String, SandboxError> {
        let phone = self
            .phone(&m.phone_number_id)
            .ok_or_else(|| SandboxError::NotFound(format!("phone number {}", m.phone_number_id)))?;
        let from = super::send::phone_digits(&m.from)
            .ok_or_else(|| SandboxError::Invalid(format!("{:?} is not a phone number", m.from)))?;
        let wamid = {
            let mut core = self.core();
            core.limits
                .open_window(&phone.id, &from, Instant::now().into_std());
            core.next_wamid(self.instance(), &from)
        };
        let value = inbound_text_value(
            &self.number_meta(&phone),
            &from,
            m.name.as_deref().unwrap_or("Sandbox User"),
            &wamid,
            unix_seconds(Duration::ZERO),
            &m.text,
        );
        let envelope = change_envelope(&phone.waba_id, None, "messages", value);
        self.schedule(
            Instant::now(),
            Outgoing::Change {
                envelope,
                field: "messages".into(),
            },
        );
        Ok(wamid)
    }

    /// Change the template's status in the catalog(s) and post the update.
    pub fn template_status(&self, c: &TemplateStatusChange) -> Result<(), SandboxError> {
        let status = match c.event.to_ascii_uppercase().as_str() {
            "REINSTATED" | "UNPAUSED" => TemplateStatus::Approved,
            other => TemplateStatus::from(other.to_owned()),
        };
        let touched = self.update_templates(c.waba_id.as_deref(), &c.name, &c.language, |t| {
            t.status = Some(status.clone());
        })?;
        for (waba, id, category) in touched {
            let value = json!({
                "event": c.event.to_ascii_uppercase(),
                "message_template_id": id,
                "message_template_name": c.name,
                "message_template_language": c.language,
                "reason": c.reason.clone().unwrap_or_else(|| "NONE".to_owned()),
                "message_template_category": category,
            });
            self.post_management(&waba, "message_template_status_update", value);
        }
        Ok(())
    }

    /// Record the template's new quality score and post the update.
    pub fn template_quality(&self, c: &TemplateQualityChange) -> Result<(), SandboxError> {
        let mut previous = Vec::new();
        let touched = self.update_templates(c.waba_id.as_deref(), &c.name, &c.language, |t| {
            let old = t
                .extra
                .get("quality_score")
                .and_then(|q| q.get("score"))
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN")
                .to_owned();
            previous.push(old);
            t.extra.insert(
                "quality_score".into(),
                json!({"score": c.new_quality_score}),
            );
        })?;
        for ((waba, id, _), previous) in touched.into_iter().zip(previous) {
            let value = json!({
                "previous_quality_score": previous,
                "new_quality_score": c.new_quality_score,
                "message_template_id": id,
                "message_template_name": c.name,
                "message_template_language": c.language,
            });
            self.post_management(&waba, "message_template_quality_update", value);
        }
        Ok(())
    }

    /// Record a user's marketing stop or resume, and post `user_preferences`.
    pub fn user_preference(&self, u: &UserPreference) -> Result<(), SandboxError> {
        let phone = self
            .phone(&u.phone_number_id)
            .ok_or_else(|| SandboxError::NotFound(format!("phone number {}", u.phone_number_id)))?;
        let stop = match u.value.as_str() {
            "stop" => true,
            "resume" => false,
            other => {
                return Err(SandboxError::Invalid(format!(
                    "value {other:?}: stop or resume"
                )));
            }
        };
        {
            let mut stops = self
                .marketing_stops
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let key = (u.phone_number_id.clone(), u.wa_id.clone());
            if stop {
                stops.insert(key);
            } else {
                stops.remove(&key);
            }
        }
        if u.notify {
            let now = unix_seconds(Duration::ZERO);
            let detail = if stop {
                "User requested to stop marketing messages"
            } else {
                "User requested to resume marketing messages"
            };
            let value = json!({
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": phone.display_phone_number,
                             "phone_number_id": u.phone_number_id},
                "contacts": [{"profile": {"name": "Sandbox User"}, "wa_id": u.wa_id}],
                "user_preferences": [{"wa_id": u.wa_id, "detail": detail,
                    "category": "marketing_messages", "value": u.value, "timestamp": now}],
            });
            self.post_management(&phone.waba_id, "user_preferences", value);
        }
        Ok(())
    }

    /// Cap (or uncap) a user's marketing messages (131049).
    pub fn marketing_cap(&self, c: &MarketingCap) {
        let mut capped = self
            .marketing_capped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.capped {
            capped.insert(c.wa_id.clone());
        } else {
            capped.remove(&c.wa_id);
        }
    }

    /// Which marketing failure a MARKETING template from `phone_number_id` to `wa_id`
    /// gets: 131050 (the user stopped marketing from this number), 131049 (capped).
    pub fn marketing_failure(&self, phone_number_id: &str, wa_id: &str) -> Option<i64> {
        let stopped = self
            .marketing_stops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&(phone_number_id.to_owned(), wa_id.to_owned()));
        if stopped {
            return Some(131050);
        }
        let capped = self
            .marketing_capped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(wa_id);
        capped.then_some(131049)
    }

    /// Change a template's category in the catalog(s) and post the completed
    /// `template_category_update`.
    pub fn template_category(&self, c: &TemplateCategoryChange) -> Result<(), SandboxError> {
        let new: wa_shared::domain::template::TemplateCategory =
            serde_json::from_value(json!(c.new_category.to_ascii_uppercase()))
                .map_err(|_| SandboxError::Invalid(format!("category {:?}", c.new_category)))?;
        let mut previous = Vec::new();
        let touched = self.update_templates(c.waba_id.as_deref(), &c.name, &c.language, |t| {
            previous.push(
                t.category
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default(),
            );
            t.category = Some(new.clone());
        })?;
        for ((waba, id, category), previous) in touched.into_iter().zip(previous) {
            let value = json!({
                "message_template_id": id,
                "message_template_name": c.name,
                "message_template_language": c.language,
                "previous_category": previous,
                "new_category": category,
            });
            self.post_management(&waba, "template_category_update", value);
        }
        Ok(())
    }

    /// Expire `phone_number_id`'s access token for `duration`: every send answers 190
    /// until then (a zero duration makes it valid again at once).
    pub fn expire_token(&self, e: &TokenExpiry) -> Result<(), SandboxError> {
        if self.phone(&e.phone_number_id).is_none() {
            return Err(SandboxError::NotFound(format!(
                "phone number {}",
                e.phone_number_id
            )));
        }
        let until = Instant::now() + Duration::from_millis(e.duration_ms);
        let mut expired = self
            .expired_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        expired.insert(e.phone_number_id.clone(), until);
        Ok(())
    }

    /// Whether `phone_number_id`'s token is expired at `now`.
    pub fn token_expired(&self, phone_number_id: &str, now: Instant) -> bool {
        let expired = self
            .expired_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        expired
            .get(phone_number_id)
            .is_some_and(|until| now < *until)
    }

    /// Post a phone number quality update.
    pub fn phone_quality(&self, c: &PhoneQualityChange) -> Result<(), SandboxError> {
        let phone = self
            .phone(&c.phone_number_id)
            .ok_or_else(|| SandboxError::NotFound(format!("phone number {}", c.phone_number_id)))?;
        let mut value =
            json!({"display_phone_number": phone.display_phone_number, "event": c.event});
        if let Some(tier) = &c.max_daily_conversations_per_business {
            value["max_daily_conversations_per_business"] = json!(tier);
        }
        self.post_management(&phone.waba_id, "phone_number_quality_update", value);
        Ok(())
    }

    /// Apply `f` to the template in the chosen WABA(s); returns `(waba, template id,
    /// category)` of each one touched.
    fn update_templates(
        &self,
        waba_id: Option<&str>,
        name: &str,
        language: &str,
        mut f: impl FnMut(&mut wa_shared::domain::template::Template),
    ) -> Result<Vec<(String, Value, String)>, SandboxError> {
        let mut core = self.core();
        let mut touched = Vec::new();
        let mut wabas: Vec<&String> = core.catalogs.keys().collect();
        wabas.sort();
        let wabas: Vec<String> = wabas
            .into_iter()
            .filter(|w| waba_id.is_none_or(|want| want == w.as_str()))
            .cloned()
            .collect();
        for waba in wabas {
            let Some(catalog) = core.catalogs.get_mut(&waba) else {
                continue;
            };
            let Some(mut template) = catalog.remove(name, language) else {
                continue;
            };
            f(&mut template);
            // Meta sends template ids as numbers in these webhooks.
            let id = template
                .id
                .as_deref()
                .map(|i| i.parse::<u64>().map_or_else(|_| json!(i), |n| json!(n)))
                .unwrap_or(Value::Null);
            let category = template
                .category
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default();
            catalog.insert(template);
            touched.push((waba, id, category));
        }
        if touched.is_empty() {
            return Err(SandboxError::NotFound(format!(
                "template {name} ({language})"
            )));
        }
        Ok(touched)
    }

    fn post_management(&self, waba_id: &str, field: &str, value: Value) {
        let envelope = change_envelope(waba_id, Some(unix_seconds(Duration::ZERO)), field, value);
        self.schedule(
            Instant::now(),
            Outgoing::Change {
                envelope,
                field: field.to_owned(),
            },
        );
    }
}
