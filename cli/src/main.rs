//! `wa`: the pipeline's command line tool. Each subcommand lives in its own module;
//! this file only parses and dispatches.

mod cli;
mod sandbox;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match cli::Cli::parse().command {
        cli::Command::Sandbox(args) => sandbox::run(args).await,
    }
}
