//! CloudWatch Embedded Metric Format (EMF): metrics as structured log lines.
//!
//! Lambda ships stdout to CloudWatch Logs, which turns each EMF line into metrics
//! with no API call. Names and dimensions are the metric contract of
//! `infra/template.yaml` (namespace `WaPipeline`). A [`MetricsSink::Memory`] sink
//! records the same lines for tests and for `wa dev`.
//!
//! Every line carries the `Stage` dimension and declares two dimension sets: the
//! detailed one (`[Stage, Tenant, ...]`) and `[Stage]` alone, so alarms can read a
//! stage-wide series without SEARCH.

use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The CloudWatch namespace of every metric we emit.
pub const NAMESPACE: &str = "WaPipeline";

/// Where metric lines go.
#[derive(Debug, Clone)]
pub enum MetricsSink {
    /// One JSON line per metric on stdout (Lambda).
    Stdout,
    /// Kept in memory (tests, `wa dev`).
    Memory(Arc<Mutex<Vec<Value>>>),
    /// Dropped.
    Discard,
}

/// Emits EMF metric lines. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    sink: MetricsSink,
    stage: Arc<str>,
}

/// The unit of a metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count of events.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

impl Metrics {
    /// Metrics of `stage` written to `sink`.
    pub fn new(sink: MetricsSink, stage: &str) -> Self {
        Self {
            sink,
            stage: Arc::from(stage),
        }
    }

    /// Metrics of stage `test` kept in memory, with the handle to read them back.
    pub fn in_memory() -> (Self, Arc<Mutex<Vec<Value>>>) {
        let store = Arc::new(Mutex::new(Vec::new()));
        (Self::new(MetricsSink::Memory(store.clone()), "test"), store)
    }

    /// Count one occurrence of `name` with these dimensions (e.g. `[("Tenant", "acme")]`).
    pub fn count(&self, name: &str, dimensions: &[(&str, &str)]) {
        self.emit(name, 1.0, Unit::Count, dimensions);
    }

    /// Count `n` occurrences.
    pub fn count_n(&self, name: &str, n: u64, dimensions: &[(&str, &str)]) {
        if n > 0 {
            self.emit(name, n as f64, Unit::Count, dimensions);
        }
    }

    /// Record a duration in milliseconds.
    pub fn millis(&self, name: &str, ms: i64, dimensions: &[(&str, &str)]) {
        self.emit(name, ms.max(0) as f64, Unit::Milliseconds, dimensions);
    }

    /// Emit one value of `name`.
    pub fn emit(&self, name: &str, value: f64, unit: Unit, dimensions: &[(&str, &str)]) {
        if matches!(self.sink, MetricsSink::Discard) {
            return;
        }
        let mut dims: Vec<(&str, &str)> = Vec::with_capacity(dimensions.len() + 1);
        dims.push(("Stage", &self.stage));
        dims.extend_from_slice(dimensions);
        let line = emf_line(name, value, unit, &dims, now_millis());
        match &self.sink {
            MetricsSink::Stdout => {
                // One write per line so concurrent tasks never interleave halves.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
            MetricsSink::Memory(store) => {
                if let Ok(mut v) = store.lock() {
                    v.push(line);
                }
            }
            MetricsSink::Discard => {}
        }
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Build one EMF document: `_aws.CloudWatchMetrics` declares the metric and its
/// dimension sets (all of `dimensions`, and the first one alone when there are
/// more); the values sit at the top level.
pub fn emf_line(
    name: &str,
    value: f64,
    unit: Unit,
    dimensions: &[(&str, &str)],
    at_ms: i64,
) -> Value {
    let dim_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let mut sets = vec![dim_names.clone()];
    if dim_names.len() > 1 {
        sets.push(dim_names[..1].to_vec());
    }
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": [{"Name": name, "Unit": unit.as_str()}],
            }],
        }),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), Value::String((*v).into()));
    }
    doc.insert(name.into(), json!(value));
    Value::Object(doc)
}

/// Sum of the values of metric `name` whose dimensions include all of `dims`, from
/// a memory sink (for tests and the `wa dev` page).
pub fn total(lines: &[Value], name: &str, dims: &[(&str, &str)]) -> f64 {
    lines
        .iter()
        .filter(|l| l.get(name).is_some())
        .filter(|l| {
            dims.iter()
                .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .filter_map(|l| l.get(name).and_then(Value::as_f64))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_its_metric_and_dimensions() {
        let line = emf_line(
            "Failed",
            1.0,
            Unit::Count,
            &[
                ("Stage", "prod"),
                ("Tenant", "acme"),
                ("Class", "throttled"),
            ],
            42,
        );
        assert_eq!(line["_aws"]["Timestamp"], 42);
        let decl = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], NAMESPACE);
        assert_eq!(
            decl["Dimensions"],
            json!([["Stage", "Tenant", "Class"], ["Stage"]])
        );
        assert_eq!(
            decl["Metrics"],
            json!([{"Name": "Failed", "Unit": "Count"}])
        );
        assert_eq!(line["Tenant"], "acme");
        assert_eq!(line["Failed"], 1.0);
    }

    const TEMPLATE: &str = include_str!("../../infra/template.yaml");

    /// The metric contract at the top of the template: metric name -> detailed
    /// dimension set.
    fn contract() -> std::collections::BTreeMap<String, Vec<String>> {
        TEMPLATE
            .lines()
            .skip_while(|l| !l.starts_with("#   metric "))
            .skip(2)
            .take_while(|l| l.starts_with("#   "))
            .filter_map(|l| {
                let row = l.strip_prefix("#   ")?;
                // Continuation lines start with spaces; a row starts with the name.
                let name = row
                    .split_whitespace()
                    .next()
                    .filter(|_| !row.starts_with(' '))?;
                let dims_column = row.get(23..48)?.trim();
                let dims = dims_column.split(", ").map(str::to_owned).collect();
                Some((name.to_owned(), dims))
            })
            .collect()
    }

    #[test]
    fn every_dashboard_search_uses_the_contracts_dimension_set() {
        let contract = contract();
        assert!(contract.len() >= 19, "{contract:?}");
        assert_eq!(contract["Retried"], ["Stage", "Tenant", "Class"]);
        assert_eq!(contract["Failed"], ["Stage", "Tenant", "Class"]);
        let mut searched = 0;
        for part in TEMPLATE.split("SEARCH('{WaPipeline,").skip(1) {
            let (schema, rest) = part.split_once('}').unwrap();
            let name = rest
                .split("MetricName=\\\"")
                .nth(1)
                .and_then(|r| r.split('\\').next())
                .unwrap();
            let dims: Vec<&str> = schema.split(',').collect();
            assert_eq!(
                contract
                    .get(name)
                    .map(|d| d.iter().map(String::as_str).collect::<Vec<_>>()),
                Some(dims),
                "the dashboard's SEARCH of {name} does not match the metric contract"
            );
            searched += 1;
        }
        assert!(searched >= 10, "{searched}");
    }

    #[test]
    fn memory_sink_totals_by_dimension() {
        let (m, lines) = Metrics::in_memory();
        m.count("Accepted", &[("Tenant", "a")]);
        m.count_n("Accepted", 2, &[("Tenant", "b")]);
        m.count_n("Accepted", 0, &[("Tenant", "b")]);
        m.millis("QueueToAcceptedMs", 250, &[("Tenant", "a")]);
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l["Stage"] == "test"));
        assert_eq!(total(&lines, "Accepted", &[]), 3.0);
        assert_eq!(total(&lines, "Accepted", &[("Tenant", "b")]), 2.0);
        assert_eq!(
            total(&lines, "QueueToAcceptedMs", &[("Tenant", "a")]),
            250.0
        );
    }
}
