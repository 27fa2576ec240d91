//! The command line, declared with clap's derive.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// WhatsApp messaging pipeline tools.
#[derive(Debug, Parser)]
#[command(name = "wa", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a faithful Graph API sandbox (sends, templates, signed webhooks, faults).
    Sandbox(SandboxArgs),
    /// Onboard and manage tenants (queues, event source mapping, secret, alarm, profile, API key).
    Tenants(crate::ops::tenants::TenantsArgs),
    /// Sync a tenant's message templates from the Graph API, or load them from a file.
    Templates(crate::ops::templates::TemplatesArgs),
    /// What happened to a message: one message, or a tenant's recent messages.
    Messages(crate::ops::messages::MessagesArgs),
    /// A tenant's dead letters: list them, move them back to its queue.
    Dlq(crate::ops::dlq::DlqArgs),
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
