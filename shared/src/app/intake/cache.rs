//! A short-lived cache of directory reads for warm containers: API key -> tenant,
//! tenant profiles and a template's language versions.
//!
//! Every send reads these, and they change rarely (an operator edits a tenant, a
//! webhook pauses a template), so a few seconds of staleness buy one directory read
//! per key per container instead of one per request. Misses are never cached, so an
//! unknown API key costs a read every time but cannot fill memory, and a new tenant is
//! visible at once. The sender uses the same cache for its re-check.

use crate::domain::tenant::{ApiKeyHash, TenantProfile};
use crate::domain::{TenantId, Timestamp};
use crate::ports::{Directory, DirectoryError, StoredTemplate};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Most entries one map keeps; past it the map is cleared (cheap, and rare: a
/// container serves few tenants).
const MAX_ENTRIES: usize = 4096;

/// Cached directory lookups. Cheap to clone; clones share the entries.
#[derive(Debug, Clone)]
pub struct DirectoryCache {
    ttl_ms: i64,
    inner: Arc<Maps>,
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

    fn put(&self, key: K, value: V, expires: Timestamp) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (expires, value));
    }
}

impl DirectoryCache {
    /// A cache whose entries live `ttl` (zero: no caching at all).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            inner: Arc::new(Maps::default()),
        }
    }

    /// How long entries live.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.ttl_ms).unwrap_or(0))
    }

    fn expiry(&self, now: Timestamp) -> Option<Timestamp> {
        (self.ttl_ms > 0).then(|| now.plus_millis(self.ttl_ms))
    }

    /// The tenant of an API key (by hash).
    pub async fn tenant_by_api_key(
        &self,
        directory: &dyn Directory,
        hash: &ApiKeyHash,
        now: Timestamp,
    ) -> Result<Option<TenantId>, DirectoryError> {
        if let Some(hit) = self.inner.api_keys.get(hash, now) {
            return Ok(Some(hit));
        }
        let found = directory.tenant_by_api_key(hash).await?;
        if let (Some(tenant), Some(expires)) = (&found, self.expiry(now)) {
            self.inner
                .api_keys
                .put(hash.clone(), tenant.clone(), expires);
        }
        Ok(found)
    }

    /// A tenant's profile.
    pub async fn tenant(
        &self,
        directory: &dyn Directory,
        id: &TenantId,
        now: Timestamp,
    ) -> Result<Option<TenantProfile>, DirectoryError> {
        if let Some(hit) = self.inner.tenants.get(id, now) {
            return Ok(Some(hit));
        }
        let found = directory.tenant(id).await?;
        if let (Some(profile), Some(expires)) = (&found, self.expiry(now)) {
            self.inner.tenants.put(id.clone(), profile.clone(), expires);
        }
        Ok(found)
    }

    /// Every language version of a tenant's template `name`.
    pub async fn templates_named(
        &self,
        directory: &dyn Directory,
        tenant: &TenantId,
        name: &str,
        now: Timestamp,
    ) -> Result<Vec<StoredTemplate>, DirectoryError> {
        let key = (tenant.clone(), name.to_owned());
        if let Some(hit) = self.inner.templates.get(&key, now) {
            return Ok(hit);
        }
        let found = directory.templates_named(tenant, name).await?;
        if let Some(expires) = self.expiry(now).filter(|_| !found.is_empty()) {
            self.inner.templates.put(key, found.clone(), expires);
        }
        Ok(found)
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
        let cache = DirectoryCache::new(Duration::ZERO);
        assert_eq!(cache.expiry(Timestamp::from_secs(1)), None);
        let cache = DirectoryCache::new(Duration::from_secs(5));
        assert_eq!(
            cache.expiry(Timestamp::from_secs(1)),
            Some(Timestamp::from_secs(6))
        );
        assert_eq!(cache.ttl(), Duration::from_secs(5));
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
