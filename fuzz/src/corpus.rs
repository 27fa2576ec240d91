//! Seed corpus, read at test time: every `events/**/*.json` of this repo, the golden
//! send requests of `shared/tests/golden/` (one per template shape) and every
//! `*.json` under `../shared/webhook-samples/` (public webhook fixtures of other
//! projects, never copied here; skipped when that directory is absent, as in CI).
//!
//! A file is a seed as it is, and so is the JSON inside it: an API Gateway `body`
//! (base64-decoded when it is base64), an SQS record `body`, a parked webhook body,
//! each envelope of a file that maps case names to envelopes. Object keys and short
//! strings become the mutation dictionary.

use base64::Engine;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Longest string kept in the dictionary.
const MAX_TOKEN_CHARS: usize = 80;

/// Keys that make an object worth a seed of its own.
const SEED_KEYS: &[&str] = &["object", "Records", "requestContext", "to", "template"];

/// One seed: its bytes and where they came from (for the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// File the seed was read from, with `#body` etc. for embedded JSON.
    pub origin: String,
    /// The raw bytes.
    pub bytes: Vec<u8>,
}

/// Every seed and the dictionary taken from them.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// All seeds, deduplicated.
    pub seeds: Vec<Seed>,
    /// Object keys and short string values seen in the seeds.
    pub dictionary: Vec<String>,
    /// Seed directories that were read.
    pub sources: Vec<PathBuf>,
    /// Seed directories that were missing (and skipped).
    pub missing: Vec<PathBuf>,
}

impl Corpus {
    /// The seeds of the repo's `events/` and `shared/tests/golden/`, and of the sibling
    /// `shared/webhook-samples/` (overridden by `WA_FUZZ_SAMPLES_DIR`).
    pub fn load() -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let samples = std::env::var_os("WA_FUZZ_SAMPLES_DIR").map_or_else(
            || repo.join("..").join("shared").join("webhook-samples"),
            PathBuf::from,
        );
        let golden = repo.join("shared").join("tests").join("golden");
        Self::from_dirs(&[repo.join("events"), golden, samples])
    }

    /// The seeds of the `*.json` files under `dirs` (recursively); a missing directory
    /// is listed in [`missing`](Self::missing), not an error.
    pub fn from_dirs(dirs: &[PathBuf]) -> Self {
        let mut corpus = Corpus::default();
        let mut seen = BTreeSet::new();
        let mut dictionary = BTreeSet::new();
        for dir in dirs {
            if !dir.is_dir() {
                corpus.missing.push(dir.clone());
                continue;
            }
            corpus.sources.push(dir.clone());
            let mut files = Vec::new();
            json_files(dir, &mut files);
            files.sort();
            for file in files {
                let Ok(bytes) = std::fs::read(&file) else {
                    continue;
                };
                let origin = file.display().to_string();
                let mut adder = Adder {
                    seen: &mut seen,
                    seeds: &mut corpus.seeds,
                    dictionary: &mut dictionary,
                };
                adder.add(origin, bytes, 0);
            }
        }
        corpus.dictionary = dictionary.into_iter().collect();
        corpus
    }

    /// The seeds whose top-level JSON object satisfies `keep`.
    pub fn select(&self, keep: impl Fn(&serde_json::Map<String, Value>) -> bool) -> Vec<Vec<u8>> {
        self.seeds
            .iter()
            .filter(|s| match serde_json::from_slice::<Value>(&s.bytes) {
                Ok(Value::Object(map)) => keep(&map),
                _ => false,
            })
            .map(|s| s.bytes.clone())
            .collect()
    }

    /// Every seed's bytes.
    pub fn all(&self) -> Vec<Vec<u8>> {
        self.seeds.iter().map(|s| s.bytes.clone()).collect()
    }

    /// Every string value found under `key` anywhere in the seeds.
    pub fn strings_under(&self, key: &str) -> Vec<String> {
        let mut out = BTreeSet::new();
        for seed in &self.seeds {
            if let Ok(value) = serde_json::from_slice::<Value>(&seed.bytes) {
                collect_under(&value, key, &mut out);
            }
        }
        out.into_iter().collect()
    }
}

struct Adder<'a> {
    seen: &'a mut BTreeSet<Vec<u8>>,
    seeds: &'a mut Vec<Seed>,
    dictionary: &'a mut BTreeSet<String>,
}

impl Adder<'_> {
    fn add(&mut self, origin: String, bytes: Vec<u8>, depth: usize) {
        if depth > 4 || !self.seen.insert(bytes.clone()) {
            return;
        }
        let value = serde_json::from_slice::<Value>(&bytes).ok();
        self.seeds.push(Seed {
            origin: origin.clone(),
            bytes,
        });
        if let Some(value) = value {
            self.walk(&origin, &value, depth, true);
        }
    }

    fn walk(&mut self, origin: &str, value: &Value, depth: usize, top: bool) {
        match value {
            Value::Object(map) => {
                if !top && SEED_KEYS.iter().any(|k| map.contains_key(*k)) {
                    let bytes = serde_json::to_vec(value).unwrap_or_default();
                    self.add(format!("{origin}#object"), bytes, depth + 1);
                }
                for (key, child) in map {
                    self.token(key);
                    self.walk(origin, child, depth, false);
                }
            }
            Value::Array(items) => {
                for child in items {
                    self.walk(origin, child, depth, false);
                }
            }
            Value::String(s) => {
                self.token(s);
                let trimmed = s.trim_start();
                if trimmed.starts_with('{') || trimmed.starts_with('[') {
                    self.add(format!("{origin}#json"), s.as_bytes().to_vec(), depth + 1);
                } else if s.len() >= 16
                    && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(s)
                    && decoded.first().is_some_and(|b| *b == b'{' || *b == b'[')
                {
                    self.add(format!("{origin}#base64"), decoded, depth + 1);
                }
            }
            Value::Number(n) => self.token(&n.to_string()),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn token(&mut self, s: &str) {
        if !s.is_empty() && s.chars().count() <= MAX_TOKEN_CHARS {
            self.dictionary.insert(s.to_owned());
        }
    }
}

fn collect_under(value: &Value, key: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, child) in map {
                if k == key
                    && let Value::String(s) = child
                {
                    out.insert(s.clone());
                }
                collect_under(child, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|c| collect_under(c, key, out)),
        Value::String(s) if s.trim_start().starts_with('{') => {
            if let Ok(inner) = serde_json::from_str::<Value>(s) {
                collect_under(&inner, key, out);
            }
        }
        _ => {}
    }
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}
