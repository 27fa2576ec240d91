//! The schema against the SAM template, so code and infrastructure cannot drift.

use super::*;

const TEMPLATE: &str = include_str!("../../../../infra/template.yaml");

/// The trimmed, non-comment lines of one top-level resource of the template.
fn resource_lines(resource: &str) -> Vec<String> {
    let header = format!("  {resource}:");
    let mut lines = TEMPLATE.lines().skip_while(|l| *l != header);
    assert!(lines.next().is_some(), "{resource} not in the template");
    lines
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn key_lines(hash: KeyAttribute, range: Option<KeyAttribute>) -> Vec<String> {
    let mut lines = vec![
        "KeySchema:".to_owned(),
        format!("- AttributeName: {}", hash.name),
        "KeyType: HASH".to_owned(),
    ];
    if let Some(range) = range {
        lines.push(format!("- AttributeName: {}", range.name));
        lines.push("KeyType: RANGE".to_owned());
    }
    lines
}

fn assert_contains_run(haystack: &[String], run: &[String]) {
    assert!(
        haystack.windows(run.len()).any(|w| w == run),
        "template lacks\n{}\nin\n{}",
        run.join("\n"),
        haystack.join("\n")
    );
}

fn assert_matches_template(spec: &TableSpec) {
    let lines = resource_lines(spec.resource);
    let mut definitions = vec!["AttributeDefinitions:".to_owned()];
    for a in spec.key_attributes() {
        definitions.push(format!("- AttributeName: {}", a.name));
        definitions.push(format!("AttributeType: {}", a.kind.as_str()));
    }
    definitions.extend(key_lines(spec.hash, spec.range));
    assert_contains_run(&lines, &definitions);
    assert!(lines.contains(&"BillingMode: PAY_PER_REQUEST".to_owned()));
    let index_count = lines
        .iter()
        .filter(|l| l.starts_with("- IndexName:"))
        .count();
    assert_eq!(index_count, spec.indexes.len(), "{}", spec.resource);
    for index in spec.indexes {
        let mut run = vec![format!("- IndexName: {}", index.name)];
        run.extend(key_lines(index.hash, index.range));
        run.push("Projection:".to_owned());
        run.push(format!("ProjectionType: {}", index.projection.as_str()));
        assert_contains_run(&lines, &run);
    }
    match spec.ttl_attribute {
        Some(attribute) => assert_contains_run(
            &lines,
            &[
                "TimeToLiveSpecification:".to_owned(),
                format!("AttributeName: {attribute}"),
                "Enabled: true".to_owned(),
            ],
        ),
        None => assert!(!lines.iter().any(|l| l.starts_with("TimeToLive"))),
    }
}

#[test]
fn the_messages_table_matches_the_sam_template() {
    assert_matches_template(&MESSAGES);
}

#[test]
fn the_directory_table_matches_the_sam_template() {
    assert_matches_template(&DIRECTORY);
}

#[test]
fn the_events_table_matches_the_sam_template() {
    assert_matches_template(&EVENTS);
}

#[test]
fn the_quotas_table_matches_the_sam_template() {
    assert_matches_template(&QUOTAS);
}

#[test]
fn key_attributes_are_defined_once_each() {
    let names: Vec<_> = MESSAGES.key_attributes().iter().map(|a| a.name).collect();
    assert_eq!(
        names,
        [
            "pk",
            "wamid",
            "sweep_key",
            "sweep_at",
            "tenant_shard",
            "created_at",
            "tenant_to"
        ]
    );
    let names: Vec<_> = DIRECTORY.key_attributes().iter().map(|a| a.name).collect();
    assert_eq!(names, ["pk", "sk"]);
}

#[test]
fn index_definitions_build() {
    for spec in MESSAGES.indexes {
        let built = index(spec).unwrap();
        assert_eq!(built.index_name(), spec.name);
    }
}

#[test]
fn names_follow_the_template_pattern() {
    let names = TableNames::with_prefix("prod-wa");
    assert_eq!(names.messages, "prod-wa-messages");
    assert_eq!(names.directory, "prod-wa-directory");
    assert_eq!(names.events, "prod-wa-events");
    assert_eq!(names.quotas, "prod-wa-quotas");
}
