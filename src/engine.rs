//! The running engine: keeps every desired connector connected, and honest about it.
//!
//! One task, the reconciler, owns the state. Whenever the desired set changes it starts, stops
//! or restarts one supervisor task per connector, and it folds what supervisors report into one
//! snapshot (published on a `watch` channel) and an event stream. A supervisor connects (within
//! the shared concurrency limit), then serves: re-lists on `list_changed`, probes when idle, and
//! on failure reconnects with capped exponential backoff and full jitter. A stopped or failed
//! connector's tools leave the catalog at once. Calls go straight to a live connector's caller.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use indexmap::IndexMap;
use rmcp::model::{CallToolResult, Tool};
use serde::Serialize;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::full_jitter;
use crate::catalog::{Catalog, split_qualified};
use crate::connector::{ConnectorSpec, Credential, Source};
use crate::health::Health;
use crate::metrics::{LatencySummary, Metrics, TOOL_ERROR};
use crate::session::{Caller, Session, SessionError};

/// Connectors connected at once unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Connectors connecting at once.
    pub concurrency: usize,
    /// Probe a connector that has had no successful call for this long.
    pub probe_every: Duration,
    /// First reconnect delay bound; doubles per failed attempt up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Degraded when the p95 of recent calls is over this…
    pub slow_p95: Duration,
    /// …or more than half of at least this many recent calls failed.
    pub min_calls_for_error_rate: usize,
}

impl EngineOptions {
    /// Defaults, with the concurrency limit from the environment:
    /// `MCP_CONNECTOR_REFRESH_SYNC=true` keeps the replaced system's one-at-a-time order,
    /// `SWITCHBOARD_SYNC_CONCURRENCY` sets the limit otherwise.
    pub fn from_env() -> Self {
        let sequential = std::env::var("MCP_CONNECTOR_REFRESH_SYNC").is_ok_and(|v| v == "true");
        let limit = std::env::var("SWITCHBOARD_SYNC_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(DEFAULT_CONCURRENCY);
        Self {
            concurrency: if sequential { 1 } else { limit },
            ..Self::default()
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            probe_every: Duration::from_secs(30),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            slow_p95: Duration::from_secs(5),
            min_calls_for_error_rate: 10,
        }
    }
}

/// One connector as the engine sees it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorStatus {
    pub id: String,
    /// Whether the manifest or the registry defines it (which decides how it is switched off).
    pub source: Source,
    pub transport: &'static str,
    pub state: Health,
    pub reason: Option<String>,
    pub tools: usize,
    /// Handshake plus tool listing, of the current session.
    pub latency_ms: Option<f64>,
    pub protocol_version: Option<String>,
    /// Failed attempts since the last success.
    pub attempt: u32,
    /// When down: the wait before the next attempt.
    pub retry_in_ms: Option<u64>,
    /// Calls through the engine, with percentiles, as of this snapshot.
    pub calls: Option<LatencySummary>,
    /// Whether its secrets are there (`None`: it needs none).
    pub credential: Option<Credential>,
}

/// Everything the tray, the window, the CLI and metrics show, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct EngineSnapshot {
    /// In the desired set's order.
    pub connectors: Vec<ConnectorStatus>,
    /// Exactly the tools of live connectors.
    pub catalog: Arc<Catalog>,
    /// The desired set this snapshot reflects (it holds secrets: never shown).
    desired: Arc<Vec<ConnectorSpec>>,
}

impl EngineSnapshot {
    /// Whether every connector has an answer: none is connecting (or re-checking).
    pub fn is_settled(&self) -> bool {
        !self
            .connectors
            .iter()
            .any(|c| c.state == Health::Connecting)
    }
}

/// Why a call through the engine failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error("{0:?} is not CONNECTOR.TOOL")]
    UnknownTool(String),
    #[error("connector {0:?} is not connected")]
    NotConnected(String),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// A change worth telling about (tray notifications, logs).
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    StateChanged {
        id: String,
        from: Health,
        to: Health,
        reason: Option<String>,
    },
    ToolsChanged {
        id: String,
        count: usize,
    },
    /// The connector left the desired set.
    Removed {
        id: String,
    },
}

type Callers = Arc<RwLock<HashMap<String, Caller>>>;

/// A handle on the running engine.
pub struct Engine {
    desired: watch::Receiver<Vec<ConnectorSpec>>,
    concurrency: usize,
    commands: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
    snapshots: watch::Receiver<Arc<EngineSnapshot>>,
    events: broadcast::Sender<EngineEvent>,
    callers: Callers,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Engine {
    /// Starts reconciling `desired` (and every later value of it).
    pub fn start(
        desired: watch::Receiver<Vec<ConnectorSpec>>,
        http: reqwest::Client,
        options: EngineOptions,
    ) -> Self {
        Self::start_with_metrics(desired, http, options, Metrics::new())
    }

    /// Like [`Engine::start`], measuring into `metrics` (shared with the manifest feed and the
    /// registry, so one endpoint shows them all).
    pub fn start_with_metrics(
        mut desired: watch::Receiver<Vec<ConnectorSpec>>,
        http: reqwest::Client,
        options: EngineOptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (publish, snapshots) = watch::channel(Arc::new(EngineSnapshot::default()));
        let (events, _) = broadcast::channel(256);
        let callers: Callers = Arc::default();
        let stop = CancellationToken::new();
        let (reports_tx, reports) = mpsc::channel(256);
        let (commands, command_rx) = mpsc::channel(16);
        let (recheck, _) = watch::channel(0u64);
        let concurrency = options.concurrency;
        let mut reconciler = Reconciler {
            metrics: metrics.clone(),
            http,
            permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
            options,
            running: IndexMap::new(),
            statuses: IndexMap::new(),
            tools: HashMap::new(),
            supervisors: JoinSet::new(),
            reports_tx,
            publish,
            events: events.clone(),
            callers: callers.clone(),
            next_generation: 0,
            recheck,
            settling_since: None,
            desired: Arc::default(),
        };
        // Reconciled before the handle is returned, so its first snapshot already shows the
        // desired set (as connecting): `settled` never mistakes "not started" for "done".
        let first = desired.borrow_and_update().clone();
        reconciler.reconcile(first);
        let task = tokio::spawn(reconciler.run(desired.clone(), reports, command_rx, stop.clone()));
        Self {
            desired,
            concurrency,
            commands,
            metrics,
            snapshots,
            events,
            callers,
            stop,
            task,
        }
    }

    pub fn snapshot(&self) -> Arc<EngineSnapshot> {
        self.snapshots.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<EngineSnapshot>> {
        self.snapshots.clone()
    }

    /// How long a one-shot run waits to settle: every enabled connector's connect timeout, in
    /// rounds of the concurrency limit, plus a second.
    pub fn one_shot_deadline(&self) -> Duration {
        let desired = self.desired.borrow();
        let enabled: Vec<Duration> = desired
            .iter()
            .filter(|s| s.enabled)
            .map(|s| s.connect_timeout)
            .collect();
        let longest = enabled.iter().max().copied().unwrap_or_default();
        let rounds = enabled.len().div_ceil(self.concurrency.max(1)) as u32;
        longest.saturating_mul(rounds.max(1)) + Duration::from_secs(1)
    }

    /// Waits until the engine has taken in the latest desired set and no connector is
    /// connecting, or until `deadline` has passed; returns the snapshot as it then is. (A
    /// one-shot run: `sync --once`, `tools`, `call`.)
    pub async fn settled(&self, deadline: Duration) -> Arc<EngineSnapshot> {
        let mut snapshots = self.snapshots.clone();
        let mut desired = self.desired.clone();
        let _ = tokio::time::timeout(deadline, async {
            loop {
                let current = snapshots.borrow_and_update().clone();
                if current.is_settled() && *current.desired == *desired.borrow_and_update() {
                    return;
                }
                tokio::select! {
                    changed = snapshots.changed() => if changed.is_err() { return },
                    changed = desired.changed() => if changed.is_err() { return },
                }
            }
        })
        .await;
        self.snapshot()
    }

    pub fn events(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The last lines a live stdio connector wrote to stderr (`None` if it is not connected).
    pub fn stderr(&self, connector: &str) -> Option<Vec<String>> {
        let callers = self.callers.read().ok()?;
        Some(callers.get(connector)?.stderr_tail())
    }

    /// Re-checks every connector now: live ones are probed and shown connecting until they
    /// answer, waiting ones retry at once. ("Sync now"; also done by itself after a sleep.)
    /// Returns once the snapshot shows it, so a [`Engine::settled`] after it waits for the
    /// answers.
    pub async fn recheck_all(&self, reason: &str) {
        let (done, marked) = tokio::sync::oneshot::channel();
        let sent = self
            .commands
            .send(Command::Recheck(reason.to_string(), done))
            .await;
        if sent.is_ok() {
            let _ = marked.await;
        }
    }

    /// Calls `connector.tool` on its live session, timing it into the metrics.
    pub async fn call(
        &self,
        qualified: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<CallToolResult, CallError> {
        let (connector, tool) = split_qualified(qualified)
            .ok_or_else(|| CallError::UnknownTool(qualified.to_string()))?;
        let caller = self
            .callers
            .read()
            .ok()
            .and_then(|callers| callers.get(connector).cloned())
            .ok_or_else(|| CallError::NotConnected(connector.to_string()))?;
        let started = std::time::Instant::now();
        let result = caller.call(tool, arguments).await;
        let error_type = match &result {
            Ok(r) if r.is_error == Some(true) => Some(TOOL_ERROR.to_string()),
            Ok(_) => None,
            Err(SessionError::Server { code, .. }) => Some(code.to_string()),
            Err(e) => Some(e.kind().to_string()),
        };
        self.metrics
            .record_call(connector, tool, started.elapsed(), error_type.as_deref());
        // Full means a republish is already due; this call will be in it.
        let _ = self.commands.try_send(Command::CallRecorded);
        Ok(result?)
    }

    /// Stops every supervisor (closing sessions, stopping stdio children) and waits for them.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// What a handle asks of the reconciler.
enum Command {
    /// Re-check every connector; the sender hears once the snapshot shows it.
    Recheck(String, tokio::sync::oneshot::Sender<()>),
    /// A call was timed: the snapshot's latency figures are behind.
    CallRecorded,
}

/// Calls republish the snapshot (with fresh p50/p95/p99) at most this often.
const CALLS_PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// How often the clocks are compared to notice that the machine slept.
const SLEEP_CHECK_EVERY: Duration = Duration::from_secs(5);
/// Wall-clock time beyond the monotonic clock's that counts as a sleep.
const SLEEP_THRESHOLD: Duration = Duration::from_secs(10);

/// What a supervisor tells the reconciler. `generation` tells reports of a replaced supervisor
/// apart from its successor's.
struct Report {
    id: String,
    generation: u64,
    update: Update,
}

enum Update {
    Connecting,
    Up {
        tools: Vec<Tool>,
        latency: Duration,
        protocol_version: Option<String>,
        caller: Caller,
    },
    Tools(Vec<Tool>),
    /// The verdict on recent calls: `Some(reason)` to degrade, `None` when they are fine.
    Quality(Option<String>),
    Failed {
        state: Health,
        reason: String,
        attempt: u32,
        retry_in: Option<Duration>,
    },
}

struct Running {
    spec: ConnectorSpec,
    generation: u64,
    stop: CancellationToken,
}

struct Reconciler {
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    permits: Arc<Semaphore>,
    options: EngineOptions,
    running: IndexMap<String, Running>,
    statuses: IndexMap<String, ConnectorStatus>,
    tools: HashMap<String, Vec<Tool>>,
    supervisors: JoinSet<()>,
    reports_tx: mpsc::Sender<Report>,
    publish: watch::Sender<Arc<EngineSnapshot>>,
    events: broadcast::Sender<EngineEvent>,
    callers: Callers,
    next_generation: u64,
    /// Bumped to make every supervisor re-check its connector at once.
    recheck: watch::Sender<u64>,
    /// Since when some connector has been connecting, for the sync duration.
    settling_since: Option<std::time::Instant>,
    /// The desired set last reconciled.
    desired: Arc<Vec<ConnectorSpec>>,
}

impl Reconciler {
    async fn run(
        mut self,
        mut desired: watch::Receiver<Vec<ConnectorSpec>>,
        mut reports: mpsc::Receiver<Report>,
        mut commands: mpsc::Receiver<Command>,
        stop: CancellationToken,
    ) {
        // The monotonic clock stands still while a laptop sleeps; the wall clock does not.
        let mut clocks = tokio::time::interval(SLEEP_CHECK_EVERY);
        let mut last_tick = (std::time::Instant::now(), std::time::SystemTime::now());
        // When calls made since the last snapshot are to be published.
        let mut calls_due: Option<tokio::time::Instant> = None;
        loop {
            let publish_calls = async {
                match calls_due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(command) = commands.recv() => match command {
                    Command::Recheck(reason, done) => {
                        self.recheck(&reason);
                        let _ = done.send(());
                    }
                    Command::CallRecorded => {
                        calls_due.get_or_insert_with(|| tokio::time::Instant::now() + CALLS_PUBLISH_EVERY);
                    }
                },
                () = publish_calls => {
                    calls_due = None;
                    self.publish();
                }
                _ = clocks.tick() => {
                    let now = (std::time::Instant::now(), std::time::SystemTime::now());
                    let wall = now.1.duration_since(last_tick.1).unwrap_or_default();
                    if wall.saturating_sub(now.0 - last_tick.0) > SLEEP_THRESHOLD {
                        self.recheck("the machine was asleep");
                    }
                    last_tick = now;
                }
                changed = desired.changed() => {
                    if changed.is_err() {
                        break; // the source of the desired set is gone
                    }
                    let specs = desired.borrow_and_update().clone();
                    self.reconcile(specs);
                }
                Some(report) = reports.recv() => self.apply(report),
                Some(_) = self.supervisors.join_next(), if !self.supervisors.is_empty() => {}
            }
        }
        for running in self.running.values() {
            running.stop.cancel();
        }
        while self.supervisors.join_next().await.is_some() {}
    }

    /// Shows every live connector as connecting until its supervisor has heard from it again.
    fn recheck(&mut self, reason: &str) {
        tracing::info!(reason, "re-checking every connector");
        let live: Vec<String> = self.tools.keys().cloned().collect();
        for id in live {
            if let Some(status) = self.statuses.get_mut(&id) {
                let from = status.state;
                status.state = Health::Connecting;
                status.reason = Some(format!("re-checking: {reason}"));
                let status = status.clone();
                self.tell_state(&id, from, &status);
            }
        }
        self.recheck.send_modify(|generation| *generation += 1);
        self.publish();
    }

    fn reconcile(&mut self, specs: Vec<ConnectorSpec>) {
        let before = self.statuses.clone();
        self.desired = Arc::new(specs.clone());
        let wanted: IndexMap<String, ConnectorSpec> =
            specs.into_iter().map(|s| (s.id.clone(), s)).collect();
        let gone: Vec<String> = self
            .running
            .iter()
            .filter(|(id, running)| wanted.get(*id) != Some(&running.spec))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.stop(&id);
            if !wanted.contains_key(&id) {
                self.metrics.remove_connector(&id);
                let _ = self.events.send(EngineEvent::Removed { id });
            }
        }
        let mut statuses = IndexMap::new();
        for (id, spec) in wanted {
            let previous = self.statuses.swap_remove(&id);
            let status = if !spec.enabled {
                self.status_for(&spec, Health::Disabled, None)
            } else if let Some(variable) = &spec.missing_credential {
                let reason = format!("no credential: set {variable}");
                self.status_for(&spec, Health::Unauthorized, Some(reason))
            } else if self.running.contains_key(&id) {
                previous.unwrap_or_else(|| self.status_for(&spec, Health::Connecting, None))
            } else {
                self.start(spec.clone());
                self.status_for(&spec, Health::Connecting, None)
            };
            statuses.insert(id, status);
        }
        self.statuses = statuses;
        for (id, status) in &self.statuses {
            let from = before.get(id).map_or(Health::Connecting, |s| s.state);
            self.tell_state(id, from, status);
        }
        self.publish();
    }

    fn status_for(
        &self,
        spec: &ConnectorSpec,
        state: Health,
        reason: Option<String>,
    ) -> ConnectorStatus {
        ConnectorStatus {
            id: spec.id.clone(),
            source: spec.source,
            transport: spec.endpoint.transport(),
            state,
            reason,
            tools: 0,
            latency_ms: None,
            protocol_version: None,
            attempt: 0,
            retry_in_ms: None,
            calls: None,
            credential: spec.credential(),
        }
    }

    fn start(&mut self, spec: ConnectorSpec) {
        self.next_generation += 1;
        let generation = self.next_generation;
        let stop = CancellationToken::new();
        let supervisor = Supervisor {
            recheck: self.recheck.subscribe(),
            metrics: self.metrics.clone(),
            spec: spec.clone(),
            http: self.http.clone(),
            permits: self.permits.clone(),
            options: self.options.clone(),
            stop: stop.clone(),
            reports: self.reports_tx.clone(),
            generation,
        };
        self.supervisors.spawn(supervisor.run());
        self.running.insert(
            spec.id.clone(),
            Running {
                spec,
                generation,
                stop,
            },
        );
    }

    /// Stops a supervisor; its tools and caller go at once, not when it has finished closing.
    fn stop(&mut self, id: &str) {
        if let Some(running) = self.running.shift_remove(id) {
            running.stop.cancel();
        }
        self.evict(id);
        self.statuses.shift_remove(id);
    }

    /// Returns whether the connector had tools to take away.
    fn evict(&mut self, id: &str) -> bool {
        if let Ok(mut callers) = self.callers.write() {
            callers.remove(id);
        }
        let had_tools = self.tools.remove(id).is_some();
        if had_tools {
            let _ = self.events.send(EngineEvent::ToolsChanged {
                id: id.to_string(),
                count: 0,
            });
        }
        had_tools
    }

    fn apply(&mut self, report: Report) {
        let current = self
            .running
            .get(&report.id)
            .is_some_and(|r| r.generation == report.generation);
        if !current {
            return; // from a supervisor that was stopped or replaced
        }
        let Some(before) = self.statuses.get(&report.id).cloned() else {
            return;
        };
        let mut status = before.clone();
        let mut tools_changed = false;
        match report.update {
            // A retry does not make a failed connector "connecting" again: it is down (or
            // unauthorized) until an attempt succeeds, so the tray does not flicker.
            Update::Connecting if matches!(status.state, Health::Down | Health::Unauthorized) => {
                status.retry_in_ms = None
            }
            Update::Connecting => {
                status.state = Health::Connecting;
                status.reason = None;
                status.attempt = 0;
                status.retry_in_ms = None;
            }
            Update::Up {
                tools,
                latency,
                protocol_version,
                caller,
            } => {
                let (state, reason) = Health::after_connect(tools.len());
                status = ConnectorStatus {
                    state,
                    reason,
                    tools: tools.len(),
                    latency_ms: Some(latency.as_secs_f64() * 1e3),
                    protocol_version,
                    attempt: 0,
                    retry_in_ms: None,
                    ..status
                };
                if let Ok(mut callers) = self.callers.write() {
                    callers.insert(report.id.clone(), caller);
                }
                tools_changed = self.set_tools(&report.id, tools);
            }
            Update::Quality(verdict) => {
                let live = self.tools.contains_key(&report.id);
                if live && status.tools > 0 {
                    status.state = if verdict.is_some() {
                        Health::Degraded
                    } else {
                        Health::Healthy
                    };
                    status.reason = verdict;
                }
            }
            Update::Tools(tools) => {
                let (state, reason) = Health::after_connect(tools.len());
                status.state = state;
                status.reason = reason;
                status.tools = tools.len();
                tools_changed = self.set_tools(&report.id, tools);
            }
            Update::Failed {
                state,
                reason,
                attempt,
                retry_in,
            } => {
                tools_changed = self.evict(&report.id);
                status.state = state;
                status.reason = Some(reason);
                status.tools = 0;
                status.attempt = attempt;
                status.retry_in_ms = retry_in.map(|d| d.as_millis() as u64);
            }
        }
        self.tell_state(&report.id, before.state, &status);
        status.calls = self.metrics.latency(&report.id);
        // Probe ticks report the same verdict again and again: publish only what is news.
        let news = tools_changed || status != before;
        self.statuses.insert(report.id, status);
        if news {
            self.publish();
        }
    }

    /// Returns whether the list differs (by tool name) from what the connector had.
    fn set_tools(&mut self, id: &str, tools: Vec<Tool>) -> bool {
        let count = tools.len();
        let changed = self
            .tools
            .insert(id.to_string(), tools.clone())
            .is_none_or(|old| {
                !old.iter()
                    .map(|t| &t.name)
                    .eq(tools.iter().map(|t| &t.name))
            });
        if changed {
            let _ = self.events.send(EngineEvent::ToolsChanged {
                id: id.to_string(),
                count,
            });
        }
        changed
    }

    fn tell_state(&self, id: &str, from: Health, status: &ConnectorStatus) {
        if from != status.state {
            tracing::info!(connector = id, from = from.as_str(), to = status.state.as_str(), reason = ?status.reason, "connector state");
            let _ = self.events.send(EngineEvent::StateChanged {
                id: id.to_string(),
                from,
                to: status.state,
                reason: status.reason.clone(),
            });
        }
    }

    fn publish(&mut self) {
        let connecting = self
            .statuses
            .values()
            .any(|s| s.state == Health::Connecting);
        match (connecting, self.settling_since) {
            (true, None) => self.settling_since = Some(std::time::Instant::now()),
            (false, Some(since)) => {
                self.metrics.record_sync(since.elapsed());
                self.settling_since = None;
            }
            _ => {}
        }
        for status in self.statuses.values_mut() {
            self.metrics
                .set_connector(&status.id, status.state, status.tools);
            status.calls = self.metrics.latency(&status.id);
        }
        let catalog = Catalog::from_connectors(
            self.tools
                .iter()
                .map(|(id, tools)| (id.as_str(), tools.as_slice())),
        );
        self.publish.send_replace(Arc::new(EngineSnapshot {
            connectors: self.statuses.values().cloned().collect(),
            catalog: Arc::new(catalog),
            desired: self.desired.clone(),
        }));
    }
}

/// Keeps one connector connected until told to stop.
struct Supervisor {
    recheck: watch::Receiver<u64>,
    metrics: Arc<Metrics>,
    spec: ConnectorSpec,
    http: reqwest::Client,
    permits: Arc<Semaphore>,
    options: EngineOptions,
    stop: CancellationToken,
    reports: mpsc::Sender<Report>,
    generation: u64,
}

/// Why a live session ended.
enum Ended {
    Stopped,
    Failed(Health, String),
}

impl Supervisor {
    async fn run(mut self) {
        let mut attempt = 0;
        // How the server was reached last time: reconnects skip detecting it again.
        let mut known = None;
        loop {
            self.report(Update::Connecting).await;
            let opened = {
                let _permit = tokio::select! {
                    _ = self.stop.cancelled() => return,
                    permit = self.permits.acquire() => permit,
                };
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    opened = Session::open_as(&self.spec, &self.http, known) => opened,
                }
            };
            match opened {
                Ok(mut session) => {
                    attempt = 0;
                    known = Some(session.handshake);
                    self.report(Update::Up {
                        tools: session.tools.clone(),
                        latency: session.connect_latency,
                        protocol_version: session.protocol_version.clone(),
                        caller: session.caller(),
                    })
                    .await;
                    let ended = self.serve(&mut session).await;
                    session.close().await;
                    match ended {
                        Ended::Stopped => return,
                        // A session that worked and broke is retried at once (the server may
                        // just have restarted); backoff starts if that fails too.
                        Ended::Failed(state, reason) => {
                            self.report(Update::Failed {
                                state,
                                reason,
                                attempt,
                                retry_in: None,
                            })
                            .await;
                        }
                    }
                }
                Err(error) => {
                    attempt += 1;
                    let options = &self.options;
                    // The first failed attempt waits up to `backoff_base`.
                    let delay = full_jitter(options.backoff_base, options.backoff_cap, attempt - 1);
                    self.report(Update::Failed {
                        state: Health::after_failure(&error),
                        reason: error.to_string(),
                        attempt,
                        retry_in: Some(delay),
                    })
                    .await;
                    tokio::select! {
                        _ = self.stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                        // The network may be back: do not wait out the backoff.
                        _ = self.recheck.changed() => {}
                    }
                }
            }
        }
    }

    async fn serve(&mut self, session: &mut Session) -> Ended {
        enum Wake {
            Stop,
            ToolsChanged(Result<(), SessionError>),
            ProbeDue,
            Recheck,
        }
        self.recheck.mark_unchanged();
        loop {
            let wake = tokio::select! {
                _ = self.stop.cancelled() => Wake::Stop,
                changed = session.tools_changed() => Wake::ToolsChanged(changed),
                _ = tokio::time::sleep(self.options.probe_every) => Wake::ProbeDue,
                _ = self.recheck.changed() => Wake::Recheck,
            };
            match wake {
                Wake::Stop => return Ended::Stopped,
                Wake::ToolsChanged(Err(e)) => {
                    return Ended::Failed(Health::after_failure(&e), e.to_string());
                }
                Wake::ToolsChanged(Ok(())) => match session.relist(self.spec.connect_timeout).await
                {
                    Ok(tools) => self.report(Update::Tools(tools.to_vec())).await,
                    Err(e) => return Ended::Failed(Health::after_failure(&e), e.to_string()),
                },
                Wake::ProbeDue => {
                    if session.is_closed() {
                        return Ended::Failed(Health::Down, "the connection closed".into());
                    }
                    if session.caller().idle_for() >= self.options.probe_every
                        && let Err(e) = session.probe(self.spec.connect_timeout).await
                    {
                        return Ended::Failed(
                            Health::after_failure(&e),
                            format!("probe failed: {e}"),
                        );
                    }
                    self.report(Update::Quality(self.verdict())).await;
                }
                Wake::Recheck => {
                    if let Err(e) = session.probe(self.spec.connect_timeout).await {
                        return Ended::Failed(
                            Health::after_failure(&e),
                            format!("re-check failed: {e}"),
                        );
                    }
                    match session.relist(self.spec.connect_timeout).await {
                        Ok(tools) => self.report(Update::Tools(tools.to_vec())).await,
                        Err(e) => return Ended::Failed(Health::after_failure(&e), e.to_string()),
                    }
                    self.report(Update::Quality(self.verdict())).await;
                }
            }
        }
    }

    /// Degraded when recent calls mostly fail or their p95 is over the threshold.
    fn verdict(&self) -> Option<String> {
        let recent = self.metrics.recent(&self.spec.id);
        if recent.calls >= self.options.min_calls_for_error_rate && recent.errors * 2 > recent.calls
        {
            return Some(format!(
                "{} of the last {} calls failed",
                recent.errors, recent.calls
            ));
        }
        (recent.calls > 0 && recent.p95 > self.options.slow_p95).then(|| {
            format!(
                "p95 of recent calls is {} ms, over {} ms",
                recent.p95.as_millis(),
                self.options.slow_p95.as_millis()
            )
        })
    }

    async fn report(&self, update: Update) {
        let report = Report {
            id: self.spec.id.clone(),
            generation: self.generation,
            update,
        };
        let _ = self.reports.send(report).await;
    }
}
