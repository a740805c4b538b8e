//! The aggregated MCP server's handler: `tools/list` from the served set (no upstream round
//! trip), `tools/call` relayed through the engine's timed path, and every client told when the
//! set changes. One follower task keeps the set current, and finds a new upstream if its
//! daemon goes away.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::{Peer, RoleServer, ServerHandler};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::offered;
use super::served::Served;
use super::sideband::{self, notify_progress};
use super::upstream::{BAD_ANSWER, Upstream};
use crate::call_log::CallOrigin;
use crate::daemon::DaemonOptions;
use crate::session::Sideband;
use crate::wire::{Request, WireError};

/// A client that does not take a notification within this long is skipped for it.
const NOTIFY_LIMIT: Duration = Duration::from_secs(1);

/// Wait before opening an upstream again after it could not be opened.
const REOPEN_PAUSE: Duration = Duration::from_secs(2);

/// The handler; clones share one state (one per process, however many clients).
#[derive(Clone)]
pub struct AggregatedServer {
    shared: Arc<Shared>,
}

struct Shared {
    upstream: watch::Receiver<Option<Upstream>>,
    served: watch::Receiver<Option<Arc<Served>>>,
    /// Initialize-era clients, reached through their session.
    peers: Mutex<Vec<Peer<RoleServer>>>,
    /// 2026-era clients, reached through their `subscriptions/listen`.
    sinks: Mutex<Vec<SubscriptionSink>>,
}

/// Where the served tools come from.
pub enum Source {
    /// The daemon for this config dir, or with none an engine started here (`serve`); found
    /// again the same way if it goes away.
    Open(DaemonOptions),
    /// The daemon of this very process (its HTTP endpoint).
    Local(Arc<crate::control::SharedDaemon>),
}

/// The running follower: stop it with [`Following::close`].
pub struct Following {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Following {
    /// Stops following and closes the upstream (an embedded engine stops its servers).
    pub async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

impl AggregatedServer {
    /// The handler, and the task that opens the upstream and keeps the served set current;
    /// requests wait for the first set.
    pub fn start(source: Source) -> (Self, Following) {
        let (publish_upstream, upstream) = watch::channel(None);
        let (publish_served, served) = watch::channel(None);
        let server = Self {
            shared: Arc::new(Shared {
                upstream,
                served,
                peers: Mutex::default(),
                sinks: Mutex::default(),
            }),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(follow(
            server.clone(),
            source,
            publish_upstream,
            publish_served,
            stop.clone(),
        ));
        (server, Following { stop, task })
    }

    async fn served(&self) -> Arc<Served> {
        let mut served = self.shared.served.clone();
        match served.wait_for(Option::is_some).await {
            Ok(set) => set.clone().unwrap_or_default(),
            Err(_) => Arc::default(),
        }
    }

    async fn upstream(&self) -> Option<Upstream> {
        let mut upstream = self.shared.upstream.clone();
        upstream.wait_for(Option::is_some).await.ok()?.clone()
    }

    async fn upstream_or_stopping(&self) -> Result<Upstream, ErrorData> {
        self.upstream()
            .await
            .ok_or_else(|| ErrorData::internal_error("Switchboard is shutting down", None))
    }

    /// Tells every client the tool list changed; forgets those that have gone.
    async fn announce(&self) {
        let peers: Vec<_> = lock(&self.shared.peers, |peers| {
            peers.retain(|p| !p.is_transport_closed());
            peers.clone()
        });
        for peer in peers {
            let _ = tokio::time::timeout(NOTIFY_LIMIT, peer.notify_tool_list_changed()).await;
        }
        let sinks: Vec<_> = lock(&self.shared.sinks, |sinks| sinks.clone());
        let mut closed = Vec::new();
        for sink in sinks {
            let sent = tokio::time::timeout(NOTIFY_LIMIT, sink.notify_tool_list_changed()).await;
            if matches!(sent, Ok(Err(_))) {
                closed.push(sink.id().clone());
            }
        }
        if !closed.is_empty() {
            lock(&self.shared.sinks, |sinks| {
                sinks.retain(|s| !closed.contains(s.id()));
            });
        }
    }

    /// Relays one call and says how it went: the tool's answer, or a tool error the calling
    /// model can read (a connector that went down, a daemon that went away).
    async fn relay(
        &self,
        name: &str,
        arguments: Value,
        caller: CallOrigin,
        sideband: Sideband,
    ) -> Result<CallToolResult, ErrorData> {
        let served = self.served().await;
        let origin = match served.origin(name) {
            Ok(origin) => origin.clone(),
            Err(Some(departed)) => {
                let why = self.why_not_served(&departed.connector).await;
                return Ok(tool_error(format!(
                    "{name} is no longer served: connector {:?} {why}",
                    departed.connector
                )));
            }
            Err(None) => {
                return Err(ErrorData::invalid_params(
                    format!("no tool named {name:?}"),
                    None,
                ));
            }
        };
        let Some(upstream) = self.upstream().await else {
            return Ok(tool_error("Switchboard is shutting down".into()));
        };
        let qualified = crate::catalog::qualified_name(&origin.connector, &origin.tool);
        match upstream.call(qualified, arguments, caller, sideband).await {
            // An initialize-era server's answer has no `resultType`, which a 2026-07-28 client
            // requires (rmcp strips it again for older clients).
            Ok(mut answer) => {
                answer.result_type = Some(rmcp::model::ResultType::COMPLETE);
                Ok(answer)
            }
            Err(WireError { code, message, .. }) if code == BAD_ANSWER => {
                Err(ErrorData::internal_error(message, None))
            }
            Err(WireError { message, .. }) => Ok(tool_error(message)),
        }
    }

    /// "is down (reason)", as the daemon sees the connector now.
    async fn why_not_served(&self, connector: &str) -> String {
        let Some(upstream) = self.upstream().await else {
            return "is not available".into();
        };
        let overview = upstream.ask(Request::Overview {}).await.unwrap_or_default();
        let status = overview["connectors"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["id"] == connector));
        match status {
            None => "was removed".into(),
            Some(status) => {
                let state = status["state"].as_str().unwrap_or("unknown");
                match status["reason"].as_str() {
                    Some(reason) => format!("is {state} ({reason})"),
                    None => format!("is {state}"),
                }
            }
        }
    }
}

fn lock<T, R>(mutex: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R
where
    R: Default,
{
    mutex
        .lock()
        .map(|mut guard| f(&mut guard))
        .unwrap_or_default()
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// Opens the upstream, then keeps the served set current until `stop`: asks for the tools,
/// publishes the set, tells clients when it changed, waits for the next change. When the
/// upstream goes away, opens one again.
async fn follow(
    server: AggregatedServer,
    source: Source,
    publish_upstream: watch::Sender<Option<Upstream>>,
    publish_served: watch::Sender<Option<Arc<Served>>>,
    stop: CancellationToken,
) {
    let follow_one = async {
        loop {
            let opened = match &source {
                Source::Open(options) => Upstream::open(options).await,
                Source::Local(daemon) => Ok(Upstream::Local(daemon.clone())),
            };
            let upstream = match opened {
                Ok(upstream) => upstream,
                Err(error) => {
                    tracing::error!(%error, "cannot open an engine to serve from");
                    // Requests get an empty set rather than waiting for good.
                    publish_served.send_if_modified(|served| {
                        let first = served.is_none();
                        if first {
                            *served = Some(Arc::default());
                        }
                        first
                    });
                    tokio::time::sleep(REOPEN_PAUSE).await;
                    continue;
                }
            };
            publish_upstream.send_replace(Some(upstream.clone()));
            // Subscribed before asking, so no change falls between the two.
            match upstream.changes().await {
                Ok(mut changes) => loop {
                    refresh(&server, &upstream, &publish_served).await;
                    if changes.next().await.is_err() {
                        break;
                    }
                },
                Err(error) => tracing::warn!(%error, "cannot follow the catalog"),
            }
            if matches!(source, Source::Local(_)) {
                // This process's own daemon stopped: so does its endpoint.
                return;
            }
            tracing::warn!("the upstream went away; opening another");
            if let Some(gone) = publish_upstream.send_replace(None) {
                gone.close().await;
            }
        }
    };
    tokio::select! {
        () = stop.cancelled() => {}
        () = follow_one => {}
    }
    if let Some(upstream) = publish_upstream.send_replace(None) {
        upstream.close().await;
    }
}

/// Asks for the tools and publishes the set if it changed (telling clients, but for the first).
async fn refresh(
    server: &AggregatedServer,
    upstream: &Upstream,
    publish: &watch::Sender<Option<Arc<Served>>>,
) {
    let tools = match upstream.tools().await {
        Ok(tools) => tools,
        Err(error) => {
            tracing::warn!(%error, "cannot list the tools to serve");
            return;
        }
    };
    let previous = publish.borrow().clone();
    let next = Served::new(tools, previous.as_deref());
    if previous.as_ref().is_some_and(|p| p.same_as(&next)) {
        return;
    }
    tracing::debug!(tools = next.len(), "serving a new tool set");
    publish.send_replace(Some(Arc::new(next)));
    if previous.is_some() {
        server.announce().await;
    }
}

impl ServerHandler for AggregatedServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "switchboard",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Every tool of the MCP servers Switchboard keeps connected, named \
             <connector>_<tool>.",
        )
    }

    /// What the HTTP transport checks `Mcp-Param-*` headers against (SEP-2243).
    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.shared.served.borrow().as_ref()?.tool(name).cloned()
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        lock(&self.shared.sinks, |sinks| {
            sinks.push(context.sink().clone())
        });
        context.cancelled().await;
        Ok(())
    }

    /// An initialize-era client is told of changes through its session, kept once per session
    /// (a 2026-era one sends no `initialized`: it listens instead).
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        lock(&self.shared.peers, |peers| {
            peers.retain(|p| !p.is_transport_closed());
            peers.push(context.peer);
        });
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let served = self.served().await;
        let (tools, next) = served.page(request.and_then(|r| r.cursor).as_deref());
        let mut result = ListToolsResult::with_all_items(tools).with_ttl_ms(0);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        offered::resources(&self.upstream_or_stopping().await?).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        offered::resource_templates(&self.upstream_or_stopping().await?).await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let upstream = self.upstream_or_stopping().await?;
        offered::read_resource(&upstream, &request.uri)
            .await
            .map(Into::into)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        offered::prompts(&self.upstream_or_stopping().await?).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let upstream = self.upstream_or_stopping().await?;
        offered::get_prompt(&upstream, request)
            .await
            .map(Into::into)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let correlation = crate::call_log::new_correlation();
        let client = context
            .peer
            .peer_info()
            .map(|info| info.client_info.name.clone())
            .or_else(|| context.meta.client_info().map(|info| info.name))
            .unwrap_or_else(|| "unknown".into());
        let started = Instant::now();
        let arguments = request.arguments.map_or(Value::Null, Value::Object);
        // rmcp moves the request's `_meta` (its progress token) into the context.
        let token = context.meta.get_progress_token();
        let (progress, mut updates) = tokio::sync::mpsc::channel(64);
        let (questions, mut asked) = tokio::sync::mpsc::channel(4);
        let sideband = Sideband {
            progress: token.is_some().then_some(progress),
            questions: sideband::can_answer(&context).then_some(questions),
        };
        let origin = CallOrigin {
            client: Some(client.clone()),
            correlation: Some(correlation.clone()),
        };
        let relay = self.relay(&request.name, arguments, origin, sideband);
        tokio::pin!(relay);
        let outcome = loop {
            tokio::select! {
                outcome = &mut relay => break outcome,
                Some(update) = updates.recv(), if token.is_some() => {
                    notify_progress(&context.peer, token.clone(), update).await;
                }
                // Answered on a task of its own: the call (and its cancellation) goes on.
                Some(question) = asked.recv() => {
                    tokio::spawn(sideband::relay(context.peer.clone(), question));
                }
                () = context.ct.cancelled() => break Err(ErrorData::internal_error("cancelled by the client", None)),
            }
        };
        while let Ok(update) = updates.try_recv() {
            notify_progress(&context.peer, token.clone(), update).await;
        }
        let result = match &outcome {
            Ok(r) if r.is_error == Some(true) => "tool_error",
            Ok(_) => "ok",
            Err(_) => "error",
        };
        tracing::info!(
            call = %correlation,
            %client,
            tool = %request.name,
            ms = started.elapsed().as_secs_f64() * 1e3,
            result,
            "tool call"
        );
        outcome.map(Into::into)
    }
}
