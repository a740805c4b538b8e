//! What `servers.json` holds, as validated types.
//!
//! The file is a superset of the `mcpServers` shape Claude Desktop and Cursor use. Validation runs
//! inside deserialization so that `serde_json` reports every problem with its line and column, and
//! unknown fields are carried along in `extra` so a rewrite never drops what another tool wrote.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::connector::Quotas;

mod validate;

pub use validate::Invalid;
pub(crate) use validate::check_headers;
use validate::{check_command, check_env, check_url};

/// Longest server name accepted, in characters. Names end up in menus, tool prefixes and labels.
pub const MAX_NAME_CHARS: usize = 64;

/// A server's name: non-empty, at most [`MAX_NAME_CHARS`], no control characters, no surrounding
/// whitespace, and no `.` (tools are namespaced `server.tool`, so a dot would make that ambiguous).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ServerName(Arc<str>);

impl ServerName {
    /// Validates `name`, saying what is wrong with it if anything is.
    pub fn new(name: impl Into<String>) -> Result<Self, Invalid> {
        let name = name.into();
        let chars = name.chars().count();
        if chars == 0 {
            return Err(Invalid::new("name", "server name is empty"));
        }
        if chars > MAX_NAME_CHARS {
            return Err(Invalid::new(
                "name",
                format!(
                    "server name is {chars} characters long, over the limit of {MAX_NAME_CHARS}"
                ),
            ));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(Invalid::new(
                "name",
                format!(
                    "server name {:?} contains the control character U+{:04X}",
                    name, c as u32
                ),
            ));
        }
        if name.trim() != name {
            return Err(Invalid::new(
                "name",
                format!("server name {name:?} starts or ends with whitespace"),
            ));
        }
        if name.contains('.') {
            return Err(Invalid::new(
                "name",
                format!("server name {name:?} contains '.', which separates server and tool names"),
            ));
        }
        Ok(Self(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ServerName {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for ServerName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

/// How a remote server is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteKind {
    /// Streamable HTTP (the current transport).
    Http,
    /// The deprecated HTTP+SSE transport.
    Sse,
}

impl RemoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Sse => "sse",
        }
    }
}

/// How Switchboard reaches a server.
#[derive(Debug, Clone, PartialEq)]
pub enum Launch {
    /// A child process speaking MCP over stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: IndexMap<String, String>,
        cwd: Option<String>,
    },
    /// A server at a URL.
    Remote {
        url: String,
        kind: RemoteKind,
        headers: IndexMap<String, String>,
    },
}

impl Launch {
    /// `"stdio"`, `"http"` or `"sse"`.
    pub fn transport(&self) -> &'static str {
        match self {
            Self::Stdio { .. } => "stdio",
            Self::Remote { kind, .. } => kind.as_str(),
        }
    }
}

/// One server of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ServerEntryFields", into = "ServerEntryFields")]
pub struct ServerEntry {
    pub launch: Launch,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub timeouts: Timeouts,
    /// Its tools the user switched off: not served to AI clients (names on its server).
    pub disabled_tools: Vec<String>,
    /// Limits on calls to it.
    pub quotas: Quotas,
    /// A remote server's OAuth client (`"oauth": {"clientId", "scopes", "clientMetadataUrl"}`).
    pub oauth: Option<crate::signin::ClientIdentity>,
    /// Fields Switchboard does not know, kept as they were.
    pub extra: Map<String, Value>,
}

impl ServerEntry {
    pub fn stdio(command: impl Into<String>, args: Vec<String>) -> Self {
        Self::new(Launch::Stdio {
            command: command.into(),
            args,
            env: IndexMap::new(),
            cwd: None,
        })
    }

    pub fn remote(url: impl Into<String>, kind: RemoteKind) -> Self {
        Self::new(Launch::Remote {
            url: url.into(),
            kind,
            headers: IndexMap::new(),
        })
    }

    pub fn new(launch: Launch) -> Self {
        Self {
            launch,
            enabled: true,
            tags: Vec::new(),
            timeouts: Timeouts::default(),
            disabled_tools: Vec::new(),
            quotas: Quotas::default(),
            oauth: None,
            extra: Map::new(),
        }
    }

    /// Checks what deserialization checks, for entries built in code (CLI, UI, import).
    pub fn validate(&self) -> Result<(), Invalid> {
        ServerEntry::try_from(ServerEntryFields::from(self.clone())).map(|_| ())
    }

    /// An entry in the `mcpServers` shape, as a client (the window) sent it, checked.
    pub fn from_json(value: Value) -> Result<Self, Invalid> {
        let fields: ServerEntryFields =
            serde_json::from_value(value).map_err(|e| Invalid::new("entry", e.to_string()))?;
        Self::try_from(fields)
    }

    /// This entry as edited from a [`ServerEntry::redacted`] copy of `previous`: every value
    /// still showing the marker keeps `previous`'s value under the same name.
    pub fn unredacted(mut self, previous: &ServerEntry) -> Self {
        let (values, old) = match (&mut self.launch, &previous.launch) {
            (
                Launch::Stdio { env, args, .. },
                Launch::Stdio {
                    env: old,
                    args: old_args,
                    ..
                },
            ) => {
                // An argument still as shown masked is the same argument.
                let shown = crate::credentials::redacted_args(old_args);
                for (i, arg) in args.iter_mut().enumerate() {
                    if arg.contains(REDACTED) && shown.get(i) == Some(arg) {
                        arg.clone_from(&old_args[i]);
                    }
                }
                (env, old)
            }
            (
                Launch::Remote { headers, url, .. },
                Launch::Remote {
                    headers: old,
                    url: old_url,
                    ..
                },
            ) => {
                // The URL as shown, its credentials masked: it is the same URL.
                if *url == crate::credentials::redacted_url(old_url) {
                    url.clone_from(old_url);
                }
                (headers, old)
            }
            _ => return self,
        };
        for (name, value) in values.iter_mut() {
            if value == REDACTED
                && let Some(kept) = old.get(name)
            {
                value.clone_from(kept);
            }
        }
        self
    }

    /// The same server with anything the user could call a secret replaced by a marker, for
    /// printing and for the UI.
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        match &mut copy.launch {
            Launch::Stdio { env, args, .. } => {
                env.values_mut().for_each(|v| *v = REDACTED.into());
                *args = crate::credentials::redacted_args(args);
            }
            Launch::Remote { headers, url, .. } => {
                headers.values_mut().for_each(|v| *v = REDACTED.into());
                *url = crate::credentials::redacted_url(url);
            }
        }
        copy
    }
}

/// Per-server deadlines, in the manifest's shape (`{"connectMs": 5000, "callMs": 30000}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_ms: Option<u64>,
}

impl Timeouts {
    fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

/// What secrets are replaced with wherever they are shown.
pub const REDACTED: &str = "<redacted>";

/// The raw shape of one entry, as other MCP clients write it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerEntryFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    env: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    headers: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Timeouts::is_unset")]
    timeouts: Timeouts,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    disabled_tools: Vec<String>,
    #[serde(default, skip_serializing_if = "Quotas::is_unset")]
    quotas: Quotas,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oauth: Option<crate::signin::ClientIdentity>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl TryFrom<ServerEntryFields> for ServerEntry {
    type Error = Invalid;

    fn try_from(f: ServerEntryFields) -> Result<Self, Invalid> {
        let entry = |reason: String| Invalid::new("entry", reason);
        let kind = f.kind.as_deref().map(str::trim);
        let launch = match (f.command, f.url) {
            (Some(_), Some(_)) => {
                return Err(entry(
                    "entry has both \"command\" (stdio) and \"url\" (remote)".into(),
                ));
            }
            (None, None) => {
                return Err(entry(
                    "entry needs \"command\" (a stdio server) or \"url\" (a remote server)".into(),
                ));
            }
            (Some(command), None) => {
                if !matches!(kind, None | Some("stdio")) {
                    return Err(entry(format!(
                        "\"type\" is {:?} but the entry has a \"command\"; use \"stdio\" or a \"url\"",
                        kind.unwrap_or_default()
                    )));
                }
                check_command(&command, &f.args)?;
                check_env(&f.env)?;
                Launch::Stdio {
                    command,
                    args: f.args,
                    env: f.env,
                    cwd: f.cwd,
                }
            }
            (None, Some(url)) => {
                let kind = match kind {
                    None | Some("http" | "streamable-http" | "streamableHttp") => RemoteKind::Http,
                    Some("sse") => RemoteKind::Sse,
                    Some(other) => {
                        return Err(entry(format!(
                            "\"type\" is {other:?}; expected \"http\" or \"sse\" for a \"url\" entry"
                        )));
                    }
                };
                check_url(&url)?;
                check_headers(&f.headers)?;
                Launch::Remote {
                    url,
                    kind,
                    headers: f.headers,
                }
            }
        };
        if let Some(tag) = f
            .tags
            .iter()
            .find(|t| t.is_empty() || t.chars().any(char::is_control))
        {
            return Err(entry(format!(
                "tag {tag:?} is empty or has control characters"
            )));
        }
        let max = crate::connector::MAX_TIMEOUT_MS;
        if [f.timeouts.connect_ms, f.timeouts.call_ms]
            .into_iter()
            .flatten()
            .any(|ms| ms == 0 || ms > max)
        {
            return Err(entry(format!("timeouts must be 1 to {max} ms")));
        }
        if let Some(tool) = f.disabled_tools.iter().find(|t| !is_tool_name(t)) {
            return Err(entry(format!(
                "disabledTools: {tool:?} is empty or has control characters"
            )));
        }
        f.quotas
            .check()
            .map_err(|reason| entry(format!("quotas: {reason}")))?;
        if let Some(oauth) = &f.oauth {
            if matches!(launch, Launch::Stdio { .. }) {
                return Err(entry(
                    "\"oauth\" is for remote (\"url\") servers; a stdio server signs in by itself"
                        .into(),
                ));
            }
            if let Some(problem) = oauth.problem() {
                return Err(entry(problem));
            }
        }
        Ok(Self {
            launch,
            enabled: f.enabled.unwrap_or(true),
            tags: f.tags,
            timeouts: f.timeouts,
            disabled_tools: f.disabled_tools,
            quotas: f.quotas,
            oauth: f.oauth,
            extra: f.extra,
        })
    }
}

impl From<ServerEntry> for ServerEntryFields {
    fn from(e: ServerEntry) -> Self {
        let mut fields = ServerEntryFields {
            enabled: (!e.enabled).then_some(false),
            tags: e.tags,
            timeouts: e.timeouts,
            disabled_tools: e.disabled_tools,
            quotas: e.quotas,
            oauth: e.oauth,
            extra: e.extra,
            ..Default::default()
        };
        match e.launch {
            Launch::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                fields.command = Some(command);
                fields.args = args;
                fields.env = env;
                fields.cwd = cwd;
            }
            Launch::Remote { url, kind, headers } => {
                fields.url = Some(url);
                fields.kind = Some(kind.as_str().into());
                fields.headers = headers;
            }
        }
        fields
    }
}

/// A manual toggle for a connector that comes from the manifest, not from this file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The connector's tools the user switched off (names on its server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_tools: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConnectorOverride {
    /// Whether it says nothing any more (and can go).
    pub fn is_empty(&self) -> bool {
        self.enabled.is_none() && self.disabled_tools.is_empty() && self.extra.is_empty()
    }
}

/// A tool's name as a server gives it: anything but empty or with control characters.
pub fn is_tool_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}

/// Switchboard's own bookkeeping block in `servers.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMeta {
    /// The journal sequence number this file already contains; replay starts after it.
    #[serde(default)]
    pub journal_seq: u64,
    /// The connector manifest (service map) to follow, set from the app; it wins over
    /// `SWITCHBOARD_MANIFEST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The servers by name, in the file's order. Entries are shared so that a snapshot of the
/// registry costs reference counts, not a deep copy, however often it is taken.
pub type Servers = IndexMap<ServerName, Arc<ServerEntry>>;

/// The whole of `servers.json` (format version 1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServersFileV1 {
    #[serde(default)]
    pub mcp_servers: Servers,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub connector_overrides: IndexMap<String, ConnectorOverride>,
    #[serde(default)]
    pub switchboard: FileMeta,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests;
