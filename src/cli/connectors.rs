//! `sync`, `tools` and `call`: connect the desired set and report on it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use switchboard::catalog::split_qualified;
use switchboard::connector::{self, ConnectorSpec};
use switchboard::daemon::{Daemon, DaemonOptions, manifest_loader};
use switchboard::desired::ManifestView;
use switchboard::engine::EngineEvent;
use switchboard::manifest::loader::Refresh;
use switchboard::metrics;
use switchboard::registry::{Registry, RegistryOptions};
use switchboard::session::{Session, http_client};
use switchboard::sync::{Connected, ConnectorReport, SyncOptions, connect_all};
use tokio_util::sync::CancellationToken;

/// The desired set: the manifest's connectors (when one is given) and the registry's servers.
/// A manifest that cannot be had is reported on stderr, and the last good one (from the disk
/// cache) used if there is one.
async fn desired_set(
    dir: &Path,
    manifest: Option<&str>,
    http: &reqwest::Client,
) -> Result<Vec<ConnectorSpec>> {
    let registry = Registry::open(RegistryOptions {
        watch: false,
        ..RegistryOptions::in_dir(dir)
    })
    .await?;
    let snapshot = registry.snapshot();
    registry.close().await?;
    let Some(source) = manifest else {
        return Ok(connector::desired_set(None, &snapshot));
    };
    let mut loader = manifest_loader(dir, source, http)?;
    match loader.refresh().await {
        Refresh::Updated | Refresh::NotModified => {}
        Refresh::Stale(reason) => eprintln!("manifest: stale, using the last good one ({reason})"),
        Refresh::Failed(reason) => eprintln!("manifest: unusable, no last good one ({reason})"),
    }
    let manifest = loader.current().map(|state| state.manifest.clone());
    Ok(connector::desired_set(manifest.as_deref(), &snapshot))
}

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

async fn connect(dir: &Path, manifest: Option<&str>) -> Result<Connected> {
    let http = http_client().context("cannot set up the HTTP client")?;
    let specs = desired_set(dir, manifest, &http).await?;
    Ok(connect_all(specs, &http, SyncOptions::from_env()).await)
}

pub async fn sync_once(dir: &Path, manifest: Option<&str>, json: bool) -> Result<()> {
    let connected = connect(dir, manifest).await?;
    print_reports(&connected.reports, json)?;
    connected.close().await;
    Ok(())
}

fn print_reports(reports: &[ConnectorReport], json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(reports)?);
        return Ok(());
    }
    if reports.is_empty() {
        outln!("no connectors: add one with `switchboard registry add`");
        return Ok(());
    }
    let width = reports
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
    for r in reports {
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
            r.error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn tools(dir: &Path, manifest: Option<&str>, json: bool) -> Result<()> {
    let connected = connect(dir, manifest).await?;
    let catalog = connected.catalog();
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
    for report in connected.reports.iter().filter(|r| r.error.is_some()) {
        eprintln!(
            "{}: {} ({})",
            report.id,
            report.state.as_str(),
            report.error.as_deref().unwrap_or("")
        );
    }
    connected.close().await;
    Ok(())
}

pub async fn call(
    dir: &Path,
    manifest: Option<&str>,
    qualified: &str,
    args: Option<&str>,
) -> Result<()> {
    let (connector_id, tool) = split_qualified(qualified)
        .with_context(|| format!("{qualified:?} is not CONNECTOR.TOOL"))?;
    let arguments = match args {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(text).context("--args is not JSON")? {
            Value::Object(map) => Some(map),
            other => bail!("--args must be a JSON object, not {other}"),
        },
    };
    let http = http_client().context("cannot set up the HTTP client")?;
    let spec = desired_set(dir, manifest, &http)
        .await?
        .into_iter()
        .find(|s| s.id == connector_id)
        .with_context(|| format!("no connector {connector_id:?}"))?;
    if !spec.enabled {
        bail!("connector {connector_id:?} is disabled");
    }
    if let Some(variable) = &spec.missing_credential {
        bail!("connector {connector_id:?} needs a credential: set {variable}");
    }
    let session = Session::open(&spec, &http)
        .await
        .with_context(|| format!("cannot connect to {connector_id}"))?;
    let outcome = session.call(tool, arguments, spec.call_timeout).await;
    session.close().await;
    let result = outcome.with_context(|| format!("{qualified} failed"))?;
    outln!("{}", serde_json::to_string(&result)?);
    if result.is_error == Some(true) {
        bail!("{qualified} returned an error result");
    }
    Ok(())
}
