//! Cold sync of a slow fleet, in parallel and in the old one-at-a-time order, then tool calls
//! through the engine and through a bare `rmcp` client, side by side in one run.
//!
//! 50 fixture servers on loopback each add 100 ms to every HTTP request. `ideal_s` is the bound
//! those set: rounds of `concurrency` connectors, each round costing the HTTP requests one
//! handshake takes (counted by the servers) times the latency. Connection counts come from the
//! servers' own accept counters. The calls run twice: with the 100 ms latency, then with none,
//! where the engine's overhead over a bare client (a few hundred microseconds, inside the timer
//! jitter of a 100 ms response) can be resolved; the JSON's overhead comes from the second pass.
//! Prints a table, then one JSON line.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient};
use switchboard::connector::{ConnectorSpec, Endpoint, Source};
use switchboard::session::http_client;
use switchboard::sync::{Connected, DEFAULT_CONCURRENCY, SyncOptions, connect_all};
use switchboard_fixture::{Fixture, Knobs};

const CONNECTORS: usize = 50;
const LATENCY: Duration = Duration::from_millis(100);
const CALLS: usize = 1_000;

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
    let sequential = connect_all(specs(&fleet), &http, SyncOptions { concurrency: 1 }).await;
    let sequential_s = started.elapsed().as_secs_f64();
    assert_eq!(
        sequential.sessions.len(),
        CONNECTORS,
        "every connector connects"
    );
    sequential.close().await;

    let (accepted_before, requests_before) = (accepted(&fleet), requests(&fleet));
    let options = SyncOptions {
        concurrency: DEFAULT_CONCURRENCY,
    };
    // A fresh client, so the cold sync cannot borrow the sequential run's pooled connections.
    let http = http_client().expect("HTTP client");
    let started = Instant::now();
    let engine = connect_all(specs(&fleet), &http, options).await;
    let parallel_s = started.elapsed().as_secs_f64();
    assert_eq!(
        engine.sessions.len(),
        CONNECTORS,
        "every connector connects"
    );
    let handshake_connections = accepted(&fleet) - accepted_before;
    let requests_per_handshake = (requests(&fleet) - requests_before) as f64 / CONNECTORS as f64;
    let rounds = CONNECTORS.div_ceil(options.concurrency) as f64;
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
    // is resolved in a second pass with the servers answering at once.
    for fixture in &fleet {
        fixture.set_knobs(|k| k.latency = Duration::ZERO).await;
    }
    let fast = call_rounds(&fleet, &engine, &bare).await;
    let overhead = |p: f64| micros(percentile(&fast.engine, p)) - micros(percentile(&fast.bare, p));
    let new_per_connector =
        (slow.new_connections + fast.new_connections) as f64 / (2 * CONNECTORS) as f64;
    let per_connector = handshake_connections as f64 / CONNECTORS as f64;

    let rows = [
        (
            "cold sync, one at a time (s)".to_string(),
            format!("{sequential_s:.3}"),
        ),
        (
            format!("cold sync, {} at once (s)", options.concurrency),
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
            "new connections during 2 x 1000 calls".into(),
            (slow.new_connections + fast.new_connections).to_string(),
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
    for (phase, calls) in [("+100 ms", &slow), ("+0 ms", &fast)] {
        for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
            for (path, latencies) in [("engine", &calls.engine), ("bare rmcp", &calls.bare)] {
                let value = micros(percentile(latencies, p));
                println!(
                    "{:<44} {value:>12.0}",
                    format!("call {label} at {phase}, {path} (µs)")
                );
            }
        }
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
        "proxy_overhead_p50_us": overhead(0.5).round(),
        "proxy_overhead_p99_us": overhead(0.99).round(),
    });
    for client in bare {
        let _ = client.cancel().await;
    }
    engine.close().await;
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
    engine: &Connected,
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

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
