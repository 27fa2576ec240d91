//! `wa doctor` as an operator runs it: against a running `wa dev` (its embedded
//! sandbox serving the Graph reads), then against a stage on moto.

use crate::ops::support::{Backend, PHONE_NUMBER_ID, Run, WABA_ID, args, wa_env};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wa_sandbox::{PhoneNumberConfig, RunningSandbox, SandboxConfig, TemplatesSource};

const VERIFY: &str = "doctor-verify";
const OTHER_WABA: &str = "102290129340000";

/// A `wa.toml`: tenant `demo` on the sandbox's shared token, tenant `other` with a
/// token of its own (`other_token`) and its own WABA.
fn config(verify_token: &str, other_token: &str) -> String {
    format!(
        r#"
[webhook]
app_secret = "doctor-app-secret"
verify_token = "{verify_token}"

[[tenants]]
id = "demo"
api_keys = ["wa_doctor_demo"]
phone_number_id = "{PHONE_NUMBER_ID}"
waba_id = "{WABA_ID}"

[[tenants]]
id = "other"
api_keys = ["wa_doctor_other"]
phone_number_id = "106540352240000"
waba_id = "{OTHER_WABA}"
token = "{other_token}"
"#
    )
}

/// A running `wa dev` on free ports; killed when dropped.
struct Dev {
    url: String,
    sandbox: String,
    data: PathBuf,
    child: Child,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("doctor")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Dev {
    fn start(dir: &Path, config: &str) -> Self {
        let path = dir.join("wa.toml");
        std::fs::write(&path, config).unwrap();
        let data = dir.join("dev.sqlite");
        let log = std::fs::File::create(dir.join("wa-dev.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wa"))
            .arg("dev")
            .args(["--listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0"])
            .arg("--data")
            .arg(&data)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .env_remove("WA_GRAPH_BASE_URL")
            .env_remove("WA_APP_SECRET")
            .env_remove("WA_VERIFY_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut url, mut sandbox) = (None, None);
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("wa dev listening on ") {
                url = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("sandbox listening on ") {
                sandbox = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let (Some(url), Some(sandbox)) = (url, sandbox) else {
            let log = std::fs::read_to_string(dir.join("wa-dev.log")).unwrap_or_default();
            panic!("wa dev did not start; its log:\n{log}");
        };
        Self {
            url,
            sandbox,
            data,
            child,
        }
    }

    /// `wa doctor` on this wa dev, with the configuration `config` (written next to it).
    fn doctor(&self, dir: &Path, config: &str) -> Run {
        let path = dir.join("doctor.toml");
        std::fs::write(&path, config).unwrap();
        wa_env(
            &args(&[
                "doctor",
                "--dev-config",
                &path.display().to_string(),
                "--data",
                &self.data.display().to_string(),
                "--webhook-url",
                &format!("{}/webhook", self.url),
                "--graph-base-url",
                &self.sandbox,
            ]),
            &[],
        )
    }
}

/// The line of check `name`.
fn line<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no line for {name:?} in:\n{stdout}"))
}

const DEV_CHECKS: &[&str] = &[
    "configuration",
    "store",
    "webhook handshake",
    "app subscribed (WABA 102290129340398)",
    "app subscribed (WABA 102290129340000)",
    "token (tenant demo)",
    "templates (tenant demo)",
    "token (tenant other)",
    "templates (tenant other)",
];

#[test]
fn a_good_wa_dev_setup_passes_every_check() {
    let dir = test_dir("good");
    let dev = Dev::start(&dir, &config(VERIFY, "other-token"));
    let run = dev.doctor(&dir, &config(VERIFY, "other-token"));
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    for name in DEV_CHECKS {
        assert!(
            line(&run.stdout, name).starts_with("PASS  "),
            "{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.ends_with("9 passed, 0 failed, 0 skipped\n"),
        "{}",
        run.stdout
    );
    assert!(
        line(&run.stdout, "token (tenant demo)").contains("quality GREEN"),
        "{}",
        run.stdout
    );
    // No token is ever printed.
    assert!(!run.stdout.contains("other-token"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("wa-dev-sandbox-token"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_invalid_token_fails_its_check_with_the_fix() {
    let dir = test_dir("bad-token");
    let dev = Dev::start(&dir, &config(VERIFY, "other-token"));
    let run = dev.doctor(&dir, &config(VERIFY, "a-revoked-token"));
    assert!(!run.success, "{}", run.stdout);
    let token = line(&run.stdout, "token (tenant other)");
    assert!(token.starts_with("FAIL  "), "{}", run.stdout);
    assert!(token.contains("error 190"), "{token}");
    assert!(
        token.contains("fix: give tenant other a valid Graph token"),
        "{token}"
    );
    assert!(!token.contains("a-revoked-token"), "{token}");
    // The other tenant and the rest are unaffected.
    assert!(line(&run.stdout, "token (tenant demo)").starts_with("PASS  "));
    assert!(line(&run.stdout, "webhook handshake").starts_with("PASS  "));
    assert!(
        line(&run.stdout, "app subscribed (WABA 102290129340000)").starts_with("FAIL  "),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("check(s) failed"), "{}", run.stderr);
}

#[test]
fn a_wrong_verify_token_fails_the_handshake() {
    let dir = test_dir("verify-token");
    let dev = Dev::start(&dir, &config(VERIFY, "other-token"));
    let run = dev.doctor(&dir, &config("not-the-verify-token", "other-token"));
    assert!(!run.success, "{}", run.stdout);
    let handshake = line(&run.stdout, "webhook handshake");
    assert!(handshake.starts_with("FAIL  "), "{}", run.stdout);
    assert!(
        handshake.contains("refused the verify token (HTTP 403)"),
        "{handshake}"
    );
    assert!(handshake.contains("fix: "), "{handshake}");
    assert!(!handshake.contains("not-the-verify-token"), "{handshake}");
    assert!(
        run.stdout.contains("8 passed, 1 failed, 0 skipped"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_invalid_configuration_fails_first_and_the_rest_is_skipped() {
    let dir = test_dir("bad-config");
    let path = dir.join("wa.toml");
    std::fs::write(&path, config(VERIFY, "t").replace("[webhook]", "[webhok]")).unwrap();
    let run = wa_env(
        &args(&["doctor", "--dev-config", &path.display().to_string()]),
        &[],
    );
    assert!(!run.success, "{}", run.stdout);
    let configuration = line(&run.stdout, "configuration");
    assert!(configuration.starts_with("FAIL  "), "{}", run.stdout);
    assert!(configuration.contains("webhok"), "{configuration}");
    assert!(
        configuration.contains("fix: correct the file"),
        "{configuration}"
    );
    assert!(
        line(&run.stdout, "store").starts_with("SKIP  "),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_template_fails_the_templates_check() {
    let dir = test_dir("paused");
    let text = config(VERIFY, "other-token");
    let dev = Dev::start(&dir, &text);
    let answer = reqwest::Client::new()
        .post(format!("{}/_sandbox/template_status", dev.sandbox))
        .json(&json!({"waba_id": WABA_ID, "name": "order_shipped", "language": "en_US", "event": "PAUSED"}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    // The sandbox pauses it at once; its webhook updates wa dev's catalog a moment later.
    let started = Instant::now();
    loop {
        let run = dev.doctor(&dir, &text);
        let templates = line(&run.stdout, "templates (tenant demo)").to_owned();
        let stored =
            templates.contains("order_shipped/en_US PAUSED") && !templates.contains("not synced");
        if stored {
            assert!(!run.success);
            assert!(templates.starts_with("FAIL  "), "{templates}");
            assert!(
                templates.contains("fix: sends of a paused template fail"),
                "{templates}"
            );
            assert!(line(&run.stdout, "templates (tenant other)").starts_with("PASS  "));
            break;
        }
        assert!(templates.starts_with("FAIL  "), "{}", run.stdout);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the pause never reached wa dev's catalog:\n{}",
            run.stdout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const SANDBOX_TOKEN: &str = "doctor-sandbox-token";

/// The sandbox with the fixture catalog's approved templates (it has a paused one).
async fn sandbox() -> RunningSandbox {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tests/fixtures/templates/catalog.json"
    ))
    .unwrap();
    let catalog: serde_json::Value = serde_json::from_str(&text).unwrap();
    let approved: Vec<serde_json::Value> = catalog["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "APPROVED")
        .cloned()
        .collect();
    assert!(!approved.is_empty());
    RunningSandbox::start(SandboxConfig {
        phone_numbers: vec![PhoneNumberConfig {
            id: PHONE_NUMBER_ID.into(),
            display_phone_number: "15550783881".into(),
            waba_id: WABA_ID.into(),
            access_token: SANDBOX_TOKEN.into(),
            throughput_mps: None,
        }],
        templates: TemplatesSource::Inline(serde_json::Value::Array(approved)),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_on_moto_passes_then_a_missing_queue_fails() {
    let Some(backend) = Backend::moto().await else {
        return;
    };
    let stack = backend.moto.as_ref().unwrap();
    let sandbox = sandbox().await;
    let env = [("WA_GRAPH_TOKEN", SANDBOX_TOKEN)];
    backend.add_tenant("acme", &env);
    let base = sandbox.base_url();
    wa_env(
        &backend.cmd(&[
            "templates",
            "sync",
            "--tenant",
            "acme",
            "--graph-base-url",
            &base,
        ]),
        &[],
    )
    .ok();
    let doctor = backend.cmd(&["doctor", "--graph-base-url", &base]);
    // moto puts a new alarm in ALARM ("Unchecked: Initial alarm creation"); AWS would
    // start it in INSUFFICIENT_DATA. Settle it as an alarm with nothing to report.
    let alarm = format!("{}acme-dlq-depth", stack.queue_prefix);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk);
    cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("test: the DLQ is empty")
        .send()
        .await
        .unwrap();

    let run = wa_env(&doctor, &[]);
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    for name in [
        "configuration",
        "store",
        "app subscribed (WABA 102290129340398)",
        "token (tenant acme)",
        "templates (tenant acme)",
        "queues (tenant acme)",
        "event source mapping (tenant acme)",
        "alarms",
    ] {
        assert!(
            line(&run.stdout, name).starts_with("PASS  "),
            "{name}:\n{}",
            run.stdout
        );
    }
    // No WebhookUrl output configured: said, not failed.
    assert!(line(&run.stdout, "webhook handshake").starts_with("SKIP  "));

    // An alarm fires: the check names it.
    cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("test: a dead letter")
        .send()
        .await
        .unwrap();
    let run = wa_env(&doctor, &[]);
    assert!(!run.success, "{}", run.stdout);
    let alarms = line(&run.stdout, "alarms");
    assert!(alarms.starts_with("FAIL  "), "{}", run.stdout);
    assert!(
        alarms.contains(&format!("in ALARM: {alarm} (test: a dead letter)")),
        "{alarms}"
    );

    // The tenant's queue is deleted behind our back.
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{}acme", stack.queue_prefix))
        .send()
        .await
        .unwrap();
    sqs.delete_queue()
        .queue_url(url.queue_url().unwrap())
        .send()
        .await
        .unwrap();
    let run = wa_env(&doctor, &[]);
    assert!(!run.success, "{}", run.stdout);
    let queues = line(&run.stdout, "queues (tenant acme)");
    assert!(queues.starts_with("FAIL  "), "{}", run.stdout);
    assert!(
        queues.contains(&format!("missing: {}acme", stack.queue_prefix)),
        "{queues}"
    );
    assert!(queues.contains("fix: wa tenants add acme"), "{queues}");
    assert!(line(&run.stdout, "event source mapping (tenant acme)").starts_with("FAIL  "));
    assert!(line(&run.stdout, "store").starts_with("PASS  "));
    sandbox.stop().await.unwrap();
}
