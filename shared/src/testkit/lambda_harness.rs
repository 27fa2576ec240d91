//! A tiny Lambda Runtime API for tests: run a *built* function binary as Lambda
//! would, hand it events, read its answers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wa_shared::testkit::lambda_harness::{FunctionProcess, RuntimeApi};
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

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{TcpListener, TcpStream};
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

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_connection(stream, Arc::clone(&state)));
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

async fn read_request(reader: &mut AsyncBufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = value.parse().ok()?;
        } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await.ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).await.ok()?;
    }
    Some(Request { method, path, body })
}

async fn write_response(
    stream: &mut AsyncBufReader<TcpStream>,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let stream = stream.get_mut();
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

async fn serve_connection(stream: TcpStream, state: Arc<State>) {
    let mut conn = AsyncBufReader::new(stream);
    while let Some(request) = read_request(&mut conn).await {
        let result = route(&mut conn, &state, request).await;
        if result.is_err() {
            return;
        }
    }
}

async fn route(
    conn: &mut AsyncBufReader<TcpStream>,
    state: &State,
    request: Request,
) -> std::io::Result<()> {
    let path = request.path.as_str();
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    if request.method == "GET" && path == "/2018-06-01/runtime/invocation/next" {
        let pending = next_event(state).await;
        let headers = [
            ("lambda-runtime-aws-request-id", pending.request_id.clone()),
            (
                "lambda-runtime-deadline-ms",
                pending.deadline_ms.to_string(),
            ),
            (
                "lambda-runtime-invoked-function-arn",
                FUNCTION_ARN.to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
            ),
        ];
        lock(&state.in_flight).insert(pending.request_id, pending.reply);
        let event = serde_json::to_vec(&pending.event).unwrap_or_default();
        return write_response(conn, "200 OK", &headers, &event).await;
    }
    if request.method == "POST" && path == "/2018-06-01/runtime/init/error" {
        *lock(&state.init_error) = Some(body);
        state.init_failed.notify_waiters();
        return write_response(conn, "202 Accepted", &[], b"{}").await;
    }
    let completion = path
        .strip_prefix("/2018-06-01/runtime/invocation/")
        .and_then(|rest| rest.split_once('/'));
    if let (Some((id, kind)), "POST") = (completion, request.method.as_str()) {
        let invocation = match kind {
            "response" => Some(Invocation::Response(body)),
            "error" => Some(Invocation::Error(body)),
            _ => None,
        };
        let reply = lock(&state.in_flight).remove(id);
        if let (Some(invocation), Some(reply)) = (invocation, reply) {
            let _ = reply.send(invocation);
            return write_response(conn, "202 Accepted", &[], b"{}").await;
        }
    }
    write_response(conn, "404 Not Found", &[], b"{}").await
}

async fn next_event(state: &State) -> Pending {
    loop {
        let notified = state.new_event.notified();
        if let Some(p) = lock(&state.queue).pop_front() {
            return p;
        }
        notified.await;
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
mod tests {
    use super::*;
    use serde_json::json;

    /// Plays the runtime client over raw HTTP, as the function binary would.
    async fn client_round_trip(api: &RuntimeApi, answer_kind: &str) {
        let mut stream = AsyncBufReader::new(TcpStream::connect(api.addr).await.unwrap());
        stream
            .get_mut()
            .write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut status = String::new();
        stream.read_line(&mut status).await.unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let (mut id, mut len) = (String::new(), 0usize);
        loop {
            let mut h = String::new();
            stream.read_line(&mut h).await.unwrap();
            let h = h.trim_end().to_owned();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(": ").unwrap();
            match k {
                "lambda-runtime-aws-request-id" => id = v.to_owned(),
                "content-length" => len = v.parse().unwrap(),
                "lambda-runtime-deadline-ms" => assert!(v.parse::<u128>().unwrap() > now_ms()),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await.unwrap();
        let event: Value = serde_json::from_slice(&body).unwrap();
        // Answer with the event echoed, chunked, on the same keep-alive connection.
        let echo = serde_json::to_vec(&json!({"echo": event})).unwrap();
        let request = format!(
            "POST /2018-06-01/runtime/invocation/{id}/{answer_kind} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
            echo.len()
        );
        let s = stream.get_mut();
        s.write_all(request.as_bytes()).await.unwrap();
        s.write_all(&echo).await.unwrap();
        s.write_all(b"\r\n0\r\n\r\n").await.unwrap();
        let mut status = String::new();
        stream.read_line(&mut status).await.unwrap();
        assert!(status.starts_with("HTTP/1.1 202"), "{status}");
    }

    #[tokio::test]
    async fn an_invocation_is_served_to_next_and_completed_by_its_response() {
        let api = RuntimeApi::start().await.unwrap();
        let event = json!({"Records": [{"messageId": "m1"}]});
        let (answer, ()) = tokio::join!(
            api.invoke(event.clone(), Duration::from_secs(5)),
            client_round_trip(&api, "response")
        );
        assert_eq!(
            answer.unwrap(),
            Invocation::Response(json!({"echo": event}))
        );
    }

    #[tokio::test]
    async fn errors_and_init_errors_are_reported() {
        let api = RuntimeApi::start().await.unwrap();
        let (answer, ()) = tokio::join!(
            api.invoke(json!({"x": 1}), Duration::from_secs(5)),
            client_round_trip(&api, "error")
        );
        assert!(matches!(answer.unwrap(), Invocation::Error(_)));

        let mut s = TcpStream::connect(api.addr).await.unwrap();
        let body = br#"{"errorType":"Config","errorMessage":"WA_STAGE is required"}"#;
        let head = format!(
            "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut status = [0u8; 12];
        s.read_exact(&mut status).await.unwrap();
        let e = api
            .invoke(json!({}), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(e, HarnessError::InitFailed(v) if v["errorType"] == "Config"));
    }

    #[tokio::test]
    async fn an_unanswered_invocation_times_out() {
        let api = RuntimeApi::start().await.unwrap();
        let e = api
            .invoke(json!({}), Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(e, HarnessError::Timeout(_)));
        assert_eq!(
            api.lambda_env("f")
                .iter()
                .find(|(k, _)| k == "AWS_LAMBDA_RUNTIME_API")
                .map(|(_, v)| v.clone()),
            Some(api.address())
        );
    }
}
