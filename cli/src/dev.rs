//! `wa dev`: the command that starts the local runtime (`wa-local`) with the
//! configuration from `--config` (or the demo), the environment and the flags.

use tokio::net::TcpListener;
use wa_local::{DevConfig, GraphTarget, run};

/// The `wa dev` command: configuration from `--config` (or the demo), the
/// environment and the flags; logs on stderr; serves until Ctrl-C or SIGTERM.
pub async fn command(args: crate::cli::DevArgs) -> anyhow::Result<()> {
    wa_shared::telemetry::init_with_writer(
        &wa_shared::telemetry::LogSettings::from_env(),
        std::io::stderr,
    );
    let env = |k: &str| std::env::var(k).ok();
    let mut config = match &args.config {
        Some(path) => DevConfig::from_file_with_env(path, &env)?,
        None => DevConfig::demo_with_env(&env)?,
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(data) = args.data {
        config.data = data;
    }
    if let (Some(addr), GraphTarget::Sandbox { listen, .. }) =
        (args.sandbox_listen, &mut config.target)
    {
        *listen = addr;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    run(config, listener, crate::sandbox::shutdown_signal()).await?;
    Ok(())
}
