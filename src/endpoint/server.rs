//! The aggregated MCP server's handler: `tools/list` from the served set (no upstream round
//! trip), `tools/call` relayed through the engine's timed path, and every client told when the
//! set changes. One follower task keeps the set current, and finds a new upstream if its
//! daemon goes away.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::{Peer, RoleServer, ServerHandler};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::offered;
use super::rounds::Rounds;
use super::served::Served;
use super::upstream::Upstream;
use crate::daemon::DaemonOptions;
use crate::wire::Request;

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
    /// Calls waiting for a 2026-era client to come back with an answer.
    rounds: Rounds,
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
                rounds: Rounds::default(),
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

    pub(super) async fn served(&self) -> Arc<Served> {
        let mut served = self.shared.served.clone();
        match served.wait_for(Option::is_some).await {
            Ok(set) => set.clone().unwrap_or_default(),
            Err(_) => Arc::default(),
        }
    }

    pub(super) async fn upstream(&self) -> Option<Upstream> {
        let mut upstream = self.shared.upstream.clone();
        upstream.wait_for(Option::is_some).await.ok()?.clone()
    }

    pub(super) fn rounds(&self) -> &Rounds {
        &self.shared.rounds
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

    /// "is down (reason)", as the daemon sees the connector now.
    pub(super) async fn why_not_served(&self, connector: &str) -> String {
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

pub(super) fn tool_error(message: String) -> CallToolResult {
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
        self.call(request, context).await
    }
}
