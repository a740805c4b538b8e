//! The fault matrix: for each fault a server can have, the time from the fault to the truth in
//! the engine's snapshot, and from the server's recovery back to healthy, sampled every 100 ms,
//! for streamable HTTP and stdio servers in both protocol eras, with the engine's default
//! options (what the app and the daemon run: a probe every 5 s, backoff up to 60 s). Every cell
//! runs at once, each with its own engine and server, so the run lasts as long as its slowest
//! cell. Prints a table, then one JSON line.
//!
//! Stdio servers, and the HTTP server frozen with SIGSTOP, are this binary run again as the
//! fixture (`FAULTS_FIXTURE=stdio|http|fleet`), so no other binary needs building. Last, the idle
//! cost of watching 100 connectors (`faults/idle.rs`).

#[path = "faults/idle.rs"]
mod idle;

use std::time::{Duration, Instant};

use indexmap::IndexMap;
use switchboard::connector::{
    ConnectorSpec, DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, Endpoint, Source,
};
use switchboard::engine::{ConnectorStatus, Engine, EngineEvent, EngineOptions};
use switchboard::health::Health;
use switchboard::session::http_client;
use switchboard_fixture::{Fixture, Knobs};

const SAMPLE: Duration = Duration::from_millis(100);
/// A phase not over by then is reported as never.
const PHASE_LIMIT: Duration = Duration::from_secs(90);
const TOOLS: usize = 3;
const SLOW_CALL: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Killed,
    RestartedEmpty,
    Unauthorized,
    Frozen,
    NeverAnswers,
    Slow,
    ForgetsSession,
}

impl Fault {
    const ALL: [Self; 7] = [
        Self::Killed,
        Self::RestartedEmpty,
        Self::Unauthorized,
        Self::Frozen,
        Self::NeverAnswers,
        Self::Slow,
        Self::ForgetsSession,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Killed => "killed",
            Self::RestartedEmpty => "restarted with 0 tools",
            Self::Unauthorized => "answers 401",
            Self::Frozen => "frozen (SIGSTOP)",
            Self::NeverAnswers => "accepts, never answers",
            Self::Slow => "2 s per call",
            Self::ForgetsSession => "forgets its session",
        }
    }

    /// Whether the fault shows by itself, in a closed stream, a refused connection or a child's
    /// exit (target 2 s), rather than only when asked (target 15 s).
    fn reveals_itself(self) -> bool {
        matches!(self, Self::Killed | Self::RestartedEmpty)
    }

    /// Whether an engine event tells the truth about the fault: every event is seen, so a
    /// connector down for a moment (a stdio server restarted at once) counts.
    fn shown_by(self, event: &EngineEvent) -> Option<String> {
        match (self, event) {
            (
                Self::Killed | Self::Frozen | Self::NeverAnswers,
                EngineEvent::StateChanged { to, .. },
            ) if *to != Health::Healthy => Some(to.as_str().into()),
            (Self::Unauthorized, EngineEvent::StateChanged { to, .. })
                if *to == Health::Unauthorized =>
            {
                Some(to.as_str().into())
            }
            (Self::RestartedEmpty, EngineEvent::ToolsChanged { count: 0, .. }) => {
                Some("0 tools".into())
            }
            _ => None,
        }
    }

    /// Whether the snapshot tells it (what no event says: the latency of calls).
    fn shown_in(self, c: &ConnectorStatus) -> Option<String> {
        let slow = c.calls.as_ref().is_some_and(|l| l.p95_ms >= 1_500.0);
        (self == Self::Slow && slow).then(|| format!("{}, p95 ≥ 1.5 s", c.state.as_str()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Transport {
    Http,
    Stdio,
}

/// One row of the matrix.
#[derive(Clone, Copy)]
struct Cell {
    transport: Transport,
    legacy: bool,
    fault: Fault,
}

struct Outcome {
    cell: Cell,
    shown_in: Option<Duration>,
    state: String,
    /// `None` where there is no recovery to time (calls that stay slow, a session made again).
    recovered_in: Option<Option<Duration>>,
}

/// The server behind a cell, and how to hurt it.
#[allow(
    clippy::large_enum_variant,
    reason = "one per cell, never moved in bulk"
)]
enum Server {
    InProcess(Option<Fixture>, std::net::SocketAddr, Knobs),
    Child(std::process::Child),
    /// Started by the engine; its pid is in this file.
    Stdio(std::path::PathBuf),
}

fn knobs(legacy: bool) -> Knobs {
    Knobs {
        tools: TOOLS,
        legacy_only: legacy,
        ..Knobs::default()
    }
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`) to a process this benchmark started.
fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -{signal} {pid}");
}

/// The pid of the stdio server the engine started, from the file it wrote.
fn stdio_pid(server: &Server) -> u32 {
    let Server::Stdio(pid_file) = server else {
        unreachable!("only stdio servers have a pid file")
    };
    let pid = std::fs::read_to_string(pid_file).expect("the stdio server's pid file");
    pid.trim().parse().expect("a pid")
}

fn spec(endpoint: Endpoint) -> ConnectorSpec {
    ConnectorSpec {
        id: "c".into(),
        endpoint,
        enabled: true,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        call_timeout: DEFAULT_CALL_TIMEOUT,
        source: Source::Registry,
        missing_credential: None,
        info: Default::default(),
    }
}

fn http(url: String) -> Endpoint {
    Endpoint::Http {
        url,
        kind: None,
        headers: IndexMap::new(),
    }
}

/// This binary as a fixture server: over stdio, or over HTTP printing its URL.
async fn be_fixture(role: &str) {
    let legacy = std::env::var_os("FAULTS_LEGACY").is_some();
    if let Some(path) = std::env::var_os("FAULTS_PID_FILE") {
        std::fs::write(path, std::process::id().to_string()).expect("pid file");
    }
    if role == "fleet" {
        idle::be_fleet().await;
        return;
    }
    if role == "stdio" {
        switchboard_fixture::serve_stdio(knobs(legacy))
            .await
            .expect("stdio fixture");
        return;
    }
    let fixture = Fixture::start(knobs(legacy)).await.expect("fixture");
    println!("{}", fixture.url());
    std::future::pending::<()>().await;
}

async fn start_server(cell: Cell, dir: &std::path::Path) -> (Server, Endpoint) {
    let me = std::env::current_exe().expect("this benchmark's path");
    match (cell.transport, cell.fault) {
        (Transport::Stdio, _) => {
            let pid_file = dir.join("pid");
            let mut env = IndexMap::new();
            env.insert("FAULTS_FIXTURE".to_string(), "stdio".to_string());
            env.insert("FAULTS_PID_FILE".into(), pid_file.display().to_string());
            if cell.legacy {
                env.insert("FAULTS_LEGACY".into(), "1".into());
            }
            let endpoint = Endpoint::Stdio {
                command: me.display().to_string(),
                args: Vec::new(),
                env,
                cwd: None,
            };
            (Server::Stdio(pid_file), endpoint)
        }
        (Transport::Http, Fault::Frozen) => {
            let mut command = std::process::Command::new(me);
            command
                .env("FAULTS_FIXTURE", "http")
                .stdout(std::process::Stdio::piped());
            if cell.legacy {
                command.env("FAULTS_LEGACY", "1");
            }
            let mut child = command.spawn().expect("the HTTP fixture child");
            let mut line = String::new();
            let stdout = child.stdout.take().expect("piped");
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
                .expect("its URL");
            (Server::Child(child), http(line.trim().to_string()))
        }
        (Transport::Http, _) => {
            let fixture = Fixture::start_restartable(knobs(cell.legacy))
                .await
                .expect("fixture");
            let (addr, url) = (fixture.addr(), fixture.url());
            (
                Server::InProcess(Some(fixture), addr, knobs(cell.legacy)),
                http(url),
            )
        }
    }
}

fn status(engine: &Engine) -> Option<ConnectorStatus> {
    engine.snapshot().connectors.first().cloned()
}

fn healthy(c: &ConnectorStatus) -> bool {
    c.state == Health::Healthy && c.tools == TOOLS
}

/// Samples until `done` holds; how long that took, or `None` past the limit.
async fn time_until(mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < PHASE_LIMIT {
        if done() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(SAMPLE).await;
    }
    None
}

/// How long until an event or the snapshot tells the truth about `fault`, and what it said.
async fn truth_shown(
    engine: &Engine,
    events: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
    fault: Fault,
) -> (Option<Duration>, String) {
    let started = Instant::now();
    while started.elapsed() < PHASE_LIMIT {
        if let Some(said) = status(engine).and_then(|c| fault.shown_in(&c)) {
            return (Some(started.elapsed()), said);
        }
        if let Ok(Ok(event)) = tokio::time::timeout(SAMPLE, events.recv()).await
            && let Some(said) = fault.shown_by(&event)
        {
            return (Some(started.elapsed()), said);
        }
    }
    (
        None,
        status(engine).map_or("-".into(), |c| c.state.as_str().into()),
    )
}

fn initializes(fixture: &Fixture) -> usize {
    fixture
        .methods()
        .iter()
        .filter(|m| *m == "initialize")
        .count()
}

async fn run(cell: Cell) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut server, endpoint) = start_server(cell, dir.path()).await;
    let (_desired, specs) = tokio::sync::watch::channel(vec![spec(endpoint)]);
    let engine = Engine::start(
        specs,
        http_client().expect("client"),
        EngineOptions::default(),
    );
    let engine = std::sync::Arc::new(engine);
    let up = time_until(|| status(&engine).is_some_and(|c| healthy(&c))).await;
    assert!(
        up.is_some(),
        "{:?}/{}: never healthy",
        cell.transport,
        cell.fault.name()
    );
    // Past the first moments: the fault finds the connector as it runs all day, idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut caller = None;
    let mut events = engine.events();
    let before = match &server {
        Server::InProcess(Some(fixture), ..) => initializes(fixture),
        _ => 0,
    };
    match (&mut server, cell.fault) {
        (Server::InProcess(fixture, ..), Fault::Killed | Fault::RestartedEmpty) => {
            if let Some(fixture) = fixture.take() {
                fixture.stop().await;
            }
            if let (Server::InProcess(slot, addr, knobs), Fault::RestartedEmpty) =
                (&mut server, cell.fault)
            {
                let empty = Knobs {
                    tools: 0,
                    ..knobs.clone()
                };
                *slot = Some(Fixture::start_on(*addr, empty).await.expect("restart"));
            }
        }
        (Server::InProcess(Some(f), ..), Fault::Unauthorized) => {
            f.set_knobs(|k| k.unauthorized = true).await;
        }
        (Server::InProcess(Some(f), ..), Fault::NeverAnswers) => {
            f.set_knobs(|k| k.hang = true).await;
        }
        (Server::InProcess(Some(f), ..), Fault::Slow) => {
            f.set_knobs(|k| k.call_delay = SLOW_CALL).await;
            // Calls show slowness; an idle connector has none to show.
            let calling = engine.clone();
            caller = Some(tokio::spawn(async move {
                loop {
                    let calling = calling.clone();
                    tokio::spawn(async move { calling.call("c.tool_000", None).await });
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }));
        }
        (Server::InProcess(Some(f), ..), Fault::ForgetsSession) => f.forget_sessions().await,
        (Server::Child(child), Fault::Frozen) => signal(child.id(), "STOP"),
        (Server::Stdio(_), Fault::Killed) => signal(stdio_pid(&server), "KILL"),
        (Server::Stdio(_), Fault::Frozen) => signal(stdio_pid(&server), "STOP"),
        _ => unreachable!("no such cell"),
    }
    let (shown_in, state) = match (&server, cell.fault) {
        (Server::InProcess(Some(f), ..), Fault::ForgetsSession) => {
            let made_again =
                || initializes(f) > before && status(&engine).is_some_and(|c| healthy(&c));
            (time_until(made_again).await, "made again".to_string())
        }
        _ => truth_shown(&engine, &mut events, cell.fault).await,
    };
    if let Some(caller) = caller {
        caller.abort();
    }
    // Recovery: the server well again, and the time until the connector is healthy.
    let recovers = match (&mut server, cell.fault) {
        (Server::InProcess(slot, addr, knobs), Fault::Killed) => {
            *slot = Some(
                Fixture::start_on(*addr, knobs.clone())
                    .await
                    .expect("restart"),
            );
            true
        }
        (Server::InProcess(Some(f), ..), Fault::RestartedEmpty) => {
            f.set_knobs(|k| k.tools = TOOLS).await;
            true
        }
        (Server::InProcess(Some(f), ..), Fault::Unauthorized) => {
            f.set_knobs(|k| k.unauthorized = false).await;
            true
        }
        (Server::InProcess(Some(f), ..), Fault::NeverAnswers) => {
            f.set_knobs(|k| k.hang = false).await;
            true
        }
        (Server::Child(child), Fault::Frozen) => {
            signal(child.id(), "CONT");
            true
        }
        // The engine may have ended the frozen server and started another already.
        (Server::Stdio(_), Fault::Frozen) => {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &stdio_pid(&server).to_string()])
                .stderr(std::process::Stdio::null())
                .status();
            true
        }
        // The engine starts a killed stdio server again itself.
        (Server::Stdio(_), Fault::Killed) => true,
        _ => false,
    };
    let recovered_in = if recovers && shown_in.is_some() {
        Some(time_until(|| status(&engine).is_some_and(|c| healthy(&c))).await)
    } else {
        None
    };
    // The slow cell's last calls still hold the engine for a moment.
    time_until(|| std::sync::Arc::strong_count(&engine) == 1).await;
    if let Ok(engine) = std::sync::Arc::try_unwrap(engine) {
        engine.shutdown().await;
    }
    if let Server::Child(mut child) = server {
        let _ = child.kill();
        let _ = child.wait();
    }
    Outcome {
        cell,
        shown_in,
        state,
        recovered_in,
    }
}

fn cells() -> Vec<Cell> {
    use Fault::*;
    let mut cells = Vec::new();
    for legacy in [true, false] {
        for fault in Fault::ALL {
            // A 2026-07-28 server keeps no sessions to forget.
            if fault == ForgetsSession && !legacy {
                continue;
            }
            cells.push(Cell {
                transport: Transport::Http,
                legacy,
                fault,
            });
        }
        for fault in [Killed, Frozen] {
            cells.push(Cell {
                transport: Transport::Stdio,
                legacy,
                fault,
            });
        }
    }
    cells
}

fn ms(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_millis() as u64)
}

fn shown(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn main() {
    if let Ok(role) = std::env::var("FAULTS_FIXTURE") {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(be_fixture(&role));
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let started = Instant::now();
    let outcomes = runtime.block_on(async {
        let runs: Vec<_> = cells().into_iter().map(|c| tokio::spawn(run(c))).collect();
        let mut outcomes = Vec::new();
        for run in runs {
            outcomes.push(run.await.expect("a cell ran"));
        }
        outcomes
    });
    let idle_share = runtime.block_on(idle::cost());
    println!(
        "{:<6} {:<11} {:<24} {:>9}  {:<12} {:>10}",
        "server", "era", "fault", "shown in", "as", "healthy in"
    );
    let mut json = Vec::new();
    let (mut worst_revealed, mut worst_other) = (Some(0), Some(0));
    for o in &outcomes {
        let era = if o.cell.legacy {
            "2025-11-25"
        } else {
            "2026-07-28"
        };
        let transport = match o.cell.transport {
            Transport::Http => "http",
            Transport::Stdio => "stdio",
        };
        let recovered = o.recovered_in.map_or("-".into(), shown);
        println!(
            "{transport:<6} {era:<11} {:<24} {:>9}  {:<12} {recovered:>10}",
            o.cell.fault.name(),
            shown(o.shown_in),
            o.state
        );
        let worst = if o.cell.fault.reveals_itself() {
            &mut worst_revealed
        } else {
            &mut worst_other
        };
        *worst = match (*worst, ms(o.shown_in)) {
            (Some(w), Some(t)) => Some(w.max(t)),
            _ => None,
        };
        json.push(serde_json::json!({
            "transport": transport, "era": era, "fault": o.cell.fault.name(),
            "shown_ms": ms(o.shown_in), "state": o.state,
            "recovered_ms": o.recovered_in.map(ms),
        }));
    }
    println!(
        "watching {} idle HTTP connectors: {:.2} % of a core",
        idle::CONNECTORS,
        idle_share * 100.0
    );
    let line = serde_json::json!({
        "bench": "faults",
        "run_s": started.elapsed().as_secs(),
        "idle_core_percent_100_connectors": (idle_share * 1e4).round() / 100.0,
        "worst_shown_ms_self_revealing": worst_revealed,
        "worst_shown_ms_other": worst_other,
        "cells": json,
    });
    println!("{line}");
}
