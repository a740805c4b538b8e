//! `sync`: be the daemon for a config dir (the engine, its control socket, and on request its
//! metrics and MCP endpoints), printing each change until interrupted.

use std::path::Path;

use anyhow::{Context, Result};

use switchboard::control;
use switchboard::daemon::{Daemon, DaemonOptions};
use switchboard::endpoint::http;
use switchboard::engine::EngineEvent;
use switchboard::metrics;
use tokio_util::sync::CancellationToken;

use super::connectors::print_manifest;

/// What the daemon serves besides its control socket, each on a loopback address.
pub struct Served {
    pub metrics: Option<std::net::SocketAddr>,
    /// The MCP endpoint, and whether it requires the token.
    pub http: Option<(std::net::SocketAddr, bool)>,
}

/// Runs the daemon until interrupted (the engine, and the control socket its clients use),
/// printing each state change as it happens.
pub async fn sync_watch(
    dir: &Path,
    manifest: Option<&str>,
    json: bool,
    served: Served,
) -> Result<()> {
    let metrics_addr = served.metrics;
    // Claimed before anything connects: a second daemon for this config dir stops here.
    let claimed = control::socket::claim(dir)?;
    let daemon = Daemon::start(DaemonOptions {
        config_dir: dir.to_path_buf(),
        manifest: manifest.map(str::to_string),
    })
    .await?;
    let count = daemon.engine().snapshot().connectors.len();
    let manifest_note = manifest
        .map(|m| format!(", manifest {m}"))
        .unwrap_or_default();
    errln!(
        "switchboard: following {count} connector(s) (registry in {}{manifest_note}); Ctrl-C to stop",
        dir.display()
    );
    if count == 0 && manifest.is_none() {
        eprint!("{}", first_steps());
    }
    let stop = CancellationToken::new();
    let metrics_server = match metrics_addr {
        None => None,
        Some(addr) => {
            let (bound, task) = metrics::serve(daemon.engine().metrics(), addr, stop.clone())
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
            errln!("metrics: http://{bound}/metrics");
            Some(task)
        }
    };
    let mut events = daemon.engine().events();
    let mut manifest_views = daemon.manifest();
    let shared = std::sync::Arc::new(control::SharedDaemon::new(daemon));
    let socket = claimed.serve(shared.clone());
    tracing::info!(path = %socket.path().display(), "control socket ready");
    match served.http {
        // For this run only, whatever the endpoint setting says.
        Some((addr, with_token)) => serve_http(dir, &shared, addr, with_token).await?,
        None => {
            shared.endpoint().restore(&shared).await;
            if let Some(url) = shared.endpoint().status().await.url {
                errln!("mcp: {url} (as set with `switchboard endpoint`)");
            }
        }
    }
    let interrupted = shutdown_signal();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => break,
            event = events.recv() => match event {
                Ok(event) => print_event(&event, json)?,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    errln!("({missed} events skipped: printing fell behind)");
                }
                Err(_) => break,
            },
            changed = manifest_views.changed() => {
                if changed.is_err() {
                    break;
                }
                let view = manifest_views.borrow_and_update().clone();
                if let Some(view) = view {
                    print_manifest(&view, json)?;
                }
            }
        }
    }
    stop.cancel();
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    shared.endpoint().close().await;
    socket.close().await;
    if let Some(daemon) = shared.take().await {
        daemon.shutdown().await?;
    }
    Ok(())
}

/// Starts the daemon's MCP endpoint and says where it is (and where its token is).
async fn serve_http(
    dir: &Path,
    daemon: &std::sync::Arc<control::SharedDaemon>,
    addr: std::net::SocketAddr,
    with_token: bool,
) -> Result<()> {
    if !with_token {
        errln!(
            "warning: the MCP endpoint takes requests without a token: any program on this \
             machine can call every tool"
        );
    }
    let url = daemon.endpoint().serve_at(daemon, addr, with_token).await?;
    if with_token {
        errln!(
            "mcp: {url} (send Authorization: Bearer <the token in {}>)",
            http::token_path(dir).display()
        );
    } else {
        errln!("mcp: {url}");
    }
    Ok(())
}

/// What to do with an empty registry: the commands that get a user going, naming the other
/// clients' configs found on this machine.
fn first_steps() -> String {
    use switchboard::import::{Places, detect_all};
    let found: Vec<String> = Places::detect()
        .map(|places| detect_all(&places))
        .unwrap_or_default()
        .into_iter()
        .map(|(kind, path)| format!("{kind} ({})", path.display()))
        .collect();
    let import = if found.is_empty() {
        "  switchboard registry import --from PATH        # another client's MCP config file\n"
            .to_string()
    } else {
        format!(
            "  switchboard registry import --dry-run          # see what would come from {}\n  \
             switchboard registry import                    # then bring them over\n",
            found.join(", ")
        )
    };
    format!(
        "switchboard: no servers yet. To add some (this daemon follows the registry as it changes):\n\
         {import}  \
         switchboard registry add NAME --url URL        # a remote server (streamable HTTP)\n  \
         switchboard registry add NAME --command CMD    # a local server it starts (stdio)\n"
    )
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn print_event(event: &EngineEvent, json: bool) -> Result<()> {
    match event {
        EngineEvent::StateChanged {
            id,
            from,
            to,
            reason,
        } => {
            if json {
                let line = serde_json::json!({"event": "state", "id": id, "from": from, "state": to, "reason": reason});
                outln!("{line}");
            } else {
                let reason = reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                outln!("{id}: {} -> {}{reason}", from.as_str(), to.as_str());
            }
        }
        EngineEvent::Removed { id } => {
            if json {
                outln!("{}", serde_json::json!({"event": "removed", "id": id}));
            } else {
                outln!("{id}: removed");
            }
        }
        EngineEvent::ToolsChanged { id, count } => {
            if json {
                outln!(
                    "{}",
                    serde_json::json!({"event": "tools", "id": id, "tools": count})
                );
            } else {
                outln!("{id}: {count} tools");
            }
        }
    }
    Ok(())
}
