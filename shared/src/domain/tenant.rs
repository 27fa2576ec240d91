//! Tenants and contacts as the directory stores them.
//!
//! A tenant is one product team (or customer) with its own WhatsApp number, queue,
//! concurrency limit and policies (DESIGN §5, §8).

use super::ids::{PhoneNumberId, TenantId};
use super::quota::IntakeQuota;
use super::time::Timestamp;
use super::validation::FormattingPolicy;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Whether a tenant may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Sends are accepted.
    #[default]
    Active,
    /// An operator suspended it: intake and sender suppress its messages.
    Suspended,
}

/// What the reconciler does with a send whose answer was lost (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnAmbiguous {
    /// At-most-once: fail it (class `ambiguous`) unless a webhook proves it was sent.
    #[default]
    Fail,
    /// At-least-once: send it again (may duplicate).
    Retry,
}

/// A tenant's profile: routing, limits and policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantProfile {
    /// The tenant.
    pub id: TenantId,
    /// Active or suspended.
    #[serde(default)]
    pub status: TenantStatus,
    /// The business phone number id its messages are sent from by default.
    pub phone_number_id: PhoneNumberId,
    /// Further business phone numbers it owns: a send may choose one as `from`, and
    /// each routes its webhooks to this tenant (absent in older profiles: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_phone_number_ids: Vec<PhoneNumberId>,
    /// Its WhatsApp Business Account id (routes template and account webhooks).
    pub waba_id: String,
    /// Its send queue (SQS URL, or the embedded queue's name).
    pub queue: String,
    /// Where its Graph token is kept (a Secrets Manager name/ARN, or `env:VAR`); never the token.
    pub token_ref: String,
    /// Most sends of this tenant in flight at once (the event source's MaximumConcurrency).
    pub max_concurrency: u32,
    /// Messages per second its phone number may send (Meta's default is 80).
    pub throughput_mps: u32,
    /// What intake accepts from it: requests per second with a burst, messages per day
    /// (absent in older profiles: the defaults).
    #[serde(default)]
    pub intake_quota: IntakeQuota,
    /// Strict (reject) or sanitize (fix) template values with newlines, tabs or runs of spaces.
    #[serde(default)]
    pub formatting: FormattingPolicy,
    /// At-most-once (`fail`) or at-least-once (`retry`) for lost answers.
    #[serde(default)]
    pub on_ambiguous: OnAmbiguous,
    /// Inbound words that opt a contact out (compared case-insensitively, trimmed).
    #[serde(default = "default_opt_out_keywords")]
    pub opt_out_keywords: Vec<String>,
    /// Inbound words that opt a contact back in.
    #[serde(default = "default_opt_in_keywords")]
    pub opt_in_keywords: Vec<String>,
    /// Last phone-number quality or tier Meta reported (`phone_number_quality_update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_quality: Option<String>,
    /// Last account event Meta reported (`account_update`, e.g. a restriction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_event: Option<String>,
    /// Meta's time of the stored `phone_quality` (an older update never replaces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_quality_at: Option<Timestamp>,
    /// Meta's time of the stored `account_event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_event_at: Option<Timestamp>,
    /// Sending is held after a tenant-class failure (expired token, restricted
    /// account, ...): its messages wait without spending attempts until a probe
    /// succeeds, the token is updated or an operator resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<TenantHold>,
    /// Send MARKETING templates through Meta's Marketing Messages API
    /// (`POST /{phone_number_id}/marketing_messages`, same body) instead of `/messages`;
    /// other categories and text always use `/messages` (absent in older profiles: off).
    #[serde(default)]
    pub marketing_messages_api: bool,
    /// When the profile last changed.
    pub updated_at: Timestamp,
}

impl TenantProfile {
    /// Every business number it owns, the default first.
    pub fn phone_number_ids(&self) -> impl Iterator<Item = &PhoneNumberId> {
        std::iter::once(&self.phone_number_id).chain(&self.other_phone_number_ids)
    }

    /// Whether `id` is one of its numbers.
    pub fn owns_phone_number(&self, id: &PhoneNumberId) -> bool {
        self.phone_number_ids().any(|n| n == id)
    }

    /// The number a send goes out from: `from` when it is one of its numbers, the
    /// default when absent; `None` when `from` names a number it does not own.
    pub fn sending_number<'a>(
        &'a self,
        from: Option<&'a PhoneNumberId>,
    ) -> Option<&'a PhoneNumberId> {
        match from {
            None => Some(&self.phone_number_id),
            Some(id) => self.owns_phone_number(id).then_some(id),
        }
    }
}

/// How often a held tenant's sender tries one real send (the probe), by default.
pub const DEFAULT_HOLD_PROBE_INTERVAL_MS: i64 = 2 * 60 * 1000;

/// Why and since when a tenant's sending is held (DESIGN §5: a `tenant`-class failure
/// belongs to the tenant, not to one message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantHold {
    /// The Graph error code that caused it (`None`: the token could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// What happened, in words (the failure's title).
    pub reason: String,
    /// Meta's message or the token source's error, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the hold began.
    pub since: Timestamp,
    /// When the next probe (one real send) may be made; claimed by one sender at a time.
    pub probe_at: Timestamp,
}

impl TenantHold {
    /// Whether a probe may be made at `now`.
    pub fn probe_due(&self, now: Timestamp) -> bool {
        self.probe_at <= now
    }
}

/// STOP and UNSUBSCRIBE.
pub fn default_opt_out_keywords() -> Vec<String> {
    vec!["STOP".into(), "UNSUBSCRIBE".into()]
}

/// START.
pub fn default_opt_in_keywords() -> Vec<String> {
    vec!["START".into()]
}

/// What an inbound text means for the contact's opt-out state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordAction {
    /// The contact asked to stop.
    OptOut,
    /// The contact asked to start again.
    OptIn,
}

impl TenantProfile {
    /// Whether an inbound text is one of this tenant's opt-out or opt-in keywords.
    pub fn keyword_action(&self, text: &str) -> Option<KeywordAction> {
        let word = text.trim();
        let is = |list: &[String]| list.iter().any(|k| k.eq_ignore_ascii_case(word));
        if is(&self.opt_out_keywords) {
            Some(KeywordAction::OptOut)
        } else if is(&self.opt_in_keywords) {
            Some(KeywordAction::OptIn)
        } else {
            None
        }
    }
}

/// What we know of one recipient of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Contact {
    /// Last time the contact wrote to us (opens the 24-hour window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound_at: Option<Timestamp>,
    /// Whether the contact opted out.
    #[serde(default)]
    pub opted_out: bool,
    /// When the opt-out (or opt-in) was last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_changed_at: Option<Timestamp>,
    /// Whether the contact stopped marketing messages from this business (Meta's
    /// `user_preferences` webhook, or a 131050): MARKETING templates are suppressed.
    #[serde(default)]
    pub marketing_opted_out: bool,
    /// When the marketing preference was last changed (Meta's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketing_changed_at: Option<Timestamp>,
    /// Until when Meta's per-user marketing limit (a 131049) holds MARKETING templates
    /// to this contact: they wait `queued` until then, other templates go out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketing_limited_until: Option<Timestamp>,
}

/// The customer-service window: free-form text is allowed 24 h after the last inbound.
pub const SERVICE_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

impl Contact {
    /// Whether free-form text may be sent at `now`.
    pub fn window_open(&self, now: Timestamp) -> bool {
        self.last_inbound_at
            .is_some_and(|t| now.millis_since(t) < SERVICE_WINDOW_MS)
    }
}

/// SHA-256 (hex) of an API key: keys are stored and looked up only by this hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    /// Hash a presented key.
    pub fn of_key(key: &str) -> Self {
        Self(hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// A stored hash (64 lowercase hex digits, as [`ApiKeyHash::of_key`] makes them).
    pub fn parse(hex: &str) -> Result<Self, InvalidApiKeyHash> {
        let valid = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(Self(hex.to_owned()))
        } else {
            Err(InvalidApiKeyHash(hex.chars().take(80).collect()))
        }
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A string that is not an API key hash (64 lowercase hex digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an API key hash (64 lowercase hex digits)")]
pub struct InvalidApiKeyHash(String);

/// One API key of a tenant as the directory keeps it: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyEntry {
    /// SHA-256 of the key.
    pub hash: ApiKeyHash,
    /// When it was added (`None`: stored before keys had times).
    pub added_at: Option<Timestamp>,
    /// Where it came from (`wa.toml`, `wa tenants add`, an operator's label); `None`
    /// for keys stored before keys had labels.
    pub label: Option<String>,
}

impl ApiKeyEntry {
    /// The entry of `hash`, added at `added_at` with `label`.
    pub fn new(hash: ApiKeyHash, added_at: Timestamp, label: Option<&str>) -> Self {
        Self {
            hash,
            added_at: Some(added_at),
            label: label.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> TenantProfile {
        TenantProfile {
            id: TenantId::parse("demo").unwrap(),
            status: TenantStatus::Active,
            phone_number_id: PhoneNumberId::parse("106540352242922").unwrap(),
            other_phone_number_ids: Vec::new(),
            waba_id: "102290129340398".into(),
            queue: "demo".into(),
            token_ref: "env:WA_DEMO_TOKEN".into(),
            max_concurrency: 5,
            throughput_mps: 80,
            intake_quota: IntakeQuota::default(),
            formatting: FormattingPolicy::Strict,
            on_ambiguous: OnAmbiguous::Fail,
            opt_out_keywords: default_opt_out_keywords(),
            opt_in_keywords: default_opt_in_keywords(),
            phone_quality: None,
            account_event: None,
            hold: None,
            phone_quality_at: None,
            account_event_at: None,
            marketing_messages_api: false,
            updated_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn keywords_match_case_insensitively_after_trimming() {
        let p = profile();
        assert_eq!(p.keyword_action(" stop "), Some(KeywordAction::OptOut));
        assert_eq!(p.keyword_action("Unsubscribe"), Some(KeywordAction::OptOut));
        assert_eq!(p.keyword_action("START"), Some(KeywordAction::OptIn));
        assert_eq!(p.keyword_action("please stop"), None);
    }

    #[test]
    fn the_window_is_open_for_24_hours_after_the_last_inbound() {
        let t0 = Timestamp::from_secs(1_000_000);
        let c = Contact {
            last_inbound_at: Some(t0),
            ..Contact::default()
        };
        assert!(c.window_open(t0.plus_millis(SERVICE_WINDOW_MS - 1)));
        assert!(!c.window_open(t0.plus_millis(SERVICE_WINDOW_MS)));
        assert!(!Contact::default().window_open(t0));
    }

    #[test]
    fn api_keys_are_hashed_with_sha256() {
        // sha256("wa_demo_key"), computed independently with sha256sum.
        let h = ApiKeyHash::of_key("wa_demo_key");
        assert_eq!(
            h.as_str(),
            "80c7ab1036812a03bc3df6e60c1a04341acf1dc101c4df8ef6a7bb7b1df60324"
        );
        assert_ne!(h, ApiKeyHash::of_key("wa_demo_kez"));
        assert_eq!(ApiKeyHash::parse(h.as_str()), Ok(h.clone()));
        assert!(ApiKeyHash::parse(&h.as_str().to_uppercase()).is_err());
        assert!(ApiKeyHash::parse(&h.as_str()[..63]).is_err());
        assert!(ApiKeyHash::parse("wa_demo_key").is_err());
    }

    #[test]
    fn profiles_round_trip_and_default_their_policies() {
        let p = profile();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(serde_json::from_value::<TenantProfile>(json).unwrap(), p);
        let minimal = serde_json::json!({"id":"demo","phone_number_id":"1","waba_id":"2","queue":"q",
            "token_ref":"env:X","max_concurrency":1,"throughput_mps":80,"updated_at":0});
        let p: TenantProfile = serde_json::from_value(minimal).unwrap();
        assert_eq!(p.on_ambiguous, OnAmbiguous::Fail);
        assert_eq!(p.opt_out_keywords, default_opt_out_keywords());
        assert_eq!(p.intake_quota, IntakeQuota::default());
        assert!(
            !p.marketing_messages_api,
            "older profiles send through /messages"
        );
    }
}
