//! The fuzzing loop: run every seed, then mutate inputs of the working corpus until
//! the time is up. A panic is a crash: its input is saved under
//! `target/fuzz-crashes/<target>/` and the run fails. An input whose outcome
//! fingerprint is new joins the working corpus (the coverage-free stand-in for
//! coverage feedback).
//!
//! Settings (environment): `WA_FUZZ_SECONDS` per target (default 20 under `CI=true`,
//! 5 otherwise), `WA_FUZZ_SEED` (default: from the clock; printed), `WA_FUZZ_REPLAY`
//! (a crash file or a directory of them: run only those, without catching panics),
//! `WA_FUZZ_CRASH_DIR` (default `<target dir>/fuzz-crashes`).

use crate::mutate::Mutator;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A fuzz target: never panics on any input; returns a fingerprint of what it made of
/// the input (equal outcomes, equal fingerprints).
pub type Target = fn(&[u8]) -> u64;

/// Working corpus cap: seeds plus inputs with new outcomes.
const MAX_CORPUS: usize = 4096;

/// Crashes saved per target before the run stops early.
const MAX_CRASHES: usize = 5;

/// How one run is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Time spent on one target (seeds included).
    pub duration: Duration,
    /// RNG seed of the run (each target mixes in its name).
    pub seed: u64,
    /// Run only these saved inputs, panics propagating (for reproduction).
    pub replay: Option<PathBuf>,
    /// Where crashing inputs are written (a subdirectory per target).
    pub crash_dir: PathBuf,
}

impl Config {
    /// The settings from the environment (see the module docs).
    pub fn from_env() -> Self {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let seconds = std::env::var("WA_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(if ci { 20.0 } else { 5.0 });
        let seed = std::env::var("WA_FUZZ_SEED")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
        Self {
            duration: Duration::from_secs_f64(seconds),
            seed,
            replay: std::env::var_os("WA_FUZZ_REPLAY").map(PathBuf::from),
            crash_dir: std::env::var_os("WA_FUZZ_CRASH_DIR")
                .map_or_else(default_crash_dir, PathBuf::from),
        }
    }
}

/// What one target's run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target's name.
    pub target: String,
    /// Inputs run (seeds included).
    pub executions: u64,
    /// Saved crashing inputs.
    pub crashes: Vec<PathBuf>,
    /// Seeds the run started from.
    pub seeds: usize,
    /// Working corpus at the end.
    pub corpus: usize,
    /// Distinct outcome fingerprints seen.
    pub outcomes: usize,
    /// The RNG seed (to reproduce the sequence of inputs).
    pub seed: u64,
    /// Time taken.
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "fuzz {}: {} executions in {:.1} s ({:.0}/s), {} crashes; {} seeds, corpus {}, \
             {} outcomes, seed {}",
            self.target,
            self.executions,
            secs,
            self.executions as f64 / secs.max(1e-9),
            self.crashes.len(),
            self.seeds,
            self.corpus,
            self.outcomes,
            self.seed,
        )
    }
}

/// Inputs for one target: seeds to start from, extra inputs to splice from, and the
/// dictionary.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Seeds of this target's input shape.
    pub seeds: Vec<Vec<u8>>,
    /// Every other seed, spliced in.
    pub others: Vec<Vec<u8>>,
    /// Keys and short strings of the seeds.
    pub dictionary: Vec<String>,
}

/// Fuzz `target` as `config` says, then print and return the report.
pub fn fuzz(name: &str, target: Target, inputs: &Inputs, config: &Config) -> Report {
    let report = match &config.replay {
        Some(path) => replay(name, target, path),
        None => run(name, target, inputs, config),
    };
    println!("{report}");
    for crash in &report.crashes {
        println!(
            "  crash saved: {} (reproduce: WA_FUZZ_REPLAY={} cargo nextest run -p wa-fuzz {name})",
            crash.display(),
            crash.display()
        );
    }
    report
}

struct State<'a> {
    name: &'a str,
    target: Target,
    crash_dir: &'a Path,
    corpus: Vec<Vec<u8>>,
    outcomes: HashSet<u64>,
    crashes: Vec<PathBuf>,
    executions: u64,
}

impl State<'_> {
    fn execute(&mut self, input: Vec<u8>) {
        self.executions += 1;
        let target = self.target;
        match catch_unwind(AssertUnwindSafe(|| target(&input))) {
            Ok(outcome) => {
                if self.outcomes.insert(outcome) && self.corpus.len() < MAX_CORPUS {
                    self.corpus.push(input);
                }
            }
            Err(_) => {
                let path = save_crash(self.crash_dir, self.name, &input);
                self.crashes.push(path);
            }
        }
    }
}

fn run(name: &str, target: Target, inputs: &Inputs, config: &Config) -> Report {
    let started = Instant::now();
    let deadline = started + config.duration;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ fingerprint(name));
    let mut splice = inputs.seeds.clone();
    splice.extend(inputs.others.iter().cloned());
    let mutator = Mutator {
        others: &splice,
        dictionary: &inputs.dictionary,
    };
    let mut state = State {
        name,
        target,
        crash_dir: &config.crash_dir,
        corpus: Vec::new(),
        outcomes: HashSet::new(),
        crashes: Vec::new(),
        executions: 0,
    };
    for seed in &inputs.seeds {
        state.execute(seed.clone());
    }
    // Seeds with an outcome already seen still start mutations.
    for seed in &inputs.seeds {
        if !state.corpus.contains(seed) && state.corpus.len() < MAX_CORPUS {
            state.corpus.push(seed.clone());
        }
    }
    if state.corpus.is_empty() {
        state.corpus.push(Vec::new());
    }
    let seeds = inputs.seeds.len();
    while Instant::now() < deadline && state.crashes.len() < MAX_CRASHES {
        // Favour the seeds half of the time: they are the realistic shapes.
        let base = if seeds > 0 && rng.random_bool(0.5) {
            &inputs.seeds[rng.random_range(0..seeds)]
        } else {
            // Of two corpus entries the shorter: big inputs (long strings, deep
            // nesting, repeated items) stay in play without slowing every round.
            let a = &state.corpus[rng.random_range(0..state.corpus.len())];
            let b = &state.corpus[rng.random_range(0..state.corpus.len())];
            if a.len() <= b.len() { a } else { b }
        };
        let input = mutator.mutate(&mut rng, base);
        state.execute(input);
    }
    Report {
        target: name.to_owned(),
        executions: state.executions,
        crashes: state.crashes,
        seeds,
        corpus: state.corpus.len(),
        outcomes: state.outcomes.len(),
        seed: config.seed,
        elapsed: started.elapsed(),
    }
}

/// Run saved inputs (one file, or every file of a directory) without catching panics.
fn replay(name: &str, target: Target, path: &Path) -> Report {
    let started = Instant::now();
    let mut files = Vec::new();
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut executions = 0;
    for file in &files {
        match std::fs::read(file) {
            Ok(input) => {
                println!("replaying {} through {name}", file.display());
                target(&input);
                executions += 1;
            }
            Err(e) => panic!("cannot read {}: {e}", file.display()),
        }
    }
    Report {
        target: name.to_owned(),
        executions,
        crashes: Vec::new(),
        seeds: files.len(),
        corpus: files.len(),
        outcomes: 0,
        seed: 0,
        elapsed: started.elapsed(),
    }
}

fn save_crash(dir: &Path, name: &str, input: &[u8]) -> PathBuf {
    let dir = dir.join(name);
    let path = dir.join(format!("crash-{:016x}", fingerprint(input)));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        eprintln!("could not save crash input to {}: {e}", path.display());
    }
    path
}

/// `<target dir>/fuzz-crashes`: the test binary lives in `<target dir>/<profile>/deps/`.
fn default_crash_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("fuzz-crashes")
}

/// A stable 64-bit hash (SipHash with fixed keys).
pub fn fingerprint<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &[u8] = br#"{"a":[1,"x"]}"#;

    /// Panics on anything but the seed, so every mutation is a crash.
    fn only_the_seed(data: &[u8]) -> u64 {
        assert_eq!(data, SEED, "not the seed");
        0
    }

    fn config(dir: &Path, replay: Option<PathBuf>) -> Config {
        Config {
            duration: Duration::from_secs(2),
            seed: 7,
            replay,
            crash_dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn a_panicking_input_is_saved_counted_and_replays_as_a_panic() {
        let dir = std::env::temp_dir().join(format!("wa-fuzz-engine-{}", std::process::id()));
        let inputs = Inputs {
            seeds: vec![SEED.to_vec()],
            ..Inputs::default()
        };
        let report = fuzz("only_the_seed", only_the_seed, &inputs, &config(&dir, None));
        assert_eq!(report.crashes.len(), MAX_CRASHES, "{report}");
        assert!(report.executions > MAX_CRASHES as u64);
        let saved = &report.crashes[0];
        assert!(saved.starts_with(dir.join("only_the_seed")), "{saved:?}");
        assert_ne!(std::fs::read(saved).unwrap(), SEED);

        let replayed = catch_unwind(|| {
            fuzz(
                "only_the_seed",
                only_the_seed,
                &inputs,
                &config(&dir, Some(saved.clone())),
            )
        });
        assert!(replayed.is_err(), "replaying a crash must panic again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_target_that_never_panics_runs_until_the_deadline() {
        let inputs = Inputs {
            seeds: vec![SEED.to_vec()],
            ..Inputs::default()
        };
        let dir = std::env::temp_dir();
        let mut config = config(&dir, None);
        config.duration = Duration::from_millis(300);
        let report = fuzz("never", fingerprint::<[u8]>, &inputs, &config);
        assert!(report.crashes.is_empty());
        assert!(report.elapsed >= config.duration);
        assert!(report.executions > 100, "{report}");
        assert!(report.corpus > 1, "new outcomes join the corpus: {report}");
    }
}
