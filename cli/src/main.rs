//! `wa`: the pipeline's command line tool. Each subcommand lives in its own module
//! of the `wa_cli` library; this file only parses and dispatches.

use clap::Parser;
use wa_cli::cli::{Cli, Command};

/// mimalloc rather than glibc's malloc: `wa dev` allocates per request and per message
/// on many threads, and malloc/free were a fifth of its CPU under load (issue 15).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Dev(args) => wa_cli::dev::command(args).await,
        Command::Send(args) => wa_cli::client::send(*args).await,
        Command::Status(args) => wa_cli::client::status(args).await,
        Command::Cancel(args) => wa_cli::client::cancel(args).await,
        Command::Load(args) => wa_cli::load::run(args).await,
        Command::Soak(args) => wa_cli::soak::run(args).await,
        Command::Sandbox(args) => wa_cli::sandbox::run(args).await,
        #[cfg(feature = "aws")]
        Command::Tenants(args) => wa_cli::ops::tenants::run(args).await,
        #[cfg(feature = "aws")]
        Command::Templates(args) => wa_cli::ops::templates::run(args).await,
        #[cfg(feature = "aws")]
        Command::Messages(args) => wa_cli::ops::messages::run(args).await,
        #[cfg(feature = "aws")]
        Command::Dlq(args) => wa_cli::ops::dlq::run(args).await,
        #[cfg(feature = "aws")]
        Command::Events(args) => wa_cli::ops::events::run(args).await,
        #[cfg(feature = "aws")]
        Command::Costs(args) => wa_cli::ops::costs::run(args).await,
        #[cfg(feature = "aws")]
        Command::Doctor(args) => wa_cli::ops::doctor::run(args).await,
    }
}
