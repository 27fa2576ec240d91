//! `wa send` and `wa status`, the built binary against a running `wa dev`.

use crate::e2e::support::*;
use std::process::Command;

fn wa(dev: &Dev, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wa"))
        .args(args)
        .args(["--url", &dev.url])
        .env_remove("WA_API_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `wa send` of the demo's order_shipped with idempotency key `cli-1`.
const SEND_ORDER: [&str; 13] = [
    "send",
    "--to",
    "+14155550123",
    "--template",
    "order_shipped",
    "--param",
    "Ana",
    "--param",
    "#1234",
    "--url-button",
    "0=ABC123",
    "--idempotency-key",
    "cli-1",
];

#[tokio::test]
async fn wa_send_and_wa_status_drive_a_running_wa_dev() {
    let dev = Dev::start(&test_dir("commands"), None);
    let wait = [SEND_ORDER.as_slice(), &["--wait-for", "read"]].concat();
    let (ok, out, err) = wa(&dev, &wait);
    assert!(ok, "{out}{err}");
    let id = out.split_whitespace().next().unwrap().to_owned();
    assert!(id.starts_with("msg_"), "{out}");
    assert!(out.contains("queued"), "{out}");
    assert!(out.contains("read_at"), "{out}");

    // The same key again: the stored message, not a second send.
    let (ok, out, _) = wa(&dev, &SEND_ORDER);
    assert!(ok);
    assert!(out.contains("replayed"), "{out}");

    let (ok, out, err) = wa(&dev, &["status", &id]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("{id}  read  to +14155550123")),
        "{out}"
    );
    let (ok, out, _) = wa(&dev, &["status", &id, "--json"]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["status"], "read");

    // A refused send exits non-zero and names every problem.
    let (ok, _, err) = wa(&dev, &["send", "--to", "12", "--template", "order_shipped"]);
    assert!(!ok);
    assert!(err.contains("422 validation_failed"), "{err}");
    assert!(err.contains("  to: "), "{err}");
    let (ok, _, err) = wa(&dev, &["status", "msg_unknown"]);
    assert!(!ok);
    assert!(err.contains("404"), "{err}");
    assert_eq!(dev.sandbox_stats().await["sends_accepted"], 1);
}

/// `wa tenants add` and `wa templates load` on the SQLite file of a running `wa dev`:
/// the new tenant is polled, gets a sandbox number, and its messages are sent.
#[tokio::test]
async fn a_tenant_added_to_a_running_wa_dev_is_served() {
    let dir = test_dir("commands_tenant_add");
    let dev = Dev::start(&dir, None);
    let data = dir.join("dev.sqlite");
    let data = data.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wa"))
        .args(["tenants", "add", "acme", "--data", data])
        .args([
            "--phone-number-id",
            "106540352241111",
            "--waba-id",
            "102290129341111",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("wa_") && !l.contains(' '))
        .unwrap_or_else(|| panic!("no API key printed: {stdout}"))
        .to_owned();
    let templates = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../local/src/demo/templates.json"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wa"))
        .args([
            "templates",
            "load",
            "--tenant",
            "acme",
            "--data",
            data,
            templates,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, _, body) = dev
        .post(&key, Some("acme-1"), &order_shipped("+14155550123"))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let message = dev
        .wait_until(&key, &id, std::time::Duration::from_secs(20), |m| {
            m["status"] == "read"
        })
        .await;
    assert!(message["wamid"].is_string());
    // The demo tenant cannot see it.
    let (status, _) = dev.get(DEMO_KEY, &id).await;
    assert_eq!(status, 404);
}

/// `wa load` sends through the API and reports figures from the messages' own
/// timestamps; a rerun with the same run id only replays (nothing sent twice).
#[tokio::test]
async fn wa_load_reports_throughput_and_latency_and_replays_on_a_rerun() {
    // 200 sends from 16 clients: what wa load reports, not demo's intake quota.
    let config = two_tenants_with(FLOOD_QUOTA, "", "");
    let dev = Dev::start(&test_dir("commands_load"), Some(&config));
    let args = [
        "load",
        "--messages",
        "200",
        "--concurrency",
        "16",
        "--until",
        "read",
        "--run-id",
        "e2e",
        "--settle",
        "60s",
    ];
    let (ok, out, err) = wa(&dev, &args);
    assert!(ok, "{out}{err}");
    assert!(out.contains("sent 200 requests"), "{out}");
    assert!(out.contains("answers        202: 200"), "{out}");
    assert!(out.contains("final states   read 200"), "{out}");
    assert!(out.contains("queued->read ms p50"), "{out}");
    for stage in [
        "queued->sending",
        "sending->accepted",
        "accepted->sent",
        "sent->delivered",
        "delivered->read",
    ] {
        assert!(out.contains(&format!("\n  {stage} ms")), "{out}");
    }
    let (ok, out, err) = wa(&dev, &args);
    assert!(ok, "{out}{err}");
    assert!(out.contains("answers        200: 200"), "{out}");
    assert_eq!(dev.sandbox_stats().await["sends_accepted"], 200);
}
