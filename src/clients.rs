//! The AI clients' own configs (Claude Desktop, Claude Code, Cursor, VS Code, Windsurf, Zed):
//! whether each routes through Switchboard, and putting Switchboard's one entry in — or taking
//! it out again — without disturbing anything else in the file, comments included.
//!
//! Installing writes the file atomically and keeps the original beside it
//! (`<config>.switchboard-backup`). Uninstalling a file nobody has touched since puts the
//! original back byte for byte; one edited since loses only Switchboard's entry and gets back
//! the servers installing switched off.

mod jsonc;
mod wiring;

pub use wiring::{
    InstallReport, UninstallReport, install_reporting, serve_program, served_by,
    uninstall_reporting,
};

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;

use crate::durable::{self, IoAt, ReadError};
use crate::import::{MAX_CONFIG_BYTES, Places};

/// The name of Switchboard's entry in a client's server list.
pub const ENTRY_NAME: &str = "switchboard";

/// A client that launches MCP servers from a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiClient {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    VsCode,
    Windsurf,
    Zed,
}

impl AiClient {
    pub const ALL: [Self; 6] = [
        Self::ClaudeDesktop,
        Self::ClaudeCode,
        Self::Cursor,
        Self::VsCode,
        Self::Windsurf,
        Self::Zed,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::ClaudeDesktop => "claude",
            Self::ClaudeCode => "claude-code",
            Self::Cursor => "cursor",
            Self::VsCode => "vscode",
            Self::Windsurf => "windsurf",
            Self::Zed => "zed",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ClaudeDesktop => "Claude Desktop",
            Self::ClaudeCode => "Claude Code",
            Self::Cursor => "Cursor",
            Self::VsCode => "VS Code",
            Self::Windsurf => "Windsurf",
            Self::Zed => "Zed",
        }
    }

    /// The user-level config the client reads its servers from.
    pub fn config_path(self, places: &Places) -> PathBuf {
        let Places { home, config, .. } = places;
        match self {
            Self::ClaudeDesktop => config.join("Claude/claude_desktop_config.json"),
            Self::ClaudeCode => home.join(".claude.json"),
            Self::Cursor => home.join(".cursor/mcp.json"),
            Self::VsCode => config.join("Code/User/mcp.json"),
            Self::Windsurf => home.join(".codeium/windsurf/mcp_config.json"),
            Self::Zed if cfg!(windows) => config.join("Zed/settings.json"),
            Self::Zed => home.join(".config/zed/settings.json"),
        }
    }

    /// The top-level key holding the servers.
    fn servers_key(self) -> &'static str {
        match self {
            Self::VsCode => "servers",
            Self::Zed => "context_servers",
            _ => "mcpServers",
        }
    }

    /// Switchboard's entry, in this client's shape.
    fn entry(self, serve: &ServeCommand) -> Value {
        let mut entry = serde_json::json!({"command": serve.program, "args": serve.args});
        match self {
            Self::VsCode => entry["type"] = "stdio".into(),
            Self::ClaudeCode => entry["type"] = "stdio".into(),
            Self::Zed => entry["source"] = "custom".into(),
            _ => {}
        }
        entry
    }
}

impl fmt::Display for AiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for AiClient {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|c| c.id() == s).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|c| c.id()).collect();
            format!("no client {s:?}; one of {}", known.join(", "))
        })
    }
}

/// How a client is to start Switchboard: this binary, `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeCommand {
    pub program: String,
    pub args: Vec<String>,
}

impl ServeCommand {
    /// `<this binary> [--config-dir DIR] serve`; the config dir only when it is not the
    /// default, so the entry keeps following the user's default.
    pub fn new(program: &Path, config_dir: &Path) -> Self {
        let mut args = Vec::new();
        if crate::registry::default_config_dir().as_deref() != Some(config_dir) {
            args.extend(["--config-dir".to_string(), config_dir.display().to_string()]);
        }
        args.push("serve".into());
        Self {
            program: program.display().to_string(),
            args,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Write(#[from] IoAt),
    #[error("{}: {reason}", path.display())]
    Unusable { path: PathBuf, reason: String },
    #[error("{} is not installed here (no {})", client.name(), dir.display())]
    NotInstalled { client: AiClient, dir: PathBuf },
}

/// One client as `client list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientStatus {
    pub client: &'static str,
    pub name: &'static str,
    pub path: PathBuf,
    pub exists: bool,
    /// Whether an entry there starts `switchboard serve`.
    pub routes: bool,
    /// Its other servers, by name.
    pub servers: Vec<String>,
    pub error: Option<String>,
}

pub fn status(client: AiClient, places: &Places) -> ClientStatus {
    let path = client.config_path(places);
    let mut status = ClientStatus {
        client: client.id(),
        name: client.name(),
        exists: path.is_file(),
        path: path.clone(),
        routes: false,
        servers: Vec::new(),
        error: None,
    };
    if !status.exists {
        return status;
    }
    match read(&path).and_then(|text| jsonc::entries(&text, client.servers_key(), &path)) {
        Ok(entries) => {
            for (name, entry) in entries {
                if routes_through_switchboard(&entry) {
                    status.routes = true;
                } else {
                    status.servers.push(name);
                }
            }
        }
        Err(error) => status.error = Some(error.to_string()),
    }
    status
}

/// An entry that runs some `switchboard` binary with `serve`.
fn routes_through_switchboard(entry: &Value) -> bool {
    let program = entry["command"]
        .as_str()
        .or_else(|| entry["command"]["path"].as_str())
        .unwrap_or_default();
    let named = Path::new(program)
        .file_stem()
        .is_some_and(|stem| stem == "switchboard");
    let serves = entry["args"]
        .as_array()
        .or_else(|| entry["command"]["args"].as_array())
        .is_some_and(|args| args.iter().any(|a| a == "serve"));
    named && serves
}

/// What installing would do, ready to [`Install::apply`].
#[derive(Debug, Clone)]
pub struct Install {
    pub client: AiClient,
    pub path: PathBuf,
    /// The file as it is (`None`: it does not exist yet).
    pub before: Option<String>,
    pub after: String,
    /// The client's servers switched off there because Switchboard serves them.
    pub switched_off: Vec<String>,
    /// The client's servers Switchboard also serves, left on (both would run).
    pub duplicates: Vec<String>,
}

impl Install {
    pub fn changes_anything(&self) -> bool {
        self.before.as_deref() != Some(self.after.as_str())
    }

    pub fn backup_path(&self) -> PathBuf {
        backup_path(&self.path)
    }

    /// Keeps the original beside the file (once: a second install keeps the first original),
    /// then writes the new file atomically.
    pub fn apply(&self) -> Result<(), ClientError> {
        if !self.changes_anything() {
            return Ok(());
        }
        if let Some(before) = &self.before
            && !self.backup_path().exists()
        {
            durable::replace_file(&self.backup_path(), before.as_bytes())?;
        }
        durable::replace_file(&self.path, self.after.as_bytes())?;
        Ok(())
    }
}

/// Plans putting `serve` in `client`'s config; with `take_over`, the servers `served` says
/// Switchboard serves are switched off there (kept in the backup, put back by uninstall).
pub fn plan_install(
    client: AiClient,
    places: &Places,
    serve: &ServeCommand,
    take_over: bool,
    served: &dyn Fn(&str, &Value) -> bool,
) -> Result<Install, ClientError> {
    let path = client.config_path(places);
    let before = if path.symlink_metadata().is_ok() {
        Some(read(&path)?)
    } else {
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        if !dir.is_dir() {
            return Err(ClientError::NotInstalled { client, dir });
        }
        None
    };
    let (after, switched_off, duplicates) =
        installed_text(client, &path, before.as_deref(), serve, take_over, served)?;
    Ok(Install {
        client,
        path,
        before,
        after,
        switched_off,
        duplicates,
    })
}

type Installed = (String, Vec<String>, Vec<String>);

/// The file with Switchboard's entry (and, with `take_over`, without the servers it serves).
fn installed_text(
    client: AiClient,
    path: &Path,
    before: Option<&str>,
    serve: &ServeCommand,
    take_over: bool,
    served: &dyn Fn(&str, &Value) -> bool,
) -> Result<Installed, ClientError> {
    let text = before.unwrap_or("{}\n");
    let key = client.servers_key();
    let doubled: Vec<String> = jsonc::entries(text, key, path)?
        .into_iter()
        .filter(|(name, entry)| name != ENTRY_NAME && served(name, entry))
        .map(|(name, _)| name)
        .collect();
    let remove: &[String] = if take_over { &doubled } else { &[] };
    let after = jsonc::edit(
        text,
        key,
        path,
        ENTRY_NAME,
        Some(&client.entry(serve)),
        remove,
    )?;
    Ok(if take_over {
        (after, doubled, Vec::new())
    } else {
        (after, Vec::new(), doubled)
    })
}

/// What uninstalling did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uninstalled {
    /// Nobody changed the file since: the original is back, byte for byte (or, where there
    /// was none, the file is gone).
    Restored,
    /// Changed since: only Switchboard's entry left, and the servers installing switched off
    /// came back (named).
    Removed { restored_servers: Vec<String> },
    /// There was no entry to remove.
    NotInstalled,
}

/// Takes Switchboard's entry out of `client`'s config.
pub fn uninstall(
    client: AiClient,
    places: &Places,
    serve: &ServeCommand,
    served: &dyn Fn(&str, &Value) -> bool,
) -> Result<Uninstalled, ClientError> {
    let path = client.config_path(places);
    let backup = backup_path(&path);
    if path.symlink_metadata().is_err() {
        return Ok(Uninstalled::NotInstalled);
    }
    let now = read(&path)?;
    let original = if backup.exists() {
        Some(read(&backup)?)
    } else {
        None
    };
    // Untouched since install: exactly what installing the original gives, either way.
    for take_over in [false, true] {
        let (installed, _, _) =
            installed_text(client, &path, original.as_deref(), serve, take_over, served)?;
        if installed == now {
            match &original {
                Some(original) => durable::replace_file(&path, original.as_bytes())?,
                None => std::fs::remove_file(&path).map_err(|e| IoAt::new(&path, e))?,
            }
            remove_backup(&backup)?;
            return Ok(Uninstalled::Restored);
        }
    }
    let key = client.servers_key();
    let present: Vec<String> = jsonc::entries(&now, key, &path)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    if !present.iter().any(|n| n == ENTRY_NAME) {
        return Ok(Uninstalled::NotInstalled);
    }
    let mut text = jsonc::edit(&now, key, &path, ENTRY_NAME, None, &[])?;
    let mut restored_servers = Vec::new();
    if let Some(original) = &original {
        for (name, entry) in jsonc::entries(original, key, &backup)? {
            if name != ENTRY_NAME && !present.contains(&name) {
                text = jsonc::edit(&text, key, &path, &name, Some(&entry), &[])?;
                restored_servers.push(name);
            }
        }
    }
    durable::replace_file(&path, text.as_bytes())?;
    remove_backup(&backup)?;
    Ok(Uninstalled::Removed { restored_servers })
}

fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".switchboard-backup");
    path.with_file_name(name)
}

fn remove_backup(backup: &Path) -> Result<(), ClientError> {
    match std::fs::remove_file(backup) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IoAt::new(backup, e).into()),
    }
}

/// A config's text: a regular file (never through a link: it is written back), bounded, UTF-8.
fn read(path: &Path) -> Result<String, ClientError> {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_symlink()
    {
        let target = std::fs::read_link(path).unwrap_or_default();
        return Err(ClientError::Unusable {
            path: path.to_path_buf(),
            reason: format!(
                "is a symbolic link (to {}); Switchboard does not write through links: \
                 add the entry there by hand, or replace the link with the file",
                target.display()
            ),
        });
    }
    let bytes = durable::read_bounded(path, MAX_CONFIG_BYTES)?;
    String::from_utf8(bytes).map_err(|_| ClientError::Unusable {
        path: path.to_path_buf(),
        reason: "is not UTF-8 text".into(),
    })
}
