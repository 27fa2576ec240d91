//! The queue definitions against the SAM template, so code and infrastructure cannot
//! drift: the send queue's numbers in `Mappings.Tuning.Sender` (which the stack
//! outputs hand to `wa tenants add`), the inbox queues' properties, the consuming
//! functions' timeouts and the webhook function's SQS event.

use super::*;

const TEMPLATE: &str = include_str!("../../infra/template.yaml");

/// Lines of the template without comments and blank lines, with their indentation.
fn lines() -> Vec<(usize, &'static str)> {
    TEMPLATE
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| (l.len() - l.trim_start().len(), l.trim()))
        .collect()
}

/// The child lines of the mapping at `path` (keys from the top level down): the
/// template's block style, two spaces per level, as every key of it is written.
fn block(path: &[&str]) -> Vec<(usize, &'static str)> {
    let all = lines();
    let (mut start, mut end) = (0, all.len());
    for (depth, key) in path.iter().enumerate() {
        let indent = depth * 2;
        let header = format!("{key}:");
        let at = (start..end)
            .find(|&i| {
                all[i].0 == indent
                    && (all[i].1 == header || all[i].1.starts_with(&format!("{header} ")))
            })
            .unwrap_or_else(|| panic!("{} not in the template", path[..=depth].join(".")));
        start = at + 1;
        end = (start..end).find(|&i| all[i].0 <= indent).unwrap_or(end);
    }
    all[start..end].to_vec()
}

/// The scalar at `path`, with `!FindInMap [A, B, C]` resolved through `Mappings`.
fn value(path: &[&str]) -> String {
    let (parent, key) = path.split_at(path.len() - 1);
    let header = format!("{}:", key[0]);
    let indent = parent.len() * 2;
    let lines = if parent.is_empty() {
        lines()
    } else {
        block(parent)
    };
    let raw = lines
        .iter()
        .find(|(i, l)| *i == indent && l.starts_with(&header))
        .map(|(_, l)| l[header.len()..].trim())
        .unwrap_or_else(|| panic!("{} not in the template", path.join(".")));
    match raw
        .strip_prefix("!FindInMap [")
        .and_then(|r| r.strip_suffix(']'))
    {
        Some(args) => {
            let args: Vec<&str> = args.split(',').map(str::trim).collect();
            let mut mapped = vec!["Mappings"];
            mapped.extend(args);
            value(&mapped)
        }
        None => raw.trim_matches('"').to_owned(),
    }
}

fn number(path: &[&str]) -> u64 {
    let v = value(path);
    v.parse()
        .unwrap_or_else(|_| panic!("{} = {v:?} is not a number", path.join(".")))
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

#[test]
fn the_send_queue_matches_the_templates_sender_tuning() {
    let tuning = |key| number(&["Mappings", "Tuning", "Sender", key]);
    let spec = SEND.spec;
    assert_eq!(
        tuning("SendQueueVisibilityTimeoutSeconds"),
        secs(spec.visibility_timeout)
    );
    assert_eq!(
        tuning("SendQueueMaxReceiveCount"),
        u64::from(spec.max_receive_count)
    );
    assert_eq!(
        tuning("SendQueueRetentionSeconds"),
        secs(spec.message_retention)
    );
    assert_eq!(
        tuning("SendDeadLetterRetentionSeconds"),
        secs(spec.dead_letter_retention)
    );
    assert_eq!(tuning("SendBatchSize"), u64::from(SEND.consumer.batch_size));
    assert_eq!(
        number(&["Resources", "SenderFunction", "Properties", "Timeout"]),
        secs(SEND.consumer.function_timeout)
    );
    // The stack hands these to `wa tenants add` as outputs.
    for (output, key) in [
        (
            "SendQueueVisibilityTimeout",
            "SendQueueVisibilityTimeoutSeconds",
        ),
        ("SendQueueMaxReceiveCount", "SendQueueMaxReceiveCount"),
        ("SendBatchSize", "SendBatchSize"),
    ] {
        assert_eq!(
            number(&["Outputs", output, "Value"]),
            tuning(key),
            "{output}"
        );
    }
}

#[test]
fn the_webhook_inbox_matches_the_templates_queues_and_event() {
    let spec = WEBHOOK_INBOX.spec;
    let queue = |key| value(&["Resources", "WebhookInbox", "Properties", key]);
    let dlq = |key| value(&["Resources", "WebhookInboxDlq", "Properties", key]);
    assert_eq!(
        queue("VisibilityTimeout"),
        secs(spec.visibility_timeout).to_string()
    );
    assert_eq!(
        queue("MessageRetentionPeriod"),
        secs(spec.message_retention).to_string()
    );
    assert_eq!(
        dlq("MessageRetentionPeriod"),
        secs(spec.dead_letter_retention).to_string()
    );
    assert_eq!(queue("SqsManagedSseEnabled"), spec.encrypted.to_string());
    assert_eq!(dlq("SqsManagedSseEnabled"), spec.encrypted.to_string());
    assert_eq!(
        number(&[
            "Resources",
            "WebhookInbox",
            "Properties",
            "RedrivePolicy",
            "maxReceiveCount"
        ]),
        u64::from(spec.max_receive_count)
    );
    assert_eq!(
        value(&[
            "Resources",
            "WebhookInbox",
            "Properties",
            "RedrivePolicy",
            "deadLetterTargetArn"
        ]),
        "!GetAtt WebhookInboxDlq.Arn"
    );

    let function = WEBHOOK_INBOX.consumer.function;
    let event = ["Resources", function, "Properties", "Events", "Inbox"];
    assert_eq!(value(&[&event[..], &["Type"]].concat()), "SQS");
    let props = [&event[..], &["Properties"]].concat();
    assert_eq!(
        value(&[&props[..], &["Queue"]].concat()),
        "!GetAtt WebhookInbox.Arn"
    );
    assert_eq!(
        number(&[&props[..], &["BatchSize"]].concat()),
        u64::from(WEBHOOK_INBOX.consumer.batch_size)
    );
    assert_eq!(
        block(&[&props[..], &["FunctionResponseTypes"]].concat()),
        [(14, "- ReportBatchItemFailures")]
    );
    let Concurrency::Fixed(max) = WEBHOOK_INBOX.consumer.max_concurrency else {
        panic!("the inbox has one fixed concurrency");
    };
    assert_eq!(
        number(&[&props[..], &["ScalingConfig", "MaximumConcurrency"]].concat()),
        u64::from(max)
    );
    assert_eq!(
        number(&["Resources", function, "Properties", "Timeout"]),
        secs(WEBHOOK_INBOX.consumer.function_timeout)
    );
}

#[test]
fn every_queue_is_valid_and_hides_records_for_six_times_its_consumers_timeout() {
    for q in ALL {
        assert!(
            crate::ports::queue::check_spec(&q.spec).is_ok(),
            "{}",
            q.purpose
        );
        assert!(
            q.spec.visibility_timeout >= q.consumer.function_timeout * VISIBILITY_TO_TIMEOUT_RATIO,
            "{}: visibility under {VISIBILITY_TO_TIMEOUT_RATIO}x the consumer's timeout",
            q.purpose
        );
        assert!((1..=10).contains(&q.consumer.batch_size), "{}", q.purpose);
        if let Concurrency::Fixed(n) = q.consumer.max_concurrency {
            assert!(MAXIMUM_CONCURRENCY_BOUNDS.contains(&n), "{}", q.purpose);
        }
        assert!(q.spec.encrypted, "{}", q.purpose);
    }
    assert_eq!(crate::ports::QueueSpec::default(), SEND.spec);
}

#[test]
fn the_reader_resolves_mappings_and_fails_on_unknown_keys() {
    assert_eq!(
        value(&["Resources", "SenderFunction", "Properties", "Timeout"]),
        value(&["Mappings", "Tuning", "Sender", "TimeoutSeconds"])
    );
    let missing = std::panic::catch_unwind(|| value(&["Mappings", "Tuning", "Nope"]));
    assert!(missing.is_err());
}
