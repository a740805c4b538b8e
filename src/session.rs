//! One live MCP session per connector, through the official SDK `rmcp`.
//!
//! Streamable HTTP runs over the one shared `reqwest::Client` (keep-alive, HTTP/2 where offered);
//! stdio servers run as child processes in their own process group, so a `npx → sh → node` chain
//! dies with its session. Every request has a deadline: `rmcp` has none of its own.

mod elicitation;
mod error;
mod group;
mod handshake;
mod http;
mod legacy_sse;
mod listing;
mod offerings;
mod progress;
mod questions;
mod reuse;
mod stderr;

pub use elicitation::{Elicitation, with_defaults};
pub use error::SessionError;
pub(crate) use error::bounded;
pub(crate) use error::innermost_cause;
pub use http::{HttpClientError, http_client, http_client_trusting};
pub use listing::{MAX_PAGES, MAX_TOOLS};
pub use offerings::Offers;
pub use progress::{Progress, ProgressSink};
pub use questions::{Question, QuestionSink, Sideband, ask};

use handshake::connect;
use progress::{ProgressRoutes, ProgressTap};
use questions::QuestionRoutes;
use stderr::StderrTail;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ClientRequest, ElicitRequestParams, ElicitResult, ElicitationCapability,
    FormElicitationCapability, Implementation, PingRequest, ProtocolVersion, RequestMetaObject,
    Tool,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::{ClientCacheConfig, ClientHandler, RoleClient};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::connector::{ConnectorSpec, Endpoint};

/// How long a stdio server has to exit once its stdin is closed, before SIGTERM.
const STDIN_CLOSED_GRACE: Duration = Duration::from_millis(500);

/// Receives the server's notifications for one session.
#[derive(Clone)]
struct SessionEvents {
    tools_changed: Arc<Notify>,
    stderr: Arc<StderrTail>,
    elicitation: Elicitation,
    listening: Arc<reuse::Listening>,
    faults: Arc<reuse::StreamFaults>,
    /// The pid of a stdio server, which leads its own process group.
    group_leader: Arc<group::Leader>,
    /// Routes the server's progress updates to the calls that asked for them (fed by the
    /// transport, see [`progress::ProgressTap`]).
    progress: ProgressRoutes,
    /// The calls in flight, and which of them can take the server's questions.
    questions: QuestionRoutes,
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
        if let Some(asker) = self.questions.asker()
            && let Some(answer) = ask(&asker, request.clone()).await
        {
            return Ok(answer);
        }
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
    /// The connector's id, for what the session logs.
    connector: String,
    group_leader: Option<u32>,
    faults: Arc<reuse::StreamFaults>,
    progress: ProgressRoutes,
    questions: QuestionRoutes,
    listening: Arc<reuse::Listening>,
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
        Self::open_with(spec, http, None, Elicitation::Relay, None).await
    }

    /// Like [`Session::open`], trying `known` (how the server was reached last time) first,
    /// answering the server's questions as `elicitation` says, signed in with `tokens`' grant
    /// where the connector has one.
    pub async fn open_with(
        spec: &ConnectorSpec,
        http: &reqwest::Client,
        known: Option<Handshake>,
        elicitation: Elicitation,
        tokens: Option<&Arc<crate::signin::TokenStore>>,
    ) -> Result<Self, SessionError> {
        let started = Instant::now();
        let events = SessionEvents {
            tools_changed: Arc::new(Notify::new()),
            stderr: Arc::default(),
            elicitation,
            listening: Arc::default(),
            faults: Arc::default(),
            group_leader: Arc::default(),
            progress: ProgressRoutes::default(),
            questions: QuestionRoutes::default(),
        };
        let opening = async {
            let (service, handshake) = connect(spec, http, events.clone(), known, tokens).await?;
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
            let tools = listing::list_tools(service.peer(), &spec.id).await?;
            Ok::<_, SessionError>((service, protocol_version, subscription, tools, handshake))
        };
        let abandoned = group::OpeningGuard::new(events.group_leader.clone());
        let opened = tokio::time::timeout(spec.connect_timeout, opening)
            .await
            .map_err(|_| SessionError::Timeout(spec.connect_timeout))
            .and_then(|opened| opened);
        let (service, protocol_version, subscription, tools, handshake) = match opened {
            Ok(opened) => opened,
            Err(error) if matches!(spec.endpoint, Endpoint::Stdio { .. }) => {
                // A stdio server that would not start has usually said why on stderr.
                let tail = events.stderr.settled(Duration::from_millis(500)).await;
                // Which pipe broke first varies from run to run; how the server ended does not.
                // Asked before the group is ended below, whose SIGTERM would be the answer.
                let ended = events.group_leader.ended(Duration::from_millis(500)).await;
                if let Some(leader) = events.group_leader.get() {
                    group::end(leader).await;
                }
                abandoned.disarm();
                let error = match ended {
                    Some(how) => SessionError::transport(how),
                    None => error,
                };
                return Err(error.with_stderr(&tail));
            }
            // A token of the connector's own was refused: that is what to fix, not a sign-in.
            Err(SessionError::NeedsSignIn(challenge)) if spec.sends_own_authorization() => {
                return Err(SessionError::Unauthorized(format!(
                    "the server refused the connector's Authorization header (it also offers an OAuth sign-in, without the header): {challenge}"
                )));
            }
            Err(error) => return Err(error),
        };
        abandoned.disarm();
        let connect_latency = started.elapsed();
        let stderr = events.stderr.clone();
        let (progress, questions) = (events.progress.clone(), events.questions.clone());
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
            progress,
            questions,
            activity: Arc::new(Activity::new()),
            handshake,
            stderr,
            elicitation,
            connector: spec.id.clone(),
            group_leader: events.group_leader.get(),
            faults: events.faults.clone(),
            listening: events.listening.clone(),
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
                        return Err(SessionError::transport(
                            "the server ended its change subscription",
                        ));
                    }
                    Err(e) => return Err(SessionError::from_service(e)),
                }
            },
        }
    }

    /// Returns when the session should be checked again: its server's standalone stream ended
    /// (it may be gone), the session was made again after a 404 (it may list other tools), or a
    /// stdio server's stderr ended (it exited, as a rule: shown at once, not at the next probe).
    pub fn look_again(&self) -> impl Future<Output = ()> + Send + 'static {
        let (listening, stderr) = (self.listening.clone(), self.stderr.clone());
        let stdio = self.group_leader.is_some();
        async move {
            tokio::select! {
                () = listening.look_again() => {}
                () = stderr.ended_once(), if stdio => {}
            }
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
            faults: self.faults.clone(),
            progress: self.progress.clone(),
            questions: self.questions.clone(),
        }
    }

    /// Lists every tool again (after a `list_changed`, or to verify a server's health).
    pub async fn relist(&mut self, timeout: Duration) -> Result<&[Tool], SessionError> {
        let tools = tokio::time::timeout(
            timeout,
            listing::list_tools(self.service.peer(), &self.connector),
        )
        .await
        .map_err(|_| SessionError::Timeout(timeout))??;
        self.tools = tools;
        self.activity.answered();
        Ok(&self.tools)
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

    /// Ends the session; a stdio server's whole process group ends with it. As the spec has
    /// it: stdin is closed, and a server still there after a moment gets SIGTERM (rmcp alone
    /// waits 3 s for that, on every one-shot command).
    pub async fn close(self) {
        let Some(leader) = self.group_leader else {
            let _ = self.service.cancel().await;
            return;
        };
        let cancel = self.service.cancel();
        tokio::pin!(cancel);
        if tokio::time::timeout(STDIN_CLOSED_GRACE, &mut cancel)
            .await
            .is_err()
        {
            group::terminate(leader);
            let _ = cancel.await;
        }
        group::end(leader).await;
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
    faults: Arc<reuse::StreamFaults>,
    progress: ProgressRoutes,
    questions: QuestionRoutes,
}

impl Caller {
    /// Calls a tool within the connector's call deadline. A result with `isError` is the
    /// tool's answer, not a failure of the session.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Option<Map<String, Value>>,
    ) -> Result<CallToolResult, SessionError> {
        self.call_within(tool, arguments, self.call_timeout, Sideband::default())
            .await
    }

    /// [`Caller::call`] within `deadline` (what is left of the call deadline after a wait),
    /// its progress and the server's questions passed to `sideband` where it takes them.
    pub async fn call_within(
        &self,
        tool: &str,
        arguments: Option<Map<String, Value>>,
        deadline: Duration,
        sideband: Sideband,
    ) -> Result<CallToolResult, SessionError> {
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = arguments;
        let reporting = sideband
            .progress
            .as_ref()
            .map(|sink| (&self.progress, sink));
        let _in_flight = self.questions.enter(sideband.questions.clone());
        let answering = (self.elicitation, sideband.questions.as_ref());
        let result = call_tool(&self.peer, answering, params, deadline, reporting).await;
        match result {
            Ok(result) => {
                self.activity.answered();
                Ok(result)
            }
            // The stream broke: rmcp says only that the transport closed; say why.
            Err(SessionError::Transport { cause, .. }) if let Some(why) = self.faults.take() => {
                Err(SessionError::Transport {
                    message: format!("the answer could not be read: {why}"),
                    cause,
                })
            }
            Err(error) => Err(error),
        }
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
    (elicitation, asker): (Elicitation, Option<&QuestionSink>),
    mut params: CallToolRequestParams,
    timeout: Duration,
    reporting: Option<(&ProgressRoutes, &ProgressSink)>,
) -> Result<CallToolResult, SessionError> {
    /// A server that keeps asking is looping, not working.
    const MAX_ROUNDS: usize = 10;
    let tool = params.name.clone();
    let rounds = async {
        for round in 0..MAX_ROUNDS {
            let once = match reporting {
                None => peer.call_tool_once(params.clone()).await,
                Some((routes, sink)) => {
                    progress::call_once_reporting(peer, routes, sink, params.clone()).await
                }
            };
            match once {
                Ok(CallToolResponse::Complete(result)) => return Ok(result),
                Ok(CallToolResponse::InputRequired(asked)) => {
                    let requests = asked.input_requests.unwrap_or_default();
                    if requests.is_empty() {
                        // Only state to hand back: the server is still working; do not spin.
                        tokio::time::sleep(Duration::from_millis(50 << round.min(3))).await;
                    }
                    let responses = questions::input_responses(elicitation, asker, requests);
                    params.input_responses =
                        Some(responses.await?).filter(|responses| !responses.is_empty());
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
        Err(SessionError::transport(format!(
            "{tool} still wanted more input after {MAX_ROUNDS} rounds"
        )))
    };
    tokio::time::timeout(timeout, rounds)
        .await
        .map_err(|_| SessionError::Timeout(timeout))?
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
