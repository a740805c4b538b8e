//! The reconciler: the one task that owns the engine's state. It starts, stops and restarts a
//! supervisor per connector as the desired set changes, folds their reports into the snapshot
//! and the event stream, and notices when the machine slept.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indexmap::IndexMap;
use rmcp::model::Tool;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::supervisor::{Report, Supervisor, Update};
use super::{Callers, ConnectorStatus, EngineEvent, EngineOptions, EngineSnapshot};
use crate::catalog::Catalog;
use crate::connector::ConnectorSpec;
use crate::health::{self, Health, Observed};
use crate::metrics::Metrics;

/// What a handle asks of the reconciler.
pub(super) enum Command {
    /// Re-check every connector; the sender hears once the snapshot shows it.
    Recheck(String, tokio::sync::oneshot::Sender<()>),
    /// Calls were timed: the snapshot's latency figures are behind.
    CallRecorded,
}

/// Calls republish the snapshot (with fresh p50/p95/p99) at most this often.
const CALLS_PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// How often the clocks are compared to notice that the machine slept.
const SLEEP_CHECK_EVERY: Duration = Duration::from_secs(5);
/// Wall-clock time beyond the monotonic clock's that counts as a sleep.
const SLEEP_THRESHOLD: Duration = Duration::from_secs(10);

struct Running {
    spec: ConnectorSpec,
    generation: u64,
    stop: CancellationToken,
}

pub(super) struct Reconciler {
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
    /// The catalog of `tools`, built again only after they change (not on every publish:
    /// calls republish four times a second).
    catalog: Option<Arc<Catalog>>,
    /// What the metrics' state gauges last showed of each connector.
    gauged: HashMap<String, (Health, usize)>,
    /// Calls set it (and wake this task) when the snapshot is behind their figures.
    calls_unpublished: Arc<AtomicBool>,
}

impl Reconciler {
    /// The reconciler, and the receiver of its supervisors' reports (for [`Reconciler::run`]).
    pub(super) fn new(
        metrics: Arc<Metrics>,
        http: reqwest::Client,
        options: EngineOptions,
        publish: watch::Sender<Arc<EngineSnapshot>>,
        events: broadcast::Sender<EngineEvent>,
        callers: Callers,
        calls_unpublished: Arc<AtomicBool>,
    ) -> (Self, mpsc::Receiver<Report>) {
        let (reports_tx, reports) = mpsc::channel(256);
        let reconciler = Self {
            metrics,
            http,
            permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
            options,
            running: IndexMap::new(),
            statuses: IndexMap::new(),
            tools: HashMap::new(),
            supervisors: JoinSet::new(),
            reports_tx,
            publish,
            events,
            callers,
            next_generation: 0,
            recheck: watch::channel(0u64).0,
            settling_since: None,
            desired: Arc::default(),
            catalog: None,
            gauged: HashMap::new(),
            calls_unpublished,
        };
        (reconciler, reports)
    }

    pub(super) async fn run(
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
                    // Cleared before the figures are read: a call after this wakes us again.
                    self.calls_unpublished.store(false, Ordering::Release);
                    self.publish();
                }
                _ = clocks.tick() => {
                    let now = (std::time::Instant::now(), std::time::SystemTime::now());
                    let monotonic = now.0 - last_tick.0;
                    let wall = now.1.duration_since(last_tick.1).unwrap_or_default();
                    // A suspended laptop's monotonic clock stands still while its wall clock
                    // runs on. A frozen process (SIGSTOP, a paused VM) sees both run on, and
                    // its tick comes late instead. Either way, what was true may not be now.
                    if wall.saturating_sub(monotonic) > SLEEP_THRESHOLD {
                        self.recheck("the machine was asleep");
                    } else if monotonic > SLEEP_CHECK_EVERY + SLEEP_THRESHOLD {
                        self.recheck("Switchboard was stopped for a while");
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

    pub(super) fn reconcile(&mut self, specs: Vec<ConnectorSpec>) {
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
                self.gauged.remove(&id);
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
            display_name: spec.info.display_name.clone(),
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
            wants_scopes: Vec::new(),
        }
    }

    fn start(&mut self, spec: ConnectorSpec) {
        self.next_generation += 1;
        let generation = self.next_generation;
        let stop = CancellationToken::new();
        let supervisor = Supervisor::new(
            spec.clone(),
            generation,
            self.recheck.subscribe(),
            self.metrics.clone(),
            self.http.clone(),
            self.permits.clone(),
            self.options.clone(),
            stop.clone(),
            self.reports_tx.clone(),
        );
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
            self.catalog = None;
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
        let mut tools_changed = false;
        // The side effects here (sessions, tool lists); the state machine in `health::next`.
        let observed = match report.update {
            Update::Observed(failed @ Observed::Failed { .. }) => {
                tools_changed = self.evict(&report.id);
                failed
            }
            Update::Observed(observed) => observed,
            Update::Up {
                tools,
                latency,
                protocol_version,
                caller,
            } => {
                if let Ok(mut callers) = self.callers.write() {
                    callers.insert(report.id.clone(), caller);
                }
                let count = tools.len();
                tools_changed = self.set_tools(&report.id, tools);
                Observed::Up {
                    tools: count,
                    latency,
                    protocol_version,
                }
            }
            Update::Tools(tools) => {
                let count = tools.len();
                tools_changed = self.set_tools(&report.id, tools);
                Observed::Tools(count)
            }
        };
        let mut status = health::next(&before, observed);
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
        // Even with the same names, descriptions or schemas may differ.
        self.catalog = None;
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
            // The gauges move with states, not with calls (which publish four times a second).
            let gauged = (status.state, status.tools);
            if self.gauged.get(&status.id) != Some(&gauged) {
                self.metrics
                    .set_connector(&status.id, status.state, status.tools);
                self.gauged.insert(status.id.clone(), gauged);
            }
            status.calls = self.metrics.latency(&status.id);
            status.wants_scopes = match &self.options.tokens {
                Some(tokens) => tokens.wanted(&status.id),
                None => Vec::new(),
            };
        }
        let tools = &self.tools;
        let catalog = self
            .catalog
            .get_or_insert_with(|| {
                Arc::new(Catalog::from_connectors(
                    tools
                        .iter()
                        .map(|(id, tools)| (id.as_str(), tools.as_slice())),
                ))
            })
            .clone();
        self.publish.send_replace(Arc::new(EngineSnapshot {
            connectors: self.statuses.values().cloned().collect(),
            catalog,
            desired: self.desired.clone(),
        }));
    }
}
