//! Keys and item shapes of the `directory` table (docs/data-model.md), converted
//! with `serde_dynamo` so no attribute map is written by hand.

use crate::domain::template::{Template, TemplateCategory, TemplateStatus};
use crate::domain::tenant::{ApiKeyHash, Contact, TenantProfile};
use crate::domain::{PhoneNumber, PhoneNumberId, TenantId, Timestamp};
use crate::ports::{DirectoryError, StoredTemplate};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use std::collections::HashMap;

/// One DynamoDB item.
pub(super) type Item = HashMap<String, AttributeValue>;

/// Sort key of a tenant profile.
pub(super) const PROFILE_SK: &str = "profile";
const API_KEY_SK: &str = "apikey";
const PHONE_SK: &str = "phone";
const WABA_SK: &str = "waba";
const CONTACT_SK: &str = "contact";

/// The partition of a WABA's membership items.
pub(super) fn waba_pk(waba_id: &str) -> String {
    format!("waba#{waba_id}")
}

/// A `(pk, sk)` pair: the full primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: &str) -> Self {
        Self {
            pk,
            sk: sk.to_owned(),
        }
    }

    /// The tenant's profile item.
    pub fn profile(tenant: &TenantId) -> Self {
        Self::new(tenant_pk(tenant), PROFILE_SK)
    }

    /// The API key routing item.
    pub fn api_key(hash: &ApiKeyHash) -> Self {
        Self::new(format!("apikey#{}", hash.as_str()), API_KEY_SK)
    }

    /// The tenant's listing item of one of its API keys (in the tenant's partition,
    /// written and deleted together with the routing item).
    pub fn tenant_api_key(tenant: &TenantId, hash: &ApiKeyHash) -> Self {
        Self {
            pk: tenant_pk(tenant),
            sk: format!("{TENANT_API_KEY_SK_PREFIX}{}", hash.as_str()),
        }
    }

    /// The phone number routing item.
    pub fn phone(id: &PhoneNumberId) -> Self {
        Self::new(format!("phone#{id}"), PHONE_SK)
    }

    /// The item saying `tenant` is on WABA `waba_id` (one per tenant: a WABA may be
    /// shared; a Query on the pk lists them).
    pub fn waba(waba_id: &str, tenant: &TenantId) -> Self {
        Self::new(waba_pk(waba_id), &format!("{WABA_SK}#{tenant}"))
    }

    /// One language version of a template.
    pub fn template(tenant: &TenantId, name: &str, language: &str) -> Self {
        Self {
            pk: tenant_pk(tenant),
            sk: format!("{}{language}", template_sk_prefix(name)),
        }
    }

    /// A contact of a tenant.
    pub fn contact(tenant: &TenantId, who: &PhoneNumber) -> Self {
        Self::new(format!("contact#{tenant}#{who}"), CONTACT_SK)
    }

    /// The key as the `Key` parameter of GetItem/UpdateItem/Delete.
    pub fn to_item(&self) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }

    /// For error messages.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.pk, self.sk)
    }
}

/// Sort key prefix of a tenant's API key listing items (`apikey#{hash}`).
pub(super) const TENANT_API_KEY_SK_PREFIX: &str = "apikey#";

/// Partition key of everything a tenant owns in one partition (profile, templates,
/// API key listing items).
pub(super) fn tenant_pk(tenant: &TenantId) -> String {
    format!("tenant#{tenant}")
}

/// Sort key prefix shared by every language version of a template name. Meta's names
/// are `[a-z0-9_]`, so the `#` after the name cannot be part of another name.
pub(super) fn template_sk_prefix(name: &str) -> String {
    format!("template#{name}#")
}

/// A routing item (API key, phone number, WABA): its key and the tenant it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RouteItem {
    pub pk: String,
    pub sk: String,
    pub tenant: TenantId,
}

impl RouteItem {
    /// The item routing `key` to `tenant`.
    pub fn new(key: Key, tenant: &TenantId) -> Self {
        Self {
            pk: key.pk,
            sk: key.sk,
            tenant: tenant.clone(),
        }
    }
}

/// An API key item: the routing item `apikey#{hash}` (with `tenant`) or the tenant's
/// listing item `tenant#{id}` / `apikey#{hash}` (with `hash`); both carry when the key
/// was added and its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ApiKeyItem {
    pub pk: String,
    pub sk: String,
    /// The owner (routing item only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// The key's hash (listing item only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// When it was added, ms since the epoch (absent on keys stored before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<i64>,
    /// Where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A template item. Meta's JSON is kept verbatim as a string in `template` (so
/// whatever fields Meta adds survive untouched), while `status` and `quality` are
/// top-level attributes: a webhook changes them with one small UpdateItem, and
/// `status` overrides the JSON's own `status` on read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct TemplateItem {
    pub pk: String,
    pub sk: String,
    /// Meta's template JSON.
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TemplateStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// A completed category change from Meta, over the JSON's until the next sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<TemplateCategory>,
    pub updated_at: Timestamp,
}

impl TemplateItem {
    /// The stored template, with the `status` attribute merged back into Meta's JSON.
    pub fn into_stored(self) -> Result<StoredTemplate, DirectoryError> {
        let mut template: Template = serde_json::from_str(&self.template).map_err(|e| {
            corrupt(
                &Key {
                    pk: self.pk.clone(),
                    sk: self.sk.clone(),
                },
                e,
            )
        })?;
        template.status = self.status;
        if let Some(category) = self.category {
            template.category = Some(category);
        }
        Ok(StoredTemplate {
            template,
            quality: self.quality,
            updated_at: self.updated_at,
        })
    }
}

/// Meta's JSON of a template without its status (kept in its own attribute).
pub(super) fn template_json(template: &Template) -> Result<String, DirectoryError> {
    let without_status = Template {
        status: None,
        ..template.clone()
    };
    serde_json::to_string(&without_status).map_err(|e| encode_error(&template.name, e))
}

/// The profile item: the profile's attributes plus `pk`/`sk`.
pub(super) fn profile_item(profile: &TenantProfile) -> Result<Item, DirectoryError> {
    let mut item: Item = to_item(profile).map_err(|e| encode_error(profile.id.as_str(), e))?;
    item.extend(Key::profile(&profile.id).to_item());
    Ok(item)
}

/// Decode a profile item (`pk`/`sk` are ignored: the profile does not deny unknown fields).
pub(super) fn profile_from_item(item: Item) -> Result<TenantProfile, DirectoryError> {
    let key = key_of(&item);
    from_item(item).map_err(|e| corrupt(&key, e))
}

/// Encode any item shape.
pub(super) fn encode<T: Serialize>(value: &T, what: &str) -> Result<Item, DirectoryError> {
    to_item(value).map_err(|e| encode_error(what, e))
}

/// Decode any item shape.
pub(super) fn decode<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, DirectoryError> {
    let key = key_of(&item);
    from_item(item).map_err(|e| corrupt(&key, e))
}

/// A contact item decodes straight into [`Contact`]; absent attributes take its defaults.
pub(super) fn contact_from_item(item: Item) -> Result<Contact, DirectoryError> {
    decode(item)
}

fn key_of(item: &Item) -> Key {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    };
    Key {
        pk: text("pk"),
        sk: text("sk"),
    }
}

fn corrupt(key: &Key, source: impl std::error::Error + Send + Sync + 'static) -> DirectoryError {
    DirectoryError::Corrupt {
        key: key.describe(),
        source: Box::new(source),
    }
}

/// Our own value failed to encode: not a backend failure, but nothing to retry either.
fn encode_error(
    what: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> DirectoryError {
    DirectoryError::Corrupt {
        key: what.to_owned(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tenant::{OnAmbiguous, TenantStatus};
    use crate::domain::validation::FormattingPolicy;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn keys_follow_the_data_model() {
        let t = tenant();
        assert_eq!(Key::profile(&t), Key::new("tenant#acme".into(), "profile"));
        let hash = ApiKeyHash::of_key("k");
        assert_eq!(Key::api_key(&hash).pk, format!("apikey#{}", hash.as_str()));
        assert_eq!(Key::api_key(&hash).sk, "apikey");
        let phone = PhoneNumberId::parse("106540352242922").unwrap();
        assert_eq!(
            Key::phone(&phone),
            Key::new("phone#106540352242922".into(), "phone")
        );
        assert_eq!(
            Key::waba("42", &TenantId::parse("acme").unwrap()),
            Key::new("waba#42".into(), "waba#acme")
        );
        assert_eq!(
            Key::template(&t, "order_shipped", "en_US"),
            Key::new("tenant#acme".into(), "template#order_shipped#en_US")
        );
        let who = PhoneNumber::parse("+14155550123").unwrap();
        assert_eq!(
            Key::contact(&t, &who),
            Key::new("contact#acme#+14155550123".into(), "contact")
        );
    }

    #[test]
    fn a_profile_item_round_trips_and_carries_its_key() {
        let profile = TenantProfile {
            id: tenant(),
            status: TenantStatus::Suspended,
            phone_number_id: PhoneNumberId::parse("1").unwrap(),
            other_phone_number_ids: Vec::new(),
            waba_id: "2".into(),
            queue: "q".into(),
            token_ref: "env:X".into(),
            max_concurrency: 3,
            throughput_mps: 80,
            intake_quota: crate::domain::quota::IntakeQuota {
                requests_per_second: 7,
                burst: 9,
                messages_per_day: Some(1000),
            },
            formatting: FormattingPolicy::default(),
            on_ambiguous: OnAmbiguous::Retry,
            opt_out_keywords: vec![],
            opt_in_keywords: vec!["START".into()],
            phone_quality: Some("GREEN".into()),
            account_event: None,
            hold: None,
            phone_quality_at: None,
            account_event_at: None,
            marketing_messages_api: false,
            updated_at: Timestamp::from_millis(7),
        };
        let item = profile_item(&profile).unwrap();
        assert_eq!(
            item.get("pk"),
            Some(&AttributeValue::S("tenant#acme".into()))
        );
        assert_eq!(item.get("sk"), Some(&AttributeValue::S("profile".into())));
        assert_eq!(item.get("updated_at"), Some(&AttributeValue::N("7".into())));
        assert_eq!(profile_from_item(item).unwrap(), profile);
    }

    #[test]
    fn the_status_attribute_overrides_the_status_in_the_json() {
        let template: Template = serde_json::from_value(serde_json::json!({
            "name": "hello", "language": "en", "status": "APPROVED", "quality_score": {"score": "GREEN"},
            "components": [{"type": "BODY", "text": "Hi"}]
        }))
        .unwrap();
        let json = template_json(&template).unwrap();
        assert!(!json.contains("APPROVED"), "{json}");
        let key = Key::template(&tenant(), "hello", "en");
        let item = TemplateItem {
            pk: key.pk,
            sk: key.sk,
            template: json,
            status: Some(TemplateStatus::Paused),
            quality: None,
            category: None,
            updated_at: Timestamp::from_millis(1),
        };
        let encoded = encode(&item, "t").unwrap();
        assert_eq!(
            encoded.get("status"),
            Some(&AttributeValue::S("PAUSED".into()))
        );
        assert!(!encoded.contains_key("quality"));
        let stored = decode::<TemplateItem>(encoded)
            .unwrap()
            .into_stored()
            .unwrap();
        assert_eq!(stored.template.status, Some(TemplateStatus::Paused));
        assert_eq!(
            Template {
                status: template.status.clone(),
                ..stored.template
            },
            template
        );
    }

    #[test]
    fn a_bare_contact_item_decodes_to_defaults() {
        let item = Key::contact(&tenant(), &PhoneNumber::parse("+14155550123").unwrap()).to_item();
        assert_eq!(contact_from_item(item).unwrap(), Contact::default());
    }

    #[test]
    fn a_corrupt_item_names_its_key() {
        let mut item = Key::profile(&tenant()).to_item();
        item.insert("max_concurrency".into(), AttributeValue::S("many".into()));
        let err = profile_from_item(item).unwrap_err();
        assert!(
            matches!(&err, DirectoryError::Corrupt { key, .. } if key == "tenant#acme/profile"),
            "{err:?}"
        );
    }
}
