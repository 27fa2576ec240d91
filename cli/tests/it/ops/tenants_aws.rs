//! `wa tenants add` on AWS (moto): every resource of infra/README.md's list, checked
//! as moto reports it; a second run, a dry run, flag updates, refusals, settings.

use crate::ops::support::{
    Backend, MotoStack, PHONE_NUMBER_ID, WABA_ID, api_key, args, wa, wa_env,
};
use crate::ops::tenants::{TOKEN, acme};
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::BTreeMap;
use wa_shared::domain::tenant::{ApiKeyHash, TenantProfile, TenantStatus};
use wa_shared::domain::{PhoneNumberId, TenantId};

/// (uuid, batch size, reports batch item failures, maximum concurrency, last modified)
type Mapping = (String, Option<i32>, bool, Option<i32>, String);
/// (metric and settings, dimensions, threshold, alarm actions, OK actions, missing data
/// and last configuration change)
type Alarm = (String, String, f64, Vec<String>, Vec<String>, String);

/// Everything `wa tenants add` creates on AWS, as moto reports it.
#[derive(Debug, PartialEq)]
struct AwsState {
    queue: Option<BTreeMap<String, String>>,
    dlq: Option<BTreeMap<String, String>>,
    mappings: Vec<Mapping>,
    secret_versions: Option<usize>,
    secret_value: Option<String>,
    alarm: Option<Alarm>,
    profile: Option<TenantProfile>,
    api_keys: usize,
    phone_routes: usize,
}

async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> Option<BTreeMap<String, String>> {
    let url = sqs.get_queue_url().queue_name(name).send().await.ok()?;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url.queue_url().unwrap())
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    Some(
        out.attributes()
            .unwrap()
            .iter()
            .filter(|(k, _)| !k.as_str().starts_with("Approximate"))
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect(),
    )
}

async fn aws_state(backend: &Backend, tenant: &str) -> AwsState {
    let stack = backend.moto.as_ref().unwrap();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue_name = format!("{}{tenant}", stack.queue_prefix);
    let queue = queue_attributes(&sqs, &queue_name).await;
    let dlq = queue_attributes(&sqs, &format!("{queue_name}-dlq")).await;
    let lambda = aws_sdk_lambda::Client::new(&stack.sdk);
    let mut mappings = Vec::new();
    if let Some(arn) = queue.as_ref().and_then(|q| q.get("QueueArn")) {
        let out = lambda
            .list_event_source_mappings()
            .function_name(&stack.sender_arn)
            .event_source_arn(arn)
            .send()
            .await
            .unwrap();
        for m in out.event_source_mappings() {
            mappings.push((
                m.uuid().unwrap().to_owned(),
                m.batch_size(),
                m.function_response_types().contains(
                    &aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures,
                ),
                m.scaling_config().and_then(|s| s.maximum_concurrency()),
                format!("{:?}", m.last_modified()),
            ));
        }
    }
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.sdk);
    let secret = format!("{}{tenant}", stack.secret_prefix);
    let secret_versions = secrets
        .list_secret_version_ids()
        .secret_id(&secret)
        .send()
        .await
        .ok()
        .map(|v| v.versions().len());
    let secret_value = secrets
        .get_secret_value()
        .secret_id(&secret)
        .send()
        .await
        .ok()
        .and_then(|v| v.secret_string().map(str::to_owned));
    let alarms = aws_sdk_cloudwatch::Client::new(&stack.sdk)
        .describe_alarms()
        .alarm_names(format!("{queue_name}-dlq-depth"))
        .send()
        .await
        .unwrap();
    let alarm = alarms.metric_alarms().first().map(|a| {
        let dims: Vec<String> = a
            .dimensions()
            .iter()
            .map(|d| format!("{}={}", d.name().unwrap(), d.value().unwrap()))
            .collect();
        (
            format!(
                "{} {} {:?} {:?} {:?} {:?}",
                a.namespace().unwrap(),
                a.metric_name().unwrap(),
                a.statistic(),
                a.period(),
                a.evaluation_periods(),
                a.comparison_operator()
            ),
            dims.join(","),
            a.threshold().unwrap(),
            a.alarm_actions().to_vec(),
            a.ok_actions().to_vec(),
            format!(
                "{:?} {:?}",
                a.treat_missing_data(),
                a.alarm_configuration_updated_timestamp()
            ),
        )
    });
    AwsState {
        queue,
        dlq,
        mappings,
        secret_versions,
        secret_value,
        alarm,
        profile: backend
            .directory
            .tenant(&TenantId::parse(tenant).unwrap())
            .await
            .unwrap(),
        api_keys: stack.directory_items("apikey#").await,
        phone_routes: stack.directory_items("phone#").await,
    }
}

fn stack(backend: &Backend) -> &MotoStack {
    backend.moto.as_ref().unwrap()
}

#[tokio::test]
async fn add_on_aws_creates_every_resource_and_a_second_run_changes_nothing() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    let s = stack(&backend);
    let first = backend.add_tenant("acme", &[("WA_GRAPH_TOKEN", TOKEN)]);
    assert!(first.contains("7 change(s) made"), "{first}");
    let key = api_key(&first).expect("a new tenant gets an API key");
    assert!(key.starts_with("wa_") && key.len() > 40, "{key}");

    let state = aws_state(&backend, "acme").await;
    let queue_name = format!("{}acme", s.queue_prefix);
    let queue = state.queue.as_ref().expect("send queue");
    assert_eq!(queue["VisibilityTimeout"], "180");
    assert_eq!(queue["SqsManagedSseEnabled"], "true");
    let redrive: serde_json::Value = serde_json::from_str(&queue["RedrivePolicy"]).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"].as_str().unwrap(),
        state.dlq.as_ref().unwrap()["QueueArn"]
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );
    let dlq = state.dlq.as_ref().expect("DLQ");
    assert_eq!(dlq["MessageRetentionPeriod"], "1209600");
    assert_eq!(dlq["SqsManagedSseEnabled"], "true");
    assert_eq!(state.mappings.len(), 1, "one event source mapping");
    let (_, batch, reports_failures, concurrency, _) = &state.mappings[0];
    assert_eq!(
        (*batch, *reports_failures, *concurrency),
        (Some(10), true, Some(5))
    );
    assert_eq!(state.secret_value.as_deref(), Some(TOKEN));
    let alarm = state.alarm.as_ref().expect("DLQ alarm");
    assert!(
        alarm.0.starts_with("AWS/SQS ApproximateNumberOfMessagesVisible Some(Maximum) Some(300) Some(1) Some(GreaterThanThreshold)"),
        "{}",
        alarm.0
    );
    assert_eq!(alarm.1, format!("QueueName={queue_name}-dlq"));
    assert_eq!(alarm.2, 0.0);
    assert_eq!(
        (alarm.3.clone(), alarm.4.clone()),
        (vec![s.topic.clone()], vec![s.topic.clone()])
    );
    assert!(alarm.5.starts_with("Some(\"notBreaching\")"), "{}", alarm.5);

    let profile = state.profile.clone().expect("profile");
    assert!(profile.queue.ends_with(&queue_name), "{}", profile.queue);
    assert_eq!(profile.token_ref, format!("{}acme", s.secret_prefix));
    assert_eq!(profile.status, TenantStatus::Active);
    assert_eq!(profile.max_concurrency, 5);
    let d = &backend.directory;
    assert_eq!(
        d.tenant_by_api_key(&ApiKeyHash::of_key(&key))
            .await
            .unwrap(),
        Some(acme())
    );
    let phone = PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap();
    assert_eq!(
        d.tenant_by_phone_number_id(&phone).await.unwrap(),
        Some(acme())
    );
    assert_eq!(d.tenants_by_waba_id(WABA_ID).await.unwrap(), [acme()]);

    // The same command again: every resource is "ok", nothing is written, no new key.
    let second = backend.add_tenant("acme", &[("WA_GRAPH_TOKEN", TOKEN)]);
    assert!(second.contains("nothing to change"), "{second}");
    assert!(
        !second
            .lines()
            .any(|l| l.starts_with("  create") || l.starts_with("  update"))
    );
    assert_eq!(api_key(&second), None);
    assert_eq!(
        aws_state(&backend, "acme").await,
        state,
        "a second run changed something"
    );
    // Without the token too (the secret is left as it is).
    let third = backend.add_tenant("acme", &[]);
    assert!(third.contains("nothing to change"), "{third}");
    assert_eq!(aws_state(&backend, "acme").await, state);
    for out in [&first, &second, &third] {
        assert!(!out.contains(TOKEN), "the token was printed");
    }
}

#[tokio::test]
async fn dry_run_on_aws_plans_everything_and_changes_nothing() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    let before = aws_state(&backend, "beta").await;
    let out = wa_env(
        &backend.cmd(&[
            "tenants",
            "add",
            "beta",
            "--phone-number-id",
            PHONE_NUMBER_ID,
            "--waba-id",
            WABA_ID,
            "--dry-run",
        ]),
        &[("WA_GRAPH_TOKEN", TOKEN)],
    )
    .ok();
    for kind in ["queue", "secret", "mapping", "alarm", "profile", "api key"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("  create  {kind:<8}"))),
            "{kind} missing from the plan:\n{out}"
        );
    }
    assert!(out.contains("dry run: 7 change(s) would be made"), "{out}");
    assert_eq!(api_key(&out), None, "no key is issued by a dry run");
    let after = aws_state(&backend, "beta").await;
    assert_eq!(after, before);
    assert!(after.queue.is_none() && after.profile.is_none() && after.alarm.is_none());
    assert_eq!(after.secret_versions, None);
}

#[tokio::test]
async fn add_on_aws_updates_only_what_a_flag_changes_and_new_key_adds_a_key() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    let first_key = api_key(&backend.add_tenant("acme", &[])).unwrap();
    let created = aws_state(&backend, "acme").await;
    // Created without a token: the secret exists, with no value yet.
    assert_eq!(created.secret_value, None);
    assert_eq!(created.secret_versions, Some(0));

    let planned = wa(&backend.cmd(&[
        "tenants",
        "add",
        "acme",
        "--max-concurrency",
        "7",
        "--dry-run",
    ]))
    .ok();
    assert!(planned.contains("MaximumConcurrency: 5 -> 7"), "{planned}");
    assert!(planned.contains("max_concurrency: 5 -> 7"), "{planned}");
    assert!(
        planned.contains("dry run: 2 change(s) would be made"),
        "{planned}"
    );
    assert_eq!(aws_state(&backend, "acme").await, created);

    let out = wa_env(
        &backend.cmd(&[
            "tenants",
            "add",
            "acme",
            "--max-concurrency",
            "7",
            "--new-key",
        ]),
        &[("WA_GRAPH_TOKEN", TOKEN)],
    )
    .ok();
    assert!(
        out.contains("4 change(s) made"),
        "secret, mapping, profile, key:\n{out}"
    );
    let second_key = api_key(&out).expect("--new-key prints a key");
    assert_ne!(second_key, first_key);
    let updated = aws_state(&backend, "acme").await;
    assert_eq!(updated.mappings.len(), 1);
    assert_eq!(
        updated.mappings[0].0, created.mappings[0].0,
        "same mapping, updated"
    );
    assert_eq!(updated.mappings[0].3, Some(7));
    assert_eq!(updated.profile.as_ref().unwrap().max_concurrency, 7);
    assert_eq!(updated.secret_value.as_deref(), Some(TOKEN));
    assert_eq!(
        (updated.queue.clone(), updated.alarm.clone()),
        (created.queue, created.alarm)
    );
    assert_eq!(updated.api_keys, 2);
    for key in [first_key, second_key] {
        let tenant = backend
            .directory
            .tenant_by_api_key(&ApiKeyHash::of_key(&key))
            .await
            .unwrap();
        assert_eq!(tenant, Some(acme()), "both keys stay valid");
    }
}

#[tokio::test]
async fn add_on_aws_refuses_a_phone_number_of_another_tenant_and_a_dlq_like_id() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    backend.add_tenant("acme", &[]);
    let before = aws_state(&backend, "other").await;
    let err = wa(&backend.cmd(&[
        "tenants",
        "add",
        "other",
        "--phone-number-id",
        PHONE_NUMBER_ID,
        "--waba-id",
        "555",
    ]))
    .failed();
    assert!(err.contains("belongs to tenant acme"), "{err}");
    assert_eq!(
        aws_state(&backend, "other").await,
        before,
        "nothing created"
    );
    let err = wa(&backend.cmd(&[
        "tenants",
        "add",
        "x-dlq",
        "--phone-number-id",
        "1",
        "--waba-id",
        "2",
    ]))
    .failed();
    assert!(err.contains("dead-letter queue"), "{err}");
}

#[tokio::test]
async fn a_missing_stack_output_is_named_before_any_aws_call() {
    // An endpoint nobody listens on: the command must fail on configuration first.
    let err = wa_env(
        &args(&[
            "tenants",
            "add",
            "acme",
            "--directory-table",
            "t",
            "--phone-number-id",
            "1",
            "--waba-id",
            "2",
        ]),
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_REGION", "us-east-1"),
        ],
    )
    .failed();
    for name in [
        "SendQueueNamePrefix",
        "--send-queue-prefix",
        "WA_SEND_QUEUE_PREFIX",
    ] {
        assert!(err.contains(name), "{name} missing from: {err}");
    }
}

#[tokio::test]
async fn stack_outputs_come_from_a_toml_file_or_the_environment() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    let s = stack(&backend);
    // The [aws] section as `aws cloudformation describe-stacks` lists the outputs,
    // including those the commands do not use.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wa.toml");
    std::fs::write(
        &config,
        format!(
            "[aws]\nApiUrl = \"https://x.execute-api.us-east-1.amazonaws.com\"\n\
             MessagesTableName = \"{}\"\nDirectoryTableName = \"{}\"\n\
             SenderFunctionArn = \"{}\"\nSendQueueNamePrefix = \"{}\"\n\
             SendQueueVisibilityTimeout = \"180\"\nSendQueueMaxReceiveCount = \"5\"\n\
             SendBatchSize = \"10\"\nTenantSecretPrefix = \"{}\"\nAlarmTopicArn = \"{}\"\n\
             DashboardName = \"d\"\n",
            s.tables.messages,
            s.tables.directory,
            s.sender_arn,
            s.queue_prefix,
            s.secret_prefix,
            s.topic
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let out = wa(&args(&[
        "tenants",
        "add",
        "acme",
        "--phone-number-id",
        PHONE_NUMBER_ID,
        "--waba-id",
        WABA_ID,
        "--config",
        &config,
    ]))
    .ok();
    assert!(out.contains("7 change(s) made"), "{out}");
    let again = wa_env(
        &args(&["tenants", "add", "acme"]),
        &[("WA_CONFIG", &config)],
    )
    .ok();
    assert!(again.contains("nothing to change"), "{again}");
    // Environment variables alone; a flag wins over the file.
    let listed = wa_env(
        &args(&["tenants", "list"]),
        &[("WA_DIRECTORY_TABLE", &s.tables.directory)],
    )
    .ok();
    assert!(
        listed.lines().nth(1).unwrap().starts_with("acme"),
        "{listed}"
    );
    let err = wa(&args(&[
        "tenants",
        "list",
        "--config",
        &config,
        "--directory-table",
        "no-such-table",
    ]))
    .failed();
    assert!(
        err.contains("ResourceNotFoundException"),
        "the flag's table was used: {err}"
    );
}
