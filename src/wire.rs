//! The one typed wire between the daemon and its clients (the window process, the CLI): what
//! may be asked ([`Request`]), what comes back ([`Down`]), the one error shape ([`WireError`]),
//! and the framing (JSON lines of bounded length).
//!
//! A call goes up as `{"id": N, "command": "set_enabled", "args": {…}}`; the command and its
//! arguments are parsed into [`Request`] on the daemon's side, so a wrong command and wrong
//! arguments get different codes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The call (not a [`Request`]: it is about the connection, not the daemon) after which a
/// client hears the daemon's events and `Show` as they happen. The window makes it; with
/// `args` `{"only": "tools"}` (`serve`), only [`TOOLS_EVENT`] comes, not every overview.
pub const SUBSCRIBE: &str = "subscribe";

/// The call (about the connection, like [`SUBSCRIBE`]) that cancels the client's call
/// `args.call` if it still runs: its upstream request is dropped, and the server told.
pub const CANCEL: &str = "cancel";

/// The call (about the connection, like [`CANCEL`]) that answers the daemon's
/// [`Down::Question`] `args.question` with `args.answer` (an `ElicitResult`).
pub const ANSWER: &str = "answer";

/// The call (about the connection) after whose answer the connection carries one MCP session
/// instead, served by the daemon itself: `serve` makes it, then only passes lines along.
pub const MCP: &str = "mcp";

/// The event a subscribed client hears when the catalog changes (a tool came or went): ask
/// [`Request::Tools`] again.
pub const TOOLS_EVENT: &str = "tools";

/// Longest line either side accepts (a tool's answer can be large; anything longer is refused
/// rather than buffered without bound).
pub const MAX_LINE: usize = 16 << 20;

/// Everything a client of the daemon may ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// The fleet as the tray sees it ([`crate::overview::Overview`]).
    Overview {},
    SetEnabled {
        id: String,
        enabled: bool,
    },
    /// Re-check every connector; with `wait`, answer with the overview once settled.
    SyncNow {
        #[serde(default)]
        wait: bool,
    },
    /// Every live tool ([`crate::overview::ToolView`]s).
    Tools {},
    CallTool {
        /// `connector.tool`
        tool: String,
        #[serde(default)]
        arguments: Value,
        /// Send the server's progress updates ([`Down::Progress`]) while the call runs.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        progress: bool,
        /// Pass the server's questions ([`Down::Question`]) while the call runs; without,
        /// they are declined.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        asks: bool,
        /// Who asks (an AI client's name), for the call log.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
        /// The id the caller logs the call under.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        correlation: Option<String>,
    },
    /// The last calls made through the daemon, newest first ([`crate::call_log::CallRecord`]s).
    CallLog {},
    /// Every live connector's resources ([`crate::offerings::Offered`]), asked of them now.
    Resources {},
    ResourceTemplates {},
    ReadResource {
        connector: String,
        uri: String,
    },
    /// The AI clients' configs found here ([`crate::clients::ClientStatus`]es).
    Clients {},
    /// Points `client` at Switchboard ([`crate::clients::InstallReport`]); a preview unless
    /// `apply`; with `take_over`, the servers Switchboard serves are switched off there.
    InstallClient {
        client: String,
        #[serde(default)]
        take_over: bool,
        #[serde(default)]
        apply: bool,
    },
    UninstallClient {
        client: String,
    },
    Prompts {},
    GetPrompt {
        connector: String,
        name: String,
        #[serde(default)]
        arguments: Option<serde_json::Map<String, Value>>,
    },
    /// Switches one tool (`connector.tool`) on or off for AI clients.
    SetToolEnabled {
        tool: String,
        enabled: bool,
    },
    LatencySvg {
        id: String,
        #[serde(default)]
        dark: bool,
        /// Only the calls of the last this many seconds (at most an hour); all since start
        /// without.
        #[serde(default)]
        window_s: Option<u64>,
    },
    RegistryEntries {},
    SaveServer {
        original: Option<String>,
        name: String,
        entry: Value,
    },
    RemoveServer {
        name: String,
    },
    SetManifest {
        source: Option<String>,
    },
    ImportPreview {
        from: Option<String>,
    },
    ImportApply {
        from: Option<String>,
    },
    /// Starts signing connector `id` in ([`crate::daemon::SignInStarted`]: the page to approve
    /// it on); with `open_browser`, the daemon opens it.
    SignIn {
        id: String,
        #[serde(default)]
        open_browser: bool,
    },
    /// Waits for connector `id`'s sign-in to end.
    SignInWait {
        id: String,
    },
    SignOut {
        id: String,
    },
    /// Whether each remote connector is signed in (never a token).
    SignInStatus {},
    /// The HTTP endpoint's setting and where it serves ([`crate::endpoint::EndpointStatus`]).
    Endpoint {},
    /// Serves the HTTP endpoint as asked, and keeps the setting once it serves so; what is
    /// left out stays as it was.
    SetEndpoint {
        enabled: bool,
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        require_token: Option<bool>,
    },
}

impl Request {
    /// Every command, by the name it has on the wire (and in the app's capabilities).
    pub const NAMES: &[&str] = include!("wire/command_names.in");

    /// The request `command` with `args` (`null` or absent: none), or why it is not one.
    pub fn parse(command: &str, args: Value) -> Result<Self, WireError> {
        if !Self::NAMES.contains(&command) {
            return Err(WireError::new(
                "unknown_command",
                format!("no command {command:?}"),
            ));
        }
        let args = if args.is_null() {
            Value::Object(Default::default())
        } else {
            args
        };
        serde_json::from_value(serde_json::json!({"command": command, "args": args}))
            .map_err(|e| WireError::new("bad_arguments", format!("{command}: {e}")))
    }

    /// The request as it goes up the wire: its command's name and its arguments.
    pub fn into_call(self, id: u64) -> Call {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        let command = value["command"].as_str().unwrap_or_default().to_string();
        Call {
            id,
            command,
            args: value.get_mut("args").map(Value::take).unwrap_or_default(),
        }
    }
}

/// A request as it travels: parsed into a [`Request`] where it is answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub id: u64,
    pub command: String,
    #[serde(default)]
    pub args: Value,
}

/// What the daemon sends a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Down {
    /// The answer to call `id`: what it returned, or why it failed.
    Answer {
        id: u64,
        result: Result<Value, WireError>,
    },
    /// An event for the window (`overview`).
    Event { name: String, payload: Value },
    /// How far call `id` (asked with `progress`) has come, as its server says.
    Progress {
        id: u64,
        update: crate::session::Progress,
    },
    /// The server of call `id` (asked with `asks`) asks its user; answer with [`ANSWER`].
    Question {
        id: u64,
        question: u64,
        asked: rmcp::model::ElicitRequestParams,
    },
    /// Come to the front (the user asked for the window again).
    Show,
}

/// Why a request failed: clients branch on `code` and show `message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    pub code: String,
    pub message: String,
    /// For `invalid`: which input is wrong (`name`, `entry`, `arguments`, `manifest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl WireError {
    pub fn new(code: &str, message: String) -> Self {
        Self {
            code: code.to_string(),
            message,
            field: None,
        }
    }
}

impl From<crate::daemon::DaemonError> for WireError {
    fn from(error: crate::daemon::DaemonError) -> Self {
        let field = match &error {
            crate::daemon::DaemonError::Invalid { field, .. } => Some(field.to_string()),
            _ => None,
        };
        Self {
            code: error.code().to_string(),
            message: error.to_string(),
            field,
        }
    }
}

/// The framing both ends use: newline-separated JSON, each line at most [`MAX_LINE`] bytes.
pub fn codec() -> tokio_util::codec::LinesCodec {
    tokio_util::codec::LinesCodec::new_with_max_length(MAX_LINE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_exactly_the_enum_variants() {
        let refused =
            serde_json::from_value::<Request>(json!({"command": "none_such", "args": {}}))
                .expect_err("not a command")
                .to_string();
        let expected = refused
            .split("expected one of ")
            .nth(1)
            .expect("serde lists the variants");
        let variants: Vec<&str> = expected
            .split(", ")
            .map(|v| v.trim_matches(|c: char| c == '`' || c.is_whitespace()))
            .map(|v| v.split('`').next().unwrap_or(v))
            .collect();
        assert_eq!(variants, Request::NAMES, "{refused}");
    }

    #[test]
    fn a_call_round_trips_and_errors_are_told_apart() {
        let request = Request::SetEnabled {
            id: "wiki".into(),
            enabled: false,
        };
        let call = request.clone().into_call(7);
        assert_eq!(call.command, "set_enabled");
        assert_eq!(call.args, json!({"id": "wiki", "enabled": false}));
        assert_eq!(Request::parse(&call.command, call.args), Ok(request));
        assert_eq!(
            Request::parse("overview", Value::Null),
            Ok(Request::Overview {})
        );
        assert_eq!(
            Request::parse("overview", json!({})),
            Ok(Request::Overview {})
        );
        let unknown = Request::parse("shut_down", json!({})).expect_err("unknown");
        assert_eq!(unknown.code, "unknown_command");
        let bad = Request::parse("set_enabled", json!({"id": "x", "enabled": "yes"}))
            .expect_err("bad arguments");
        assert_eq!(bad.code, "bad_arguments");
        assert!(bad.message.starts_with("set_enabled:"), "{bad:?}");
    }
}
