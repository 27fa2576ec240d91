//! `wa sandbox` as a user runs it: the built binary on a free port, one send, the stats.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the child even when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn wa_sandbox_serves_a_send_and_reports_it_in_its_stats() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/sandbox.example.toml");
    let child = Command::new(env!("CARGO_BIN_EXE_wa"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--config", example])
        .args([
            "--app-secret",
            "smoke-secret",
            "--webhook-url",
            "http://127.0.0.1:9/unused",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let mut first_line = String::new();
    BufReader::new(running.0.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let base = first_line
        .trim()
        .strip_prefix("wa sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_owned();

    let client = reqwest::Client::new();
    let send = serde_json::json!({
        "messaging_product": "whatsapp", "to": "+14155550123", "type": "template",
        "biz_opaque_callback_data": "wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3",
        "template": {"name": "welcome_offer", "language": {"code": "en_US"}}
    });
    let response = client
        .post(format!("{base}/v25.0/106540352242922/messages"))
        .bearer_auth("sandbox-token")
        .json(&send)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["messages"][0]["message_status"], "accepted");

    let stats: serde_json::Value = client
        .get(format!("{base}/_sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["sends_accepted"], 1);
    assert_eq!(
        stats["accepted_per_message"]["wa1:acme:msg_01J9Z3Q4R5S6T7V8W9X0Y1Z2A3"],
        1
    );
}
