//! One live MCP session per connector, through the official SDK `rmcp`.
//!
//! Streamable HTTP runs over the one shared `reqwest::Client` (keep-alive, HTTP/2 where offered);
//! stdio servers run as child processes in their own process group, so a `npx → sh → node` chain
//! dies with its session. Every request has a deadline: `rmcp` has none of its own.

mod elicitation;
mod legacy_sse;
mod reuse;

pub use elicitation::{Elicitation, with_defaults};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ClientRequest, ElicitRequestParams, ElicitResult, ElicitationCapability,
    FormElicitationCapability, Implementation, InputRequest, InputResponses, PingRequest,
    ProtocolVersion, RequestMetaObject, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
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
/// streams; deadlines are per request instead. Trusts the platform's certificates, plus those in
/// the PEM file `SWITCHBOARD_CA_FILE` names (a company CA, a local development CA).
pub fn http_client() -> Result<reqwest::Client, HttpClientError> {
    let extra = match std::env::var_os("SWITCHBOARD_CA_FILE") {
        Some(path) => std::fs::read(&path).map_err(|e| {
            HttpClientError(format!(
                "SWITCHBOARD_CA_FILE {}: {e}",
                path.to_string_lossy()
            ))
        })?,
        None => Vec::new(),
    };
    http_client_trusting(&extra)
}

/// [`http_client`], also trusting the certificates of a PEM bundle (may be empty).
pub fn http_client_trusting(pem: &[u8]) -> Result<reqwest::Client, HttpClientError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")));
    if !pem.is_empty() {
        for certificate in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| HttpClientError(format!("not a PEM certificate bundle: {e}")))?
        {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| HttpClientError(e.to_string()))
}

/// The shared HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct HttpClientError(String);

/// Why a session could not be opened or a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server refused the credentials (HTTP 401/403): its own state, not "down".
    #[error("authorization rejected: {0}")]
    Unauthorized(String),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// No connection could be made (refused, no route, DNS): says nothing of the protocol.
    #[error("{0}")]
    Unreachable(String),
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
            Self::Unreachable(_) => "unreachable",
            Self::Transport(_) => "transport",
            Self::Server { .. } => "server_error",
            Self::Unsupported(_) => "unsupported",
        }
    }

    /// The same error, with a stdio server's last stderr lines appended to its message.
    fn with_stderr(self, tail: &[String]) -> Self {
        let Some(last) = tail.iter().rev().find(|l| !l.trim().is_empty()) else {
            return self;
        };
        match self {
            Self::Transport(message) | Self::Unreachable(message) => {
                Self::Transport(format!("{message}; stderr: {last}"))
            }
            Self::Timeout(after) => Self::Transport(format!(
                "no answer within {} ms; stderr: {last}",
                after.as_millis()
            )),
            other => other,
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
            other => Self::from_cause(&other, None),
        }
    }

    fn from_init(error: rmcp::service::ClientInitializeError) -> Self {
        Self::from_init_ref(&error)
    }

    fn from_init_ref(error: &rmcp::service::ClientInitializeError) -> Self {
        if let Some(challenge) = error.auth_challenge() {
            return Self::Unauthorized(challenge.to_string());
        }
        if error.is_authorization_required() {
            return Self::Unauthorized("the server requires authorization".into());
        }
        match error {
            // This variant keeps its cause in a field the error chain does not follow.
            rmcp::service::ClientInitializeError::TransportError { error, context } => {
                Self::from_cause(error, Some(context))
            }
            rmcp::service::ClientInitializeError::LegacyFallbackFailed { fallback, .. } => {
                // Discover failed, then initialize: the second says what is wrong.
                Self::from_init_ref(fallback)
            }
            other => Self::from_cause(other, None),
        }
    }
}

/// The innermost cause ("Connection refused (os error 111)"): what a person can act on, as the
/// outer layers name SDK types; and whether the connection itself could not be made.
pub(crate) fn innermost_cause(error: &(dyn std::error::Error + 'static)) -> (String, bool) {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    let mut cause = error;
    let mut unreachable = false;
    loop {
        unreachable |= cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_connect);
        if let Some(inner) = cause.source() {
            cause = inner;
        } else if let Some(StreamableHttpError::Client(inner)) =
            cause.downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            // rmcp wraps reqwest's error without exposing it as a source.
            cause = inner;
        } else {
            return (cause.to_string(), unreachable);
        }
    }
}

impl SessionError {
    fn from_cause(error: &(dyn std::error::Error + 'static), during: Option<&str>) -> Self {
        let (text, unreachable) = innermost_cause(error);
        let text = match during {
            Some(step) => format!("{text} (during {step})"),
            None => text,
        };
        if unreachable {
            Self::Unreachable(text)
        } else {
            Self::Transport(text)
        }
    }
}

/// Receives the server's notifications for one session.
#[derive(Clone)]
struct SessionEvents {
    tools_changed: Arc<Notify>,
    stderr: Arc<StderrTail>,
    elicitation: Elicitation,
    listening: Arc<reuse::Listening>,
}

/// The last lines a stdio server wrote to stderr: usually the reason it would not start.
#[derive(Default)]
struct StderrTail {
    lines: std::sync::Mutex<std::collections::VecDeque<String>>,
    closed: Notify,
    done: std::sync::atomic::AtomicBool,
}

impl StderrTail {
    const KEEP: usize = 20;

    /// Reads `stderr` to its end in the background.
    fn follow(self: &Arc<Self>, stderr: tokio::process::ChildStderr, connector: String) {
        use tokio::io::AsyncBufReadExt as _;
        let tail = self.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(connector, line, "stderr");
                if let Ok(mut kept) = tail.lines.lock() {
                    if kept.len() == Self::KEEP {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            }
            tail.done.store(true, std::sync::atomic::Ordering::Release);
            tail.closed.notify_waiters();
        });
    }

    fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The kept lines, once the stream has ended or `wait` has passed.
    async fn settled(&self, wait: Duration) -> Vec<String> {
        let closed = self.closed.notified();
        if !self.done.load(std::sync::atomic::Ordering::Acquire) {
            let _ = tokio::time::timeout(wait, closed).await;
        }
        self.lines()
    }
}

impl ClientHandler for SessionEvents {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        if self.elicitation != Elicitation::Decline {
            capabilities.elicitation =
                Some(ElicitationCapability::new().with_form(FormElicitationCapability::new()));
        }
        ClientConfig::new(
            capabilities,
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        )
        // What the initialize handshake offers; 2026-era servers are reached by discover.
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.notify_one();
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        Ok(self.elicitation.answer(&request))
    }
}

/// How a server tells this session that its tool list changed.
enum ChangeFeed {
    /// `notifications/tools/list_changed` on the session (initialize-era servers).
    Notified(Arc<Notify>),
    /// A `subscriptions/listen` stream (2026-07-28 servers).
    Subscribed(Box<rmcp::service::Subscription>),
}

/// How a server was reached, remembered so a reconnect skips detecting it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Streamable HTTP or stdio, `server/discover` (2026-07-28).
    Discover,
    /// Streamable HTTP or stdio, the `initialize` handshake (2025-11-25 and older).
    Initialize,
    /// The deprecated HTTP+SSE transport.
    LegacySse,
}

/// A connected MCP server and the tools it listed.
pub struct Session {
    service: RunningService<RoleClient, SessionEvents>,
    pub protocol_version: Option<String>,
    pub tools: Vec<Tool>,
    /// Handshake plus the first complete tool listing.
    pub connect_latency: Duration,
    /// The connector's deadline for one tool call.
    pub call_timeout: Duration,
    changes: ChangeFeed,
    stderr: Arc<StderrTail>,
    activity: Arc<Activity>,
    /// How this server was reached; pass it to the next [`Session::open`] for it.
    pub handshake: Handshake,
    elicitation: Elicitation,
}

/// When a session last heard from its server, so only idle sessions are probed.
struct Activity {
    since: Instant,
    last_answer_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            last_answer_ms: Default::default(),
        }
    }

    fn answered(&self) {
        let now = self.since.elapsed().as_millis() as u64;
        self.last_answer_ms
            .fetch_max(now, std::sync::atomic::Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = self
            .last_answer_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        self.since
            .elapsed()
            .saturating_sub(Duration::from_millis(last))
    }
}

/// How long a new session waits for its server's standalone stream before going on without it.
const LISTEN_WAIT: Duration = Duration::from_secs(2);

impl Session {
    /// Connects and lists every tool (following cursors), within the spec's connect timeout.
    pub async fn open(spec: &ConnectorSpec, http: &reqwest::Client) -> Result<Self, SessionError> {
        Self::open_as(spec, http, None).await
    }

    /// Like [`Session::open`], trying `known` (how the server was reached last time) first.
    pub async fn open_as(
        spec: &ConnectorSpec,
        http: &reqwest::Client,
        known: Option<Handshake>,
    ) -> Result<Self, SessionError> {
        Self::open_with(spec, http, known, Elicitation::Decline).await
    }

    /// Like [`Session::open_as`], answering the server's questions as `elicitation` says.
    pub async fn open_with(
        spec: &ConnectorSpec,
        http: &reqwest::Client,
        known: Option<Handshake>,
        elicitation: Elicitation,
    ) -> Result<Self, SessionError> {
        let started = Instant::now();
        let events = SessionEvents {
            tools_changed: Arc::new(Notify::new()),
            stderr: Arc::default(),
            elicitation,
            listening: Arc::default(),
        };
        let opening = async {
            let (service, handshake) = connect(spec, http, events.clone(), known).await?;
            // Listen before listing, so nothing the server sends meanwhile is lost.
            events.listening.settled(LISTEN_WAIT).await;
            // rmcp caches list results and serves them stale when the server fails: a dead
            // server would keep its tools and look healthy. Health needs every answer fresh.
            service
                .peer()
                .set_response_cache_config(ClientCacheConfig::disabled())
                .await;
            let protocol_version = service
                .peer_info()
                .map(|info| info.protocol_version.to_string());
            // Subscribe before listing, so a change in between is not missed.
            let subscription = subscribe_to_changes(&service, protocol_version.as_deref()).await;
            let tools = service
                .list_all_tools()
                .await
                .map_err(SessionError::from_service)?;
            Ok::<_, SessionError>((service, protocol_version, subscription, tools, handshake))
        };
        let opened = tokio::time::timeout(spec.connect_timeout, opening)
            .await
            .map_err(|_| SessionError::Timeout(spec.connect_timeout))
            .and_then(|opened| opened);
        let (service, protocol_version, subscription, tools, handshake) = match opened {
            Ok(opened) => opened,
            Err(error) if matches!(spec.endpoint, Endpoint::Stdio { .. }) => {
                // A stdio server that would not start has usually said why on stderr.
                let tail = events.stderr.settled(Duration::from_millis(500)).await;
                return Err(error.with_stderr(&tail));
            }
            Err(error) => return Err(error),
        };
        let connect_latency = started.elapsed();
        let stderr = events.stderr.clone();
        let changes = match subscription {
            Some(subscription) => ChangeFeed::Subscribed(Box::new(subscription)),
            None => ChangeFeed::Notified(events.tools_changed),
        };
        Ok(Self {
            service,
            protocol_version,
            tools,
            connect_latency,
            call_timeout: spec.call_timeout,
            changes,
            activity: Arc::new(Activity::new()),
            handshake,
            stderr,
            elicitation,
        })
    }

    /// Completes when the server says its tool list changed (never, for servers that do not).
    /// An error means the notification stream broke: the session is no longer trustworthy.
    pub async fn tools_changed(&mut self) -> Result<(), SessionError> {
        use rmcp::model::ServerNotification;
        match &mut self.changes {
            ChangeFeed::Notified(notify) => {
                notify.notified().await;
                Ok(())
            }
            ChangeFeed::Subscribed(subscription) => loop {
                match subscription.next().await {
                    Ok(Some(ServerNotification::ToolListChangedNotification(_))) => return Ok(()),
                    Ok(Some(_)) => continue,
                    Ok(None) => {
                        return Err(SessionError::Transport(
                            "the server ended its change subscription".into(),
                        ));
                    }
                    Err(e) => return Err(SessionError::from_service(e)),
                }
            },
        }
    }

    /// A handle for calls that do not need the session itself (cheap to clone).
    pub fn caller(&self) -> Caller {
        Caller {
            peer: self.service.peer().clone(),
            call_timeout: self.call_timeout,
            activity: self.activity.clone(),
            stderr: self.stderr.clone(),
            elicitation: self.elicitation,
        }
    }

    /// Lists every tool again (after a `list_changed`, or to verify a server's health).
    pub async fn relist(&mut self, timeout: Duration) -> Result<&[Tool], SessionError> {
        let tools = tokio::time::timeout(timeout, self.service.list_all_tools())
            .await
            .map_err(|_| SessionError::Timeout(timeout))?
            .map_err(SessionError::from_service)?;
        self.tools = tools;
        self.activity.answered();
        Ok(&self.tools)
    }

    /// Calls a tool. A result with `isError` is the tool's answer, not a failure of the session.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Option<Map<String, Value>>,
        timeout: Duration,
    ) -> Result<CallToolResult, SessionError> {
        let result = call_tool(
            self.service.peer(),
            self.elicitation,
            tool,
            arguments,
            timeout,
        )
        .await;
        if result.is_ok() {
            self.activity.answered();
        }
        result
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
            .map_err(SessionError::from_service)?;
        self.activity.answered();
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.service.is_closed()
    }

    /// Ends the session; a stdio server's process group is killed.
    pub async fn close(self) {
        let _ = self.service.cancel().await;
    }
}

/// Calls tools on a live session without holding it; what the engine hands to callers.
#[derive(Clone)]
pub struct Caller {
    peer: rmcp::Peer<RoleClient>,
    pub call_timeout: Duration,
    activity: Arc<Activity>,
    stderr: Arc<StderrTail>,
    elicitation: Elicitation,
}

impl Caller {
    pub async fn call(
        &self,
        tool: &str,
        arguments: Option<Map<String, Value>>,
    ) -> Result<CallToolResult, SessionError> {
        let result = call_tool(
            &self.peer,
            self.elicitation,
            tool,
            arguments,
            self.call_timeout,
        )
        .await;
        if result.is_ok() {
            self.activity.answered();
        }
        result
    }

    /// The last lines a stdio server wrote to stderr (empty for HTTP servers).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// How long since the server last answered anything on this session.
    pub fn idle_for(&self) -> Duration {
        self.activity.idle_for()
    }
}

/// Calls a tool within `timeout`, following the rounds of a server that needs more input first
/// (`input_required`, 2026-07-28): each retry echoes its `requestState` untouched, with a new
/// request id.
async fn call_tool(
    peer: &rmcp::Peer<RoleClient>,
    elicitation: Elicitation,
    tool: &str,
    arguments: Option<Map<String, Value>>,
    timeout: Duration,
) -> Result<CallToolResult, SessionError> {
    /// A server that keeps asking is looping, not working.
    const MAX_ROUNDS: usize = 10;
    let mut params = CallToolRequestParams::new(tool.to_string());
    if let Some(arguments) = arguments {
        params = params.with_arguments(arguments);
    }
    let rounds = async {
        for round in 0..MAX_ROUNDS {
            match peer.call_tool_once(params.clone()).await {
                Ok(CallToolResponse::Complete(result)) => return Ok(result),
                Ok(CallToolResponse::InputRequired(asked)) => {
                    let requests = asked.input_requests.unwrap_or_default();
                    if requests.is_empty() {
                        // Only state to hand back: the server is still working; do not spin.
                        tokio::time::sleep(Duration::from_millis(50 << round.min(3))).await;
                    }
                    params.input_responses = Some(input_responses(elicitation, requests)?)
                        .filter(|responses| !responses.is_empty());
                    params.request_state = asked.request_state;
                }
                Ok(_) => {
                    return Err(SessionError::Unsupported(format!(
                        "{tool} answered with a task, which Switchboard does not poll"
                    )));
                }
                Err(error) => return Err(SessionError::from_service(error)),
            }
        }
        Err(SessionError::Transport(format!(
            "{tool} still wanted more input after {MAX_ROUNDS} rounds"
        )))
    };
    tokio::time::timeout(timeout, rounds)
        .await
        .map_err(|_| SessionError::Timeout(timeout))?
}

/// Answers the questions of an `input_required` result, the way the session answers them alone.
fn input_responses(
    elicitation: Elicitation,
    requests: rmcp::model::InputRequests,
) -> Result<InputResponses, SessionError> {
    let mut responses = InputResponses::new();
    for (key, request) in requests {
        let answer = match request {
            InputRequest::Elicitation(request) => {
                serde_json::to_value(elicitation.answer(&request.params))
            }
            InputRequest::ListRoots(_) => Ok(serde_json::json!({ "roots": [] })),
            _ => {
                return Err(SessionError::Unsupported(
                    "the server asked for an LLM completion (sampling), which Switchboard does \
                     not offer"
                        .into(),
                ));
            }
        };
        let answer = answer.map_err(|e| SessionError::Transport(e.to_string()))?;
        responses.insert(key, answer);
    }
    Ok(responses)
}

/// On the 2026-07-28 protocol, list changes come only on a `subscriptions/listen` stream; open
/// one when the server offers them. `None`: use the session's notifications instead.
async fn subscribe_to_changes(
    service: &RunningService<RoleClient, SessionEvents>,
    protocol_version: Option<&str>,
) -> Option<rmcp::service::Subscription> {
    let modern = protocol_version.is_some_and(|v| v >= ProtocolVersion::V_2026_07_28.as_str());
    let offered = service
        .peer_info()
        .and_then(|info| {
            info.capabilities
                .tools
                .as_ref()
                .and_then(|t| t.list_changed)
        })
        .unwrap_or(false);
    if !(modern && offered) {
        return None;
    }
    let filter = rmcp::model::SubscriptionFilter::builder()
        .tools_list_changed()
        .build();
    match service.peer().listen(filter).await {
        Ok(subscription) => Some(subscription),
        Err(e) => {
            tracing::warn!(error = %e, "server offers list changes but refused a subscription");
            None
        }
    }
}

type Connected = (RunningService<RoleClient, SessionEvents>, Handshake);

async fn connect(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
    known: Option<Handshake>,
) -> Result<Connected, SessionError> {
    if let Some(known) = known {
        match connect_as(spec, http, events.clone(), known).await {
            // It may have been upgraded or replaced: detect afresh, unless it was not reached,
            // did not answer in time or refused the credentials, which would say nothing new.
            Err(error)
                if !matches!(
                    error,
                    SessionError::Unreachable(_)
                        | SessionError::Timeout(_)
                        | SessionError::Unauthorized(_)
                ) =>
            {
                tracing::debug!(connector = %spec.id, ?known, %error, "the remembered handshake failed; detecting again");
            }
            other => return other,
        }
    }
    detect(spec, http, events).await
}

/// Connects the way the server was reached before.
async fn connect_as(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
    known: Handshake,
) -> Result<Connected, SessionError> {
    let headers = match &spec.endpoint {
        Endpoint::Http { headers, .. } => Some(header_map(headers)?),
        Endpoint::Stdio { .. } => None,
    };
    let lifecycle = match known {
        Handshake::LegacySse => {
            let Endpoint::Http { url, .. } = &spec.endpoint else {
                return Err(SessionError::Unsupported("SSE needs a URL".into()));
            };
            let service =
                serve_legacy_sse(spec, http, url, headers.unwrap_or_default(), events).await?;
            return Ok((service, known));
        }
        Handshake::Discover => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        Handshake::Initialize => ClientLifecycleMode::Initialize,
    };
    let service = serve(spec, http, events, headers, lifecycle)
        .await
        .map_err(SessionError::from_init)?;
    Ok((service, known))
}

/// Finds out how the server speaks: the protocol era, and for HTTP the transport.
async fn detect(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
) -> Result<Connected, SessionError> {
    let era = |service: RunningService<RoleClient, SessionEvents>| {
        let modern = service
            .peer_info()
            .is_some_and(|i| i.protocol_version.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let handshake = if modern {
            Handshake::Discover
        } else {
            Handshake::Initialize
        };
        (service, handshake)
    };
    let (url, headers, kind) = match &spec.endpoint {
        Endpoint::Http { url, headers, kind } => (url, header_map(headers)?, *kind),
        Endpoint::Stdio { .. } => {
            return serve_with_era_fallback(spec, http, events, None)
                .await
                .map(era)
                .map_err(SessionError::from_init);
        }
    };
    match kind {
        Some(RemoteKind::Sse) => serve_legacy_sse(spec, http, url, headers, events)
            .await
            .map(|service| (service, Handshake::LegacySse)),
        Some(RemoteKind::Http) => serve_with_era_fallback(spec, http, events, Some(headers))
            .await
            .map(era)
            .map_err(SessionError::from_init),
        // The spec's rule when the transport is not known: streamable HTTP first; a 400, 404 or
        // 405 to its POST means an old server, so try the HTTP+SSE transport's GET.
        None => {
            match serve_with_era_fallback(spec, http, events.clone(), Some(headers.clone())).await {
                Err(error) if rejected_post(&error) => {
                    serve_legacy_sse(spec, http, url, headers, events)
                        .await
                        .map(|service| (service, Handshake::LegacySse))
                        .map_err(|sse| {
                            SessionError::Transport(format!(
                                "neither transport works: streamable HTTP: {}; HTTP+SSE: {sse}",
                                SessionError::from_init(error)
                            ))
                        })
                }
                other => other.map(era).map_err(SessionError::from_init),
            }
        }
    }
}

/// Whether the server refused a streamable HTTP POST the way pre-2025 servers do.
fn rejected_post(error: &rmcp::service::ClientInitializeError) -> bool {
    use rmcp::service::ClientInitializeError;
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    let error = match error {
        ClientInitializeError::TransportError { error, .. } => error,
        // Auto mode tried discover, then initialize: the initialize POST decides.
        ClientInitializeError::LegacyFallbackFailed { fallback, .. } => {
            return rejected_post(fallback);
        }
        _ => return false,
    };
    let mut cause: &(dyn std::error::Error + 'static) = error;
    loop {
        match cause.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
            Some(StreamableHttpError::HttpStatus(status)) => {
                return matches!(status.status, 400 | 404 | 405);
            }
            // rmcp reports some statuses only inside this message ("HTTP 404 Not Found: …").
            Some(StreamableHttpError::UnexpectedServerResponse(message)) => {
                return ["HTTP 400", "HTTP 404", "HTTP 405"]
                    .iter()
                    .any(|status| message.starts_with(status));
            }
            _ => {}
        }
        match cause.source() {
            Some(inner) => cause = inner,
            None => return false,
        }
    }
}

fn header_map(
    headers: &indexmap::IndexMap<String, String>,
) -> Result<reqwest::header::HeaderMap, SessionError> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| SessionError::Unsupported(format!("bad header name {name:?}")))?;
        let mut value = HeaderValue::try_from(value.as_str())
            .map_err(|_| SessionError::Unsupported(format!("bad value for header {name}")))?;
        // Kept out of debug output and HTTP/2 header compression tables.
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

async fn serve_legacy_sse(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    url: &str,
    headers: reqwest::header::HeaderMap,
    events: SessionEvents,
) -> Result<RunningService<RoleClient, SessionEvents>, SessionError> {
    use legacy_sse::SseTransportError;
    let transport = legacy_sse::connect(http, url, headers, spec.connect_timeout)
        .await
        .map_err(|e| match e {
            SseTransportError::Status(status)
                if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN =>
            {
                SessionError::Unauthorized(format!("HTTP {status}"))
            }
            other => SessionError::Transport(other.to_string()),
        })?;
    events
        .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
        .await
        .map_err(SessionError::from_init)
}

async fn serve_with_era_fallback(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
    headers: Option<reqwest::header::HeaderMap>,
) -> Result<RunningService<RoleClient, SessionEvents>, rmcp::service::ClientInitializeError> {
    // Speak the newest era where the server does, the 2025-11-25 handshake otherwise; rmcp
    // detects which per the spec's backward-compatibility rules.
    let auto = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    };
    match serve(spec, http, events.clone(), headers.clone(), auto).await {
        // A server that knows `server/discover` but lists only initialize-era versions: rmcp
        // gives up instead of falling back, so fall back here, with a fresh transport.
        Err(rmcp::service::ClientInitializeError::NoCompatibleProtocolVersion {
            server_supported,
            ..
        }) if server_supported
            .iter()
            .any(|v| v.as_str() < ProtocolVersion::V_2026_07_28.as_str()) =>
        {
            serve(spec, http, events, headers, ClientLifecycleMode::Initialize).await
        }
        // A server that answers any unknown method with an empty result: not a discover
        // result, so not a 2026-era server. rmcp gives up here too.
        Err(rmcp::service::ClientInitializeError::ExpectedInitResult(_)) => {
            serve(spec, http, events, headers, ClientLifecycleMode::Initialize).await
        }
        other => other,
    }
}

/// Opens a streamable HTTP or stdio transport to the spec's endpoint and runs the handshake.
async fn serve(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
    headers: Option<reqwest::header::HeaderMap>,
    lifecycle: ClientLifecycleMode,
) -> Result<RunningService<RoleClient, SessionEvents>, rmcp::service::ClientInitializeError> {
    use rmcp::service::ClientInitializeError;
    let refused = |message: String| ClientInitializeError::ConnectionClosed(message);
    match &spec.endpoint {
        Endpoint::Http { url, .. } => {
            let custom: HashMap<HeaderName, HeaderValue> = headers
                .unwrap_or_default()
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .custom_headers(custom)
                .reinit_on_expired_session(true);
            let client = reuse::ReusingClient {
                http: http.clone(),
                listening: events.listening.clone(),
            };
            let transport = StreamableHttpClientTransport::with_client(client, config);
            events.serve_with_lifecycle(transport, lifecycle).await
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
            let (transport, stderr) = TokioChildProcess::builder(wrapped)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| refused(format!("cannot start {command}: {e}")))?;
            if let Some(stderr) = stderr {
                events.stderr.follow(stderr, spec.id.clone());
            }
            events.serve_with_lifecycle(transport, lifecycle).await
        }
    }
}
