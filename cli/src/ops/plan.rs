//! A change plan: what an idempotent command found and what it will change.
//!
//! Commands first look at every resource (read-only calls), print one line per
//! resource, and then, unless `--dry-run`, make exactly the listed changes. A run
//! on resources that are already as wanted lists only `ok` lines and writes nothing.

use std::io::Write;

/// What a step does to its resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The resource does not exist: create it.
    Create,
    /// The resource exists with other settings: these (`what: have -> want`).
    Update(Vec<String>),
    /// Already as wanted: nothing to do.
    Keep,
}

/// One resource of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Kind of resource (`queue`, `mapping`, `profile`, ...).
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// What will be done.
    pub change: Change,
    /// The wanted settings, shown on creation.
    pub detail: String,
}

impl Step {
    /// A step on `kind` `name`.
    pub fn new(kind: &'static str, name: impl Into<String>, change: Change) -> Self {
        Self {
            kind,
            name: name.into(),
            change,
            detail: String::new(),
        }
    }

    /// The same step with the settings shown on creation.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Whether the step changes anything.
    pub fn changes(&self) -> bool {
        self.change != Change::Keep
    }

    /// One line: verb, kind, name and what changes.
    pub fn line(&self) -> String {
        let (verb, what) = match &self.change {
            Change::Create => ("create", self.detail.clone()),
            Change::Update(diffs) => ("update", diffs.join("; ")),
            Change::Keep => ("ok", String::new()),
        };
        let line = format!("  {verb:<7} {:<8} {}", self.kind, self.name);
        if what.is_empty() {
            line
        } else {
            format!("{line}  ({what})")
        }
    }
}

/// `"key: have -> want"` when they differ.
pub fn diff(key: &str, have: impl ToString, want: impl ToString) -> Option<String> {
    let (have, want) = (have.to_string(), want.to_string());
    (have != want).then(|| format!("{key}: {have} -> {want}"))
}

/// Print the plan's lines.
pub fn write_steps(out: &mut impl Write, steps: &[Step]) -> std::io::Result<()> {
    for step in steps {
        writeln!(out, "{}", step.line())?;
    }
    Ok(())
}

/// How many steps change something.
pub fn count_changes(steps: &[Step]) -> usize {
    steps.iter().filter(|s| s.changes()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_the_verb_kind_name_and_changes() {
        let create = Step::new("queue", "dev-wa-send-acme", Change::Create)
            .with_detail("VisibilityTimeout=180");
        assert_eq!(
            create.line(),
            "  create  queue    dev-wa-send-acme  (VisibilityTimeout=180)"
        );
        let update = Step::new(
            "mapping",
            "m",
            Change::Update(vec![diff("MaximumConcurrency", 5, 7).unwrap()]),
        );
        assert_eq!(
            update.line(),
            "  update  mapping  m  (MaximumConcurrency: 5 -> 7)"
        );
        let keep = Step::new("profile", "acme", Change::Keep).with_detail("ignored");
        assert_eq!(keep.line(), "  ok      profile  acme");
        assert_eq!(count_changes(&[create, update, keep]), 2);
        assert_eq!(diff("x", 1, 1), None);
    }
}
