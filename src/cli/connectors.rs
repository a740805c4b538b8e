//! `sync --once`, `status`, `tools` and `call`: the daemon's clients, which ask the running
//! daemon or, with none, an engine started for the one command.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use switchboard::call_log::CallOrigin;
use switchboard::catalog::split_qualified;
use switchboard::control::{self, ControlClient};
use switchboard::daemon::{Daemon, DaemonOptions};
use switchboard::desired::ManifestView;
use switchboard::session::{Progress, Sideband};
use switchboard::wire::{Request, WireError};

pub fn print_manifest(view: &ManifestView, json: bool) -> Result<()> {
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
pub(super) enum Fleet {
    Daemon(ControlClient),
    Embedded(Box<Daemon>),
}

impl Fleet {
    /// Connects to the daemon, or starts an embedded engine and waits until it has settled.
    pub(super) async fn open(dir: &Path, manifest: Option<&str>) -> Result<Self> {
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
        Ok(Self::Embedded(Box::new(daemon)))
    }

    /// Calls a tool, passing its server's progress to `sideband`.
    async fn call(
        &mut self,
        tool: String,
        arguments: Value,
        origin: CallOrigin,
        sideband: Sideband,
    ) -> Result<Value> {
        Ok(match self {
            Self::Daemon(client) => {
                client
                    .call_reporting(tool, arguments, origin, sideband)
                    .await?
            }
            Self::Embedded(daemon) => serde_json::to_value(
                daemon
                    .call_tool_as(&tool, arguments, origin, sideband)
                    .await
                    .map_err(WireError::from)?,
            )?,
        })
    }

    pub(super) async fn ask(&mut self, request: Request) -> Result<Value, WireError> {
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

    pub(super) async fn close(self) -> Result<()> {
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
    /// Whether AI clients are served it.
    #[serde(default = "yes")]
    enabled: bool,
    /// About a token per 4 bytes of its definition.
    #[serde(default)]
    context_tokens: usize,
}

fn yes() -> bool {
    true
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
            let off = if tool.enabled { "" } else { "[off] " };
            outln!(
                "{}  {off}{}",
                tool.name,
                tool.description.as_deref().unwrap_or("")
            );
        }
        if !tools.is_empty() {
            outln!("{}", context_summary(&tools));
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

/// "serving 5 of 6 tools to AI clients, about 420 tokens of context (fx 180, time 240)".
fn context_summary(tools: &[ToolRow]) -> String {
    let mut per_connector: Vec<(&str, usize)> = Vec::new();
    for tool in tools.iter().filter(|t| t.enabled) {
        match per_connector.iter_mut().find(|(c, _)| *c == tool.connector) {
            Some((_, tokens)) => *tokens += tool.context_tokens,
            None => per_connector.push((&tool.connector, tool.context_tokens)),
        }
    }
    let served = tools.iter().filter(|t| t.enabled).count();
    let total: usize = per_connector.iter().map(|(_, t)| t).sum();
    let parts: Vec<String> = per_connector
        .iter()
        .map(|(c, t)| format!("{c} {t}"))
        .collect();
    format!(
        "serving {served} of {} tools to AI clients, about {total} tokens of context ({})",
        tools.len(),
        parts.join(", ")
    )
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
    // The server's progress, as it reports it, on stderr (stdout is the result).
    let (sink, mut updates) = tokio::sync::mpsc::channel::<Progress>(16);
    let printer = tokio::spawn(async move {
        while let Some(update) = updates.recv().await {
            let total = update.total.map(|t| format!("/{t}")).unwrap_or_default();
            let message = update.message.map(|m| format!(" {m}")).unwrap_or_default();
            errln!("progress: {}{total}{message}", update.progress);
        }
    });
    let origin = CallOrigin {
        client: Some("switchboard CLI".into()),
        correlation: None,
    };
    let answer = fleet
        .call(
            qualified.to_string(),
            arguments,
            origin,
            Sideband::progress(sink),
        )
        .await;
    let _ = printer.await;
    answer.with_context(|| format!("{qualified} failed"))
}
