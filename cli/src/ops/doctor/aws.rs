//! The checks of a deployed stage, located like every other `wa` operator command:
//! stack outputs from flags, environment variables or the `--config` file's `[aws]`
//! section (docs/deploy.md, section 3), AWS credentials and region from the standard
//! sources (`AWS_ENDPOINT_URL` redirects them, e.g. to moto).

use super::probe::{self, Graph};
use super::{Check, DoctorArgs};
use crate::ops::backend::{Aws, Backend};
use crate::ops::config::{AwsSettings, ConfigError, FileConfig};
use crate::ops::tenants::aws::AwsTenant;
use aws_sdk_cloudwatch::types::StateValue;
use secrecy::SecretString;
use std::collections::BTreeMap;
use wa_shared::adapters::aws::load_sdk_config;
use wa_shared::adapters::graph::{GRAPH_API_VERSION, GRAPH_BASE_URL};
use wa_shared::adapters::tokens::SecretsManagerTokenSource;
use wa_shared::domain::tenant::TenantProfile;
use wa_shared::ports::TokenSource;

const CONFIGURATION: &str = "configuration";
const STORE: &str = "store";
const ALARMS: &str = "alarms";
const CONFIG_FIX: &str = "put the stack outputs in the [aws] section of the --config file (docs/deploy.md, section 3), or pass them as flags or environment variables";

/// Every check of a deployed stage.
pub async fn checks(args: &DoctorArgs) -> Vec<Check> {
    let mut checks = Vec::new();
    let file = match FileConfig::load(args.backend.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            checks.push(Check::fail(CONFIGURATION, format!("{e:#}"), source_of(&e)));
            return skip_rest(checks);
        }
    };
    let settings = match AwsSettings::resolve(&args.backend.aws, &file.aws) {
        Ok(s) => s,
        Err(e) => {
            checks.push(Check::fail(CONFIGURATION, e.to_string(), CONFIG_FIX));
            return skip_rest(checks);
        }
    };
    let missing: Vec<String> = [
        settings.directory_table().err(),
        settings.messages_table().err(),
        settings.send_queue_prefix().err(),
        settings.sender_function_arn().err(),
        settings.tenant_secret_prefix().err(),
        settings.alarm_topic_arn().err(),
    ]
    .into_iter()
    .flatten()
    .map(|e| e.to_string())
    .collect();
    if !missing.is_empty() {
        checks.push(Check::fail(CONFIGURATION, missing.join("; "), CONFIG_FIX));
        return skip_rest(checks);
    }
    let sdk = load_sdk_config().await;
    let region = sdk
        .region()
        .map_or_else(|| "(no region)".to_owned(), ToString::to_string);
    let backend = Backend::aws(sdk, settings);
    let Some(aws) = backend.aws_side() else {
        return checks;
    };
    checks.push(Check::pass(
        CONFIGURATION,
        format!("{} in {region}", backend.describe()),
    ));

    let (store, tenants) = store(&backend).await;
    checks.push(store);
    checks.push(webhook(args, aws, &file).await);

    let graph = graph(args, &file);
    let tokens = SecretsManagerTokenSource::new(
        aws_sdk_secretsmanager::Client::new(&aws.sdk),
        aws.settings
            .tenant_secret_prefix()
            .unwrap_or_default()
            .to_owned(),
    );
    let Some(tenants) = tenants else {
        checks.push(Check::skip(
            "tenants",
            "the directory cannot be read (see the store check)",
        ));
        return checks;
    };
    if tenants.is_empty() {
        checks.push(Check::skip(
            "tenants",
            "the stage has no tenant yet: wa tenants add T ...",
        ));
    }
    let mut resolved: Vec<(&TenantProfile, Result<SecretString, String>)> = Vec::new();
    for t in &tenants {
        let token = tokens
            .graph_token(&t.token_ref)
            .await
            .map_err(|e| format!("cannot read the token from {}: {e}", t.token_ref));
        resolved.push((t, token));
    }
    match &graph {
        Ok(graph) => {
            let mut wabas: BTreeMap<&str, &SecretString> = BTreeMap::new();
            for (t, token) in &resolved {
                if let Ok(token) = token {
                    wabas.entry(t.waba_id.as_str()).or_insert(token);
                }
            }
            for (waba, token) in wabas {
                checks.push(
                    probe::subscribed_check(
                        graph,
                        waba,
                        token,
                        "store a valid System User token of the WABA in the tenants' secrets (aws secretsmanager put-secret-value), or wa tenants add T --graph-token",
                    )
                    .await,
                );
            }
        }
        Err(why) => checks.push(Check::skip("graph", why.clone())),
    }
    let directory = backend.directory().ok();
    for (t, token) in &resolved {
        let fix = format!(
            "store a valid System User token: aws secretsmanager put-secret-value --secret-id {} --secret-string \"$TOKEN\" (or wa tenants add {} --graph-token), then wa tenants resume {} if it is on hold",
            t.token_ref, t.id, t.id
        );
        let token_name = format!("token (tenant {})", t.id);
        let token_ok = match (&graph, token) {
            (_, Err(why)) => {
                checks.push(Check::fail(token_name, why.clone(), fix));
                false
            }
            (Err(_), Ok(_)) => {
                checks.push(Check::skip(
                    token_name,
                    "no Graph API to ask (see the graph check)",
                ));
                false
            }
            (Ok(graph), Ok(token)) => {
                let check =
                    probe::token_check(graph, &t.id, t.phone_number_id.as_str(), token, &fix).await;
                let ok = !check.failed();
                checks.push(check);
                ok
            }
        };
        let templates_name = format!("templates (tenant {})", t.id);
        match (&graph, token, token_ok, &directory) {
            (Ok(graph), Ok(token), true, Some(directory)) => {
                match graph.templates(&t.waba_id, token).await {
                    Ok(catalog) => checks.push(
                        probe::templates_check(
                            directory.as_ref(),
                            &t.id,
                            &catalog,
                            (
                                probe::Reference::Graph,
                                &format!("Graph's listing of WABA {}", t.waba_id),
                            ),
                            &format!(
                                "wa templates sync --tenant {} (with this command's --config or stack flags)",
                                t.id
                            ),
                        )
                        .await,
                    ),
                    Err(e) => checks.push(Check::fail(
                        templates_name,
                        format!("listing the templates of WABA {}: {e:#}", t.waba_id),
                        "see the token check",
                    )),
                }
            }
            _ => checks.push(Check::skip(
                templates_name,
                "no Graph listing to compare with (see the token check)",
            )),
        }
    }
    let mut missing_alarms = Vec::new();
    for t in &tenants {
        let (queues, mapping, alarm) = tenant_resources(aws, t).await;
        checks.push(queues);
        checks.push(mapping);
        if let Some(name) = alarm {
            missing_alarms.push((t.id.to_string(), name));
        }
    }
    checks.push(alarms(aws, &missing_alarms).await);
    checks
}

fn source_of(e: &ConfigError) -> String {
    match e {
        ConfigError::Read { .. } => "pass --config with the file holding the stack outputs (or unset WA_CONFIG)".into(),
        _ => "correct the file: its [aws] keys are the stack's output names (docs/deploy.md, section 3)".into(),
    }
}

fn skip_rest(mut checks: Vec<Check>) -> Vec<Check> {
    for name in [STORE, probe::HANDSHAKE, "tenants", ALARMS] {
        checks.push(Check::skip(name, "the configuration is not usable"));
    }
    checks
}

/// Both tables answer a read (the directory lists the tenants; the messages table
/// answers a page of one tenant's messages).
async fn store(backend: &Backend) -> (Check, Option<Vec<TenantProfile>>) {
    let fix = "deploy the stack in this account and region (sam deploy; AWS_REGION or the profile's region), or correct DirectoryTableName/MessagesTableName in [aws]";
    let directory = match backend.directory() {
        Ok(d) => d,
        Err(e) => return (Check::fail(STORE, e.to_string(), fix), None),
    };
    let tenants = match directory.list_tenants().await {
        Ok(t) => t,
        Err(e) => {
            return (
                Check::fail(
                    STORE,
                    format!("the directory table does not answer: {}", chain(&e)),
                    fix,
                ),
                None,
            );
        }
    };
    let store = match backend.store() {
        Ok(s) => s,
        Err(e) => return (Check::fail(STORE, e.to_string(), fix), Some(tenants)),
    };
    let probe_tenant = tenants
        .first()
        .map(|t| t.id.clone())
        .or_else(|| wa_shared::domain::TenantId::parse("doctor").ok());
    if let Some(tenant) = probe_tenant
        && let Err(e) = store.list_by_tenant(&tenant, None, None, 1, None).await
    {
        return (
            Check::fail(
                STORE,
                format!("the messages table does not answer: {}", chain(&e)),
                fix,
            ),
            Some(tenants),
        );
    }
    (
        Check::pass(
            STORE,
            format!("both tables answer; {} tenant(s)", tenants.len()),
        ),
        Some(tenants),
    )
}

/// An error with its causes (the SDK's code is in a source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn webhook(args: &DoctorArgs, aws: &Aws, file: &FileConfig) -> Check {
    let Some(url) = args
        .webhook_url
        .clone()
        .or_else(|| file.aws.webhook_url.clone())
    else {
        return Check::skip(
            probe::HANDSHAKE,
            "no webhook URL: put the WebhookUrl output in [aws] of --config, or pass --webhook-url",
        );
    };
    let token = match (&args.verify_token, &file.aws.verify_token_secret_arn) {
        (Some(t), _) => t.clone(),
        (None, Some(arn)) => {
            let client = aws_sdk_secretsmanager::Client::new(&aws.sdk);
            match client.get_secret_value().secret_id(arn).send().await {
                Ok(v) => match v.secret_string() {
                    Some(s) => SecretString::from(s.to_owned()),
                    None => {
                        return Check::fail(
                            probe::HANDSHAKE,
                            format!("the verify token secret {arn} holds no text"),
                            "redeploy the stack (it generates the verify token)",
                        );
                    }
                },
                Err(e) => {
                    return Check::fail(
                        probe::HANDSHAKE,
                        format!("cannot read the verify token from {arn}: {}", chain(&e)),
                        "check the VerifyTokenSecretArn output and that your identity may read it",
                    );
                }
            }
        }
        (None, None) => {
            return Check::skip(
                probe::HANDSHAKE,
                "no verify token: put the VerifyTokenSecretArn output in [aws] of --config, or pass --verify-token",
            );
        }
    };
    let http = match probe::client(args.timeout()) {
        Ok(h) => h,
        Err(e) => return Check::fail(probe::HANDSHAKE, e.to_string(), "see the error"),
    };
    probe::handshake(
        &http,
        &url,
        &token,
        "check the WebhookUrl output and that the stack is deployed (sam deploy)",
        "the webhook function answers only the verify token of VerifyTokenSecretArn: make Meta's webhook configuration use it (docs/deploy.md, section 4)",
    )
    .await
}

fn graph(args: &DoctorArgs, file: &FileConfig) -> Result<Graph, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let base = args
        .graph_base_url
        .clone()
        .or_else(|| env("WA_GRAPH_BASE_URL"))
        .or_else(|| file.graph.graph_base_url.clone())
        .unwrap_or_else(|| GRAPH_BASE_URL.to_owned());
    let version = args
        .graph_api_version
        .clone()
        .or_else(|| env("WA_GRAPH_API_VERSION"))
        .or_else(|| file.graph.graph_api_version.clone())
        .unwrap_or_else(|| GRAPH_API_VERSION.to_owned());
    Graph::new(&base, &version, args.timeout()).map_err(|e| format!("Graph at {base:?}: {e}"))
}

/// The `queues` and `event source mapping` checks of one tenant, and the name of its
/// DLQ alarm when that alarm is missing.
async fn tenant_resources(aws: &Aws, t: &TenantProfile) -> (Check, Check, Option<String>) {
    let queues = format!("queues (tenant {})", t.id);
    let mapping = format!("event source mapping (tenant {})", t.id);
    let add = format!(
        "wa tenants add {} (idempotent: it recreates what is missing)",
        t.id
    );
    let tenant = match AwsTenant::new(aws, &t.id) {
        Ok(a) => a,
        Err(e) => {
            let problem = format!("{e:#}");
            return (
                Check::fail(queues, problem.clone(), CONFIG_FIX),
                Check::fail(mapping, problem, CONFIG_FIX),
                None,
            );
        }
    };
    let observed = match tenant.observe(None).await {
        Ok(o) => o,
        Err(e) => {
            let problem = format!("{e:#}");
            return (
                Check::fail(
                    queues,
                    problem.clone(),
                    "check the identity's permissions (sqs, lambda, secretsmanager, cloudwatch reads)",
                ),
                Check::skip(mapping, "the queues could not be read"),
                None,
            );
        }
    };
    let names = &tenant.names;
    let missing: Vec<&str> = [
        (observed.queue.is_none(), names.queue.as_str()),
        (observed.dlq.is_none(), names.dlq.as_str()),
    ]
    .into_iter()
    .filter_map(|(gone, name)| gone.then_some(name))
    .collect();
    let queues = if missing.is_empty() {
        Check::pass(queues, format!("{} and {}", names.queue, names.dlq))
    } else {
        Check::fail(
            queues,
            format!("missing: {}", missing.join(", ")),
            add.clone(),
        )
    };
    let mapping = match (&observed.queue, &observed.mapping) {
        (None, _) => Check::fail(mapping, format!("no queue {} to map", names.queue), add),
        (Some(_), None) => Check::fail(
            mapping,
            format!(
                "{} is not mapped to the sender: its messages are never sent",
                names.queue
            ),
            add,
        ),
        (Some(_), Some(m)) => {
            let state = m.state().unwrap_or("(unknown)");
            let concurrency = m
                .scaling_config()
                .and_then(|s| s.maximum_concurrency())
                .map_or_else(|| "unset".to_owned(), |c| c.to_string());
            if matches!(state, "Enabled" | "Enabling" | "Creating" | "Updating") {
                Check::pass(
                    mapping,
                    format!(
                        "{} -> sender, {state}, MaximumConcurrency {concurrency}",
                        names.queue
                    ),
                )
            } else {
                Check::fail(
                    mapping,
                    format!("the mapping of {} is {state}", names.queue),
                    format!(
                        "aws lambda update-event-source-mapping --uuid {} --enabled",
                        m.uuid().unwrap_or("UUID")
                    ),
                )
            }
        }
    };
    let alarm = observed.alarm.is_none().then(|| names.alarm.clone());
    (queues, mapping, alarm)
}

/// None of the stage's alarms is in `ALARM`, and every tenant's DLQ alarm exists.
async fn alarms(aws: &Aws, missing: &[(String, String)]) -> Check {
    let prefix = aws.settings.send_queue_prefix().unwrap_or_default();
    let stage = prefix.strip_suffix("send-").unwrap_or(prefix).to_owned();
    let client = aws_sdk_cloudwatch::Client::new(&aws.sdk);
    let mut firing = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let answer = client
            .describe_alarms()
            .alarm_name_prefix(&stage)
            .set_next_token(next.take())
            .send()
            .await;
        let page = match answer {
            Ok(p) => p,
            Err(e) => {
                return Check::fail(
                    ALARMS,
                    format!("DescribeAlarms failed: {}", chain(&e)),
                    "allow the identity cloudwatch:DescribeAlarms",
                );
            }
        };
        // Filtered here rather than with StateValue: moto ignores it next to a prefix.
        for a in page
            .metric_alarms()
            .iter()
            .filter(|a| a.state_value() == Some(&StateValue::Alarm))
        {
            let reason = a.state_reason().unwrap_or_default();
            firing.push(format!(
                "{} ({})",
                a.alarm_name().unwrap_or("?"),
                reason.chars().take(100).collect::<String>()
            ));
        }
        for a in page
            .composite_alarms()
            .iter()
            .filter(|a| a.state_value() == Some(&StateValue::Alarm))
        {
            firing.push(a.alarm_name().unwrap_or("?").to_owned());
        }
        pages += 1;
        match page.next_token() {
            Some(t) if pages < 20 => next = Some(t.to_owned()),
            _ => break,
        }
    }
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if !firing.is_empty() {
        problems.push(format!("in ALARM: {}", firing.join(", ")));
        fixes.push(
            "look at the stage's dashboard and each alarm's meaning in infra/README.md; an alarm returns to OK once its cause is fixed (wa dlq list/redrive for a DLQ's depth)"
                .to_owned(),
        );
    }
    if !missing.is_empty() {
        let names: Vec<String> = missing
            .iter()
            .map(|(t, a)| format!("{a} (tenant {t})"))
            .collect();
        problems.push(format!("missing DLQ alarms: {}", names.join(", ")));
        let tenants: Vec<&str> = missing.iter().map(|(t, _)| t.as_str()).collect();
        fixes.push(format!(
            "wa tenants add {} (each; idempotent)",
            tenants.join(" / ")
        ));
    }
    if problems.is_empty() {
        Check::pass(ALARMS, format!("no alarm named {stage}* in ALARM"))
    } else {
        Check::fail(ALARMS, problems.join("; "), fixes.join("; "))
    }
}
