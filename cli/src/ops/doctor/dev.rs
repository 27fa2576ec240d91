//! The checks of a `wa dev` configuration: its wa.toml (or the demo), its SQLite
//! file, the running `wa dev`'s webhook, and the Graph API it talks to (its embedded
//! sandbox, given by `--graph-base-url`, or Meta's with `graph.base_url`).
//!
//! Only the tenants of the configuration are checked (a tenant added with
//! `wa tenants add --data` is not in it).

use super::probe::{self, Graph};
use super::{Check, DoctorArgs};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use wa_local::config::{SANDBOX_TOKEN_REF, TENANT_TOKEN_REF_PREFIX};
use wa_local::{DevConfig, DevTenant, GraphTarget, SANDBOX_ACCESS_TOKEN};
use wa_shared::adapters::SqliteDirectory;
use wa_shared::adapters::SystemClock;
use wa_shared::adapters::sqlite::{SqliteDb, SqliteError, SqliteOptions};
use wa_shared::adapters::tokens::{ENV_PREFIX, EnvTokenSource};
use wa_shared::ports::Directory;

const CONFIGURATION: &str = "configuration";
const STORE: &str = "store";

/// Every check of a `wa dev` configuration.
pub async fn checks(args: &DoctorArgs) -> Vec<Check> {
    let mut checks = Vec::new();
    let env = |k: &str| std::env::var(k).ok();
    let loaded = match &args.dev_config {
        Some(path) => DevConfig::from_file_with_env(path, &env),
        None => DevConfig::demo_with_env(&env),
    };
    let file = args.dev_config.as_ref().map_or_else(
        || "the demo configuration".to_owned(),
        |p| p.display().to_string(),
    );
    let mut config = match loaded {
        Ok(c) => c,
        Err(e) => {
            checks.push(Check::fail(
                CONFIGURATION,
                e.to_string(),
                "correct the file (every key is described in wa.example.toml): wa dev refuses to start until then",
            ));
            for name in [STORE, probe::HANDSHAKE, "graph", "tokens", "templates"] {
                checks.push(Check::skip(name, "the configuration is not valid"));
            }
            return checks;
        }
    };
    if let Some(data) = &args.backend.data {
        config.data = data.clone();
    }
    let target = match config.target {
        GraphTarget::Sandbox { .. } => "the embedded sandbox".to_owned(),
        GraphTarget::External => format!("Graph at {}", config.graph.base_url),
    };
    checks.push(Check::pass(
        CONFIGURATION,
        format!("{file}: {} tenant(s), {target}", config.tenants.len()),
    ));

    let (store, directory) = sqlite_store(&config.data).await;
    checks.push(store);
    checks.push(webhook(args, &config).await);

    let graph = match graph(args, &config) {
        Ok(g) => Some(g),
        Err(why) => {
            checks.push(Check::skip("graph", why));
            None
        }
    };
    let tokens: Vec<(&DevTenant, Result<SecretString, String>)> = config
        .tenants
        .iter()
        .map(|t| (t, tenant_token(&config, t)))
        .collect();
    if let Some(graph) = &graph {
        let mut wabas: BTreeMap<&str, &SecretString> = BTreeMap::new();
        for (t, token) in &tokens {
            if let Ok(token) = token {
                wabas.entry(t.waba_id.as_str()).or_insert(token);
            }
        }
        for (waba, token) in wabas {
            checks.push(probe::subscribed_check(graph, waba, token, &fix_token_any()).await);
        }
    }
    for (t, token) in &tokens {
        let token_ok = match (&graph, token) {
            (_, Err(why)) => {
                checks.push(Check::fail(
                    format!("token (tenant {})", t.id),
                    why.clone(),
                    fix_token(t),
                ));
                false
            }
            (None, Ok(_)) => {
                checks.push(Check::skip(
                    format!("token (tenant {})", t.id),
                    "no Graph API to ask (see the graph check)",
                ));
                false
            }
            (Some(graph), Ok(token)) => {
                let check = probe::token_check(
                    graph,
                    &t.id,
                    t.phone_number_id.as_str(),
                    token,
                    &fix_token(t),
                )
                .await;
                let ok = !check.failed();
                checks.push(check);
                ok
            }
        };
        checks.push(
            templates(
                args,
                &config,
                t,
                token,
                token_ok,
                graph.as_ref(),
                directory.as_deref(),
            )
            .await,
        );
    }
    checks
}

fn fix_token_any() -> String {
    "give each tenant of the WABA a valid token in wa.toml ([[tenants]] token, or token_ref = \"env:VAR\" with VAR set), then restart wa dev".to_owned()
}

fn fix_token(t: &DevTenant) -> String {
    format!(
        "give tenant {} a valid Graph token in wa.toml (token = \"...\", or token_ref = \"env:VAR\" with VAR set; with the embedded sandbox, leave both out), restart wa dev, then wa tenants resume {} if it is on hold",
        t.id, t.id
    )
}

/// The token wa dev sends for `t` (the same resolution as `wa dev`'s).
fn tenant_token(config: &DevConfig, t: &DevTenant) -> Result<SecretString, String> {
    if let Some(token) = &t.token {
        return Ok(token.clone());
    }
    if t.token_ref == SANDBOX_TOKEN_REF {
        return match config.target {
            GraphTarget::Sandbox { .. } => Ok(SecretString::from(SANDBOX_ACCESS_TOKEN.to_owned())),
            GraphTarget::External => Err(format!(
                "token_ref {SANDBOX_TOKEN_REF} is the embedded sandbox's, and graph.base_url is set"
            )),
        };
    }
    if t.token_ref.starts_with(ENV_PREFIX) {
        return EnvTokenSource::resolve(&t.token_ref)
            .map_err(|_| format!("token_ref {} is not set in this environment", t.token_ref));
    }
    if t.token_ref.starts_with(TENANT_TOKEN_REF_PREFIX) {
        return Err(format!(
            "token_ref {} has no token in the file",
            t.token_ref
        ));
    }
    Err(format!(
        "token_ref {} cannot be resolved by wa dev",
        t.token_ref
    ))
}

/// The SQLite file: exists, opens (which runs `PRAGMA quick_check`), and its schema is
/// the one this build's `wa dev` writes. The directory, when it may be read as is.
pub async fn sqlite_store(path: &Path) -> (Check, Option<Arc<dyn Directory>>) {
    let shown = path.display();
    if !path.exists() {
        return (
            Check::fail(
                STORE,
                format!("no SQLite file at {shown}"),
                "start wa dev once with this configuration (it creates the file), or pass --data with the file it uses",
            ),
            None,
        );
    }
    let db = match SqliteDb::open(path, SqliteOptions::default()).await {
        Ok(db) => db,
        Err(e) => {
            return (
                Check::fail(
                    STORE,
                    format!("{shown} cannot be opened: {e}"),
                    "stop wa dev, move the file aside (keep it for a post-mortem) and start wa dev again: it creates a new one",
                ),
                None,
            );
        }
    };
    let quick = db
        .call(|conn| {
            conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
                .map_err(SqliteError::from)
        })
        .await;
    match quick {
        Ok(answer) if answer == "ok" => {}
        Ok(answer) => {
            return (
                Check::fail(
                    STORE,
                    format!("PRAGMA quick_check of {shown}: {answer}"),
                    "stop wa dev, move the damaged file aside and start wa dev again (or restore a copy)",
                ),
                None,
            );
        }
        Err(e) => {
            return (
                Check::fail(
                    STORE,
                    format!("PRAGMA quick_check of {shown} failed: {e}"),
                    "see the error; the file may be locked or damaged",
                ),
                None,
            );
        }
    }
    let (applied, expected) = match (db.applied_migrations().await, expected_migrations().await) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => {
            return (
                Check::fail(
                    STORE,
                    format!("reading the schema version of {shown}: {e}"),
                    "see the error",
                ),
                None,
            );
        }
    };
    let pending: Vec<&String> = expected.iter().filter(|m| !applied.contains(m)).collect();
    let unknown: Vec<&String> = applied.iter().filter(|m| !expected.contains(m)).collect();
    if !unknown.is_empty() {
        return (
            Check::fail(
                STORE,
                format!(
                    "{shown} was written by a newer wa: schema steps unknown to this build: {}",
                    join(&unknown)
                ),
                "run the wa build that wrote it, or give this one another --data file",
            ),
            None,
        );
    }
    if !pending.is_empty() {
        return (
            Check::fail(
                STORE,
                format!(
                    "the schema of {shown} is behind this build: {} step(s) pending ({})",
                    pending.len(),
                    join(&pending)
                ),
                "start wa dev (this build) once: it migrates the file at start",
            ),
            None,
        );
    }
    let directory = match SqliteDirectory::new(db).await {
        Ok(d) => Arc::new(d) as Arc<dyn Directory>,
        Err(e) => {
            return (
                Check::fail(
                    STORE,
                    format!("the directory of {shown}: {e}"),
                    "see the error",
                ),
                None,
            );
        }
    };
    let tenants = match directory.list_tenants().await {
        Ok(t) => t.len(),
        Err(e) => {
            return (
                Check::fail(
                    STORE,
                    format!("reading the tenants of {shown}: {e}"),
                    "see the error",
                ),
                None,
            );
        }
    };
    (
        Check::pass(
            STORE,
            format!(
                "{shown}: quick_check ok, schema current ({} steps), {tenants} tenant(s)",
                applied.len()
            ),
        ),
        Some(directory),
    )
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The schema steps `wa dev` applies to a new file (every adapter it opens).
async fn expected_migrations() -> Result<Vec<String>, SqliteError> {
    let db = SqliteDb::open_in_memory().await?;
    wa_shared::wiring::local::Backend::open(db.clone(), Arc::new(SystemClock))
        .await
        .map_err(|e| SqliteError::NotAStore(e.to_string()))?;
    wa_local::events::DeliveryStore::open(db.clone())
        .await
        .map_err(|e| SqliteError::NotAStore(e.to_string()))?;
    db.applied_migrations().await
}

async fn webhook(args: &DoctorArgs, config: &DevConfig) -> Check {
    let url = match &args.webhook_url {
        Some(u) => u.clone(),
        None if config.listen.port() == 0 => {
            return Check::skip(
                probe::HANDSHAKE,
                "wa dev listens on a port chosen at start: pass --webhook-url http://ADDR/webhook with the address it prints",
            );
        }
        None => format!("http://{}/webhook", config.listen),
    };
    let token = args
        .verify_token
        .clone()
        .unwrap_or_else(|| config.verify_token.clone());
    let http = match probe::client(args.timeout()) {
        Ok(h) => h,
        Err(e) => return Check::fail(probe::HANDSHAKE, e.to_string(), "see the error"),
    };
    probe::handshake(
        &http,
        &url,
        &token,
        "start wa dev (make dev) with this configuration, or pass --webhook-url with the address it prints",
        "the running wa dev was started with another verify token: make [webhook] verify_token (or WA_VERIFY_TOKEN) the one wa dev runs with and the one in Meta's webhook configuration, then restart wa dev",
    )
    .await
}

/// The Graph API wa dev talks to.
fn graph(args: &DoctorArgs, config: &DevConfig) -> Result<Graph, String> {
    let version = args
        .graph_api_version
        .clone()
        .unwrap_or_else(|| config.graph.api_version.clone());
    let base = match (&args.graph_base_url, &config.target) {
        (Some(url), _) => url.clone(),
        (None, GraphTarget::External) => config.graph.base_url.clone(),
        (None, GraphTarget::Sandbox { listen, .. }) if listen.port() != 0 => {
            format!("http://{listen}")
        }
        (None, GraphTarget::Sandbox { .. }) => {
            return Err(
                "the embedded sandbox listens on a port chosen at start: pass --graph-base-url with the sandbox URL wa dev prints"
                    .into(),
            );
        }
    };
    Graph::new(&base, &version, args.timeout()).map_err(|e| format!("Graph at {base:?}: {e}"))
}

async fn templates(
    args: &DoctorArgs,
    config: &DevConfig,
    t: &DevTenant,
    token: &Result<SecretString, String>,
    token_ok: bool,
    graph: Option<&Graph>,
    directory: Option<&dyn Directory>,
) -> Check {
    let name = format!("templates (tenant {})", t.id);
    let Some(directory) = directory else {
        return Check::skip(name, "the store cannot be read (see the store check)");
    };
    let data = args
        .backend
        .data
        .clone()
        .unwrap_or_else(|| config.data.clone());
    let (reference, kind, source, sync) = match (graph, token, token_ok) {
        (Some(graph), Ok(token), true) => match graph.templates(&t.waba_id, token).await {
            Ok(catalog) => (
                catalog,
                probe::Reference::Graph,
                format!("Graph's listing of WABA {}", t.waba_id),
                format!(
                    "wa templates sync --tenant {} --data {} --graph-base-url {}",
                    t.id,
                    data.display(),
                    graph.base_url
                ),
            ),
            Err(e) => {
                return Check::fail(
                    name,
                    format!("listing the templates of WABA {}: {e:#}", t.waba_id),
                    "see the token check",
                );
            }
        },
        _ if !t.templates.is_empty() => (
            t.templates.clone(),
            probe::Reference::Seed,
            "wa.toml".to_owned(),
            format!(
                "restart wa dev: it stores the templates of wa.toml that are missing (tenant {})",
                t.id
            ),
        ),
        _ => {
            return Check::skip(
                name,
                "no Graph listing to compare with (see the token check) and no templates in wa.toml",
            );
        }
    };
    probe::templates_check(directory, &t.id, &reference, (kind, &source), &sync).await
}
