//! A tiny Lambda Runtime API for tests: run a *built* function binary as Lambda
//! would, hand it events, read its answers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wa_testkit::lambda_harness::{FunctionProcess, RuntimeApi};
//! let api = RuntimeApi::start().await?;
//! // In a function crate's integration test: env!("CARGO_BIN_EXE_intake").
//! let mut cmd = api.command("target/debug/intake", "dev-wa-intake");
//! cmd.env("WA_STAGE", "dev"); // plus the function's own configuration
//! let function = FunctionProcess::spawn(cmd)?;
//! let event = serde_json::json!({"version": "2.0"});
//! let answer = api.invoke(event, std::time::Duration::from_secs(10)).await?;
//! assert!(answer.is_response());
//! drop(function); // kills the process
//! # Ok(()) }
//! ```
//!
//! It serves the endpoints the runtime client uses:
//! - `GET /2018-06-01/runtime/invocation/next`: waits for an event queued by
//!   [`RuntimeApi::invoke`], then answers it with the headers
//!   `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//!   `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id`;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `.../{id}/error`:
//!   completes that invocation with [`Invocation::Response`] or [`Invocation::Error`];
//! - `POST /2018-06-01/runtime/init/error`: makes every pending and later
//!   [`RuntimeApi::invoke`] fail with [`HarnessError::InitFailed`].
//!
//! HTTP/1.1 only, keep-alive, `Content-Length` or chunked bodies: what the runtime
//! client sends, nothing more. Loopback only.

mod server;

use serde_json::Value;
use server::{accept_loop, now_ms};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// The ARN every invocation reports as the invoked function.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test";

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function posted a response (its JSON body).
    Response(Value),
    /// The function posted an error (`{"errorType", "errorMessage"}`).
    Error(Value),
}

impl Invocation {
    /// Whether the function answered with a response.
    pub fn is_response(&self) -> bool {
        matches!(self, Invocation::Response(_))
    }

    /// The response body; panics (a failed test) on an error.
    pub fn response(self) -> Value {
        match self {
            Invocation::Response(v) => v,
            Invocation::Error(e) => panic!("the function answered with an error: {e}"),
        }
    }
}

/// Why [`RuntimeApi::invoke`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The function reported an init error (its body).
    #[error("the function failed to start: {0}")]
    InitFailed(Value),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server could not bind or serve.
    #[error("runtime API server: {0}")]
    Io(#[from] std::io::Error),
}

struct Pending {
    request_id: String,
    event: Value,
    deadline_ms: u128,
    reply: oneshot::Sender<Invocation>,
}

#[derive(Default)]
struct State {
    queue: Mutex<VecDeque<Pending>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
    init_error: Mutex<Option<Value>>,
    new_event: Notify,
    init_failed: Notify,
    next_id: Mutex<u64>,
    /// When the function first asked for an event: the end of its init.
    first_poll: Mutex<Option<std::time::Instant>>,
    polled: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Runtime API server. Stops when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Serve on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let server = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The environment Lambda gives a function, pointing at this server.
    pub fn lambda_env(&self, function_name: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A command running `binary` with [`Self::lambda_env`] set; add the function's
    /// own configuration, then [`FunctionProcess::spawn`] it.
    pub fn command(&self, binary: impl AsRef<std::ffi::OsStr>, function_name: &str) -> Command {
        let mut cmd = Command::new(binary);
        cmd.envs(self.lambda_env(function_name));
        cmd
    }

    /// Wait until the function first asks for an event (its init is over) and
    /// return when that was; `None` after `timeout`.
    pub async fn wait_until_polled(&self, timeout: Duration) -> Option<std::time::Instant> {
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let polled = self.state.polled.notified();
                if let Some(at) = *lock(&self.state.first_poll) {
                    return at;
                }
                polled.await;
            }
        });
        waited.await.ok()
    }

    /// Queue `event` for the next `/next` call and wait for its answer.
    pub async fn invoke(
        &self,
        event: Value,
        timeout: Duration,
    ) -> Result<Invocation, HarnessError> {
        if let Some(e) = lock(&self.state.init_error).clone() {
            return Err(HarnessError::InitFailed(e));
        }
        let (reply, answer) = oneshot::channel();
        let request_id = {
            let mut n = lock(&self.state.next_id);
            *n += 1;
            format!("req-{:08}", *n)
        };
        let deadline_ms = now_ms() + timeout.as_millis();
        lock(&self.state.queue).push_back(Pending {
            request_id,
            event,
            deadline_ms,
            reply,
        });
        self.state.new_event.notify_waiters();
        let failed = self.state.init_failed.notified();
        tokio::select! {
            answer = tokio::time::timeout(timeout, answer) => match answer {
                Ok(Ok(invocation)) => Ok(invocation),
                _ => Err(HarnessError::Timeout(timeout)),
            },
            () = failed => Err(HarnessError::InitFailed(
                lock(&self.state.init_error).clone().unwrap_or(Value::Null),
            )),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A running function binary; killed when dropped. Its stdout (logs and EMF lines)
/// is collected line by line.
pub struct FunctionProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl FunctionProcess {
    /// Spawn `command` with stdout captured (stderr is inherited, so a crash shows
    /// in the test's output).
    pub fn spawn(mut command: Command) -> std::io::Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    lock(&sink).push(line);
                }
            });
        }
        Ok(Self { child, lines })
    }

    /// The stdout lines so far.
    pub fn output(&self) -> Vec<String> {
        lock(&self.lines).clone()
    }

    /// The stdout lines that parse as JSON (logs in JSON format, EMF metric lines).
    pub fn json_lines(&self) -> Vec<Value> {
        self.output()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Its process id (to read `/proc/<pid>/` while it runs: memory, CPU time).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests;
