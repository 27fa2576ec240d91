//! The baseline of `wa load --echo`: an HTTP server in the load generator's own
//! process that answers `POST /v1/messages` at once, with no pipeline behind it. The
//! same load against it measures what the machine, its loopback and the generator
//! cost alone, so a run's figures against `wa dev` can be read as a ratio to it.

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The echo server on 127.0.0.1, serving until dropped.
pub struct EchoApi {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EchoApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EchoApi {
    /// Bind a free port and serve.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the echo server")?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new()
            .route("/v1/messages", post(accept))
            .with_state(Arc::new(AtomicU64::new(0)));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, task })
    }
}

/// A 202 with a fresh id, like intake's answer to a new message; the body is read
/// (as intake must) and not looked at.
async fn accept(
    State(next): State<Arc<AtomicU64>>,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let n = next.fetch_add(1, Ordering::Relaxed);
    let answer = json!({"id": format!("msg_echo{n:020}"), "status": "queued", "bytes": body.len()});
    (StatusCode::ACCEPTED, axum::Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_send_gets_a_202_with_an_id_of_its_own() {
        let echo = EchoApi::start().await.unwrap();
        let client = reqwest::Client::new();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let answer = client
                .post(format!("{}/v1/messages", echo.url))
                .json(&json!({"to": "+14155550100", "text": {"body": "hi"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 202);
            let body: Value = answer.json().await.unwrap();
            ids.push(body["id"].as_str().unwrap().to_owned());
        }
        assert_ne!(ids[0], ids[1]);
    }
}
