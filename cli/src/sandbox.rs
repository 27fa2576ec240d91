//! `wa sandbox`: load the configuration, apply the flags, serve until Ctrl-C.

use crate::cli::SandboxArgs;
use anyhow::Context;
use std::io::Write;
use wa_sandbox::{SandboxConfig, Secret};

/// Serve the sandbox until interrupted.
pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            SandboxConfig::from_file(path).with_context(|| format!("loading {}", path.display()))?
        }
        None => SandboxConfig::default(),
    };
    if let Some(url) = args.webhook_url {
        config.webhook.url = Some(url);
    }
    if let Some(secret) = args.app_secret {
        config.webhook.app_secret = Secret(secret);
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let sandbox = wa_sandbox::Sandbox::new(config).context("starting the sandbox")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Whoever started us may stop reading stdout: that must not stop the server.
    let mut out = std::io::stdout().lock();
    let webhooks = sandbox.config().webhook.url.as_deref().unwrap_or("(none)");
    let _ = writeln!(out, "wa sandbox listening on http://{addr}");
    let _ = writeln!(out, "webhooks to {webhooks}");
    let _ = out.flush();
    drop(out);
    sandbox.serve(listener, shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix (how process managers stop services).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
