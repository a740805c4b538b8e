//! `sync`, `status`, `tools` and `call`: the daemon (`sync` runs one), and its clients, which
//! ask the running daemon or, with none, an engine started for the one command.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use switchboard::catalog::split_qualified;
use switchboard::control::{self, ControlClient};
use switchboard::daemon::{Daemon, DaemonOptions};
use switchboard::desired::ManifestView;
use switchboard::endpoint::http;
use switchboard::engine::EngineEvent;
use switchboard::metrics;
use switchboard::wire::{Request, WireError};
use tokio_util::sync::CancellationToken;

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
    let endpoint = match served.http {
        None => None,
        Some((addr, with_token)) => Some(serve_http(dir, shared.clone(), addr, with_token).await?),
    };
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
    if let Some(endpoint) = endpoint {
        endpoint.close().await;
    }
    socket.close().await;
    if let Some(daemon) = shared.take().await {
        daemon.shutdown().await?;
    }
    Ok(())
}

/// Starts the daemon's MCP endpoint and says where it is (and where its token is).
async fn serve_http(
    dir: &Path,
    daemon: std::sync::Arc<control::SharedDaemon>,
    addr: std::net::SocketAddr,
    with_token: bool,
) -> Result<http::HttpEndpoint> {
    let access = if with_token {
        http::Access::Token(http::token(dir)?)
    } else {
        errln!(
            "warning: the MCP endpoint takes requests without a token: any program on this \
             machine can call every tool"
        );
        http::Access::Waived
    };
    let endpoint = http::HttpEndpoint::start(daemon, addr, access).await?;
    if with_token {
        errln!(
            "mcp: {} (send Authorization: Bearer <the token in {}>)",
            endpoint.url(),
            http::token_path(dir).display()
        );
    } else {
        errln!("mcp: {}", endpoint.url());
    }
    Ok(endpoint)
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

/// Where this command finds live state: the daemon running for the config dir, or (with none
/// running) an engine started here for this one command.
enum Fleet {
    Daemon(ControlClient),
    Embedded(Daemon),
}

impl Fleet {
    /// Connects to the daemon, or starts an embedded engine and waits until it has settled.
    async fn open(dir: &Path, manifest: Option<&str>) -> Result<Self> {
        if let Some(client) = ControlClient::connect(dir).await? {
            if manifest.is_some() {
                errln!(
                    "switchboard: the running daemon follows its own manifest; --manifest is not used"
                );
            }
            return Ok(Self::Daemon(client));
        }
        errln!(
            "switchboard: no daemon runs for {}; running an engine for this command only",
            dir.display()
        );
        let daemon = Daemon::start(DaemonOptions {
            config_dir: dir.to_path_buf(),
            manifest: manifest.map(str::to_string),
        })
        .await?;
        daemon.settled().await;
        if let Some(view) = daemon.manifest().borrow().as_ref()
            && let Some(reason) = &view.stale
        {
            if view.connectors > 0 {
                errln!("manifest: stale, using the last good one ({reason})");
            } else {
                errln!("manifest: unusable, no last good one ({reason})");
            }
        }
        Ok(Self::Embedded(daemon))
    }

    async fn ask(&mut self, request: Request) -> Result<Value, WireError> {
        match self {
            Self::Daemon(client) => client.ask(request).await,
            Self::Embedded(daemon) => control::answer(daemon, request).await,
        }
    }

    /// The fleet, re-checked first when a daemon has been running (an embedded engine has
    /// only just connected).
    async fn checked_overview(&mut self) -> Result<Overview> {
        let request = match self {
            Self::Daemon(_) => Request::SyncNow { wait: true },
            Self::Embedded(_) => Request::Overview {},
        };
        Ok(serde_json::from_value(self.ask(request).await?)?)
    }

    async fn overview(&mut self) -> Result<Overview> {
        Ok(serde_json::from_value(
            self.ask(Request::Overview {}).await?,
        )?)
    }

    async fn close(self) -> Result<()> {
        if let Self::Embedded(daemon) = self {
            daemon.shutdown().await?;
        }
        Ok(())
    }
}

/// The overview as it comes over the wire: what the CLI prints of it.
#[derive(Deserialize)]
struct Overview {
    connectors: Vec<Row>,
    summary: String,
    manifest: Option<ManifestRow>,
    registry_error: Option<String>,
}

#[derive(Deserialize)]
struct ManifestRow {
    connectors: usize,
    stale: Option<String>,
}

/// One connector, as `sync --once` and `status` print it.
#[derive(Deserialize)]
struct Row {
    id: String,
    transport: String,
    state: String,
    tools: usize,
    /// Handshake plus the first tool listing.
    latency_ms: Option<f64>,
    reason: Option<String>,
    protocol_version: Option<String>,
}

/// `sync --once --json`'s shape (kept from before the daemon: `error` is the reason).
#[derive(Serialize)]
struct Report<'a> {
    id: &'a str,
    transport: &'a str,
    state: &'a str,
    tools: usize,
    latency_ms: Option<f64>,
    error: Option<&'a str>,
    protocol_version: Option<&'a str>,
}

impl<'a> From<&'a Row> for Report<'a> {
    fn from(row: &'a Row) -> Self {
        Self {
            id: &row.id,
            transport: &row.transport,
            state: &row.state,
            tools: row.tools,
            latency_ms: row.latency_ms,
            error: row.reason.as_deref(),
            protocol_version: row.protocol_version.as_deref(),
        }
    }
}

pub async fn sync_once(dir: &Path, manifest: Option<&str>, json: bool) -> Result<()> {
    let mut fleet = Fleet::open(dir, manifest).await?;
    let overview = fleet.checked_overview().await;
    fleet.close().await?;
    print_rows(&overview?.connectors, json)
}

/// The fleet as the tray shows it: the summary line, each connector, the manifest.
pub async fn status(dir: &Path, json: bool) -> Result<()> {
    let mut fleet = Fleet::open(dir, None).await?;
    let overview = fleet.ask(Request::Overview {}).await;
    fleet.close().await?;
    let overview = overview?;
    if json {
        outln!("{overview}");
        return Ok(());
    }
    let overview: Overview = serde_json::from_value(overview)?;
    outln!("{}", overview.summary);
    if let Some(manifest) = overview.manifest {
        let view = ManifestView {
            connectors: manifest.connectors,
            stale: manifest.stale,
        };
        print_manifest(&view, false)?;
    }
    if let Some(error) = &overview.registry_error {
        outln!("registry: {error} (edits are kept; the file is not rewritten until it parses)");
    }
    if !overview.connectors.is_empty() {
        print_rows(&overview.connectors, false)?;
    }
    Ok(())
}

fn print_rows(rows: &[Row], json: bool) -> Result<()> {
    if json {
        let reports: Vec<Report> = rows.iter().map(Report::from).collect();
        outln!("{}", serde_json::to_string(&reports)?);
        return Ok(());
    }
    if rows.is_empty() {
        outln!("no connectors: add one with `switchboard registry add`");
        return Ok(());
    }
    let width = rows
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
    for r in rows {
        let latency = r
            .latency_ms
            .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"));
        outln!(
            "{:width$}  {:12}  {:>5}  {:>10}  {:10}  {}",
            r.id,
            r.state,
            r.tools,
            latency,
            r.protocol_version.as_deref().unwrap_or("-"),
            r.reason.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// A tool as `tools` prints it.
#[derive(Deserialize, Serialize)]
struct ToolRow {
    name: String,
    connector: String,
    tool: String,
    description: Option<String>,
    /// The JSON Schema of its arguments.
    input_schema: Value,
}

pub async fn tools(dir: &Path, manifest: Option<&str>, json: bool) -> Result<()> {
    let mut fleet = Fleet::open(dir, manifest).await?;
    let tools = fleet.ask(Request::Tools {}).await;
    let overview = fleet.overview().await;
    fleet.close().await?;
    let tools: Vec<ToolRow> = serde_json::from_value(tools?)?;
    if json {
        outln!("{}", serde_json::to_string(&tools)?);
    } else {
        for tool in &tools {
            outln!(
                "{}  {}",
                tool.name,
                tool.description.as_deref().unwrap_or("")
            );
        }
    }
    for row in overview?.connectors.iter().filter(|r| r.reason.is_some()) {
        errln!(
            "{}: {} ({})",
            row.id,
            row.state,
            row.reason.as_deref().unwrap_or("")
        );
    }
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
    let mut fleet = Fleet::open(dir, manifest).await?;
    let outcome = call_in(&mut fleet, connector_id, qualified, arguments).await;
    fleet.close().await?;
    let result = outcome?;
    outln!("{result}");
    if result["isError"] == Value::Bool(true) {
        bail!("{qualified} returned an error result");
    }
    Ok(())
}

async fn call_in(
    fleet: &mut Fleet,
    connector_id: &str,
    qualified: &str,
    arguments: Value,
) -> Result<Value> {
    let overview = fleet.overview().await?;
    let Some(row) = overview.connectors.iter().find(|r| r.id == connector_id) else {
        bail!("no connector {connector_id:?}");
    };
    if !matches!(row.state.as_str(), "healthy" | "degraded") {
        let reason = row
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        bail!("connector {connector_id:?} is {}{reason}", row.state);
    }
    let request = Request::CallTool {
        tool: qualified.to_string(),
        arguments,
    };
    fleet
        .ask(request)
        .await
        .with_context(|| format!("{qualified} failed"))
}
