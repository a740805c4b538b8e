//! Cold sync of a slow fleet through the engine (the app's path), in parallel and in the old
//! one-at-a-time order, then tool calls through the engine and through a bare `rmcp` client,
//! side by side in one run.
//!
//! 50 fixture servers on loopback each add 100 ms to every HTTP request. `ideal_s` is the bound
//! those set: rounds of `concurrency` connectors, each round costing the HTTP requests one
//! handshake takes (counted by the servers) times the latency. Connection counts come from the
//! servers' own accept counters, over rounds of one call per connector at +100 ms. The engine's
//! overhead is then measured paired, with the servers answering at once: the same call through
//! the engine and through a bare client to the same server, one right after the other (which
//! goes first alternates), and the percentiles are those of the per-pair differences; once with
//! one call in flight, once with 16 pairs running at a time. Beside each pair a second bare call
//! gives the A/A control (bare minus bare): the machine's own noise between identical calls. Last, whole `switchboard call`
//! processes against a daemon run in this process (the CLI as a client of the daemon, process
//! start included), each paired with a direct call to the same server. Prints a table, then one
//! JSON line.

use std::sync::atomic::Ordering;

use futures::StreamExt as _;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient};
use switchboard::connector::{ConnectorSpec, Endpoint, Source};
use switchboard::engine::{DEFAULT_CONCURRENCY, Engine, EngineOptions};
use switchboard::health::Health;
use switchboard::session::http_client;
use switchboard_fixture::{Fixture, Knobs};

const CONNECTORS: usize = 50;
const LATENCY: Duration = Duration::from_millis(100);
const CALLS: usize = 1_000;
/// Pairs (engine call, bare call) for each overhead figure.
const PAIRS: usize = 2_000;

fn specs(fleet: &[Fixture]) -> Vec<ConnectorSpec> {
    fleet
        .iter()
        .enumerate()
        .map(|(i, f)| ConnectorSpec {
            id: format!("c{i:02}"),
            endpoint: Endpoint::Http {
                url: f.url(),
                kind: None,
                headers: IndexMap::new(),
            },
            enabled: true,
            connect_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(30),
            source: Source::Registry,
            missing_credential: None,
            info: Default::default(),
        })
        .collect()
}

fn accepted(fleet: &[Fixture]) -> u64 {
    fleet.iter().map(Fixture::accepted_connections).sum()
}

fn requests(fleet: &[Fixture]) -> u64 {
    fleet
        .iter()
        .map(|f| f.counters().http_requests.load(Ordering::Relaxed))
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn args(i: usize) -> Option<serde_json::Map<String, serde_json::Value>> {
    serde_json::json!({"text": format!("call {i}")})
        .as_object()
        .cloned()
}

#[tokio::main]
async fn main() {
    let knobs = Knobs {
        latency: LATENCY,
        ..Knobs::default()
    };
    let fleet = switchboard_fixture::fleet(CONNECTORS, &knobs)
        .await
        .expect("fixture fleet starts");
    let http = http_client().expect("HTTP client");

    let started = Instant::now();
    let (sequential, _desired) = settle(&fleet, http.clone(), 1).await;
    let sequential_s = started.elapsed().as_secs_f64();
    sequential.shutdown().await;

    let (accepted_before, requests_before) = (accepted(&fleet), requests(&fleet));
    let concurrency = DEFAULT_CONCURRENCY;
    // A fresh client, so the cold sync cannot borrow the sequential run's pooled connections.
    let http = http_client().expect("HTTP client");
    let started = Instant::now();
    let (engine, _desired) = settle(&fleet, http, concurrency).await;
    let parallel_s = started.elapsed().as_secs_f64();
    let handshake_connections = accepted(&fleet) - accepted_before;
    let requests_per_handshake = (requests(&fleet) - requests_before) as f64 / CONNECTORS as f64;
    let rounds = CONNECTORS.div_ceil(concurrency) as f64;
    let ideal_s = rounds * requests_per_handshake * LATENCY.as_secs_f64();

    // The same calls through a bare rmcp client per server, with its own reqwest client.
    let bare_http = reqwest::Client::new();
    let mut bare = Vec::new();
    for fixture in &fleet {
        let transport = StreamableHttpClientTransport::with_client(
            bare_http.clone(),
            StreamableHttpClientTransportConfig::with_uri(fixture.url()),
        );
        let lifecycle = ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        };
        bare.push(
            ClientConfig::default()
                .serve_with_lifecycle(transport, lifecycle)
                .await
                .expect("bare client connects"),
        );
    }

    let slow = call_rounds(&fleet, &engine, &bare).await;
    // The overhead is well under the millisecond of timer jitter on each 100 ms response, so it
    // is measured with the servers answering at once.
    for fixture in &fleet {
        fixture.set_knobs(|k| k.latency = Duration::ZERO).await;
    }
    let accepted_before_pairs = accepted(&fleet);
    let one = paired_overhead(&engine, &bare, 1).await;
    let sixteen = paired_overhead(&engine, &bare, 16).await;
    let new_during_pairs = accepted(&fleet) - accepted_before_pairs;
    let cli = cli_calls(&fleet[0], &bare[0]).await;
    let new_per_connector =
        (slow.new_connections + new_during_pairs) as f64 / (2 * CONNECTORS) as f64;
    let per_connector = handshake_connections as f64 / CONNECTORS as f64;

    let rows = [
        (
            "cold sync, one at a time (s)".to_string(),
            format!("{sequential_s:.3}"),
        ),
        (
            format!("cold sync, {concurrency} at once (s)"),
            format!("{parallel_s:.3}"),
        ),
        ("ideal for that limit (s)".into(), format!("{ideal_s:.3}")),
        (
            "HTTP requests per handshake".into(),
            format!("{requests_per_handshake:.1}"),
        ),
        (
            "TCP connections per connector".into(),
            format!("{per_connector:.2}"),
        ),
        (
            format!("new connections during {CALLS} + {} calls", 6 * PAIRS),
            (slow.new_connections + new_during_pairs).to_string(),
        ),
    ];
    println!(
        "sync: {CONNECTORS} fixture servers, +{} ms per request",
        LATENCY.as_millis()
    );
    println!("{:<44} {:>12}", "measure", "value");
    for (label, value) in rows {
        println!("{label:<44} {value:>12}");
    }
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        for (path, latencies) in [("engine", &slow.engine), ("bare rmcp", &slow.bare)] {
            let value = micros(percentile(latencies, p));
            println!(
                "{:<44} {value:>12.0}",
                format!("call {label} at +100 ms, {path} (µs)")
            );
        }
    }
    for (in_flight, overhead) in [(1, &one), (16, &sixteen)] {
        for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
            println!(
                "{:<44} {:>12.0}",
                format!("engine overhead {label}, {in_flight} in flight (µs)"),
                overhead.percentile(p)
            );
        }
        println!(
            "{:<44} {:>12.0}",
            format!("  bare minus bare p99, {in_flight} in flight (µs)"),
            overhead.noise(0.99)
        );
        println!(
            "{:<44} {:>12.0}",
            format!("  bare call p50 alongside, {in_flight} in flight (µs)"),
            overhead.bare_p50_us
        );
    }
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        println!(
            "{:<44} {:>12.1}",
            format!("`switchboard call` via the daemon {label} (ms)"),
            cli.process_ms(p)
        );
        println!(
            "{:<44} {:>12.1}",
            format!("  added over a direct call {label} (ms)"),
            cli.added_ms(p)
        );
    }
    let summary = serde_json::json!({
        "bench": "sync",
        "connectors": CONNECTORS,
        "latency_ms": LATENCY.as_millis() as u64,
        "parallel_s": round3(parallel_s),
        "sequential_s": round3(sequential_s),
        "ideal_s": round3(ideal_s),
        "speedup": round3(sequential_s / parallel_s),
        "vs_ideal": round3(parallel_s / ideal_s),
        "tcp_connections_per_connector": round3(per_connector),
        "new_connections_per_connector_during_calls": round3(new_per_connector),
        "engine_overhead_p50_us": one.percentile(0.5).round(),
        "engine_overhead_p99_us": one.percentile(0.99).round(),
        "engine_overhead_16_in_flight_p50_us": sixteen.percentile(0.5).round(),
        "engine_overhead_16_in_flight_p99_us": sixteen.percentile(0.99).round(),
        "bare_call_p50_us": one.bare_p50_us.round(),
        "bare_minus_bare_p99_us": one.noise(0.99).round(),
        "cli_call_p50_ms": round3(cli.process_ms(0.5)),
        "cli_call_p99_ms": round3(cli.process_ms(0.99)),
        "cli_call_added_p50_ms": round3(cli.added_ms(0.5)),
        "cli_call_added_p99_ms": round3(cli.added_ms(0.99)),
    });
    for client in bare {
        let _ = client.cancel().await;
    }
    engine.shutdown().await;
    println!("{summary}");
}

/// Latencies of `CALLS` calls each way, and the connections the engine's calls opened.
struct CallRounds {
    engine: Vec<Duration>,
    bare: Vec<Duration>,
    new_connections: u64,
}

/// Rounds of one call per connector, through the engine and through the bare clients in turn.
async fn call_rounds(
    fleet: &[Fixture],
    engine: &Engine,
    bare: &[RunningService<RoleClient, ClientConfig>],
) -> CallRounds {
    let mut rounds = CallRounds {
        engine: Vec::new(),
        bare: Vec::new(),
        new_connections: 0,
    };
    for round in 0..CALLS / CONNECTORS {
        let engine_round = async {
            let before = accepted(fleet);
            let calls = (0..CONNECTORS).map(|c| async move {
                let started = Instant::now();
                let result = engine
                    .call(&format!("c{c:02}.tool_001"), args(round * CONNECTORS + c))
                    .await
                    .expect("engine call");
                assert_eq!(result.is_error, Some(false));
                started.elapsed()
            });
            let latencies = futures::future::join_all(calls).await;
            (latencies, accepted(fleet) - before)
        };
        let bare_round = async {
            let calls = bare.iter().enumerate().map(|(c, client)| async move {
                let mut params = CallToolRequestParams::new("tool_001");
                if let Some(a) = args(round * CONNECTORS + c) {
                    params = params.with_arguments(a);
                }
                let started = Instant::now();
                client.call_tool(params).await.expect("bare call");
                started.elapsed()
            });
            futures::future::join_all(calls).await
        };
        // Alternate which goes first, so neither always meets a warmer or colder machine.
        let ((latencies, opened), bare_latencies) = if round % 2 == 0 {
            let engine = engine_round.await;
            (engine, bare_round.await)
        } else {
            let bare = bare_round.await;
            (engine_round.await, bare)
        };
        rounds.engine.extend(latencies);
        rounds.bare.extend(bare_latencies);
        rounds.new_connections += opened;
    }
    rounds.engine.sort();
    rounds.bare.sort();
    rounds
}

/// The engine over the fleet, connected `concurrency` at a time, once every connector is up;
/// with the sender of its desired set (the engine stops when that is dropped).
async fn settle(
    fleet: &[Fixture],
    http: reqwest::Client,
    concurrency: usize,
) -> (Engine, tokio::sync::watch::Sender<Vec<ConnectorSpec>>) {
    let (desired, receiver) = tokio::sync::watch::channel(specs(fleet));
    let options = EngineOptions {
        concurrency,
        ..EngineOptions::default()
    };
    let engine = Engine::start(receiver, http, options);
    let snapshot = engine.settled(engine.one_shot_deadline()).await;
    let healthy = snapshot
        .connectors
        .iter()
        .filter(|c| c.state == Health::Healthy)
        .count();
    assert_eq!(healthy, CONNECTORS, "every connector connects");
    (engine, desired)
}

/// Per-pair differences (engine call minus bare call to the same server), in µs, sorted.
struct Overhead {
    /// Engine call minus bare call, per pair, sorted.
    differences: Vec<f64>,
    /// Bare call minus bare call, per pair, sorted: what the machine alone puts between two
    /// identical calls (the floor under which an overhead cannot be told from noise).
    noise: Vec<f64>,
    bare_p50_us: f64,
}

impl Overhead {
    fn percentile(&self, p: f64) -> f64 {
        pick(&self.differences, p)
    }

    fn noise(&self, p: f64) -> f64 {
        pick(&self.noise, p)
    }
}

/// `PAIRS` pairs, `in_flight` at a time, each on its own connector in turn: the same call
/// through the engine and through the bare client, back to back (which goes first alternates),
/// and a second bare call on the engine call's other side (the A/A control).
async fn paired_overhead(
    engine: &Engine,
    bare: &[RunningService<RoleClient, ClientConfig>],
    in_flight: usize,
) -> Overhead {
    let pair = |i: usize| async move {
        let c = i % CONNECTORS;
        let through_engine = || async {
            let started = Instant::now();
            let result = engine
                .call(&format!("c{c:02}.tool_001"), args(i))
                .await
                .expect("engine call");
            assert_eq!(result.is_error, Some(false));
            started.elapsed()
        };
        let direct = || async {
            let mut params = CallToolRequestParams::new("tool_001");
            if let Some(a) = args(i) {
                params = params.with_arguments(a);
            }
            let started = Instant::now();
            bare[c].call_tool(params).await.expect("bare call");
            started.elapsed()
        };
        // The engine call always sits between the two bare ones: two bare calls back to back
        // would open a second connection (see `session/reuse.rs`) and blur the counts.
        let (engine_took, bare_took, again_took) = if i.is_multiple_of(2) {
            let a = direct().await;
            let e = through_engine().await;
            (e, direct().await, a)
        } else {
            let b = direct().await;
            let e = through_engine().await;
            (e, b, direct().await)
        };
        (
            micros(engine_took) - micros(bare_took),
            micros(again_took) - micros(bare_took),
            bare_took,
        )
    };
    // Warm-up: first calls pay for lazily built paths on both sides.
    for i in 0..CONNECTORS {
        pair(i).await;
    }
    let results: Vec<(f64, f64, Duration)> = futures::stream::iter(0..PAIRS)
        .map(pair)
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let sorted = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values
    };
    let mut bare_took: Vec<Duration> = results.iter().map(|(_, _, b)| *b).collect();
    bare_took.sort();
    Overhead {
        differences: sorted(results.iter().map(|(d, _, _)| *d).collect()),
        noise: sorted(results.iter().map(|(_, n, _)| *n).collect()),
        bare_p50_us: micros(percentile(&bare_took, 0.5)),
    }
}

/// Whole `switchboard call` processes (start, connect to the daemon, call, print, exit), each
/// paired with a direct call to the same server.
struct CliCalls {
    process_ms: Vec<f64>,
    added_ms: Vec<f64>,
}

impl CliCalls {
    fn process_ms(&self, p: f64) -> f64 {
        pick(&self.process_ms, p)
    }

    fn added_ms(&self, p: f64) -> f64 {
        pick(&self.added_ms, p)
    }
}

fn pick(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Pairs of calls to `fixture`'s server run as a daemon's connector in this process:
/// through a `switchboard call` process (the CLI as a client of the daemon), and directly.
async fn cli_calls(
    fixture: &Fixture,
    direct: &RunningService<RoleClient, ClientConfig>,
) -> CliCalls {
    use switchboard::control::{SharedDaemon, socket};
    use switchboard::daemon::{Daemon, DaemonOptions};
    use switchboard::registry::model::{RemoteKind, ServerEntry, ServerName};
    use switchboard::registry::{Registry, RegistryOptions};

    const PROCESSES: usize = 200;
    let config = tempfile::tempdir().expect("temp dir");
    let dir = config.path().to_path_buf();
    let registry = Registry::open(RegistryOptions::in_dir(&dir))
        .await
        .expect("registry");
    registry
        .add(
            ServerName::new("fx").expect("name"),
            ServerEntry::remote(fixture.url(), RemoteKind::Http),
        )
        .await
        .expect("added");
    registry.close().await.expect("written");
    let claimed = socket::claim(&dir).expect("the control socket");
    let daemon = Daemon::start(DaemonOptions {
        config_dir: dir.clone(),
        manifest: None,
    })
    .await
    .expect("daemon");
    let snapshot = daemon.settled().await;
    assert_eq!(snapshot.connectors[0].state, Health::Healthy);
    let shared = std::sync::Arc::new(SharedDaemon::new(daemon));
    let served = claimed.serve(shared.clone());

    let cli = |i: usize| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .arg("--config-dir")
                .arg(&dir)
                .args(["call", "fx.tool_001", "--args"])
                .arg(format!(r#"{{"text":"cli {i}"}}"#))
                .env("RUST_LOG", "warn")
                .output()
                .expect("switchboard runs");
            let took = started.elapsed();
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "a quiet call through the daemon: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            took
        })
    };
    let direct_call = |i: usize| async move {
        let mut params = CallToolRequestParams::new("tool_001");
        if let Some(a) = args(i) {
            params = params.with_arguments(a);
        }
        let started = Instant::now();
        direct.call_tool(params).await.expect("direct call");
        started.elapsed()
    };
    let mut calls = CliCalls {
        process_ms: Vec::new(),
        added_ms: Vec::new(),
    };
    for i in 0..PROCESSES {
        let (through_cli, plain) = if i.is_multiple_of(2) {
            let c = cli(i).await.expect("joined");
            (c, direct_call(i).await)
        } else {
            let d = direct_call(i).await;
            (cli(i).await.expect("joined"), d)
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        calls.process_ms.push(ms(through_cli));
        calls.added_ms.push(ms(through_cli) - ms(plain));
    }
    calls.process_ms.sort_by(f64::total_cmp);
    calls.added_ms.sort_by(f64::total_cmp);
    served.close().await;
    if let Some(daemon) = shared.take().await {
        daemon.shutdown().await.expect("shut down");
    }
    calls
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
