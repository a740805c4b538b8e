//! Importing the servers other MCP clients already know, with a preview of what would change.
//!
//! Nothing here writes: [`read_sources`] finds and parses configs, [`plan`] compares them with
//! the registry, and the caller applies [`ImportPlan::edits`] through the registry API. A name
//! that is already taken by a different server is a conflict to report, never an overwrite.

mod formats;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use indexmap::IndexMap;

pub use formats::{MAX_CONFIG_BYTES, MAX_DEPTH, secrets_in, within_depth};

use crate::registry::model::{Launch, ServerEntry, ServerName};
use crate::registry::{Edit, RegistrySnapshot};

/// A client whose config Switchboard can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Claude,
    Cursor,
    VsCode,
    Windsurf,
    Zed,
    /// The system Switchboard replaces (`~/.config/cortex-os/mcp/servers.json`).
    Cortex,
}

impl ClientKind {
    pub const ALL: [ClientKind; 6] = [
        Self::Claude,
        Self::Cursor,
        Self::VsCode,
        Self::Windsurf,
        Self::Zed,
        Self::Cortex,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::Cursor => "cursor",
            Self::VsCode => "vscode",
            Self::Windsurf => "windsurf",
            Self::Zed => "zed",
            Self::Cortex => "cortex",
        }
    }

    /// Where this client keeps its MCP servers, most general first.
    pub fn config_paths(self, places: &Places) -> Vec<PathBuf> {
        let Places { home, config, cwd } = places;
        match self {
            Self::Claude => vec![config.join("Claude/claude_desktop_config.json")],
            Self::Cursor => vec![home.join(".cursor/mcp.json"), cwd.join(".cursor/mcp.json")],
            Self::VsCode => vec![
                config.join("Code/User/mcp.json"),
                cwd.join(".vscode/mcp.json"),
            ],
            Self::Windsurf => vec![home.join(".codeium/windsurf/mcp_config.json")],
            // Zed keeps ~/.config/zed on macOS too; only Windows follows the platform dir.
            Self::Zed if cfg!(windows) => vec![config.join("Zed/settings.json")],
            Self::Zed => vec![home.join(".config/zed/settings.json")],
            Self::Cortex => vec![home.join(".config/cortex-os/mcp/servers.json")],
        }
    }
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// What to import from: a client's known locations, or one file of any supported shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportSource {
    Client(ClientKind),
    Path(PathBuf),
}

impl FromStr for ImportSource {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ClientKind::ALL
            .into_iter()
            .find(|k| k.id() == s)
            .map_or_else(|| Self::Path(PathBuf::from(s)), Self::Client))
    }
}

/// The directories client configs are found relative to.
#[derive(Debug, Clone)]
pub struct Places {
    pub home: PathBuf,
    /// The platform config dir (`~/.config`, `~/Library/Application Support`, `%APPDATA%`).
    pub config: PathBuf,
    /// Project-level configs (`.cursor/`, `.vscode/`) are looked for here.
    pub cwd: PathBuf,
}

impl Places {
    pub fn detect() -> Option<Self> {
        let base = directories::BaseDirs::new()?;
        Some(Self {
            home: base.home_dir().to_path_buf(),
            config: base.config_dir().to_path_buf(),
            cwd: std::env::current_dir().ok()?,
        })
    }
}

/// A server found in a client config, ready to add.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: ServerName,
    pub entry: ServerEntry,
    pub origin: PathBuf,
    /// Fields holding literal secrets (`env.GITHUB_TOKEN`, `headers.Authorization`).
    pub secrets: Vec<String>,
    pub notes: Vec<String>,
}

/// An entry that cannot be imported, and why.
#[derive(Debug, Clone)]
pub struct Unusable {
    pub name: String,
    pub origin: PathBuf,
    pub reason: String,
}

/// What one config file held.
#[derive(Debug, Default)]
pub struct Found {
    pub candidates: Vec<Candidate>,
    pub unusable: Vec<Unusable>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("no {client} config found (looked at {})", looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        client: ClientKind,
        looked: Vec<PathBuf>,
    },
    #[error("{}: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
    #[error("cannot tell where the home directory is")]
    NoHome,
    #[error("found no Claude Desktop, Cursor, VS Code, Windsurf, Zed or cortex-os config")]
    NothingFound,
}

/// Reads `source`, or without one every client config found on this machine.
pub fn find(source: Option<&ImportSource>, places: &Places) -> Result<Vec<Found>, ImportError> {
    match source {
        Some(source) => read_sources(source, places),
        None => {
            let configs = detect_all(places);
            if configs.is_empty() {
                return Err(ImportError::NothingFound);
            }
            configs
                .into_iter()
                .map(|(kind, path)| read_config(&path, Some(kind)))
                .collect()
        }
    }
}

/// Reads every config `source` points at. A client's location that does not exist is skipped;
/// a client with none at all is an error, as is an explicit path that cannot be read.
pub fn read_sources(source: &ImportSource, places: &Places) -> Result<Vec<Found>, ImportError> {
    match source {
        ImportSource::Path(path) => Ok(vec![read_config(path, None)?]),
        ImportSource::Client(kind) => {
            let paths = kind.config_paths(places);
            let present: Vec<&PathBuf> = paths.iter().filter(|p| p.is_file()).collect();
            if present.is_empty() {
                return Err(ImportError::NotFound {
                    client: *kind,
                    looked: paths,
                });
            }
            present
                .into_iter()
                .map(|p| read_config(p, Some(*kind)))
                .collect()
        }
    }
}

/// Every client config present on this machine, for "import everything" and the first run.
pub fn detect_all(places: &Places) -> Vec<(ClientKind, PathBuf)> {
    ClientKind::ALL
        .into_iter()
        .flat_map(|kind| {
            kind.config_paths(places)
                .into_iter()
                .map(move |p| (kind, p))
        })
        .filter(|(_, p)| p.is_file())
        .collect()
}

/// Reads one config file; `kind` is guessed from the content when `None`.
pub fn read_config(path: &Path, kind: Option<ClientKind>) -> Result<Found, ImportError> {
    let unreadable = |message: String| ImportError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let bytes = crate::durable::read_bounded(path, MAX_CONFIG_BYTES).map_err(|e| match e {
        crate::durable::ReadError::TooLarge { .. } => unreadable(format!(
            "over the {MAX_CONFIG_BYTES}-byte limit for a client config"
        )),
        crate::durable::ReadError::Io(e) => unreadable(e.source.to_string()),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8 text".into()))?;
    formats::parse(&text, path, kind).map_err(unreadable)
}

/// What importing one server would do.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanAction {
    Add(Box<ServerEntry>),
    /// The registry already has this exact server.
    Unchanged,
    /// The name is taken by a different server; not imported.
    Conflict(String),
    /// The entry cannot be imported.
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct PlanItem {
    pub name: String,
    pub origin: PathBuf,
    pub action: PlanAction,
    pub secrets: Vec<String>,
    pub notes: Vec<String>,
}

/// The preview of an import: exactly what applying it adds, skips and refuses.
#[derive(Debug, Clone, Default)]
pub struct ImportPlan {
    pub items: Vec<PlanItem>,
}

impl ImportPlan {
    /// The edits that carry out this plan (additions only).
    pub fn edits(&self) -> Vec<Edit> {
        self.items
            .iter()
            .filter_map(|item| match &item.action {
                PlanAction::Add(entry) => Some(Edit::Add {
                    name: ServerName::new(item.name.clone()).ok()?,
                    entry: (**entry).clone(),
                }),
                _ => None,
            })
            .collect()
    }
}

/// Compares what was found with the registry.
pub fn plan(registry: &RegistrySnapshot, found: Vec<Found>) -> ImportPlan {
    let mut items = Vec::new();
    // Servers earlier in this same import, so two configs naming one server do not both add it.
    let mut planned: IndexMap<ServerName, (ServerEntry, PathBuf)> = IndexMap::new();
    for config in found {
        for c in config.candidates {
            let existing = registry
                .servers
                .get(&c.name)
                .map(|e| (&**e, "the registry".to_string()))
                .or_else(|| {
                    planned
                        .get(&c.name)
                        .map(|(e, origin)| (e, origin.display().to_string()))
                });
            let action = match existing {
                None => PlanAction::Add(Box::new(c.entry.clone())),
                Some((current, _)) if current.launch == c.entry.launch => PlanAction::Unchanged,
                Some((current, whose)) => PlanAction::Conflict(format!(
                    "{} differs from the server of that name in {whose}",
                    launch_difference(&current.launch, &c.entry.launch)
                )),
            };
            if matches!(action, PlanAction::Add(_)) {
                planned.insert(c.name.clone(), (c.entry.clone(), c.origin.clone()));
            }
            items.push(PlanItem {
                name: c.name.to_string(),
                origin: c.origin,
                action,
                secrets: c.secrets,
                notes: c.notes,
            });
        }
        items.extend(config.unusable.into_iter().map(|u| PlanItem {
            name: u.name,
            origin: u.origin,
            action: PlanAction::Invalid(u.reason),
            secrets: Vec::new(),
            notes: Vec::new(),
        }));
    }
    ImportPlan { items }
}

fn launch_difference(a: &Launch, b: &Launch) -> &'static str {
    match (a, b) {
        (
            Launch::Stdio {
                command: c1,
                args: a1,
                ..
            },
            Launch::Stdio {
                command: c2,
                args: a2,
                ..
            },
        ) => {
            if c1 != c2 {
                "command"
            } else if a1 != a2 {
                "args"
            } else {
                "env or cwd"
            }
        }
        (
            Launch::Remote {
                url: u1, kind: k1, ..
            },
            Launch::Remote {
                url: u2, kind: k2, ..
            },
        ) => {
            if u1 != u2 {
                "url"
            } else if k1 != k2 {
                "type"
            } else {
                "headers"
            }
        }
        _ => "transport",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, kind: Option<ClientKind>) -> Found {
        formats::parse(text, Path::new("test.json"), kind).expect("should parse")
    }

    #[test]
    fn every_client_shape_is_read() {
        let claude = parse(
            r#"{"mcpServers":{"fs":{"command":"npx","args":["-y","@modelcontextprotocol/server-filesystem","/tmp"]}}}"#,
            Some(ClientKind::Claude),
        );
        assert_eq!(claude.candidates[0].entry.launch.transport(), "stdio");

        let windsurf = parse(
            r#"{"mcpServers":{"remote":{"serverUrl":"https://mcp.example/sse","disabled":true}}}"#,
            Some(ClientKind::Windsurf),
        );
        let entry = &windsurf.candidates[0].entry;
        assert!(
            matches!(&entry.launch, Launch::Remote { url, .. } if url == "https://mcp.example/sse")
        );
        assert!(!entry.enabled, "disabled:true should import disabled");

        let vscode = parse(
            r#"{ // VS Code allows comments
              "inputs": [{"type": "promptString", "id": "gh", "password": true}],
              "servers": {
                "github": {"type": "http", "url": "https://api.example/mcp", "headers": {"Authorization": "Bearer ${input:gh}"}},
                "local": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time"],},
              }}"#,
            None,
        );
        assert_eq!(vscode.candidates.len(), 2, "{:?}", vscode.unusable);
        let github = &vscode.candidates[0];
        assert!(
            !github.entry.enabled,
            "an ${{input:…}} server imports disabled"
        );
        assert!(
            github.notes[0].contains("${input:gh}"),
            "{:?}",
            github.notes
        );
        assert!(
            github.secrets.is_empty(),
            "an input reference is not a literal secret"
        );

        let zed = parse(
            r#"{"theme": "One Dark", "context_servers": {
                "old": {"command": {"path": "node", "args": ["a.js"], "env": {"API_TOKEN": "abc"}}},
                "new": {"source": "custom", "command": "npx", "args": ["-y", "x"]},
                "ext": {"source": "extension", "settings": {}}}}"#,
            None,
        );
        assert_eq!(zed.candidates.len(), 2);
        assert_eq!(zed.candidates[0].secrets, ["env.API_TOKEN"]);
        assert!(
            zed.unusable[0].reason.contains("extension"),
            "{:?}",
            zed.unusable
        );

        let cortex = parse(
            r#"{"servers":[{"name":"wiki","transport":"streamableHttp","endpoint":"http://127.0.0.1:7/mcp","headers":{"X-Api-Key":"k"}},
                           {"name":"shell","transport":"stdio","command":"bash","args":["-c","x"]},
                           {"name":"bad","transport":"carrier-pigeon"}]}"#,
            None,
        );
        assert_eq!(cortex.candidates.len(), 2, "{:?}", cortex.unusable);
        assert_eq!(cortex.candidates[0].secrets, ["headers.X-Api-Key"]);
        assert!(cortex.unusable[0].reason.contains("carrier-pigeon"));
    }

    #[test]
    fn dotted_names_are_renamed_and_bad_entries_reported() {
        let found = parse(
            r#"{"mcpServers":{"my.server":{"command":"x"},"neither":{"args":[]},"":{"command":"y"}}}"#,
            None,
        );
        assert_eq!(found.candidates[0].name.as_str(), "my-server");
        assert!(found.candidates[0].notes[0].contains("renamed"));
        let reasons: Vec<_> = found.unusable.iter().map(|u| u.reason.as_str()).collect();
        assert!(reasons[0].contains("needs \"command\""), "{reasons:?}");
        assert!(reasons[1].contains("empty"), "{reasons:?}");
    }

    #[test]
    fn plan_adds_new_skips_identical_and_reports_clashes() {
        let mut registry = RegistrySnapshot::default();
        let name = |s: &str| ServerName::new(s).unwrap();
        registry.servers.insert(
            name("same"),
            std::sync::Arc::new(ServerEntry::stdio("a", vec![])),
        );
        registry.servers.insert(
            name("clash"),
            std::sync::Arc::new(ServerEntry::stdio("a", vec![])),
        );
        let found = parse(
            r#"{"mcpServers":{"same":{"command":"a"},"clash":{"command":"b"},"new":{"command":"c"}}}"#,
            None,
        );
        let again = parse(r#"{"mcpServers":{"new":{"command":"d"}}}"#, None);
        let plan = plan(&registry, vec![found, again]);
        let actions: Vec<_> = plan
            .items
            .iter()
            .map(|i| (i.name.as_str(), &i.action))
            .collect();
        assert_eq!(actions[0], ("same", &PlanAction::Unchanged));
        assert!(
            matches!(actions[1], ("clash", PlanAction::Conflict(why)) if why.contains("command"))
        );
        assert!(matches!(actions[2], ("new", PlanAction::Add(_))));
        assert!(
            matches!(actions[3], ("new", PlanAction::Conflict(why)) if why.contains("test.json"))
        );
        assert_eq!(plan.edits().len(), 1, "only the new server is added");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = formats::parse("{\n\"mcpServers\": {,}}", Path::new("x"), None).unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }
}
