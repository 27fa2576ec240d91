//! `wa tenants endpoints add|list|remove`: a tenant's signed HTTP event endpoints on
//! AWS (Standard Webhooks), which the `delivery` function POSTs its events to.
//!
//! An endpoint lives in the directory table (`endpoints#{tenant}` partition, with its
//! health and dead letters); its `whsec_` signing secret in Secrets Manager as
//! `{EndpointSecretPrefix}{tenant}/{endpoint id}`, which the registry names by ARN.
//!
//! - `add` checks the URL (`https://` to a public address: no private, loopback or
//!   link-local one), that the tenant exists, keeps the secret (`--secret`, or 32
//!   random bytes from the OS, printed this once: nothing shows it again), then the
//!   endpoint; if that last write fails the secret is deleted again.
//! - `list` shows each endpoint's URL, types, state, health and dead letters, never
//!   its secret.
//! - `remove` deletes the endpoint, its dead letters and its secret (Secrets
//!   Manager's recovery window applies).
//!
//! `wa dev` has no registry: its endpoints are the `[[tenants.endpoints]]` of its
//! wa.toml, so on a SQLite file (`--data`) the commands say so and fail.

use super::super::backend::{Backend, Open};
use super::super::config::BackendArgs;
use super::super::output::Table;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use wa_shared::adapters::{DynamoEndpointRegistry, SecretsManagerEndpointSecrets};
use wa_shared::app::delivery::urls::{UrlRules, check_endpoint_url};
use wa_shared::domain::TenantId;
use wa_shared::domain::Timestamp;
use wa_shared::domain::endpoints::signing::WebhookSecret;
use wa_shared::domain::endpoints::{Endpoint, EndpointHealth, is_endpoint_id, new_endpoint_id};
use wa_shared::domain::events::EventType;
use wa_shared::ports::{Directory, EndpointRegistry, EndpointSecrets};

/// Dead letters counted per tenant by `list` (more show as `N+`).
pub const DEAD_LETTER_COUNT_CAP: usize = 10_000;

/// What the commands say on wa dev's SQLite file.
pub const SQLITE_MESSAGE: &str = "wa tenants endpoints works on AWS only: wa dev's event endpoints are \
     configured in its wa.toml, as [[tenants.endpoints]] tables under their tenant \
     (url, secret, types; see wa.example.toml), and wa dev registers them when it starts";

/// `wa tenants endpoints`.
#[derive(Debug, Args)]
pub struct EndpointsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EndpointsCommand,
}

/// The `wa tenants endpoints` subcommands (AWS only).
#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// Add a signed HTTP endpoint (Standard Webhooks) for a tenant's events; its
    /// signing secret is generated unless given, and printed once.
    Add(AddEndpointArgs),
    /// The endpoints of a tenant (or every tenant): URL, types, state, health, dead
    /// letters (never the secret).
    List(ListEndpointsArgs),
    /// Delete an endpoint, its dead letters and its signing secret.
    Remove(RemoveEndpointArgs),
}

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

/// `wa tenants endpoints add`.
#[derive(Debug, Args)]
pub struct AddEndpointArgs {
    /// The tenant whose events it receives.
    #[arg(long)]
    pub tenant: String,
    /// Where events are POSTed: https:// to a public address.
    #[arg(long)]
    pub url: String,
    /// Only these event types (repeatable), e.g. `--type message.delivered` [default: every type].
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Its signing secret, whsec_ + base64 of 24..=64 random bytes [default: 32 random bytes, printed once].
    #[arg(long, env = "WA_ENDPOINT_SECRET", hide_env_values = true, value_parser = secret)]
    pub secret: Option<SecretString>,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Tests only: accept http:// and https:// to 127.0.0.1, localhost or [::1].
    #[arg(long, hide = true, env = "WA_DELIVERY_ALLOW_LOOPBACK")]
    pub allow_loopback: bool,
}

/// `wa tenants endpoints list`.
#[derive(Debug, Args)]
pub struct ListEndpointsArgs {
    /// Only this tenant [default: every tenant].
    #[arg(long)]
    pub tenant: Option<String>,
    /// One JSON object per endpoint and line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `wa tenants endpoints remove`.
#[derive(Debug, Args)]
pub struct RemoveEndpointArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The endpoint's id (ep_..., as `list` shows it).
    #[arg(long, value_name = "ID")]
    pub endpoint: String,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What the commands work through: the tenants, the endpoints, their secrets.
#[derive(Clone)]
pub struct EndpointPorts {
    /// The directory (does the tenant exist, every tenant for `list`).
    pub directory: Arc<dyn Directory>,
    /// Endpoints, health, dead letters.
    pub registry: Arc<dyn EndpointRegistry>,
    /// Signing secrets.
    pub secrets: Arc<dyn EndpointSecrets>,
    /// Where they are, for messages.
    pub describe: String,
}

impl EndpointPorts {
    /// The ports on the AWS stack the flags, environment and `--config` name.
    pub async fn aws(args: &BackendArgs) -> anyhow::Result<Self> {
        if args.data.is_some() {
            bail!(SQLITE_MESSAGE);
        }
        let backend = Backend::open(args, Open::Existing).await?;
        let aws = backend
            .aws_side()
            .context("the AWS backend has no AWS side")?;
        let table = aws.settings.directory_table()?;
        Ok(Self {
            directory: backend.directory()?,
            registry: Arc::new(DynamoEndpointRegistry::new(&aws.sdk, table)),
            secrets: Arc::new(SecretsManagerEndpointSecrets::new(
                &aws.sdk,
                aws.settings.endpoint_secret_prefix()?,
            )),
            describe: backend.describe(),
        })
    }
}

/// Run a `wa tenants endpoints` subcommand on the backend `backend`, printing to `out`.
pub async fn run(
    backend: &BackendArgs,
    args: EndpointsArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let ports = EndpointPorts::aws(backend).await?;
    match args.command {
        EndpointsCommand::Add(add) => add_endpoint(&ports, &add, out).await,
        EndpointsCommand::List(list) => list_endpoints(&ports, &list, out).await,
        EndpointsCommand::Remove(remove) => remove_endpoint(&ports, &remove, out).await,
    }
}

fn parse_tenant(t: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(t).context("invalid tenant id")
}

fn types_text(types: Option<&BTreeSet<EventType>>) -> String {
    match types {
        None => "all".to_owned(),
        Some(t) => t
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// A fresh signing secret: 32 random bytes from the OS.
pub fn generate_secret() -> anyhow::Result<WebhookSecret> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| anyhow::anyhow!("no randomness for the signing secret: {e}"))?;
    let secret = WebhookSecret::from_key(&key);
    key.fill(0);
    Ok(secret)
}

/// `add`: check, keep the secret, then the endpoint (the secret is deleted again if
/// the endpoint cannot be written).
pub async fn add_endpoint(
    ports: &EndpointPorts,
    args: &AddEndpointArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tenant = parse_tenant(&args.tenant)?;
    let rules = UrlRules {
        allow_loopback: args.allow_loopback,
    };
    let url = check_endpoint_url(&args.url, rules)
        .map_err(|e| anyhow::anyhow!("endpoint URL {:?} refused: {}", args.url, e.0))?;
    let types: Option<BTreeSet<EventType>> = if args.types.is_empty() {
        None
    } else {
        Some(
            args.types
                .iter()
                .map(|t| t.parse::<EventType>())
                .collect::<Result<_, _>>()
                .context("--type")?,
        )
    };
    let given = args
        .secret
        .as_ref()
        .map(|s| WebhookSecret::parse(s.expose_secret()))
        .transpose()
        .context("--secret")?;
    if ports.directory.tenant(&tenant).await?.is_none() {
        bail!(
            "no tenant {tenant} on {} (add it with wa tenants add first)",
            ports.describe
        );
    }
    let types_shown = types_text(types.as_ref());
    if args.dry_run {
        writeln!(
            out,
            "dry run: tenant {tenant} would get an endpoint at {url} (types: {types_shown}) \
             with {} signing secret; nothing changed",
            if given.is_some() {
                "the given"
            } else {
                "a generated"
            }
        )?;
        return Ok(());
    }
    let generated = given.is_none();
    let secret = match given {
        Some(s) => s,
        None => generate_secret()?,
    };
    let id = new_endpoint_id();
    let secret_ref = ports
        .secrets
        .create(&tenant, &id, &secret)
        .await
        .context("keeping the signing secret")?;
    let endpoint = Endpoint {
        tenant: tenant.clone(),
        id: id.clone(),
        url: url.clone(),
        types,
        secret_ref: secret_ref.clone(),
        created_at: super::super::now(),
        disabled: false,
        health: EndpointHealth::default(),
    };
    let added = ports.registry.add(&endpoint).await;
    keep_or_delete_secret(added, ports.secrets.as_ref(), &endpoint).await?;
    writeln!(
        out,
        "endpoint {id} added for tenant {tenant}: {url} (types: {types_shown})"
    )?;
    writeln!(out, "signing secret kept in {secret_ref}")?;
    if generated {
        writeln!(
            out,
            "Signing secret of endpoint {id} (shown this once; give it to the receiver to verify webhook-signature):"
        )?;
        writeln!(out, "{}", secret.to_whsec())?;
    }
    Ok(())
}

/// After the endpoint's write: on error, delete its fresh secret again (saying
/// whether that worked) and fail.
async fn keep_or_delete_secret(
    added: Result<(), wa_shared::ports::EndpointRegistryError>,
    secrets: &dyn EndpointSecrets,
    endpoint: &Endpoint,
) -> anyhow::Result<()> {
    let Err(e) = added else {
        return Ok(());
    };
    let cleanup = match secrets.delete(&endpoint.secret_ref).await {
        Ok(()) => "its secret was deleted again".to_owned(),
        Err(d) => format!(
            "its secret {} could not be deleted ({}): delete it by hand",
            endpoint.secret_ref,
            wa_shared::app::errors::ErrorChain(&d)
        ),
    };
    Err(anyhow::Error::new(e).context(format!(
        "adding endpoint {} of tenant {} failed; {cleanup}",
        endpoint.id, endpoint.tenant
    )))
}

fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), Timestamp::to_rfc3339)
}

/// At most `max` characters of `text`, on one line.
fn excerpt(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `list`: each endpoint with its health and dead letters.
pub async fn list_endpoints(
    ports: &EndpointPorts,
    args: &ListEndpointsArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tenants: Vec<TenantId> = match &args.tenant {
        Some(t) => {
            let tenant = parse_tenant(t)?;
            if ports.directory.tenant(&tenant).await?.is_none() {
                bail!("no tenant {tenant} on {}", ports.describe);
            }
            vec![tenant]
        }
        None => ports
            .directory
            .list_tenants()
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect(),
    };
    let mut table = Table::new(&[
        "TENANT",
        "ENDPOINT",
        "URL",
        "TYPES",
        "STATE",
        "LAST SUCCESS",
        "FAILING SINCE",
        "FAILURES",
        "DEAD LETTERS",
        "LAST ERROR",
    ]);
    for tenant in &tenants {
        let endpoints = ports.registry.list(tenant).await?;
        if endpoints.is_empty() {
            continue;
        }
        let letters = ports
            .registry
            .dead_letters(tenant, None, DEAD_LETTER_COUNT_CAP)
            .await?;
        let capped = letters.len() >= DEAD_LETTER_COUNT_CAP;
        let mut dead: BTreeMap<&str, usize> = BTreeMap::new();
        for l in &letters {
            *dead.entry(l.endpoint.as_str()).or_default() += 1;
        }
        for e in &endpoints {
            let count = dead.get(e.id.as_str()).copied().unwrap_or(0);
            let count_text = if capped && count > 0 {
                format!("{count}+")
            } else {
                count.to_string()
            };
            let h = &e.health;
            if args.json {
                let line = serde_json::json!({
                    "tenant": e.tenant,
                    "id": e.id,
                    "url": e.url,
                    "types": e.types,
                    "disabled": e.disabled,
                    "created_at": e.created_at.to_rfc3339(),
                    "secret_ref": e.secret_ref,
                    "health": {
                        "last_success_at": h.last_success_at.map(Timestamp::to_rfc3339),
                        "failing_since": h.failing_since.map(Timestamp::to_rfc3339),
                        "failures_in_a_row": h.failures_in_a_row,
                        "hold_until": h.hold_until.map(Timestamp::to_rfc3339),
                        "last_error": h.last_error,
                    },
                    "dead_letters": count,
                    "dead_letters_capped": capped && count > 0,
                });
                writeln!(out, "{line}")?;
            } else {
                table.row(vec![
                    e.tenant.to_string(),
                    e.id.clone(),
                    e.url.clone(),
                    types_text(e.types.as_ref()),
                    if e.disabled { "disabled" } else { "enabled" }.to_owned(),
                    time(h.last_success_at),
                    time(h.failing_since),
                    h.failures_in_a_row.to_string(),
                    count_text,
                    h.last_error
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), |t| excerpt(t, 80)),
                ]);
            }
        }
    }
    if args.json {
        return Ok(());
    }
    if table.is_empty() {
        match &args.tenant {
            Some(t) => writeln!(out, "tenant {t} has no event endpoint")?,
            None => writeln!(out, "no event endpoints")?,
        }
        return Ok(());
    }
    table.write(out)?;
    Ok(())
}

/// `remove`: the endpoint (its dead letters with it), then its secret.
pub async fn remove_endpoint(
    ports: &EndpointPorts,
    args: &RemoveEndpointArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tenant = parse_tenant(&args.tenant)?;
    if !is_endpoint_id(&args.endpoint) {
        bail!(
            "{:?} is not an endpoint id (ep_ and 26 letters and digits; wa tenants endpoints list --tenant {tenant} shows them)",
            args.endpoint
        );
    }
    let id = args.endpoint.as_str();
    let Some(endpoint) = ports.registry.get(&tenant, id).await? else {
        bail!(
            "tenant {tenant} has no endpoint {id} on {} (wa tenants endpoints list --tenant {tenant})",
            ports.describe
        );
    };
    let dead = ports
        .registry
        .dead_letters(&tenant, Some(id), DEAD_LETTER_COUNT_CAP)
        .await?
        .len();
    if args.dry_run {
        writeln!(
            out,
            "dry run: endpoint {id} of tenant {tenant} ({}) would be removed with its {dead} dead letter(s) and its secret {}; nothing changed",
            endpoint.url, endpoint.secret_ref
        )?;
        return Ok(());
    }
    ports.registry.remove(&tenant, id).await?;
    ports
        .secrets
        .delete(&endpoint.secret_ref)
        .await
        .with_context(|| {
            format!(
                "endpoint {id} of tenant {tenant} was removed, but its secret {} was not deleted: delete it by hand",
                endpoint.secret_ref
            )
        })?;
    writeln!(
        out,
        "endpoint {id} of tenant {tenant} removed ({}), with {dead} dead letter(s); its secret {} is scheduled for deletion",
        endpoint.url, endpoint.secret_ref
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::Mutex;
    use wa_shared::ports::EndpointRegistryError;

    fn down(operation: &'static str) -> EndpointRegistryError {
        EndpointRegistryError::Backend {
            operation,
            source: "down".into(),
        }
    }

    /// Secrets kept in memory, by reference.
    #[derive(Default)]
    struct MemorySecrets {
        kept: Mutex<BTreeMap<String, String>>,
    }

    #[async_trait]
    impl EndpointSecrets for MemorySecrets {
        async fn create(
            &self,
            tenant: &TenantId,
            endpoint: &str,
            secret: &WebhookSecret,
        ) -> Result<String, EndpointRegistryError> {
            let name = format!("test/{tenant}/{endpoint}");
            self.kept
                .lock()
                .unwrap()
                .insert(name.clone(), secret.to_whsec());
            Ok(name)
        }
        async fn read(&self, r: &str) -> Result<WebhookSecret, EndpointRegistryError> {
            let kept = self.kept.lock().unwrap().get(r).cloned();
            kept.map(|s| WebhookSecret::parse(&s).unwrap())
                .ok_or_else(|| down("GetSecretValue"))
        }
        async fn delete(&self, r: &str) -> Result<(), EndpointRegistryError> {
            self.kept.lock().unwrap().remove(r);
            Ok(())
        }
    }

    async fn directory_with_acme() -> Arc<dyn Directory> {
        let db = wa_shared::adapters::sqlite::SqliteDb::open_in_memory()
            .await
            .unwrap();
        let directory = wa_shared::adapters::SqliteDirectory::new(db).await.unwrap();
        directory
            .put_tenant(&wa_testkit::fixtures::tenant("acme").build())
            .await
            .unwrap();
        Arc::new(directory)
    }

    fn add_args(url: &str) -> AddEndpointArgs {
        AddEndpointArgs {
            tenant: "acme".into(),
            url: url.into(),
            types: vec!["message.delivered".into()],
            secret: None,
            dry_run: false,
            allow_loopback: false,
        }
    }

    /// A registry no test call reaches (no AWS endpoint is configured).
    fn unreachable_registry() -> Arc<dyn EndpointRegistry> {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        Arc::new(DynamoEndpointRegistry::new(&sdk, "none"))
    }

    #[tokio::test]
    async fn a_secret_is_deleted_again_when_the_endpoint_cannot_be_written() {
        let secrets = MemorySecrets::default();
        let tenant = TenantId::parse("acme").unwrap();
        let secret_ref = secrets
            .create(&tenant, "ep_1", &generate_secret().unwrap())
            .await
            .unwrap();
        let endpoint = Endpoint {
            tenant,
            id: "ep_1".into(),
            url: "https://hooks.example.com/".into(),
            types: None,
            secret_ref,
            created_at: Timestamp::from_millis(0),
            disabled: false,
            health: EndpointHealth::default(),
        };
        keep_or_delete_secret(Ok(()), &secrets, &endpoint)
            .await
            .unwrap();
        assert_eq!(secrets.kept.lock().unwrap().len(), 1);
        let err = keep_or_delete_secret(Err(down("PutItem")), &secrets, &endpoint)
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("its secret was deleted again"), "{text}");
        assert!(text.contains("PutItem"), "{text}");
        assert!(secrets.kept.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn urls_types_and_secrets_are_checked_before_anything_is_written() {
        let secrets = Arc::new(MemorySecrets::default());
        let ports = EndpointPorts {
            directory: directory_with_acme().await,
            registry: unreachable_registry(),
            secrets: secrets.clone(),
            describe: "test".into(),
        };
        let mut out = Vec::new();
        for (url, why) in [
            ("https://10.0.0.1/hooks", "private"),
            ("http://hooks.example.com/", "https"),
            ("https://127.0.0.1:9/", "loopback"),
            ("https://169.254.169.254/latest", "link-local"),
        ] {
            let err = add_endpoint(&ports, &add_args(url), &mut out)
                .await
                .unwrap_err();
            assert!(format!("{err:#}").contains(why), "{url}: {err:#}");
        }
        let mut bad_type = add_args("https://hooks.example.com/");
        bad_type.types = vec!["message.nope".into()];
        assert!(add_endpoint(&ports, &bad_type, &mut out).await.is_err());
        let mut bad_secret = add_args("https://hooks.example.com/");
        bad_secret.secret = Some(SecretString::from("whsec_c2hvcnQ="));
        let err = add_endpoint(&ports, &bad_secret, &mut out)
            .await
            .unwrap_err();
        assert!(!format!("{err:#}").contains("c2hvcnQ"), "{err:#}");
        let mut unknown = add_args("https://hooks.example.com/");
        unknown.tenant = "nobody".into();
        let err = add_endpoint(&ports, &unknown, &mut out).await.unwrap_err();
        assert!(format!("{err:#}").contains("no tenant nobody"), "{err:#}");
        assert!(secrets.kept.lock().unwrap().is_empty());
        assert!(out.is_empty());
    }

    #[test]
    fn generated_secrets_are_32_fresh_bytes() {
        let a = generate_secret().unwrap().to_whsec();
        let b = generate_secret().unwrap().to_whsec();
        assert_ne!(a, b);
        let key = a.strip_prefix("whsec_").unwrap();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert_eq!(bytes.len(), 32);
        assert!(WebhookSecret::parse(&a).is_ok());
    }

    #[test]
    fn long_errors_are_cut_to_one_line() {
        assert_eq!(excerpt("a\nb", 10), "a b");
        assert_eq!(excerpt("abcdef", 4), "abc…");
    }
}
