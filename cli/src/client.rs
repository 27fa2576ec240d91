//! `wa send`, `wa status` and `wa cancel`: the public HTTP API from the command line, against a
//! running `wa dev` or a deployed stage (`--url`).

use crate::cli::{ApiArgs, SendArgs, StatusArgs};
use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// States after which a message never changes again (`read` is the last provider state).
const SETTLED: [&str; 4] = ["read", "failed", "suppressed", "cancelled"];

/// `wa send`: build the request, post it, print the answer (and wait if asked).
pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    let body = request_body(&args)?;
    let client = http_client()?;
    let mut request = client
        .post(format!("{}/v1/messages", base(&args.api)))
        .bearer_auth(&args.api.key)
        .json(&body);
    if let Some(key) = &args.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {} (is `wa dev` running?)", base(&args.api)))?;
    let status = response.status();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let answer: Value = response.json().await.context("the answer is not JSON")?;
    if !status.is_success() {
        print_error(status.as_u16(), &answer);
        bail!("the API refused the message ({status})");
    }
    if args.api.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let id = answer["id"].as_str().unwrap_or("?");
        let state = answer["status"].as_str().unwrap_or("?");
        let note = if replayed {
            " (replayed: already sent with this key)"
        } else {
            ""
        };
        println!("{id} {state}{note}");
        if let Some(reason) = answer["suppression"]["reason"].as_str() {
            println!("suppressed: {reason}");
        }
    }
    if let (Some(target), Some(id)) = (&args.wait_for, answer["id"].as_str()) {
        let message = wait_for(
            &client,
            &args.api,
            id,
            target,
            Duration::from_secs(args.wait_secs),
        )
        .await?;
        print_message(&message, args.api.json)?;
    }
    Ok(())
}

/// `wa status ID`.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = http_client()?;
    let message = get_message(&client, &args.api, &args.id).await?;
    print_message(&message, args.api.json)
}

/// `wa cancel ID`: cancel a scheduled or queued message, print it.
pub async fn cancel(args: StatusArgs) -> anyhow::Result<()> {
    let client = http_client()?;
    let api = &args.api;
    let response = client
        .delete(format!("{}/v1/messages/{}", base(api), args.id))
        .bearer_auth(&api.key)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", base(api)))?;
    let status = response.status();
    let answer: Value = response.json().await.context("the answer is not JSON")?;
    if !status.is_success() {
        print_error(status.as_u16(), &answer);
        bail!("{} was not cancelled ({status})", args.id);
    }
    print_message(&answer, api.json)
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")
}

fn base(api: &ApiArgs) -> &str {
    api.url.trim_end_matches('/')
}

async fn get_message(client: &reqwest::Client, api: &ApiArgs, id: &str) -> anyhow::Result<Value> {
    let response = client
        .get(format!("{}/v1/messages/{id}", base(api)))
        .bearer_auth(&api.key)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", base(api)))?;
    let status = response.status();
    let answer: Value = response.json().await.context("the answer is not JSON")?;
    if !status.is_success() {
        print_error(status.as_u16(), &answer);
        bail!("no message {id} for this key ({status})");
    }
    Ok(answer)
}

/// Poll until the message's state ranks at least `target` (or is settled).
async fn wait_for(
    client: &reqwest::Client,
    api: &ApiArgs,
    id: &str,
    target: &str,
    limit: Duration,
) -> anyhow::Result<Value> {
    let target_rank = rank(target).with_context(|| format!("unknown state {target:?}"))?;
    let started = Instant::now();
    loop {
        let message = get_message(client, api, id).await?;
        let state = message["status"].as_str().unwrap_or_default();
        if SETTLED.contains(&state) || rank(state).is_some_and(|r| r >= target_rank) {
            return Ok(message);
        }
        if started.elapsed() > limit {
            bail!("{id} is still {state} after {}s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rank(state: &str) -> Option<u8> {
    let order = [
        "scheduled",
        "queued",
        "sending",
        "accepted",
        "sent",
        "delivered",
        "read",
        "failed",
        "suppressed",
    ];
    order.iter().position(|s| *s == state).map(|p| p as u8)
}

fn print_error(status: u16, answer: &Value) {
    let error = &answer["error"];
    eprintln!(
        "{status} {}: {}",
        error["code"].as_str().unwrap_or("error"),
        error["message"].as_str().unwrap_or("")
    );
    for problem in error["details"].as_array().into_iter().flatten() {
        eprintln!(
            "  {}: {} ({})",
            problem["field"].as_str().unwrap_or("?"),
            problem["message"].as_str().unwrap_or(""),
            problem["code"].as_str().unwrap_or("")
        );
    }
}

/// A readable summary of a message (or its JSON).
fn print_message(message: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(message)?);
        return Ok(());
    }
    println!(
        "{}  {}  to {}",
        message["id"].as_str().unwrap_or("?"),
        message["status"].as_str().unwrap_or("?"),
        message["to"].as_str().unwrap_or("?"),
    );
    if let Some(wamid) = message["wamid"].as_str() {
        println!("  {:<13} {wamid}", "wamid");
    }
    if let Some(timestamps) = message["timestamps"].as_object() {
        for (state, at) in timestamps {
            if let Some(at) = at.as_str() {
                println!("  {state:<13} {at}");
            }
        }
    }
    if let Some(failure) = message["failure"].as_object() {
        println!(
            "  failure       {} {} {}",
            failure.get("class").and_then(Value::as_str).unwrap_or(""),
            failure
                .get("code")
                .map(Value::to_string)
                .unwrap_or_default(),
            failure.get("title").and_then(Value::as_str).unwrap_or(""),
        );
    }
    if let Some(reason) = message["suppression"]["reason"].as_str() {
        println!("  suppressed    {reason}");
    }
    Ok(())
}

/// The request body `wa send`'s flags describe.
fn request_body(args: &SendArgs) -> anyhow::Result<Value> {
    if let Some(path) = &args.body_file {
        let text = crate::cli::read_input(path)?;
        return serde_json::from_str(&text).context("the body file is not JSON");
    }
    let to = args.to.as_deref().context("--to is required")?;
    let mut body = json!({"to": to});
    if let Some(from) = &args.from {
        body["from"] = json!(from);
    }
    if let Some(wamid) = &args.reply_to {
        body["context"] = json!({"message_id": wamid});
    }
    if let Some(at) = &args.send_at {
        body["send_at"] = json!(crate::ops::since::parse_send_at(at, crate::ops::now())?);
    }
    if let Some(content) = free_form(args)? {
        let (key, value) = content;
        body[key] = value;
        return Ok(body);
    }
    let name = args.template.as_deref().context(
        "give --template NAME, --text TEXT, --media KIND=LINK_OR_ID, --location or --react",
    )?;
    let mut template = Map::new();
    template.insert("name".into(), json!(name));
    template.insert("language".into(), json!(args.language));
    if !args.params.is_empty() {
        template.insert("body".into(), body_params(&args.params)?);
    }
    let mut buttons = Vec::new();
    for spec in &args.url_buttons {
        let (index, text) = indexed(spec, "--url-button")?;
        buttons.push(json!({"index": index, "type": "url", "text": text}));
    }
    for spec in &args.coupon_buttons {
        let (index, code) = indexed(spec, "--coupon-button")?;
        buttons.push(json!({"index": index, "type": "copy_code", "coupon_code": code}));
    }
    if !buttons.is_empty() {
        template.insert("buttons".into(), Value::Array(buttons));
    }
    body["template"] = Value::Object(template);
    Ok(body)
}

/// The in-window content the flags describe (its key and object), if any.
fn free_form(args: &SendArgs) -> anyhow::Result<Option<(&'static str, Value)>> {
    if let Some(text) = &args.text {
        if args.reply_buttons.is_empty() {
            let mut t = json!({"body": text});
            if args.preview_url {
                t["preview_url"] = json!(true);
            }
            return Ok(Some(("text", t)));
        }
        let mut buttons = Vec::new();
        for spec in &args.reply_buttons {
            let (id, title) = spec
                .split_once('=')
                .with_context(|| format!("--reply-button takes ID=TITLE, got {spec:?}"))?;
            buttons.push(json!({"type": "reply", "reply": {"id": id, "title": title}}));
        }
        return Ok(Some((
            "interactive",
            json!({"type": "button", "body": {"text": text}, "action": {"buttons": buttons}}),
        )));
    }
    if let Some(spec) = &args.media {
        let (kind, source) = spec
            .split_once('=')
            .with_context(|| format!("--media takes KIND=LINK_OR_ID, got {spec:?}"))?;
        let key = match kind {
            "image" => "image",
            "document" => "document",
            "video" => "video",
            "audio" => "audio",
            "sticker" => "sticker",
            other => bail!("--media: {other:?} is not image, document, video, audio or sticker"),
        };
        let mut media = if source.starts_with("https://") || source.starts_with("http://") {
            json!({"link": source})
        } else {
            json!({"id": source})
        };
        if let Some(caption) = &args.caption {
            media["caption"] = json!(caption);
        }
        if let Some(filename) = &args.filename {
            media["filename"] = json!(filename);
        }
        return Ok(Some((key, media)));
    }
    if let Some(spec) = &args.location {
        let (lat, lon) = spec
            .split_once(',')
            .with_context(|| format!("--location takes LATITUDE,LONGITUDE, got {spec:?}"))?;
        let number = |s: &str| -> anyhow::Result<f64> {
            s.trim()
                .parse::<f64>()
                .with_context(|| format!("--location: {s:?} is not a number"))
        };
        let mut location = json!({"latitude": number(lat)?, "longitude": number(lon)?});
        if let Some(name) = &args.location_name {
            location["name"] = json!(name);
        }
        if let Some(address) = &args.location_address {
            location["address"] = json!(address);
        }
        return Ok(Some(("location", location)));
    }
    if let Some(spec) = &args.react {
        let (wamid, emoji) = spec
            .split_once('=')
            .with_context(|| format!("--react takes WAMID=EMOJI, got {spec:?}"))?;
        return Ok(Some((
            "reaction",
            json!({"message_id": wamid, "emoji": emoji}),
        )));
    }
    Ok(None)
}

/// Positional values, or `name=value` pairs for a named template (all or none).
fn body_params(params: &[String]) -> anyhow::Result<Value> {
    let named: Vec<Option<(&str, &str)>> = params
        .iter()
        .map(|p| {
            p.split_once('=').filter(|(k, _)| {
                !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
        })
        .collect();
    if named.iter().all(Option::is_some) {
        let map: Map<String, Value> = named
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        return Ok(Value::Object(map));
    }
    Ok(json!(params))
}

fn indexed<'a>(spec: &'a str, flag: &str) -> anyhow::Result<(u32, &'a str)> {
    let (index, value) = spec
        .split_once('=')
        .with_context(|| format!("{flag} takes INDEX=VALUE, got {spec:?}"))?;
    let index = index
        .trim()
        .parse()
        .with_context(|| format!("{flag}: {index:?} is not a button index"))?;
    Ok((index, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn send_args(argv: &[&str]) -> SendArgs {
        let mut full = vec!["wa", "send"];
        full.extend_from_slice(argv);
        match Cli::parse_from(full).command {
            crate::cli::Command::Send(args) => *args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn template_flags_make_the_intake_body() {
        let args = send_args(&[
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
        ]);
        assert_eq!(
            request_body(&args).unwrap(),
            json!({"to": "+14155550123", "template": {"name": "order_shipped", "language": "en_US",
                   "body": ["Ana", "#1234"], "buttons": [{"index": 0, "type": "url", "text": "ABC123"}]}})
        );
    }

    #[test]
    fn named_params_and_text_bodies() {
        let args = send_args(&[
            "--to",
            "+14155550123",
            "--template",
            "appointment_reminder",
            "--param",
            "first_name=Ana",
            "--param",
            "date=May 3",
        ]);
        assert_eq!(
            request_body(&args).unwrap()["template"]["body"],
            json!({"first_name": "Ana", "date": "May 3"})
        );
        let args = send_args(&["--to", "+14155550123", "--text", "hello"]);
        assert_eq!(
            request_body(&args).unwrap(),
            json!({"to": "+14155550123", "text": {"body": "hello"}})
        );
        let args = send_args(&[
            "--to",
            "+14155550123",
            "--from",
            "106540352242923",
            "--text",
            "hi",
        ]);
        assert_eq!(
            request_body(&args).unwrap(),
            json!({"to": "+14155550123", "from": "106540352242923", "text": {"body": "hi"}})
        );
    }

    #[test]
    fn in_window_flags_make_each_type() {
        let body = |flags: &[&str]| {
            let mut all = vec!["--to", "+14155550123"];
            all.extend_from_slice(flags);
            request_body(&send_args(&all)).unwrap()
        };
        assert_eq!(
            body(&[
                "--media",
                "image=https://cdn.example.com/a.jpg",
                "--caption",
                "Receipt"
            ]),
            json!({"to": "+14155550123",
                   "image": {"link": "https://cdn.example.com/a.jpg", "caption": "Receipt"}})
        );
        assert_eq!(
            body(&[
                "--media",
                "document=1013859600285441",
                "--filename",
                "invoice.pdf"
            ])["document"],
            json!({"id": "1013859600285441", "filename": "invoice.pdf"})
        );
        assert_eq!(
            body(&[
                "--text",
                "Keep 9am?",
                "--reply-button",
                "keep=Keep",
                "--reply-button",
                "move=Change"
            ])["interactive"],
            json!({"type": "button", "body": {"text": "Keep 9am?"}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "keep", "title": "Keep"}},
                {"type": "reply", "reply": {"id": "move", "title": "Change"}}]}})
        );
        assert_eq!(
            body(&["--location", "38.72,-9.14", "--location-name", "Store"])["location"],
            json!({"latitude": 38.72, "longitude": -9.14, "name": "Store"})
        );
        assert_eq!(
            body(&["--react", "wamid.X=👍"])["reaction"],
            json!({"message_id": "wamid.X", "emoji": "👍"})
        );
        let reply = body(&["--text", "thanks", "--preview-url", "--reply-to", "wamid.Y"]);
        assert_eq!(reply["context"], json!({"message_id": "wamid.Y"}));
        assert_eq!(
            reply["text"],
            json!({"body": "thanks", "preview_url": true})
        );
        let bad = send_args(&["--to", "+1", "--media", "gif=x"]);
        assert!(request_body(&bad).is_err());
    }

    #[test]
    fn a_positional_value_with_an_equals_sign_stays_positional() {
        let args = send_args(&[
            "--to",
            "+1",
            "--template",
            "t",
            "--param",
            "a=b",
            "--param",
            "x y",
        ]);
        assert_eq!(
            request_body(&args).unwrap()["template"]["body"],
            json!(["a=b", "x y"])
        );
    }

    #[test]
    fn a_bad_button_spec_is_a_clear_error() {
        let args = send_args(&["--to", "+1", "--template", "t", "--url-button", "ABC"]);
        let e = request_body(&args).unwrap_err().to_string();
        assert!(e.contains("INDEX=VALUE"), "{e}");
    }

    #[test]
    fn ranks_follow_the_lifecycle() {
        assert!(rank("accepted") < rank("delivered"));
        assert_eq!(rank("nope"), None);
    }
}
