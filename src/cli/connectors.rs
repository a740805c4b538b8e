//! `sync`, `tools` and `call`: connect the desired set and report on it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use switchboard::catalog::split_qualified;
use switchboard::daemon::{Daemon, DaemonOptions};
use switchboard::desired::ManifestView;
use switchboard::engine::{ConnectorStatus, EngineEvent, EngineSnapshot};
use switchboard::health::Health;
use switchboard::metrics;
use tokio_util::sync::CancellationToken;

/// Runs the engine until interrupted, printing each state change as it happens.
pub async fn sync_watch(
    dir: &Path,
    manifest: Option<&str>,
    json: bool,
    metrics_addr: Option<std::net::SocketAddr>,
) -> Result<()> {
    let daemon = Daemon::start(DaemonOptions {
        config_dir: dir.to_path_buf(),
        manifest: manifest.map(str::to_string),
    })
    .await?;
    let count = daemon.engine().snapshot().connectors.len();
    let manifest_note = manifest
        .map(|m| format!(", manifest {m}"))
        .unwrap_or_default();
    eprintln!(
        "switchboard: following {count} connector(s) (registry in {}{manifest_note}); Ctrl-C to stop",
        dir.display()
    );
    let stop = CancellationToken::new();
    let metrics_server = match metrics_addr {
        None => None,
        Some(addr) => {
            let (bound, task) = metrics::serve(daemon.engine().metrics(), addr, stop.clone())
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
            eprintln!("metrics: http://{bound}/metrics");
            Some(task)
        }
    };
    let mut events = daemon.engine().events();
    let mut manifest_views = daemon.manifest();
    let interrupted = shutdown_signal();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => break,
            event = events.recv() => match event {
                Ok(event) => print_event(&event, json)?,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    eprintln!("({missed} events skipped: printing fell behind)");
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
    daemon.shutdown().await?;
    Ok(())
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

fn print_manifest(view: &ManifestView, json: bool) -> Result<()> {
    if json {
        let line = serde_json::json!({"event": "manifest", "connectors": view.connectors, "stale": view.stale});
        outln!("{line}");
    } else {
        match &view.stale {
            Some(reason) => outln!(
                "manifest: stale, {} connectors in use ({reason})",
                view.connectors
            ),
            None => outln!("manifest: current, {} connectors", view.connectors),
        }
    }
    Ok(())
}

/// Starts the engine embedded (the registry's servers and, with a manifest, its connectors) and
/// waits until every connector has an answer.
async fn settle(dir: &Path, manifest: Option<&str>) -> Result<(Daemon, Arc<EngineSnapshot>)> {
    let daemon = Daemon::start(DaemonOptions {
        config_dir: dir.to_path_buf(),
        manifest: manifest.map(str::to_string),
    })
    .await?;
    let snapshot = daemon.settled().await;
    if let Some(view) = daemon.manifest().borrow().as_ref()
        && let Some(reason) = &view.stale
    {
        if view.connectors > 0 {
            eprintln!("manifest: stale, using the last good one ({reason})");
        } else {
            eprintln!("manifest: unusable, no last good one ({reason})");
        }
    }
    Ok((daemon, snapshot))
}

/// One connector's outcome, as `sync --once --json` prints it.
#[derive(Serialize)]
struct Report<'a> {
    id: &'a str,
    transport: &'a str,
    state: Health,
    tools: usize,
    /// Handshake plus the first tool listing.
    latency_ms: Option<f64>,
    error: Option<&'a str>,
    protocol_version: Option<&'a str>,
}

impl<'a> From<&'a ConnectorStatus> for Report<'a> {
    fn from(status: &'a ConnectorStatus) -> Self {
        Self {
            id: &status.id,
            transport: status.transport,
            state: status.state,
            tools: status.tools,
            latency_ms: status.latency_ms,
            error: status.reason.as_deref(),
            protocol_version: status.protocol_version.as_deref(),
        }
    }
}

pub async fn sync_once(dir: &Path, manifest: Option<&str>, json: bool) -> Result<()> {
    let (daemon, snapshot) = settle(dir, manifest).await?;
    print_reports(&snapshot.connectors, json)?;
    daemon.shutdown().await?;
    Ok(())
}

fn print_reports(connectors: &[ConnectorStatus], json: bool) -> Result<()> {
    if json {
        let reports: Vec<Report> = connectors.iter().map(Report::from).collect();
        outln!("{}", serde_json::to_string(&reports)?);
        return Ok(());
    }
    if connectors.is_empty() {
        outln!("no connectors: add one with `switchboard registry add`");
        return Ok(());
    }
    let width = connectors
        .iter()
        .map(|r| r.id.chars().count())
        .max()
        .unwrap_or(2)
        .max(9);
    outln!(
        "{:width$}  {:12}  {:>5}  {:>10}  {:10}  DETAIL",
        "CONNECTOR",
        "STATE",
        "TOOLS",
        "LATENCY",
        "PROTOCOL"
    );
    for r in connectors {
        let latency = r
            .latency_ms
            .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"));
        outln!(
            "{:width$}  {:12}  {:>5}  {:>10}  {:10}  {}",
            r.id,
            r.state.as_str(),
            r.tools,
            latency,
            r.protocol_version.as_deref().unwrap_or("-"),
            r.reason.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn tools(dir: &Path, manifest: Option<&str>, json: bool) -> Result<()> {
    let (daemon, snapshot) = settle(dir, manifest).await?;
    let catalog = &snapshot.catalog;
    if json {
        let rows: Vec<Value> = catalog
            .iter()
            .map(|(name, t)| {
                serde_json::json!({
                    "name": name,
                    "connector": t.connector,
                    "tool": t.tool.name,
                    "description": t.tool.description,
                })
            })
            .collect();
        outln!("{}", Value::Array(rows));
    } else {
        for (name, t) in catalog.iter() {
            outln!("{name}  {}", t.tool.description.as_deref().unwrap_or(""));
        }
    }
    for status in snapshot.connectors.iter().filter(|s| s.reason.is_some()) {
        eprintln!(
            "{}: {} ({})",
            status.id,
            status.state.as_str(),
            status.reason.as_deref().unwrap_or("")
        );
    }
    daemon.shutdown().await?;
    Ok(())
}

pub async fn call(
    dir: &Path,
    manifest: Option<&str>,
    qualified: &str,
    args: Option<&str>,
) -> Result<()> {
    let (connector_id, _) = split_qualified(qualified)
        .with_context(|| format!("{qualified:?} is not CONNECTOR.TOOL"))?;
    let arguments = match args {
        None => Value::Null,
        Some(text) => match serde_json::from_str::<Value>(text).context("--args is not JSON")? {
            object @ Value::Object(_) => object,
            other => bail!("--args must be a JSON object, not {other}"),
        },
    };
    let (daemon, snapshot) = settle(dir, manifest).await?;
    let outcome = match snapshot.connectors.iter().find(|s| s.id == connector_id) {
        None => Err(anyhow::anyhow!("no connector {connector_id:?}")),
        Some(status) if !status.state.is_live() => Err(anyhow::anyhow!(
            "connector {connector_id:?} is {}{}",
            status.state.as_str(),
            status
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )),
        Some(_) => daemon
            .call_tool(qualified, arguments)
            .await
            .with_context(|| format!("{qualified} failed")),
    };
    daemon.shutdown().await?;
    let result = outcome?;
    outln!("{}", serde_json::to_string(&result)?);
    if result.is_error == Some(true) {
        bail!("{qualified} returned an error result");
    }
    Ok(())
}
