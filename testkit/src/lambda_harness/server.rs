//! The HTTP side of the harness: just enough HTTP/1.1 for the runtime client.

use super::{FUNCTION_ARN, Invocation, Pending, State, lock};
use serde_json::Value;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{TcpListener, TcpStream};

pub(super) fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

pub(super) async fn accept_loop(listener: TcpListener, state: Arc<State>) {
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
        // The first poll ends the function's init (as Lambda's Init phase ends).
        lock(&state.first_poll).get_or_insert_with(std::time::Instant::now);
        state.polled.notify_waiters();
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
