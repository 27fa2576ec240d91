//! `wa soak` end to end: the built `wa` starts its own `wa sandbox` and `wa dev`,
//! drives them under the `default` fault profile, kills `wa dev` once under load, and
//! must report (and exit 0 on) no lost message, no duplicate of an `on_ambiguous =
//! "fail"` tenant, no state regression, an event for every transition delivered to
//! the tenants' endpoints, and no secret in the captured logs.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The size: 5,000 requests with `default` faults and one kill, paced at what a
/// debug build on two cores sustains (about two minutes).
#[test]
fn soak_of_5000_with_default_faults_and_a_kill_keeps_every_invariant() {
    soak(
        "soak_5000",
        &["--messages", "5000", "--rate", "60", "--kill-every", "30s"],
        4000,
    );
}

/// A quicker, unpaced one (about 45 s): `cargo nextest run -p wa-cli --run-ignored all soak`.
#[test]
#[ignore = "the 5,000-message soak covers it in make test"]
fn soak_with_default_faults_and_a_kill_keeps_every_invariant() {
    soak("soak", &["--messages", "800", "--kill-every", "4s"], 500);
}

fn soak(name: &str, args: &[&str], min_accepted: u64) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_wa"))
        .arg("soak")
        .args(args)
        .args([
            "--faults",
            "default",
            "--max-kills",
            "1",
            "--settle",
            "120s",
            "--seed",
            "7",
            "--json",
            "--dir",
        ])
        .arg(&dir)
        .env_remove("WA_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not a JSON report ({e}):\n{stdout}\n{stderr}"));
    println!(
        "{}",
        serde_json::to_string_pretty(&report["invariants"]).unwrap()
    );
    assert!(
        out.status.success(),
        "exit {}: {stderr}\n{stdout}",
        out.status
    );
    assert_eq!(report["passed"], true);
    assert_eq!(report["kills"], 1, "killed once under load");
    let accepted = report["accepted"].as_u64().unwrap();
    assert!(accepted > min_accepted, "{accepted} accepted");
    assert_eq!(report["found"].as_u64(), Some(accepted), "lost none");
    assert_eq!(report["lost"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["duplicates_fail"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["regressions"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["not_terminal"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["wrong_answers"].as_array().map(Vec::len), Some(0));
    assert!(
        report["invalid_sent"].as_u64().unwrap() > 0,
        "invalid requests were sent"
    );
    assert_eq!(report["invalid_right"], report["invalid_sent"]);
    assert!(report["replays_sent"].as_u64().unwrap() > 0);
    // The faults did happen: the sandbox refused some sends and duplicated webhooks.
    assert!(report["sandbox"]["injected_errors"].as_u64().unwrap() > 0);
    assert!(
        report["sandbox"]["webhooks"]["statuses_duplicated"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Every transition has its event, and every event reached the tenant's endpoint.
    assert!(
        report["events_logged"].as_u64().unwrap() > accepted,
        "events logged"
    );
    assert_eq!(report["events_checked"], true);
    assert_eq!(report["events_missing"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        report["events_undelivered"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(report["events_bad_signatures"], 0);
    // The run's captured logs (wa dev's and the sandbox's, at `info`) hold no token,
    // app secret, endpoint secret or API key.
    assert_eq!(report["logs_checked"], true);
    assert!(
        report["log_lines"].as_u64().unwrap() > 0,
        "logs were captured"
    );
    assert_eq!(
        report["secrets_in_logs"].as_array().map(Vec::len),
        Some(0),
        "{}",
        report["secrets_in_logs"]
    );
    for tenant in report["tenants"].as_array().unwrap() {
        assert!(tenant["intake_ms"]["n"].as_u64().unwrap() > 0, "{tenant}");
    }
}
