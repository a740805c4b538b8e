//! One live MCP session per connector, through the official SDK `rmcp`.
//!
//! Streamable HTTP runs over the one shared `reqwest::Client` (keep-alive, HTTP/2 where offered);
//! stdio servers run as child processes in their own process group, so a `npx → sh → node` chain
//! dies with its session. Every request has a deadline: `rmcp` has none of its own.

mod reuse;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ClientRequest,
    Implementation, PingRequest, ProtocolVersion, RequestMetaObject, Tool,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{
    ClientCacheConfig, ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient,
    ServiceError,
};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::connector::{ConnectorSpec, Endpoint};
use crate::registry::model::RemoteKind;

/// The client every HTTP connector shares. No overall `.timeout()`: it would cut long-lived SSE
/// streams; deadlines are per request instead.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why a session could not be opened or a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server refused the credentials (HTTP 401/403): its own state, not "down".
    #[error("authorization rejected: {0}")]
    Unauthorized(String),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection failed or closed.
    #[error("{0}")]
    Transport(String),
    /// The server answered with a JSON-RPC error.
    #[error("server error {code}: {message}")]
    Server { code: i32, message: String },
    #[error("{0}")]
    Unsupported(String),
}

impl SessionError {
    /// A short label for metrics and the UI (`error.type` in the OpenTelemetry conventions).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Timeout(_) => "timeout",
            Self::Transport(_) => "transport",
            Self::Server { .. } => "server_error",
            Self::Unsupported(_) => "unsupported",
        }
    }

    fn from_service(error: ServiceError) -> Self {
        if let Some(challenge) = error.auth_challenge() {
            return Self::Unauthorized(challenge.to_string());
        }
        match error {
            ServiceError::McpError(e) => Self::Server {
                code: e.code.0,
                message: e.message.to_string(),
            },
            ServiceError::Timeout { timeout } => Self::Timeout(timeout),
            other => Self::Transport(root_cause(&other)),
        }
    }

    fn from_init(error: rmcp::service::ClientInitializeError) -> Self {
        if let Some(challenge) = error.auth_challenge() {
            return Self::Unauthorized(challenge.to_string());
        }
        if error.is_authorization_required() {
            return Self::Unauthorized("the server requires authorization".into());
        }
        match &error {
            // This variant keeps its cause in a field the error chain does not follow.
            rmcp::service::ClientInitializeError::TransportError { error, context } => {
                Self::Transport(format!("{} (during {context})", root_cause(error)))
            }
            other => Self::Transport(root_cause(other)),
        }
    }
}

/// The innermost cause ("Connection refused (os error 111)"): what a person can act on. The
/// outer layers name SDK types.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    let mut cause = error;
    loop {
        if let Some(inner) = cause.source() {
            cause = inner;
        } else if let Some(StreamableHttpError::Client(inner)) =
            cause.downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            // rmcp wraps reqwest's error without exposing it as a source.
            cause = inner;
        } else {
            return cause.to_string();
        }
    }
}

/// Receives the server's notifications for one session.
#[derive(Clone)]
struct SessionEvents {
    tools_changed: Arc<Notify>,
}

impl ClientHandler for SessionEvents {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.notify_one();
    }
}

/// A connected MCP server and the tools it listed.
pub struct Session {
    service: RunningService<RoleClient, SessionEvents>,
    pub protocol_version: Option<String>,
    pub tools: Vec<Tool>,
    /// Handshake plus the first complete tool listing.
    pub connect_latency: Duration,
    /// Woken when the server says its tool list changed.
    pub tools_changed: Arc<Notify>,
    /// The connector's deadline for one tool call.
    pub call_timeout: Duration,
}

impl Session {
    /// Connects and lists every tool (following cursors), within the spec's connect timeout.
    pub async fn open(spec: &ConnectorSpec, http: &reqwest::Client) -> Result<Self, SessionError> {
        let started = Instant::now();
        let events = SessionEvents {
            tools_changed: Arc::new(Notify::new()),
        };
        let opening = async {
            let service = connect(spec, http, events.clone()).await?;
            // rmcp caches list results and serves them stale when the server fails: a dead
            // server would keep its tools and look healthy. Health needs every answer fresh.
            service
                .peer()
                .set_response_cache_config(ClientCacheConfig::disabled())
                .await;
            let tools = service
                .list_all_tools()
                .await
                .map_err(SessionError::from_service)?;
            Ok::<_, SessionError>((service, tools))
        };
        let (service, tools) = tokio::time::timeout(spec.connect_timeout, opening)
            .await
            .map_err(|_| SessionError::Timeout(spec.connect_timeout))??;
        let protocol_version = service
            .peer_info()
            .map(|info| info.protocol_version.to_string());
        Ok(Self {
            service,
            protocol_version,
            tools,
            connect_latency: started.elapsed(),
            tools_changed: events.tools_changed,
            call_timeout: spec.call_timeout,
        })
    }

    /// Lists every tool again (after a `list_changed`, or to verify a server's health).
    pub async fn relist(&mut self, timeout: Duration) -> Result<&[Tool], SessionError> {
        let tools = tokio::time::timeout(timeout, self.service.list_all_tools())
            .await
            .map_err(|_| SessionError::Timeout(timeout))?
            .map_err(SessionError::from_service)?;
        self.tools = tools;
        Ok(&self.tools)
    }

    /// Calls a tool. A result with `isError` is the tool's answer, not a failure of the session.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Option<Map<String, Value>>,
        timeout: Duration,
    ) -> Result<CallToolResult, SessionError> {
        let mut params = CallToolRequestParams::new(tool.to_string());
        if let Some(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        tokio::time::timeout(timeout, self.service.call_tool(params))
            .await
            .map_err(|_| SessionError::Timeout(timeout))?
            .map_err(SessionError::from_service)
    }

    /// Asks the server whether it is there, by its era: `ping` on the initialize-era
    /// protocols, `server/discover` on 2026-07-28 and later (which have no ping).
    pub async fn probe(&self, timeout: Duration) -> Result<(), SessionError> {
        let modern = self
            .protocol_version
            .as_deref()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28.as_str());
        let peer = self.service.peer();
        let asked = async {
            if modern {
                peer.discover(RequestMetaObject::new()).await.map(|_| ())
            } else {
                peer.send_request(ClientRequest::PingRequest(PingRequest::default()))
                    .await
                    .map(|_| ())
            }
        };
        tokio::time::timeout(timeout, asked)
            .await
            .map_err(|_| SessionError::Timeout(timeout))?
            .map_err(SessionError::from_service)
    }

    pub fn is_closed(&self) -> bool {
        self.service.is_closed()
    }

    /// Ends the session; a stdio server's process group is killed.
    pub async fn close(self) {
        let _ = self.service.cancel().await;
    }
}

async fn connect(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
) -> Result<RunningService<RoleClient, SessionEvents>, SessionError> {
    // Speak the newest era where the server does, the 2025-11-25 handshake otherwise; rmcp
    // detects which per the spec's backward-compatibility rules.
    let lifecycle = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    };
    match &spec.endpoint {
        Endpoint::Http {
            kind: Some(RemoteKind::Sse),
            ..
        } => Err(SessionError::Unsupported(
            "the deprecated HTTP+SSE transport is not supported yet".into(),
        )),
        Endpoint::Http { url, headers, .. } => {
            let mut custom = HashMap::new();
            for (name, value) in headers {
                let name = HeaderName::try_from(name.as_str())
                    .map_err(|_| SessionError::Unsupported(format!("bad header name {name:?}")))?;
                let mut value = HeaderValue::try_from(value.as_str()).map_err(|_| {
                    SessionError::Unsupported(format!("bad value for header {name}"))
                })?;
                value.set_sensitive(true);
                custom.insert(name, value);
            }
            let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .custom_headers(custom)
                .reinit_on_expired_session(true);
            let client = reuse::ReusingClient(http.clone());
            let transport = StreamableHttpClientTransport::with_client(client, config);
            events
                .serve_with_lifecycle(transport, lifecycle)
                .await
                .map_err(SessionError::from_init)
        }
        Endpoint::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).envs(env);
            if let Some(cwd) = cwd {
                cmd.current_dir(cwd);
            }
            let mut wrapped = process_wrap::tokio::CommandWrap::from(cmd);
            #[cfg(unix)]
            wrapped.wrap(process_wrap::tokio::ProcessGroup::leader());
            let (transport, _stderr) = TokioChildProcess::builder(wrapped)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| SessionError::Transport(format!("cannot start {command}: {e}")))?;
            events
                .serve_with_lifecycle(transport, lifecycle)
                .await
                .map_err(SessionError::from_init)
        }
    }
}
