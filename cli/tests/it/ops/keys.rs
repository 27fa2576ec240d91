//! Issue 14: `wa tenants keys list|add|revoke` on a SQLite file and on moto: keys are
//! listed by hash (never in clear) with their label, a new key is printed once, and
//! a revoked key (named by a hash prefix or by the key) no longer maps to its tenant;
//! another tenant's key cannot be revoked through this one.

use crate::ops::support::{Backend, api_key, wa};
use wa_shared::domain::TenantId;
use wa_shared::domain::tenant::ApiKeyHash;

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

async fn owner(backend: &Backend, key: &str) -> Option<TenantId> {
    backend
        .directory
        .tenant_by_api_key(&ApiKeyHash::of_key(key))
        .await
        .unwrap()
}

async fn keys_are_listed_added_and_revoked(backend: &Backend) {
    let first = api_key(&backend.add_tenant("acme", &[])).unwrap();
    let added = wa(&backend.cmd(&["tenants", "keys", "add", "acme", "--label", "ci"])).ok();
    let second = api_key(&added).unwrap();
    assert_ne!(first, second);
    let second_hash = ApiKeyHash::of_key(&second);
    assert!(added.contains(second_hash.as_str()), "{added}");
    assert_eq!(owner(backend, &second).await, Some(tenant("acme")));

    let listed = wa(&backend.cmd(&["tenants", "keys", "list", "acme"])).ok();
    assert!(listed.contains("wa tenants add"), "{listed}");
    assert!(listed.contains("ci"), "{listed}");
    assert!(listed.contains(&second_hash.as_str()[..16]), "{listed}");
    assert!(
        listed.contains(&ApiKeyHash::of_key(&first).as_str()[..16]),
        "{listed}"
    );
    assert!(
        !listed.contains(&first) && !listed.contains(&second),
        "never a key in clear: {listed}"
    );
    let json = wa(&backend.cmd(&["tenants", "keys", "list", "acme", "--json"])).ok();
    assert_eq!(json.lines().count(), 2, "{json}");
    assert!(json.contains(second_hash.as_str()), "{json}");

    // Another tenant's key is not acme's to revoke.
    let other = wa(&backend.cmd(&[
        "tenants",
        "add",
        "beta",
        "--phone-number-id",
        "106540352242923",
        "--waba-id",
        "102290129340399",
    ]))
    .ok();
    let beta_key = api_key(&other).unwrap();
    let beta_hash = ApiKeyHash::of_key(&beta_key);
    let refused =
        wa(&backend.cmd(&["tenants", "keys", "revoke", "acme", beta_hash.as_str()])).failed();
    assert!(
        refused.contains("not (or no longer) a key of tenant acme")
            || refused.contains("no API key of tenant acme"),
        "{refused}"
    );
    assert_eq!(owner(backend, &beta_key).await, Some(tenant("beta")));

    let short = wa(&backend.cmd(&["tenants", "keys", "revoke", "acme", "abc"])).failed();
    assert!(short.contains("at least 8 hex digits"), "{short}");

    let dry = wa(&backend.cmd(&[
        "tenants",
        "keys",
        "revoke",
        "acme",
        &second_hash.as_str()[..12],
        "--dry-run",
    ]))
    .ok();
    assert!(dry.contains("would be revoked"), "{dry}");
    assert_eq!(owner(backend, &second).await, Some(tenant("acme")));

    let revoked = wa(&backend.cmd(&[
        "tenants",
        "keys",
        "revoke",
        "acme",
        &second_hash.as_str()[..12],
    ]))
    .ok();
    assert!(revoked.contains("revoked"), "{revoked}");
    assert_eq!(owner(backend, &second).await, None);
    let again = wa(&backend.cmd(&[
        "tenants",
        "keys",
        "revoke",
        "acme",
        &second_hash.as_str()[..12],
    ]))
    .failed();
    assert!(
        again.contains("no API key of tenant acme matches"),
        "{again}"
    );

    // By the key itself.
    wa(&backend.cmd(&["tenants", "keys", "revoke", "acme", &first])).ok();
    assert_eq!(owner(backend, &first).await, None);
    let empty = wa(&backend.cmd(&["tenants", "keys", "list", "acme"])).ok();
    assert!(empty.contains("tenant acme has no API keys"), "{empty}");
    assert_eq!(owner(backend, &beta_key).await, Some(tenant("beta")));

    let unknown = wa(&backend.cmd(&["tenants", "keys", "list", "nobody"])).failed();
    assert!(unknown.contains("no tenant nobody"), "{unknown}");
}

#[tokio::test]
async fn keys_on_sqlite_are_listed_added_and_revoked() {
    let backend = Backend::sqlite().await;
    keys_are_listed_added_and_revoked(&backend).await;
    let note = wa(&backend.cmd(&["tenants", "keys", "add", "beta"])).ok();
    assert!(
        note.contains("wa dev's next start revokes this key"),
        "{note}"
    );
}

#[tokio::test]
async fn keys_on_aws_are_listed_added_and_revoked() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    keys_are_listed_added_and_revoked(&backend).await;
    let added = wa(&backend.cmd(&["tenants", "keys", "add", "beta"])).ok();
    assert!(!added.contains("wa dev"), "{added}");
}
