//! [`DirectoryCache`]: the `Directory` port with a short-lived cache of the reads
//! every send makes (API key -> tenant, tenant profiles, a template's language
//! versions), for warm containers. Any function can wrap its directory in it.
//!
//! Every send reads these, and they change rarely (an operator edits a tenant, a
//! webhook pauses a template), so a few seconds of staleness buy one directory read
//! per key per container instead of one per request. Misses are never cached, so an
//! unknown API key costs a read every time but cannot fill memory, and a new tenant is
//! visible at once. Writes and every other read go straight to the wrapped directory.
//!
//! A revoked API key stops authenticating within [`API_KEY_MAX_TTL_MS`] (5 s) in
//! every container, whatever the configured TTL, and at once in the one that revoked
//! it.

use crate::domain::template::{Template, TemplateCategory, TemplateStatus};
use crate::domain::tenant::{ApiKeyEntry, ApiKeyHash, Contact, TenantHold, TenantProfile};
use crate::domain::{PhoneNumber, PhoneNumberId, TenantId, Timestamp};
use crate::ports::{Clock, Directory, DirectoryError, StoredTemplate};
use async_trait::async_trait;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Longest an API key -> tenant entry lives, whatever the configured TTL: the bound
/// on how long a revoked key keeps authenticating in a warm container that cached
/// it (the container that revokes it forgets it at once).
pub const API_KEY_MAX_TTL_MS: i64 = 5_000;

/// Most entries one map keeps; past it the map is cleared (cheap, and rare: a
/// container serves few tenants).
const MAX_ENTRIES: usize = 4096;

/// A directory whose hot reads are cached. Cheap to clone; clones share the entries.
#[derive(Clone)]
pub struct DirectoryCache {
    directory: Arc<dyn Directory>,
    clock: Arc<dyn Clock>,
    ttl_ms: i64,
    inner: Arc<Maps>,
}

impl std::fmt::Debug for DirectoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryCache")
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Maps {
    api_keys: Ttl<ApiKeyHash, TenantId>,
    tenants: Ttl<TenantId, TenantProfile>,
    templates: Ttl<(TenantId, String), Vec<StoredTemplate>>,
}

#[derive(Debug)]
struct Ttl<K, V> {
    entries: Mutex<HashMap<K, (Timestamp, V)>>,
}

impl<K, V> Default for Ttl<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> Ttl<K, V> {
    fn get(&self, key: &K, now: Timestamp) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(expires, _)| now < *expires)
            .map(|(_, v)| v.clone())
    }

    fn remove(&self, key: &K) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(key);
    }

    fn put(&self, key: K, value: V, expires: Timestamp) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (expires, value));
    }
}

impl DirectoryCache {
    /// `directory` with entries living `ttl` by `clock` (zero: no caching at all).
    pub fn new(directory: Arc<dyn Directory>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            directory,
            clock,
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            inner: Arc::new(Maps::default()),
        }
    }

    /// How long entries live.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.ttl_ms).unwrap_or(0))
    }

    fn expiry(&self, now: Timestamp) -> Option<Timestamp> {
        expiry(self.ttl_ms, now)
    }
}

/// When an entry written at `now` expires; `None` when nothing is cached.
fn expiry(ttl_ms: i64, now: Timestamp) -> Option<Timestamp> {
    (ttl_ms > 0).then(|| now.plus_millis(ttl_ms))
}

#[async_trait]
impl Directory for DirectoryCache {
    async fn tenant_by_api_key(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<TenantId>, DirectoryError> {
        let now = self.clock.now();
        if let Some(hit) = self.inner.api_keys.get(hash, now) {
            return Ok(Some(hit));
        }
        let found = self.directory.tenant_by_api_key(hash).await?;
        let expires = expiry(self.ttl_ms.min(API_KEY_MAX_TTL_MS), now);
        if let (Some(tenant), Some(expires)) = (&found, expires) {
            self.inner
                .api_keys
                .put(hash.clone(), tenant.clone(), expires);
        }
        Ok(found)
    }

    async fn tenant_by_phone_number_id(
        &self,
        id: &PhoneNumberId,
    ) -> Result<Option<TenantId>, DirectoryError> {
        self.directory.tenant_by_phone_number_id(id).await
    }

    async fn tenants_by_waba_id(&self, waba_id: &str) -> Result<Vec<TenantId>, DirectoryError> {
        self.directory.tenants_by_waba_id(waba_id).await
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantProfile>, DirectoryError> {
        let now = self.clock.now();
        if let Some(hit) = self.inner.tenants.get(id, now) {
            return Ok(Some(hit));
        }
        let found = self.directory.tenant(id).await?;
        if let (Some(profile), Some(expires)) = (&found, self.expiry(now)) {
            self.inner.tenants.put(id.clone(), profile.clone(), expires);
        }
        Ok(found)
    }

    async fn tenant_uncached(
        &self,
        id: &TenantId,
    ) -> Result<Option<TenantProfile>, DirectoryError> {
        let now = self.clock.now();
        let found = self.directory.tenant_uncached(id).await?;
        match (&found, self.expiry(now)) {
            (Some(profile), Some(expires)) => {
                self.inner.tenants.put(id.clone(), profile.clone(), expires);
            }
            _ => self.inner.tenants.remove(id),
        }
        Ok(found)
    }

    async fn list_tenants(&self) -> Result<Vec<TenantProfile>, DirectoryError> {
        self.directory.list_tenants().await
    }

    async fn put_tenant(&self, profile: &TenantProfile) -> Result<(), DirectoryError> {
        self.directory.put_tenant(profile).await
    }

    async fn add_api_key(
        &self,
        tenant: &TenantId,
        entry: &ApiKeyEntry,
    ) -> Result<(), DirectoryError> {
        self.directory.add_api_key(tenant, entry).await
    }

    async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyEntry>, DirectoryError> {
        self.directory.api_keys(tenant).await
    }

    // This container forgets the key at once; others within API_KEY_MAX_TTL_MS.
    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        hash: &ApiKeyHash,
    ) -> Result<bool, DirectoryError> {
        let revoked = self.directory.revoke_api_key(tenant, hash).await;
        self.inner.api_keys.remove(hash);
        revoked
    }

    async fn template(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>, DirectoryError> {
        self.directory.template(tenant, name, language).await
    }

    async fn templates_named(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Vec<StoredTemplate>, DirectoryError> {
        let now = self.clock.now();
        let key = (tenant.clone(), name.to_owned());
        if let Some(hit) = self.inner.templates.get(&key, now) {
            return Ok(hit);
        }
        let found = self.directory.templates_named(tenant, name).await?;
        if let Some(expires) = self.expiry(now).filter(|_| !found.is_empty()) {
            self.inner.templates.put(key, found.clone(), expires);
        }
        Ok(found)
    }

    async fn put_template(
        &self,
        tenant: &TenantId,
        template: &Template,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        self.directory.put_template(tenant, template, at).await
    }

    async fn update_template_status(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        status: &TemplateStatus,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        self.directory
            .update_template_status(tenant, name, language, status, at)
            .await
    }

    async fn update_template_category(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        category: &TemplateCategory,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        self.directory
            .update_template_category(tenant, name, language, category, at)
            .await
    }

    async fn update_template_quality(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        quality: &str,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        self.directory
            .update_template_quality(tenant, name, language, quality, at)
            .await
    }

    async fn contact(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
    ) -> Result<Contact, DirectoryError> {
        self.directory.contact(tenant, who).await
    }

    async fn record_inbound(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        self.directory.record_inbound(tenant, who, at).await
    }

    async fn set_marketing_opt_out(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        opted_out: bool,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        self.directory
            .set_marketing_opt_out(tenant, who, opted_out, at)
            .await
    }

    async fn set_marketing_limit(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        until: Timestamp,
    ) -> Result<(), DirectoryError> {
        self.directory.set_marketing_limit(tenant, who, until).await
    }

    async fn set_opt_out(
        &self,
        tenant: &TenantId,
        who: &PhoneNumber,
        opted_out: bool,
        at: Timestamp,
    ) -> Result<(), DirectoryError> {
        self.directory.set_opt_out(tenant, who, opted_out, at).await
    }

    async fn set_account_signal(
        &self,
        tenant: &TenantId,
        signal: crate::ports::AccountSignal,
        value: &str,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        let written = self
            .directory
            .set_account_signal(tenant, signal, value, at)
            .await;
        self.inner.tenants.remove(tenant);
        written
    }

    async fn set_tenant_status(
        &self,
        tenant: &TenantId,
        status: crate::domain::tenant::TenantStatus,
        at: Timestamp,
    ) -> Result<bool, DirectoryError> {
        let written = self.directory.set_tenant_status(tenant, status, at).await;
        self.inner.tenants.remove(tenant);
        written
    }

    // Hold writes drop this container's cached profile, so it sees its own write at
    // once (other containers within the TTL).
    async fn place_hold(
        &self,
        tenant: &TenantId,
        hold: &TenantHold,
    ) -> Result<bool, DirectoryError> {
        let placed = self.directory.place_hold(tenant, hold).await;
        self.inner.tenants.remove(tenant);
        placed
    }

    async fn claim_hold_probe(
        &self,
        tenant: &TenantId,
        seen: Timestamp,
        next: Timestamp,
    ) -> Result<bool, DirectoryError> {
        let claimed = self.directory.claim_hold_probe(tenant, seen, next).await;
        self.inner.tenants.remove(tenant);
        claimed
    }

    async fn release_hold(&self, tenant: &TenantId) -> Result<bool, DirectoryError> {
        let released = self.directory.release_hold(tenant).await;
        self.inner.tenants.remove(tenant);
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl() {
        let ttl: Ttl<u8, &str> = Ttl::default();
        let t0 = Timestamp::from_secs(100);
        ttl.put(1, "a", t0.plus_millis(5_000));
        assert_eq!(ttl.get(&1, t0), Some("a"));
        assert_eq!(ttl.get(&1, t0.plus_millis(4_999)), Some("a"));
        assert_eq!(ttl.get(&1, t0.plus_millis(5_000)), None);
        assert_eq!(ttl.get(&2, t0), None);
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        assert_eq!(expiry(0, Timestamp::from_secs(1)), None);
        assert_eq!(
            expiry(5_000, Timestamp::from_secs(1)),
            Some(Timestamp::from_secs(6))
        );
    }

    #[cfg(feature = "sqlite")]
    /// A cache over a SQLite directory with acme's key, a 60 s TTL, and its clock.
    async fn cached_directory() -> (
        DirectoryCache,
        Arc<crate::adapters::SqliteDirectory>,
        Arc<crate::adapters::ManualClock>,
    ) {
        let db = crate::adapters::sqlite::SqliteDb::open_in_memory()
            .await
            .unwrap();
        let directory = Arc::new(crate::adapters::SqliteDirectory::new(db).await.unwrap());
        let clock = Arc::new(crate::adapters::ManualClock::new(Timestamp::from_secs(100)));
        let acme = TenantId::parse("acme").unwrap();
        directory
            .put_api_key(&ApiKeyHash::of_key("k"), &acme)
            .await
            .unwrap();
        let cache = DirectoryCache::new(directory.clone(), clock.clone(), Duration::from_secs(60));
        (cache, directory, clock)
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_key_revoked_elsewhere_stops_within_the_api_key_bound_whatever_the_ttl() {
        let (cache, directory, clock) = cached_directory().await;
        let (acme, hash) = (TenantId::parse("acme").unwrap(), ApiKeyHash::of_key("k"));
        assert_eq!(
            cache.tenant_by_api_key(&hash).await.unwrap(),
            Some(acme.clone())
        );
        // Revoked behind the cache's back (another container, another process).
        assert!(directory.revoke_api_key(&acme, &hash).await.unwrap());
        clock.advance(Duration::from_millis(
            u64::try_from(API_KEY_MAX_TTL_MS - 1).unwrap(),
        ));
        assert_eq!(
            cache.tenant_by_api_key(&hash).await.unwrap(),
            Some(acme),
            "cached until the bound"
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(cache.tenant_by_api_key(&hash).await.unwrap(), None);
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_key_revoked_through_the_cache_stops_at_once() {
        let (cache, _directory, _clock) = cached_directory().await;
        let (acme, hash) = (TenantId::parse("acme").unwrap(), ApiKeyHash::of_key("k"));
        assert_eq!(
            cache.tenant_by_api_key(&hash).await.unwrap(),
            Some(acme.clone())
        );
        assert!(cache.revoke_api_key(&acme, &hash).await.unwrap());
        assert_eq!(cache.tenant_by_api_key(&hash).await.unwrap(), None);
    }

    #[test]
    fn a_full_map_starts_over_instead_of_growing() {
        let ttl: Ttl<usize, usize> = Ttl::default();
        let far = Timestamp::from_secs(1_000_000);
        for i in 0..=MAX_ENTRIES {
            ttl.put(i, i, far);
        }
        let len = ttl.entries.lock().unwrap().len();
        assert_eq!(len, 1);
        assert_eq!(
            ttl.get(&MAX_ENTRIES, Timestamp::from_secs(0)),
            Some(MAX_ENTRIES)
        );
    }
}
