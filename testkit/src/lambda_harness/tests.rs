//! The harness played against by hand-written runtime-client requests.
use super::server::now_ms;
use super::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

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
