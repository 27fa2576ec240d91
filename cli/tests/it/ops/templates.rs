//! `wa templates sync` against the Graph sandbox's cursor-paged listing, and
//! `wa templates load` from Meta-format JSON.
//!
//! The sandbox serves from this process's runtime while the test thread waits for
//! `wa`, so the sync tests run on a multi-threaded runtime.

use crate::ops::support::{Backend, PHONE_NUMBER_ID, WABA_ID, wa, wa_env};
use wa_sandbox::{
    PhoneNumberConfig, RunningSandbox, SandboxConfig, TemplateStatusChange, TemplatesSource,
};
use wa_shared::domain::TenantId;
use wa_shared::domain::template::{TemplateCatalog, TemplateStatus};

const SANDBOX_TOKEN: &str = "sandbox-token-not-for-printing";
const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/tests/fixtures/templates/catalog.json"
);

fn catalog() -> TemplateCatalog {
    TemplateCatalog::from_json(&std::fs::read_to_string(CATALOG).unwrap()).unwrap()
}

async fn sandbox() -> RunningSandbox {
    RunningSandbox::start(SandboxConfig {
        phone_numbers: vec![PhoneNumberConfig {
            id: PHONE_NUMBER_ID.into(),
            display_phone_number: "15550783881".into(),
            waba_id: WABA_ID.into(),
            access_token: SANDBOX_TOKEN.into(),
            throughput_mps: None,
        }],
        templates: TemplatesSource::File(CATALOG.into()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// How many catalog templates the directory holds exactly as the catalog has them.
async fn stored_as_in_catalog(backend: &Backend) -> usize {
    let mut same = 0;
    for t in catalog().iter() {
        let stored = backend
            .directory
            .template(&acme(), &t.name, &t.language)
            .await
            .unwrap();
        if stored.is_some_and(|s| s.template == *t) {
            same += 1;
        }
    }
    same
}

fn sync_args(backend: &Backend, sandbox: &RunningSandbox, extra: &[&str]) -> Vec<String> {
    let base = sandbox.base_url();
    let mut all = vec![
        "templates",
        "sync",
        "--tenant",
        "acme",
        "--graph-base-url",
        &base,
        "--page-size",
        "4",
    ];
    all.extend_from_slice(extra);
    backend.cmd(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_follows_every_page_into_the_directory_and_writes_only_changes() {
    let sandbox = sandbox().await;
    let backend = Backend::sqlite().await;
    backend.add_tenant("acme", &[]);
    let token = [("WA_GRAPH_TOKEN", SANDBOX_TOKEN)];
    assert_eq!(catalog().len(), 9);

    let first = wa_env(&sync_args(&backend, &sandbox, &[]), &token).ok();
    assert!(first.contains("9 template(s) in 3 page(s)"), "{first}");
    assert!(
        first.contains("9 new, 0 changed (written), 0 unchanged"),
        "{first}"
    );
    assert_eq!(stored_as_in_catalog(&backend).await, 9);

    // The Graph settings may come from the [graph] section of the config file.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wa.toml");
    std::fs::write(
        &config,
        format!(
            "[graph]\nGraphBaseUrl = \"{}\"\nGraphApiVersion = \"v25.0\"\n",
            sandbox.base_url()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let again = wa_env(
        &backend.cmd(&["templates", "sync", "--tenant", "acme", "--config", &config]),
        &token,
    )
    .ok();
    assert!(again.contains("9 template(s) in 1 page(s)"), "{again}");
    assert!(
        again.contains("0 new, 0 changed (written), 9 unchanged"),
        "{again}"
    );

    // Meta pauses one: the next sync rewrites that one only.
    let paused = catalog().iter().find(|t| t.is_approved()).unwrap().clone();
    sandbox
        .sandbox
        .template_status(&TemplateStatusChange {
            waba_id: None,
            name: paused.name.clone(),
            language: paused.language.clone(),
            event: "PAUSED".into(),
            reason: None,
        })
        .unwrap();
    let third = wa_env(&sync_args(&backend, &sandbox, &[]), &token).ok();
    let key = format!("{}/{}", paused.name, paused.language);
    assert!(
        third.contains(&format!("  update  {key}  status APPROVED -> PAUSED")),
        "{third}"
    );
    assert!(
        third.contains("0 new, 1 changed (written), 8 unchanged"),
        "{third}"
    );
    let stored = backend
        .directory
        .template(&acme(), &paused.name, &paused.language)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.template.status, Some(TemplateStatus::Paused));
    for out in [first, again, third] {
        assert!(!out.contains(SANDBOX_TOKEN), "the token was printed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sync_writes_nothing() {
    let sandbox = sandbox().await;
    let backend = Backend::sqlite().await;
    backend.add_tenant("acme", &[]);
    let out = wa_env(
        &sync_args(&backend, &sandbox, &["--dry-run"]),
        &[("WA_GRAPH_TOKEN", SANDBOX_TOKEN)],
    )
    .ok();
    assert!(out.contains("9 new, 0 changed (would be written)"), "{out}");
    assert_eq!(stored_as_in_catalog(&backend).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_missing_token_fails_without_echoing_it() {
    let sandbox = sandbox().await;
    let backend = Backend::sqlite().await;
    backend.add_tenant("acme", &[]);
    let wrong = "wrong-token-also-secret";
    let run = wa_env(
        &sync_args(&backend, &sandbox, &[]),
        &[("WA_GRAPH_TOKEN", wrong)],
    );
    let stdout = run.stdout.clone();
    let err = run.failed();
    assert!(
        err.contains("HTTP 401") && err.contains("code 190"),
        "{err}"
    );
    assert!(!err.contains(wrong) && !stdout.contains(wrong));
    // wa dev's tenants point at its sandbox (dev:sandbox): a token must be given.
    let err = wa(&sync_args(&backend, &sandbox, &[])).failed();
    assert!(err.contains("WA_GRAPH_TOKEN"), "{err}");
    assert_eq!(stored_as_in_catalog(&backend).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_on_aws_reads_the_tenants_token_from_its_secret() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    let sandbox = sandbox().await;
    // `add` stores the token in the tenant's secret; `sync` reads it from there.
    backend.add_tenant("acme", &[("WA_GRAPH_TOKEN", SANDBOX_TOKEN)]);
    let out = wa(&sync_args(&backend, &sandbox, &[])).ok();
    assert!(out.contains("9 template(s) in 3 page(s)"), "{out}");
    assert!(out.contains("9 new"), "{out}");
    assert_eq!(stored_as_in_catalog(&backend).await, 9);
}

#[tokio::test]
async fn load_reads_metas_json_from_a_file() {
    let backend = Backend::sqlite().await;
    backend.add_tenant("acme", &[]);
    let load = |extra: &[&str]| {
        let mut all = vec!["templates", "load", "--tenant", "acme", CATALOG];
        all.extend_from_slice(extra);
        wa(&backend.cmd(&all)).ok()
    };
    let dry = load(&["--dry-run"]);
    assert!(dry.contains("9 new, 0 changed (would be written)"), "{dry}");
    assert_eq!(stored_as_in_catalog(&backend).await, 0);
    assert!(load(&[]).contains("9 new, 0 changed (written), 0 unchanged"));
    assert_eq!(stored_as_in_catalog(&backend).await, 9);
    assert!(load(&[]).contains("0 new, 0 changed (written), 9 unchanged"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"data\": 3}").unwrap();
    let bad = bad.display().to_string();
    let err = wa(&backend.cmd(&["templates", "load", "--tenant", "acme", &bad])).failed();
    assert!(err.contains("not Meta's template JSON"), "{err}");
    let err = wa(&backend.cmd(&["templates", "load", "--tenant", "nobody", CATALOG])).failed();
    assert!(err.contains("no tenant nobody"), "{err}");
}
