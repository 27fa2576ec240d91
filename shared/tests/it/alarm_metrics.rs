//! The alarm contract: every CloudWatch alarm of `infra/template.yaml` that watches a
//! metric of our own namespace (`WaPipeline`) watches one the code emits, so no alarm
//! waits on a name nothing sends (a renamed metric would otherwise leave it silent).
//! Checked on the source: a `count`, `count_n`, `millis` or `emit` call of the
//! `Metrics` recorder with that name as its literal first argument.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `MetricName` following each `Namespace: WaPipeline` of the template.
fn alarmed_metrics() -> Vec<String> {
    let template = std::fs::read_to_string(repo().join("infra/template.yaml")).unwrap();
    let lines: Vec<&str> = template.lines().collect();
    let mut names = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == "Namespace: WaPipeline" {
            let name = lines[i + 1..]
                .iter()
                .take(3)
                .find_map(|l| l.trim().strip_prefix("MetricName: "))
                .unwrap_or_else(|| panic!("no MetricName after line {}", i + 1));
            names.push(name.trim().to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Every Rust source of the functions' code: the shared crate, `wa dev`, the binaries.
fn sources() -> Vec<String> {
    let mut dirs = vec![repo().join("shared/src"), repo().join("local/src")];
    for entry in std::fs::read_dir(repo().join("functions")).unwrap() {
        dirs.push(entry.unwrap().path().join("src"));
    }
    let mut out = Vec::new();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    out
}

/// Whether some source emits `name`: the literal right after `count(`, `count_n(`,
/// `millis(` or `emit(` (whitespace and newlines allowed in between).
fn emitted(sources: &[String], name: &str) -> bool {
    let literal = format!("\"{name}\"");
    sources.iter().any(|source| {
        source.match_indices(&literal).any(|(at, _)| {
            let before = source[..at].trim_end();
            ["count(", "count_n(", "millis(", "emit("]
                .iter()
                .any(|call| before.ends_with(call))
        })
    })
}

#[test]
fn every_alarm_on_our_namespace_watches_a_metric_the_code_emits() {
    let names = alarmed_metrics();
    assert!(
        names.len() >= 10,
        "the template's alarms were not found: {names:?}"
    );
    let sources = sources();
    // The check can fail: a name nothing emits is not found.
    assert!(!emitted(&sources, "NoSuchMetricAnywhere"));
    let silent: Vec<&String> = names.iter().filter(|n| !emitted(&sources, n)).collect();
    assert!(
        silent.is_empty(),
        "alarms on metrics nothing emits: {silent:?}"
    );
}
