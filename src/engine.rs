//! The running engine: keeps every desired connector connected, and honest about it.
//!
//! One task, the reconciler, owns the state. Whenever the desired set changes it starts, stops
//! or restarts one supervisor task per connector, and it folds what supervisors report into one
//! snapshot (published on a `watch` channel) and an event stream. A supervisor connects (within
//! the shared concurrency limit), then serves: re-lists on `list_changed`, probes when idle, and
//! on failure reconnects with capped exponential backoff and full jitter. A stopped or failed
//! connector's tools leave the catalog at once. Calls go straight to a live connector's caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rmcp::model::CallToolResult;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, split_qualified};
use crate::connector::{ConnectorSpec, Credential, Source};
use crate::health::Health;
use crate::metrics::{LatencySummary, Metrics, TOOL_ERROR};
use crate::session::{Caller, SessionError, Sideband};

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
    /// Where signed-in connectors' OAuth tokens are kept; without, no connector is signed in.
    pub tokens: Option<Arc<crate::signin::TokenStore>>,
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
            // With the probe's own 5 s timeout, a server that stopped answering shows within
            // 10 s; 100 idle connectors cost 20 pings a second (benches/faults.rs).
            probe_every: Duration::from_secs(5),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            slow_p95: Duration::from_secs(5),
            min_calls_for_error_rate: 10,
            tokens: None,
        }
    }
}

/// One connector as the engine sees it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorStatus {
    pub id: String,
    /// What the UI calls it (the manifest's `displayName`); its id when `None`.
    pub display_name: Option<String>,
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
    /// Scopes its server refused a call for (403 `insufficient_scope`): a sign-in granting them
    /// is due. Empty otherwise.
    pub wants_scopes: Vec<String>,
}

impl ConnectorStatus {
    /// What to call it where people read it: its display name, else its id.
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }
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
    /// Its connector has no live session: `state` and `reason` say why (`state` is `unknown`
    /// for a connector not in the desired set).
    #[error("connector {connector:?} is {state}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NotConnected {
        connector: String,
        state: String,
        reason: Option<String>,
    },
    /// Its quotas let the call through neither now nor within its deadline.
    #[error("connector {connector:?} {refusal}")]
    Quota {
        connector: String,
        refusal: quota::Refusal,
    },
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

mod quota;
mod reconciler;
mod supervisor;

use reconciler::{Command, Reconciler};

/// A handle on the running engine.
pub struct Engine {
    desired: watch::Receiver<Vec<ConnectorSpec>>,
    concurrency: usize,
    /// Set by calls, cleared by the reconciler when it publishes their figures.
    calls_unpublished: Arc<AtomicBool>,
    commands: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
    snapshots: watch::Receiver<Arc<EngineSnapshot>>,
    events: broadcast::Sender<EngineEvent>,
    callers: Callers,
    /// Per connector with quotas; kept across its sessions, so a reconnect resets no count.
    quota_gates: std::sync::Mutex<HashMap<String, Arc<quota::QuotaGate>>>,
    /// Signed-in connectors' tokens, told of scopes a call was refused for.
    tokens: Option<Arc<crate::signin::TokenStore>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Re-checks every connector, like [`Engine::recheck_all`]; does nothing once the engine stopped.
#[derive(Clone)]
pub struct Rechecker(mpsc::Sender<Command>);

impl Rechecker {
    pub async fn recheck_all(&self, reason: &str) {
        let (done, marked) = tokio::sync::oneshot::channel();
        if self
            .0
            .send(Command::Recheck(reason.to_string(), done))
            .await
            .is_ok()
        {
            let _ = marked.await;
        }
    }
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
        let (commands, command_rx) = mpsc::channel(16);
        let concurrency = options.concurrency;
        let tokens = options.tokens.clone();
        let calls_unpublished = Arc::new(AtomicBool::new(false));
        let (mut reconciler, reports) = Reconciler::new(
            metrics.clone(),
            http,
            options,
            publish,
            events.clone(),
            callers.clone(),
            calls_unpublished.clone(),
        );
        // Reconciled before the handle is returned, so its first snapshot already shows the
        // desired set (as connecting): `settled` never mistakes "not started" for "done".
        let first = desired.borrow_and_update().clone();
        reconciler.reconcile(first);
        let task = tokio::spawn(reconciler.run(desired.clone(), reports, command_rx, stop.clone()));
        Self {
            desired,
            concurrency,
            calls_unpublished,
            commands,
            metrics,
            snapshots,
            events,
            callers,
            quota_gates: std::sync::Mutex::default(),
            tokens,
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
        longest
            .saturating_mul(rounds.max(1))
            .saturating_add(Duration::from_secs(1))
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
        self.rechecker().recheck_all(reason).await;
    }

    /// A handle that re-checks every connector, for tasks that outlive a borrow of the engine.
    pub fn rechecker(&self) -> Rechecker {
        Rechecker(self.commands.clone())
    }

    /// Calls `connector.tool` on its live session, timing it into the metrics.
    pub async fn call(
        &self,
        qualified: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<CallToolResult, CallError> {
        self.call_reporting(qualified, arguments, Sideband::default())
            .await
    }

    /// [`Engine::call`], passing the server's progress updates and questions to `sideband`.
    pub async fn call_reporting(
        &self,
        qualified: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
        sideband: Sideband,
    ) -> Result<CallToolResult, CallError> {
        let (connector, tool) = split_qualified(qualified)
            .ok_or_else(|| CallError::UnknownTool(qualified.to_string()))?;
        let caller = self.caller(connector)?;
        let mut deadline = caller.call_timeout;
        let _admitted = match self.quota_gate(connector) {
            None => None,
            Some(gate) => {
                let waiting_since = std::time::Instant::now();
                let admitted = gate.admit(deadline).await.map_err(|refusal| {
                    self.metrics.record_quota(connector, refusal.outcome());
                    CallError::Quota {
                        connector: connector.to_string(),
                        refusal,
                    }
                })?;
                if admitted.waited {
                    self.metrics.record_quota(connector, "waited");
                    // The wait is part of the call's deadline, not added to it.
                    deadline = deadline.saturating_sub(waiting_since.elapsed());
                }
                Some(admitted)
            }
        };
        let started = std::time::Instant::now();
        let result = caller
            .call_within(tool, arguments, deadline, sideband)
            .await;
        let error_type = match &result {
            Ok(r) if r.is_error == Some(true) => Some(TOOL_ERROR.to_string()),
            Ok(_) => None,
            Err(SessionError::Server { code, .. }) => Some(code.to_string()),
            Err(e) => Some(e.kind().to_string()),
        };
        self.metrics
            .record_call(connector, tool, started.elapsed(), error_type.as_deref());
        if let (Err(SessionError::NeedsSignIn(challenge)), Some(tokens)) = (&result, &self.tokens)
            && crate::signin::is_insufficient_scope(challenge)
        {
            // The next sign-in asks for it too (a step-up).
            tokens.want(connector, crate::signin::challenged_scopes(challenge));
        }
        // Only the first call since the last publish wakes the reconciler: calls stay cheap.
        if !self.calls_unpublished.swap(true, Ordering::AcqRel)
            && self.commands.try_send(Command::CallRecorded).is_err()
        {
            // Not heard (a full queue): let the next call try again.
            self.calls_unpublished.store(false, Ordering::Release);
        }
        Ok(result?)
    }

    /// The quotas of `connector` as its spec has them now, enforced; `None` if it has none.
    fn quota_gate(&self, connector: &str) -> Option<Arc<quota::QuotaGate>> {
        let quotas = {
            let desired = self.desired.borrow();
            desired.iter().find(|s| s.id == connector)?.info.quotas
        };
        let mut gates = self
            .quota_gates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(gate) = gates.get(connector)
            && gate.quotas() == quotas
        {
            return Some(gate.clone());
        }
        let gate = quota::QuotaGate::new(quotas);
        match &gate {
            Some(gate) => gates.insert(connector.to_string(), gate.clone()),
            None => gates.remove(connector),
        };
        gate
    }

    fn not_connected(&self, connector: &str) -> CallError {
        let snapshot = self.snapshot();
        let status = snapshot.connectors.iter().find(|c| c.id == connector);
        CallError::NotConnected {
            connector: connector.to_string(),
            // A live state here means the session ended a moment ago, before the snapshot said.
            state: status.map_or("unknown", |c| c.state.as_str()).to_string(),
            reason: status.and_then(|c| c.reason.clone()),
        }
    }

    /// Every connector's live session, for what is asked of all of them (resources, prompts).
    pub fn live_callers(&self) -> Vec<(String, Caller)> {
        let callers = self.callers.read().unwrap_or_else(|p| p.into_inner());
        let mut live: Vec<_> = callers
            .iter()
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect();
        live.sort_by(|a, b| a.0.cmp(&b.0));
        live
    }

    /// `connector`'s live session, or why it has none.
    pub fn caller(&self, connector: &str) -> Result<Caller, CallError> {
        let callers = self.callers.read().unwrap_or_else(|p| p.into_inner());
        callers
            .get(connector)
            .cloned()
            .ok_or_else(|| self.not_connected(connector))
    }

    /// Stops every supervisor (closing sessions, stopping stdio children) and waits for them.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
