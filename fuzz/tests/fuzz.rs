//! One test per fuzz target, each fuzzing for `WA_FUZZ_SECONDS` (see docs/fuzzing.md).
//! A test fails when any input made its target panic; the input is saved under
//! `target/fuzz-crashes/<target>/`.

use wa_fuzz::corpus::Corpus;
use wa_fuzz::engine::{Config, Inputs, Target, fuzz};
use wa_fuzz::targets;

fn run(name: &str, target: Target, pick: impl Fn(&Corpus) -> Vec<Vec<u8>>) {
    let corpus = Corpus::load();
    for dir in &corpus.missing {
        println!("seed directory {} is missing: skipped", dir.display());
    }
    let seeds = pick(&corpus);
    assert!(!seeds.is_empty(), "no seeds for {name}: is events/ there?");
    let inputs = Inputs {
        seeds,
        others: corpus.all(),
        dictionary: corpus.dictionary.clone(),
    };
    let report = fuzz(name, target, &inputs, &Config::from_env());
    assert!(
        report.crashes.is_empty(),
        "{name}: {} crashing inputs, saved as {:?}",
        report.crashes.len(),
        report.crashes
    );
}

#[test]
fn fuzz_intake_body() {
    run("intake_body", targets::intake_body, |corpus| {
        corpus.select(|o| {
            o.contains_key("to") && (o.contains_key("template") || o.contains_key("text"))
        })
    });
}

#[test]
fn fuzz_webhook_envelope() {
    run("webhook_envelope", targets::webhook_envelope, |corpus| {
        corpus.select(|o| o.contains_key("object") || o.contains_key("entry"))
    });
}

#[test]
fn fuzz_callback_data() {
    run(
        "callback_data",
        targets::callback_data,
        targets::callback_seeds,
    );
}

#[test]
fn fuzz_lambda_events() {
    run("lambda_events", targets::lambda_events, |corpus| {
        corpus.select(|o| {
            o.contains_key("Records")
                || o.contains_key("requestContext")
                || o.contains_key("routeKey")
        })
    });
}
