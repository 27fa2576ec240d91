//! `Directory`: tenants, API keys, phone-number routing, templates and contacts
//! (DESIGN §2, §8; items in docs/data-model.md).

use crate::domain::template::{Template, TemplateCategory, TemplateStatus};
use crate::domain::tenant::{
    ApiKeyEntry, ApiKeyHash, Contact, TenantHold, TenantProfile, TenantStatus,
};
use crate::domain::{PhoneNumber, PhoneNumberId, TenantId, Timestamp};
use async_trait::async_trait;

/// Why a directory call failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The backend failed or could not be reached; the call may be retried.
    #[error("directory backend failed during {operation}")]
    Backend {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The API key (by its hash) is already a key of another tenant: a key routes to
    /// one tenant only, so it is not re-pointed (revoke it from `owner` first).
    #[error("the API key is already a key of tenant {owner}")]
    ApiKeyTaken {
        /// The tenant the key belongs to.
        owner: TenantId,
    },
    /// A stored item could not be decoded.
    #[error("directory item {key} is corrupt")]
    Corrupt {
        /// The item's key.
        key: String,
        /// The decoding error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A template as the directory keeps it: Meta's JSON plus what webhooks told us since.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTemplate {
    /// Meta's template (its `status` is kept current by webhooks and syncs).
    pub template: Template,
    /// Last quality score Meta reported (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`).
    pub quality: Option<String>,
    /// When it was last written.
    pub updated_at: Timestamp,
}

/// Which account signal of a profile [`Directory::set_account_signal`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountSignal {
    /// `phone_quality` / `phone_quality_at` (`phone_number_quality_update`).
    PhoneQuality,
    /// `account_event` / `account_event_at` (`account_update`).
    AccountEvent,
}

impl AccountSignal {
    /// The profile fields it writes: the value's, then its time's.
    pub const fn fields(self) -> (&'static str, &'static str) {
        match self {
            AccountSignal::PhoneQuality => ("phone_quality", "phone_quality_at"),
            AccountSignal::AccountEvent => ("account_event", "account_event_at"),
        }
    }
}

/// Tenants, API keys, routing, templates and contacts.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The tenant an API key (by its hash) belongs to.
    async fn tenant_by_api_key(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<TenantId>, DirectoryError>;

    /// The tenant that owns a business phone number (routes message webhooks).
    async fn tenant_by_phone_number_id(
        &self,
        id: &PhoneNumberId,
    ) -> Result<Option<TenantId>, DirectoryError>;

    /// Every tenant on a WABA, sorted by id (template and account webhooks apply to
    /// each: several tenants may share one WABA, each with its own numbers).
    async fn tenants_by_waba_id(&self, waba_id: &str) -> Result<Vec<TenantId>, DirectoryError>;

    /// A tenant's profile.
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantProfile>, DirectoryError>;

    /// A tenant's profile as stored now, bypassing any cache in front of the directory
    /// (the sender reads a hold this way before it drops a record because of it).
    async fn tenant_uncached(
        &self,
        id: &TenantId,
    ) -> Result<Option<TenantProfile>, DirectoryError> {
        self.tenant(id).await
    }

    /// Every tenant, sorted by id (operators' `wa tenants list`; a scan, not for hot paths).
    async fn list_tenants(&self) -> Result<Vec<TenantProfile>, DirectoryError>;

    /// Create or replace a profile, and its phone-number and WABA routing entries, atomically.
    /// Routing entries of the replaced profile's phone numbers or WABA are removed, unless
    /// another tenant has taken a number over since (the last put of a number wins; a
    /// WABA routes to every tenant on it).
    async fn put_tenant(&self, profile: &TenantProfile) -> Result<(), DirectoryError>;

    /// Map an API key (by its hash) to a tenant, added now by the wall clock with no
    /// label: [`Directory::add_api_key`].
    async fn put_api_key(
        &self,
        hash: &ApiKeyHash,
        tenant: &TenantId,
    ) -> Result<(), DirectoryError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let entry = ApiKeyEntry::new(hash.clone(), Timestamp::from_millis(now), None);
        self.add_api_key(tenant, &entry).await
    }

    /// Map an API key (by its hash) to `tenant`, keeping when it was added and its
    /// label. Adding a key the tenant already has changes nothing (its first time and
    /// label stay; an entry stored before keys had them gets them). A key of another
    /// tenant is refused with [`DirectoryError::ApiKeyTaken`], never re-pointed.
    async fn add_api_key(
        &self,
        tenant: &TenantId,
        entry: &ApiKeyEntry,
    ) -> Result<(), DirectoryError>;

    /// A tenant's API keys (hashes, never keys), oldest first (then by hash).
    async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyEntry>, DirectoryError>;

    /// Revoke one of `tenant`'s API keys: its routing entry is deleted, so the key no
    /// longer authenticates (past any cache in front of the directory, within that
    /// cache's bound). Whether it was a key of `tenant`; a key of another tenant is
    /// left alone.
    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        hash: &ApiKeyHash,
    ) -> Result<bool, DirectoryError>;

    /// One language version of a tenant's template.
    async fn template(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>, DirectoryError>;

    /// Every language version of a template name (to tell `unknown_language` from
    /// `unknown_template`).
    async fn templates_named(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Vec<StoredTemplate>, DirectoryError>;

    /// Create or replace one language version of a template (sync, load).
    async fn put_template(
        &self,
        tenant: &TenantId,
        template: &Template,
        at: Timestamp,
    ) -> Result<(), DirectoryError>;

    /// Record a status change from a webhook, only when `at` (Meta's event time) is not
    /// older than the stored status (a sync counts as of its own time; at equal times
    /// the last write wins). Returns `false` if the
    /// template is unknown or the change is stale, and then writes nothing.
    async fn update_template_status(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        status: &TemplateStatus,
        at: Timestamp,
    ) -> Result<bool, DirectoryError>;

    /// Record a completed category change from a webhook (`template_category_update`
    /// with `new_category`), only when not older than the stored category; a sync
    /// resets it to Meta's JSON. Returns `false` if unknown or stale.
    async fn update_template_category(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        category: &TemplateCategory,
        at: Timestamp,
    ) -> Result<bool, DirectoryError>;

    /// Record a quality change from a webhook, only when not older than the stored quality.
    /// Returns `false` if the template is unknown or the change is stale.
    async fn update_template_quality(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        quality: &str,
        at: Timestamp,
    ) -> Result<bool, DirectoryError>;

    /// What we know of a recipient (default when nothing is stored).
    async fn contact(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
    ) -> Result<Contact, DirectoryError>;

    /// Record an inbound message: `last_inbound_at` only ever moves forward.
    async fn record_inbound(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        at: Timestamp,
    ) -> Result<(), DirectoryError>;

    /// Record a stop (`true`) or resume (`false`) of marketing messages; an older change
    /// never overwrites a newer one, and at the same instant a stop wins.
    async fn set_marketing_opt_out(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        opted_out: bool,
        at: Timestamp,
    ) -> Result<(), DirectoryError>;

    /// Hold `who`'s MARKETING templates of `tenant` until `until` (Meta's per-user
    /// marketing limit, 131049): a partial write of that field only, which never moves
    /// a stored later `until` back. Creates the contact when absent.
    async fn set_marketing_limit(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        until: Timestamp,
    ) -> Result<(), DirectoryError>;

    /// Store an account signal of `tenant` (its phone quality or its last account
    /// event) as of Meta's time `at`: a partial write of that field and its time only,
    /// applied when no newer one is stored (an equal time applies too: a redelivery
    /// writes the same value). Whether it was applied. A missing tenant is not created,
    /// and nothing else of the profile (status, hold, ...) can be undone by it.
    async fn set_account_signal(
        &self,
        tenant: &TenantId,
        signal: AccountSignal,
        value: &str,
        at: Timestamp,
    ) -> Result<bool, DirectoryError>;

    /// Set `tenant`'s status (an operator's suspend or resume) as a partial write:
    /// nothing else of the profile changes, so a concurrent hold or account signal is
    /// never undone. Whether the tenant exists.
    async fn set_tenant_status(
        &self,
        tenant: &TenantId,
        status: TenantStatus,
        at: Timestamp,
    ) -> Result<bool, DirectoryError>;

    /// Put `tenant` on hold, unless it already is (the first hold's cause and start
    /// are kept); whether this call placed it. A partial write: nothing else of the
    /// profile changes, and a missing tenant is never created.
    async fn place_hold(
        &self,
        tenant: &TenantId,
        hold: &TenantHold,
    ) -> Result<bool, DirectoryError>;

    /// Claim the next probe of a held tenant: move the hold's `probe_at` from `seen`
    /// to `next`. `true` for the one caller that won; `false` when the hold is gone or
    /// another caller moved it first.
    async fn claim_hold_probe(
        &self,
        tenant: &TenantId,
        seen: Timestamp,
        next: Timestamp,
    ) -> Result<bool, DirectoryError>;

    /// End `tenant`'s hold; whether there was one.
    async fn release_hold(&self, tenant: &TenantId) -> Result<bool, DirectoryError>;

    /// Record an opt-out (`true`) or opt-in (`false`); an older change never overwrites
    /// a newer one, and at the same instant an opt-out wins.
    async fn set_opt_out(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        opted_out: bool,
        at: Timestamp,
    ) -> Result<(), DirectoryError>;
}
