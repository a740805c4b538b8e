//! The headless CLI's arguments and commands (binary-only module): parse, call the engine, print.

/// `println!` that makes the line terminal-safe and returns the write error (a closed pipe)
/// instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        writeln!(std::io::stdout().lock(), "{}", crate::cli::terminal::safe(&line))?
    }};
}

/// `eprintln!`, the line made terminal-safe.
macro_rules! errln {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        eprintln!("{}", crate::cli::terminal::safe(&line));
    }};
}

mod auth;
mod clients;
mod conformance;
mod connectors;
mod daemon;
mod endpoint;
mod registry;
pub mod terminal;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use switchboard::import::ImportSource;
use switchboard::registry::model::{Launch, RemoteKind, ServerEntry, ServerName};
use switchboard::registry::resolve_config_dir;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Keeps your MCP connectors healthy and fast"
)]
pub struct Cli {
    /// Where servers.json lives (default: the platform config dir, e.g. ~/.config/switchboard).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List, add, remove, toggle, import and export servers.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Run the daemon: keep every enabled connector connected (in parallel) and print each
    /// change. With --once: ask the running daemon to re-check every connector (or, with none
    /// running, connect them here) and report each one's state.
    Sync {
        /// Report each connector's state once and exit. Without it: be the daemon for this
        /// config dir until interrupted.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        manifest: ManifestArg,
        /// JSON: with --once, one array of every connector's state; without, one object per
        /// line for each change as it happens.
        #[arg(long)]
        json: bool,
        /// While syncing, serve Prometheus metrics at http://ADDR/metrics (loopback only,
        /// e.g. 127.0.0.1:9464). A one-shot sync has no running engine to serve.
        #[arg(long, value_name = "ADDR", value_parser = loopback_addr, conflicts_with = "once")]
        metrics: Option<std::net::SocketAddr>,
        /// While syncing, serve every tool to MCP clients over streamable HTTP at
        /// http://ADDR/mcp (loopback only, e.g. 127.0.0.1:8765), each request carrying the
        /// bearer token kept in the config dir's endpoint-token file.
        #[arg(long, value_name = "ADDR", value_parser = loopback_addr, conflicts_with = "once", env = "SWITCHBOARD_HTTP")]
        http: Option<std::net::SocketAddr>,
        /// Let MCP clients that cannot send headers in without the token (anyone on this
        /// machine can then call every tool).
        #[arg(long, requires = "http")]
        http_without_token: bool,
    },
    /// Show the fleet as the tray does: the summary line, then each connector's state.
    Status {
        /// Print the whole overview as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List every tool of every connector, as CONNECTOR.TOOL, with what serving them costs a
    /// model's context; or switch one on or off for AI clients.
    Tools {
        #[command(subcommand)]
        action: Option<ToolsAction>,
        /// Print a JSON array: each tool's name, connector, name on its server, description,
        /// input schema (the arguments it takes), whether it is served and its context cost.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        manifest: ManifestArg,
    },
    /// Point AI clients (Claude Desktop, Claude Code, Cursor, VS Code, Windsurf, Zed) at
    /// `switchboard serve`, or back.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Keep connector tokens in the OS keyring (never in Switchboard's files).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Sign connectors in to servers that ask for an OAuth sign-in, or out again.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// The daemon's MCP endpoint over HTTP on 127.0.0.1, for clients that connect by URL:
    /// where it serves, or switch it on or off (kept for the daemon's next starts).
    Endpoint {
        #[command(subcommand)]
        action: Option<EndpointAction>,
        #[arg(long)]
        json: bool,
    },
    /// Call one tool through the engine and print its result as JSON.
    Call {
        /// CONNECTOR.TOOL
        tool: String,
        /// The tool's arguments, a JSON object.
        #[arg(long, value_name = "JSON")]
        args: Option<String>,
        #[command(flatten)]
        manifest: ManifestArg,
    },
    /// Be an MCP server on stdin/stdout serving every tool of every healthy connector as
    /// CONNECTOR_TOOL: what AI clients (Claude, Cursor, VS Code, …) launch. Relays to the
    /// running daemon; with none, runs an engine of its own.
    Serve {
        #[command(flatten)]
        manifest: ManifestArg,
    },
    /// Run one scenario of the official MCP client conformance suite against URL.
    #[command(hide = true)]
    ConformanceClient { url: String },
}

#[derive(Subcommand)]
enum ToolsAction {
    /// Serve CONNECTOR.TOOL to AI clients again.
    Enable { tool: String },
    /// Stop serving CONNECTOR.TOOL to AI clients (kept in servers.json; the connector and its
    /// other tools stay as they are).
    Disable { tool: String },
}

#[derive(Subcommand)]
enum EndpointAction {
    /// Serve it (at once, with a daemon running).
    On {
        /// 1024 to 65535; 7420 unless changed before.
        #[arg(long)]
        port: Option<u16>,
        /// Take requests without the token, for clients that cannot send a header: any
        /// program on this machine can then call every tool.
        #[arg(long)]
        no_token: bool,
    },
    /// Stop serving it.
    Off,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Each client's config: whether it routes through Switchboard, and its other servers.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add one `switchboard` entry (this program, `serve`) to CLIENT's config, keeping
    /// everything else in it and the original beside it.
    Install {
        /// claude | claude-code | cursor | vscode | windsurf | zed
        client: switchboard::clients::AiClient,
        /// Also switch off there the servers Switchboard serves, so none runs twice.
        #[arg(long)]
        take_over: bool,
        /// Show what would change, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Take the `switchboard` entry out again: the original back if the file is untouched
    /// since, else just the entry removed and any servers switched off put back.
    Uninstall {
        /// claude | claude-code | cursor | vscode | windsurf | zed
        client: switchboard::clients::AiClient,
    },
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Sign CONNECTOR in: prints the page to approve it on and opens it in the browser, then
    /// waits (at most 5 minutes) for the browser to come back.
    Login {
        connector: String,
        /// Print the page only; open it yourself (on this machine: the redirect comes back to
        /// 127.0.0.1).
        #[arg(long)]
        no_browser: bool,
    },
    /// Show which remote connectors are signed in (never a token).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Forget CONNECTOR's tokens.
    Logout { connector: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Store CONNECTOR's token, read from standard input (one line).
    Set { connector: String },
    /// Remove CONNECTOR's token.
    Delete { connector: String },
}

#[derive(Args)]
pub struct ManifestArg {
    /// The connector manifest (service map): an https URL, an http URL on this machine, or a
    /// file. Its signing key, if any, is read from SWITCHBOARD_MANIFEST_KEY.
    #[arg(long, env = "SWITCHBOARD_MANIFEST", value_name = "URL|PATH")]
    manifest: Option<String>,
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Show every server.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a remote (--url) or stdio (--command) server.
    Add(AddArgs),
    /// Remove a server.
    Remove { name: ServerName },
    /// Turn a server on.
    Enable { name: ServerName },
    /// Turn a server off (it stays in the registry).
    Disable { name: ServerName },
    /// Import servers from Claude Desktop, Cursor, VS Code, Windsurf, Zed, the old registry or a file.
    Import {
        /// claude | cursor | vscode | windsurf | zed | cortex | PATH (default: every client found).
        #[arg(long, value_name = "SOURCE")]
        from: Option<ImportSource>,
        /// Show what would be added, skipped or refused, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the enabled servers in another client's config shape.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Claude)]
        format: ExportFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// `{"mcpServers": {…}}`, read by Claude Desktop, Cursor and Windsurf.
    Claude,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["url", "command"])))]
struct AddArgs {
    /// The server's name: 1 to 64 characters, no '.', no control characters.
    name: ServerName,
    /// URL of a remote server (or give --command for a stdio one).
    #[arg(long, conflicts_with_all = ["command", "args", "env", "cwd"])]
    url: Option<String>,
    /// Transport of a remote server.
    #[arg(long = "type", value_enum, default_value_t = RemoteType::Http, requires = "url")]
    kind: RemoteType,
    /// A header sent to a remote server, as NAME=VALUE (repeatable).
    #[arg(long = "header", value_name = "K=V", value_parser = key_value, conflicts_with = "command")]
    headers: Vec<(String, String)>,
    /// Program to run for a stdio server (or give --url for a remote one).
    #[arg(long)]
    command: Option<String>,
    /// An argument for the program (repeatable, in order).
    #[arg(
        long = "arg",
        value_name = "A",
        allow_hyphen_values = true,
        requires = "command"
    )]
    args: Vec<String>,
    /// An environment variable for the program, as NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = key_value, requires = "command")]
    env: Vec<(String, String)>,
    /// Working directory for the program.
    #[arg(long, requires = "command")]
    cwd: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Add the server switched off.
    #[arg(long)]
    disabled: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum RemoteType {
    Http,
    Sse,
}

/// An address to listen on, refused unless loopback: checked while parsing the arguments,
/// before any server is contacted.
fn loopback_addr(raw: &str) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr = raw
        .parse()
        .map_err(|e| format!("{raw:?} is not HOST:PORT ({e})"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "{addr} is not loopback; Switchboard serves on 127.0.0.1 or [::1] only"
        ))
    }
}

fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{raw:?} is not NAME=VALUE"))
}

impl AddArgs {
    fn entry(self) -> ServerEntry {
        let launch = match (self.url, self.command) {
            (Some(url), _) => Launch::Remote {
                url,
                kind: match self.kind {
                    RemoteType::Http => RemoteKind::Http,
                    RemoteType::Sse => RemoteKind::Sse,
                },
                headers: self.headers.into_iter().collect(),
            },
            (None, command) => Launch::Stdio {
                command: command.unwrap_or_default(),
                args: self.args,
                env: self.env.into_iter().collect(),
                cwd: self.cwd,
            },
        };
        ServerEntry {
            enabled: !self.disabled,
            tags: self.tags,
            ..ServerEntry::new(launch)
        }
    }
}

impl Cli {
    /// Whether this command relays one client's messages (`serve`).
    pub fn relays(&self) -> bool {
        matches!(self.command, Command::Serve { .. })
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    if let Command::ConformanceClient { url } = &cli.command {
        return conformance::run(url).await;
    }
    let dir = resolve_config_dir(cli.config_dir.as_deref())
        .context("cannot tell where the config dir is; pass --config-dir DIR")?;
    match cli.command {
        Command::Registry(command) => registry::run(dir, command).await,
        // clap refuses --metrics with --once: a one-shot sync has no engine left to serve.
        Command::Sync {
            once: true,
            json,
            manifest,
            ..
        } => connectors::sync_once(&dir, manifest.manifest.as_deref(), json).await,
        Command::Sync {
            once: false,
            json,
            manifest,
            metrics,
            http,
            http_without_token,
        } => {
            let served = daemon::Served {
                metrics,
                http: http.map(|addr| (addr, !http_without_token)),
            };
            daemon::sync_watch(&dir, manifest.manifest.as_deref(), json, served).await
        }
        Command::Client(ClientCommand::List { json }) => clients::list(json),
        Command::Client(ClientCommand::Install {
            client,
            take_over,
            dry_run,
        }) => clients::install(&dir, client, take_over, dry_run).await,
        Command::Client(ClientCommand::Uninstall { client }) => {
            clients::uninstall(&dir, client).await
        }
        Command::Token(TokenCommand::Set { connector }) => {
            let mut token = String::new();
            std::io::stdin()
                .read_line(&mut token)
                .context("cannot read the token from standard input")?;
            let token = token.trim_end_matches(['\r', '\n']);
            if token.is_empty() {
                bail!("no token on standard input");
            }
            switchboard::credentials::store(&connector, token)?;
            outln!("stored the token of {connector} in the OS keyring");
            Ok(())
        }
        Command::Token(TokenCommand::Delete { connector }) => {
            switchboard::credentials::delete(&connector)?;
            outln!("removed the token of {connector} from the OS keyring");
            Ok(())
        }
        Command::Auth(AuthCommand::Login {
            connector,
            no_browser,
        }) => auth::login(&dir, &connector, !no_browser).await,
        Command::Auth(AuthCommand::Status { json }) => auth::status(&dir, json).await,
        Command::Auth(AuthCommand::Logout { connector }) => auth::logout(&dir, &connector).await,
        Command::Status { json } => connectors::status(&dir, json).await,
        Command::Endpoint { action: None, json } => endpoint::show(&dir, json).await,
        Command::Endpoint {
            action: Some(action),
            ..
        } => {
            let change = match action {
                EndpointAction::On { port, no_token } => endpoint::Change {
                    enabled: true,
                    port,
                    require_token: Some(!no_token),
                },
                EndpointAction::Off => endpoint::Change {
                    enabled: false,
                    port: None,
                    require_token: None,
                },
            };
            endpoint::change(&dir, change).await
        }
        Command::Tools {
            action: Some(action),
            ..
        } => {
            let (tool, enabled) = match action {
                ToolsAction::Enable { tool } => (tool, true),
                ToolsAction::Disable { tool } => (tool, false),
            };
            registry::set_tool_enabled(dir, &tool, enabled).await
        }
        Command::Tools {
            action: None,
            json,
            manifest,
        } => connectors::tools(&dir, manifest.manifest.as_deref(), json).await,
        Command::Call {
            tool,
            args,
            manifest,
        } => connectors::call(&dir, manifest.manifest.as_deref(), &tool, args.as_deref()).await,
        Command::Serve { manifest } => {
            switchboard::endpoint::serve_stdio(switchboard::daemon::DaemonOptions {
                config_dir: dir,
                manifest: manifest.manifest,
            })
            .await?;
            Ok(())
        }
        Command::ConformanceClient { .. } => unreachable!("handled above"),
    }
}
