//! `wa tenants add|list|suspend|resume` on SQLite (and `list` on both backends);
//! the AWS side of `add` is in `tenants_aws`.

use crate::ops::support::{Backend, PHONE_NUMBER_ID, WABA_ID, api_key, args, wa};
use wa_shared::domain::TenantId;
use wa_shared::domain::quota::IntakeQuota;
use wa_shared::domain::tenant::{ApiKeyHash, TenantProfile, TenantStatus};
use wa_shared::ports::{QueueError, QueueRef};

/// A Graph token the tests give `wa` and look for in its output.
pub const TOKEN: &str = "EAAG-test-token-never-printed";

/// The tests' tenant.
pub fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

#[tokio::test]
async fn add_on_sqlite_creates_queue_profile_and_key_once() {
    let backend = Backend::sqlite().await;
    let first = backend.add_tenant("acme", &[]);
    assert!(first.contains("3 change(s) made"), "{first}");
    let key = api_key(&first).unwrap();
    // wa dev's conventions: queue send-<tenant>, token_ref dev:sandbox.
    let profile = backend.directory.tenant(&acme()).await.unwrap().unwrap();
    assert_eq!(profile.queue, "send-acme");
    assert_eq!(profile.token_ref, "dev:sandbox");
    assert_eq!(profile.status, TenantStatus::Active);
    let depth = backend
        .queue
        .approximate_depth(&QueueRef::new("send-acme"))
        .await;
    assert!(depth.is_ok(), "queue send-acme exists: {depth:?}");
    assert_eq!(
        backend
            .directory
            .tenant_by_api_key(&ApiKeyHash::of_key(&key))
            .await
            .unwrap(),
        Some(acme())
    );

    let second = backend.add_tenant("acme", &[]);
    assert!(second.contains("nothing to change"), "{second}");
    assert_eq!(api_key(&second), None);
    let unchanged = backend.directory.tenant(&acme()).await.unwrap().unwrap();
    assert_eq!(unchanged, profile, "not even updated_at moved");

    let changed = wa(&backend.cmd(&[
        "tenants",
        "add",
        "acme",
        "--token-ref",
        "env:ACME_TOKEN",
        "--throughput-mps",
        "20",
    ]))
    .ok();
    assert!(
        changed.contains("token_ref: dev:sandbox -> env:ACME_TOKEN"),
        "{changed}"
    );
    let profile = backend.directory.tenant(&acme()).await.unwrap().unwrap();
    assert_eq!(
        (profile.token_ref.as_str(), profile.throughput_mps),
        ("env:ACME_TOKEN", 20)
    );
    let err = wa(&backend.cmd(&["tenants", "add", "newbie"])).failed();
    assert!(
        err.contains("--phone-number-id and --waba-id are required"),
        "{err}"
    );
}

/// `--requests-per-second`, `--burst` and `--messages-per-day` set the intake quota
/// (shown by `list`); `--messages-per-day 0` removes the daily cap.
#[tokio::test]
async fn add_sets_the_intake_quota_and_list_shows_it() {
    let backend = Backend::sqlite().await;
    backend.add_tenant("acme", &[]);
    let profile = backend.directory.tenant(&acme()).await.unwrap().unwrap();
    assert_eq!(profile.intake_quota, IntakeQuota::default());
    let changed = wa(&backend.cmd(&[
        "tenants",
        "add",
        "acme",
        "--requests-per-second",
        "5",
        "--burst",
        "10",
        "--messages-per-day",
        "1000",
    ]))
    .ok();
    assert!(
        changed.contains("intake_quota: 50/s burst 100, no daily cap -> 5/s burst 10, 1000/day"),
        "{changed}"
    );
    let quota = IntakeQuota {
        requests_per_second: 5,
        burst: 10,
        messages_per_day: Some(1000),
    };
    let profile = backend.directory.tenant(&acme()).await.unwrap().unwrap();
    assert_eq!(profile.intake_quota, quota);
    let table = wa(&backend.cmd(&["tenants", "list"])).ok();
    assert!(table.contains("INTAKE QUOTA"), "{table}");
    assert!(table.contains("5/s burst 10, 1000/day"), "{table}");
    wa(&backend.cmd(&["tenants", "add", "acme", "--messages-per-day", "0"])).ok();
    let profile = backend.directory.tenant(&acme()).await.unwrap().unwrap();
    assert_eq!(profile.intake_quota.messages_per_day, None);
    assert_eq!(profile.intake_quota.requests_per_second, 5);
    let err = wa(&backend.cmd(&["tenants", "add", "acme", "--burst", "0"])).failed();
    assert!(err.contains("--burst"), "{err}");
}

#[tokio::test]
async fn dry_run_on_sqlite_creates_no_file_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never").join("dev.sqlite");
    let path_arg = path.display().to_string();
    let out = wa(&args(&[
        "tenants",
        "add",
        "acme",
        "--phone-number-id",
        PHONE_NUMBER_ID,
        "--waba-id",
        WABA_ID,
        "--data",
        &path_arg,
        "--dry-run",
    ]))
    .ok();
    assert!(out.contains("dry run: 3 change(s) would be made"), "{out}");
    assert!(
        !path.exists() && !path.parent().unwrap().exists(),
        "the dry run wrote a file"
    );

    let backend = Backend::sqlite().await;
    backend.add_tenant("acme", &[]);
    let before = backend.directory.tenant(&acme()).await.unwrap();
    let out = wa(&backend.cmd(&[
        "tenants",
        "add",
        "acme",
        "--max-concurrency",
        "9",
        "--dry-run",
    ]))
    .ok();
    assert!(out.contains("max_concurrency: 5 -> 9"), "{out}");
    assert_eq!(backend.directory.tenant(&acme()).await.unwrap(), before);
    let none = backend
        .queue
        .approximate_depth(&QueueRef::new("send-beta"))
        .await;
    assert!(matches!(none, Err(QueueError::QueueNotFound(_))));
}

#[tokio::test]
async fn suspend_and_resume_flip_the_status_once() {
    let backend = Backend::sqlite().await;
    backend.add_tenant("acme", &[]);
    let status = || async {
        backend
            .directory
            .tenant(&acme())
            .await
            .unwrap()
            .unwrap()
            .status
    };
    let out = wa(&backend.cmd(&["tenants", "suspend", "acme", "--dry-run"])).ok();
    assert!(out.contains("would become suspended"), "{out}");
    assert_eq!(status().await, TenantStatus::Active);
    assert!(
        wa(&backend.cmd(&["tenants", "suspend", "acme"]))
            .ok()
            .contains("now suspended")
    );
    assert_eq!(status().await, TenantStatus::Suspended);
    assert!(
        wa(&backend.cmd(&["tenants", "suspend", "acme"]))
            .ok()
            .contains("already suspended")
    );
    // add never resumes a suspended tenant.
    backend.add_tenant("acme", &[]);
    assert_eq!(status().await, TenantStatus::Suspended);
    assert!(
        wa(&backend.cmd(&["tenants", "resume", "acme"]))
            .ok()
            .contains("now active")
    );
    assert_eq!(status().await, TenantStatus::Active);
    let err = wa(&backend.cmd(&["tenants", "suspend", "nobody"])).failed();
    assert!(err.contains("no tenant nobody"), "{err}");
}

#[tokio::test]
async fn suspend_on_aws_and_list_on_both_backends() {
    let sqlite = Backend::sqlite().await;
    let moto = Backend::moto().await;
    for backend in std::iter::once(&sqlite).chain(moto.as_ref()) {
        backend.add_tenant("acme", &[]);
        wa(&backend.cmd(&["tenants", "suspend", "acme"])).ok();
        let table = wa(&backend.cmd(&["tenants", "list"])).ok();
        let mut lines = table.lines();
        assert!(lines.next().unwrap().starts_with("TENANT"), "{table}");
        let row = lines.next().unwrap();
        assert!(
            row.starts_with("acme") && row.contains("suspended") && row.contains(WABA_ID),
            "{table}"
        );
        let json = wa(&backend.cmd(&["tenants", "list", "--json"])).ok();
        let profiles: Vec<TenantProfile> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(profiles.len(), 1);
        assert_eq!(profiles[0].status, TenantStatus::Suspended);
    }
}

/// `wa tenants resume` ends a hold (the sender's, after a tenant-class failure) and
/// enqueues the tenant's waiting messages, on both backends.
async fn resume_ends_a_hold(backend: &Backend) {
    use wa_shared::domain::MessageId;
    use wa_shared::domain::tenant::TenantHold;
    use wa_testkit::store_conformance::{at, queued_with_id};
    backend.add_tenant("acme", &[]);
    let profile = backend.directory.tenant(&acme()).await.unwrap().unwrap();
    let queue = QueueRef::new(profile.queue.clone());
    let mut ids = Vec::new();
    for i in 0..3 {
        let m = queued_with_id("acme", MessageId::generate(), at(i));
        backend.store.create_if_absent(&m).await.unwrap();
        ids.push(m.id.to_string());
    }
    let hold = TenantHold {
        code: Some(190),
        reason: "access token expired".into(),
        detail: None,
        since: at(5),
        probe_at: at(125),
    };
    assert!(backend.directory.place_hold(&acme(), &hold).await.unwrap());
    let table = wa(&backend.cmd(&["tenants", "list"])).ok();
    assert!(
        table.contains("on hold since") && table.contains("190 access token expired"),
        "{table}"
    );
    let out = wa(&backend.cmd(&["tenants", "resume", "acme", "--dry-run"])).ok();
    assert!(out.contains("hold (access token expired"), "{out}");
    assert!(
        backend
            .directory
            .tenant(&acme())
            .await
            .unwrap()
            .unwrap()
            .hold
            .is_some()
    );
    let out = wa(&backend.cmd(&["tenants", "resume", "acme"])).ok();
    assert!(
        out.contains("hold") && out.contains("3 waiting message(s) enqueued again"),
        "{out}"
    );
    assert!(
        backend
            .directory
            .tenant(&acme())
            .await
            .unwrap()
            .unwrap()
            .hold
            .is_none()
    );
    let received = backend
        .queue
        .receive(
            &queue,
            10,
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(1),
        )
        .await
        .unwrap();
    let mut enqueued: Vec<String> = received
        .iter()
        .map(|m| {
            serde_json::from_str::<serde_json::Value>(&m.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    enqueued.sort();
    ids.sort();
    assert_eq!(enqueued, ids);
    let out = wa(&backend.cmd(&["tenants", "resume", "acme"])).ok();
    assert!(out.contains("already active"), "{out}");
}

#[tokio::test]
async fn resume_ends_a_hold_and_enqueues_the_waiting_messages_on_sqlite() {
    resume_ends_a_hold(&Backend::sqlite().await).await;
}

#[tokio::test]
async fn resume_ends_a_hold_and_enqueues_the_waiting_messages_on_aws() {
    if let Some(backend) = Backend::moto().await {
        resume_ends_a_hold(&backend).await;
    }
}
