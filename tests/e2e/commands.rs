//! `wa send` and `wa status`, the built binary against a running `wa dev`.

use crate::support::*;
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

#[tokio::test]
async fn wa_send_and_wa_status_drive_a_running_wa_dev() {
    let dev = Dev::start(&test_dir("commands"), None);
    let (ok, out, err) = wa(
        &dev,
        &[
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
            "--wait-for",
            "read",
        ],
    );
    assert!(ok, "{out}{err}");
    let id = out.split_whitespace().next().unwrap().to_owned();
    assert!(id.starts_with("msg_"), "{out}");
    assert!(out.contains("queued"), "{out}");
    assert!(out.contains("read_at"), "{out}");

    // The same key again: the stored message, not a second send.
    let (ok, out, _) = wa(
        &dev,
        &[
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
        ],
    );
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
