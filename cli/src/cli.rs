//! The command line, declared with clap's derive.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// WhatsApp messaging pipeline tools.
#[derive(Debug, Parser)]
#[command(name = "wa", version, about)]
#[cfg_attr(
    not(feature = "aws"),
    command(
        after_help = "This wa was built without the `aws` feature (as `make dev` builds it). \
        The operator commands (tenants, templates, messages, dlq, events, costs, doctor) \
        are in the default build: cargo run -p wa-cli -- <command>"
    )
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline locally: API, sender, webhook, reconciler, Graph sandbox.
    Dev(DevArgs),
    /// Send a message through a running pipeline (`wa dev` or a deployed API).
    Send(Box<SendArgs>),
    /// Show a message: its state, timestamps, failure and history.
    Status(StatusArgs),
    /// Cancel a scheduled or queued message (`DELETE /v1/messages/{id}`).
    Cancel(StatusArgs),
    /// Load or soak a running pipeline and report throughput and latency figures.
    Load(LoadArgs),
    /// Soak a pipeline under faults (and crashes), then check its invariants.
    Soak(crate::soak::SoakArgs),
    /// Serve a faithful Graph API sandbox (sends, templates, signed webhooks, faults).
    Sandbox(SandboxArgs),
    /// Onboard and manage tenants (queues, event source mapping, secret, alarm, profile, API keys, event endpoints).
    #[cfg(feature = "aws")]
    Tenants(crate::ops::tenants::TenantsArgs),
    /// Sync a tenant's message templates from the Graph API, or load them from a file.
    #[cfg(feature = "aws")]
    Templates(crate::ops::templates::TemplatesArgs),
    /// What happened to a message: one message, or a tenant's recent messages.
    #[cfg(feature = "aws")]
    Messages(crate::ops::messages::MessagesArgs),
    /// A tenant's dead letters: list them, move them back to its queue.
    #[cfg(feature = "aws")]
    Dlq(crate::ops::dlq::DlqArgs),
    /// The events emitted (AWS or wa dev's SQLite file): list them, replay them to the tenants' endpoints.
    #[cfg(feature = "aws")]
    Events(crate::ops::events::EventsArgs),
    /// A tenant's messages as Meta priced them, per day and category, with an estimated spend.
    #[cfg(feature = "aws")]
    Costs(crate::ops::costs::CostsArgs),
    /// Check a wa dev configuration or a deployed stage end to end: one PASS/FAIL line per check, with the fix.
    #[cfg(feature = "aws")]
    Doctor(crate::ops::doctor::DoctorArgs),
}

/// `wa dev`: flags override the configuration file.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Configuration file (TOML; see wa.example.toml). Without one: the demo tenant.
    #[arg(long, env = "WA_DEV_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the API, webhook and status page (port 0: any free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The SQLite file holding messages, directory and queues.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address of the embedded Graph sandbox (port 0: any free port).
    #[arg(long)]
    pub sandbox_listen: Option<SocketAddr>,
}

/// Where the API is and who is calling: shared by `wa send` and `wa status`.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Base URL of the API (`wa dev` or a deployed stage).
    #[arg(long, env = "WA_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key of the tenant (sent as `Authorization: Bearer`).
    #[arg(
        long,
        env = "WA_API_KEY",
        default_value = "wa_demo_key",
        hide_env_values = true
    )]
    pub key: String,
    /// Print the raw JSON answer instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// `wa send`: a template message (`--template`) or a free-form text (`--text`), or a
/// whole request body (`--body-file`).
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Where the API is and who is calling.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Recipient, E.164 (`+14155550123`).
    #[arg(long, required_unless_present = "body_file")]
    pub to: Option<String>,
    /// The tenant's business phone number id to send from (default: its default number).
    #[arg(long, conflicts_with = "body_file")]
    pub from: Option<String>,
    /// Template name.
    #[arg(long, conflicts_with_all = ["text", "body_file"])]
    pub template: Option<String>,
    /// Template language.
    #[arg(long, default_value = "en_US")]
    pub language: String,
    /// A body parameter: positional (`--param Ana --param '#1234'`) or named
    /// (`--param first_name=Ana`); repeat in order.
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Dynamic suffix of a URL button (`INDEX=TEXT`, e.g. `0=ABC123`).
    #[arg(long = "url-button")]
    pub url_buttons: Vec<String>,
    /// Coupon of a copy-code button (`INDEX=CODE`). OTP buttons take the body's code.
    #[arg(long = "coupon-button")]
    pub coupon_buttons: Vec<String>,
    /// Free-form text (inside the 24-hour window only); with `--reply-button`, the
    /// interactive message's body.
    #[arg(long, conflicts_with = "body_file")]
    pub text: Option<String>,
    /// Render a link preview of the text's first URL.
    #[arg(long, requires = "text")]
    pub preview_url: bool,
    /// A media message (in-window): `KIND=LINK_OR_ID`, KIND one of image, document,
    /// video, audio, sticker; an `https://` value is a link, anything else a media id.
    #[arg(long, conflicts_with_all = ["template", "text", "body_file"])]
    pub media: Option<String>,
    /// The media's caption (image, document, video).
    #[arg(long, requires = "media")]
    pub caption: Option<String>,
    /// The document's file name.
    #[arg(long, requires = "media")]
    pub filename: Option<String>,
    /// A reply button (`ID=TITLE`, up to 3): the message becomes interactive, `--text`
    /// its body.
    #[arg(long = "reply-button", requires = "text")]
    pub reply_buttons: Vec<String>,
    /// A location pin (in-window): `LATITUDE,LONGITUDE`.
    #[arg(long, conflicts_with_all = ["template", "text", "media", "body_file"])]
    pub location: Option<String>,
    /// The location's name.
    #[arg(long, requires = "location")]
    pub location_name: Option<String>,
    /// The location's address.
    #[arg(long, requires = "location")]
    pub location_address: Option<String>,
    /// A reaction (in-window): `WAMID=EMOJI` (an empty emoji removes it).
    #[arg(long, conflicts_with_all = ["template", "text", "media", "location", "body_file"])]
    pub react: Option<String>,
    /// Quote this inbound message (its wamid) as the reply's context.
    #[arg(long, conflicts_with = "body_file")]
    pub reply_to: Option<String>,
    /// The whole JSON request body from a file (`-`: standard input).
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// Send later: an RFC 3339 time (`2026-06-03T09:00:00Z`) or a duration ahead
    /// (`+10m`, `2h`, `1d`), at most 30 days; the message stays `scheduled` until then
    /// and `wa cancel` can cancel it.
    #[arg(long, conflicts_with = "body_file")]
    pub send_at: Option<String>,
    /// Idempotency key; a retry with the same key never sends twice.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Wait until the message reaches this state or a terminal one, then print it.
    #[arg(long)]
    pub wait_for: Option<String>,
    /// How long `--wait-for` waits, in seconds.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
}

/// `wa load`: many template messages through the API, then their latencies.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Where the API is and who is calling.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Messages to send (ignored with `--duration`).
    #[arg(long, default_value_t = 1000)]
    pub messages: usize,
    /// Soak: send at `--rate` for this long instead (`90s`, `10m`, `1h`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Messages per second (0: as fast as `--concurrency` allows; a soak needs a rate).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// The request to send, as JSON (its `to` is replaced for each message). Default:
    /// the demo's `order_shipped` with two body values and a URL button.
    #[arg(long)]
    pub request_file: Option<PathBuf>,
    /// Recipients are `+1415555` followed by four digits, cycling through this many.
    #[arg(long, default_value_t = 5000)]
    pub recipients: usize,
    /// Measure until this state (`accepted`, `sent`, `delivered`, `read`).
    #[arg(long, default_value = "accepted")]
    pub until: String,
    /// Give up waiting for messages this long after the last send.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub settle: std::time::Duration,
    /// Prefix of the idempotency keys (a rerun with the same prefix only replays).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Baseline: send the same load to a server in this process that answers at once
    /// (no pipeline), instead of `--url`, and skip the wait for the messages.
    #[arg(long)]
    pub echo: bool,
    /// A local process to measure (Linux): its CPU time from the first request until
    /// the last message settled, and during the final read of every message, per message.
    #[arg(long)]
    pub measure_pid: Option<u32>,
}

/// `90s`, `15m`, `2h`, `1500ms`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 10m or 1h"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (ms, s, m, h)")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("{text:?} is not a positive duration"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// `wa status ID` and `wa cancel ID`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Where the API is and who is calling.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The message id (`msg_...`).
    pub id: String,
}

/// `wa sandbox`: flags override the configuration file.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed).
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,
    /// Where status webhooks are posted (overrides `webhook.url`).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// App secret that signs webhooks (overrides `webhook.app_secret`).
    #[arg(long)]
    pub app_secret: Option<String>,
    /// Configuration file, TOML (`.toml`) or JSON; see cli/sandbox.example.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed of the fault generators (overrides `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// The text of a file argument, `-` meaning standard input (`--body-file -`, `FILE|-`).
pub fn read_input(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    use std::io::Read;
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
