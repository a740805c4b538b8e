//! What the aggregated server adds to a tool call, side by side with two peers, in one run.
//!
//! One fixture server on loopback answers at once. The same call reaches it directly, through
//! `switchboard serve` (a child process relaying to a daemon run in this process), through the
//! daemon's HTTP endpoint, through mcp-hub (npm; legacy SSE) and through FastMCP's proxy (PyPI;
//! stdio), all with the same client (Switchboard's own session layer, so the client's cost is
//! the same everywhere). Overheads are paired and interleaved, path by path: the same call
//! through the path and directly, one right after the other, which goes first alternating; the
//! added latency is the per-pair difference. Direct against direct gives the A/A control (the
//! machine's own noise). Once with one pair at a time, once with 16 running at once. Then
//! throughput at 16 in flight (over 3 s), `tools/list` of 50 servers × 100 tools through
//! `serve` (paired with one server listing 5,000 tools itself), and the serve process's memory. Peers come from `scripts/install-bench-peers.sh`. Prints a table,
//! then one JSON line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::json;
use switchboard::connector::{ConnectorSpec, Endpoint, Source};
use switchboard::control::{SharedDaemon, socket};
use switchboard::daemon::{Daemon, DaemonOptions};
use switchboard::endpoint::http::{Access, HttpEndpoint};
use switchboard::health::Health;
use switchboard::registry::model::{RemoteKind, ServerEntry, ServerName};
use switchboard::registry::{Registry, RegistryOptions};
use switchboard::session::{Caller, Session, http_client};
use switchboard_fixture::{Fixture, Knobs};

const ROUNDS: usize = 1_000;
const IN_FLIGHT: usize = 16;
const THROUGHPUT_FOR: Duration = Duration::from_secs(3);
const LIST_SERVERS: usize = 50;
const LIST_TOOLS: usize = 100;
const LISTS: usize = 30;

/// One way to the fixture's `tool_001`.
struct Route {
    name: &'static str,
    caller: Caller,
    tool: String,
    /// Kept open for as long as the path is measured.
    _session: Session,
}

fn spec(id: &str, endpoint: Endpoint) -> ConnectorSpec {
    ConnectorSpec {
        id: id.into(),
        endpoint,
        enabled: true,
        connect_timeout: Duration::from_secs(60),
        call_timeout: Duration::from_secs(30),
        source: Source::Registry,
        missing_credential: None,
        info: Default::default(),
    }
}

fn http(url: String, kind: Option<RemoteKind>, headers: &[(&str, String)]) -> Endpoint {
    Endpoint::Http {
        url,
        kind,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn stdio(command: &Path, args: &[&str], env: &[(&str, &str)]) -> Endpoint {
    Endpoint::Stdio {
        command: command.display().to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<IndexMap<_, _>>(),
        cwd: None,
    }
}

async fn open(name: &'static str, spec: ConnectorSpec, http: &reqwest::Client) -> Route {
    let session = Session::open(&spec, http)
        .await
        .unwrap_or_else(|e| panic!("{name}: connects: {e}"));
    let tool = session
        .tools
        .iter()
        .map(|t| t.name.to_string())
        .find(|n| n.ends_with("tool_001"))
        .unwrap_or_else(|| panic!("{name}: serves tool_001: {:?}", session.tools));
    Route {
        name,
        caller: session.caller(),
        tool,
        _session: session,
    }
}

async fn call(path: &Route, i: usize) -> Duration {
    let args = json!({"text": format!("call {i}")});
    let started = Instant::now();
    let result = path
        .caller
        .call(&path.tool, args.as_object().cloned())
        .await
        .unwrap_or_else(|e| panic!("{}: call: {e}", path.name));
    assert_ne!(result.is_error, Some(true), "{}: {result:?}", path.name);
    started.elapsed()
}

/// A daemon for a config dir of its own with `servers`, its control socket served, settled.
async fn daemon(
    servers: &[&Fixture],
) -> (tempfile::TempDir, Arc<SharedDaemon>, socket::ControlSocket) {
    let config = tempfile::tempdir().expect("temp dir");
    let registry = Registry::open(RegistryOptions::in_dir(config.path()))
        .await
        .expect("registry");
    for (i, fixture) in servers.iter().enumerate() {
        let name = if servers.len() == 1 {
            "fx".into()
        } else {
            format!("fx{i:02}")
        };
        registry
            .add(
                ServerName::new(&name).expect("name"),
                ServerEntry::remote(fixture.url(), RemoteKind::Http),
            )
            .await
            .expect("added");
    }
    registry.close().await.expect("written");
    let claimed = socket::claim(config.path()).expect("the control socket");
    let daemon = Daemon::start(DaemonOptions {
        config_dir: config.path().to_path_buf(),
        manifest: None,
    })
    .await
    .expect("daemon");
    let snapshot = daemon.settled().await;
    assert!(
        snapshot
            .connectors
            .iter()
            .all(|c| c.state == Health::Healthy),
        "every server healthy: {:?}",
        snapshot.connectors
    );
    let shared = Arc::new(SharedDaemon::new(daemon));
    let socket = claimed.serve(shared.clone());
    (config, shared, socket)
}

fn serve_spec(config: &Path) -> ConnectorSpec {
    let dir = config.display().to_string();
    spec(
        "serve",
        stdio(
            Path::new(env!("CARGO_BIN_EXE_switchboard")),
            &["--config-dir", &dir, "serve"],
            &[("RUST_LOG", "warn")],
        ),
    )
}

fn peers_dir() -> PathBuf {
    let dir = std::env::var_os("SWITCHBOARD_BENCH_PEERS").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/switchboard/bench-peers")
        },
        PathBuf::from,
    );
    assert!(
        dir.join("venv/bin/python").is_file() && dir.join("npm/node_modules/mcp-hub").is_dir(),
        "{} lacks the peers: run ./scripts/install-bench-peers.sh",
        dir.display()
    );
    dir
}

/// mcp-hub in front of `fixture`, on loopback (see `peers/loopback.cjs`), with its marketplace
/// cache seeded so it fetches nothing from the internet. Killed with the returned child.
async fn start_mcp_hub(
    fixture: &Fixture,
    peers: &Path,
    home: &Path,
) -> (tokio::process::Child, String) {
    let data = home.join("data");
    std::fs::create_dir_all(data.join("mcp-hub/cache")).expect("cache dir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let cache = json!({"registry": {"servers": []}, "lastFetchedAt": now as u64, "serverDocumentation": {}});
    std::fs::write(data.join("mcp-hub/cache/registry.json"), cache.to_string()).expect("cache");
    let config = home.join("hub.json");
    let servers = json!({"mcpServers": {"fx": {"url": fixture.url()}}});
    std::fs::write(&config, servers.to_string()).expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let preload = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/loopback.cjs");
    let child = tokio::process::Command::new("node")
        .arg(peers.join("npm/node_modules/mcp-hub/dist/cli.js"))
        .args(["--port", &port.to_string(), "--config"])
        .arg(&config)
        .env("HOME", home)
        .env("XDG_DATA_HOME", &data)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("NODE_OPTIONS", format!("--require {}", preload.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mcp-hub starts");
    // It listens before its servers are connected, answering 500 until then: wait for its
    // own health report to say ready.
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = format!("http://127.0.0.1:{port}/api/health");
    loop {
        let ready = match reqwest::get(&health).await {
            Ok(response) => response
                .text()
                .await
                .unwrap_or_default()
                .contains("\"state\":\"ready\""),
            Err(_) => false,
        };
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "mcp-hub is ready within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, format!("http://127.0.0.1:{port}/mcp"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `path`'s added latency over a direct call, in µs, sorted: `rounds` pairs of the same call
/// through `path` and directly, one right after the other, which goes first alternating;
/// `in_flight` pairs at a time. With `path` direct too, the A/A control.
async fn paired(direct: &Route, path: &Route, rounds: usize, in_flight: usize) -> Vec<f64> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || async {
        let mut added = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= rounds {
                return added;
            }
            let (through, plain) = if i.is_multiple_of(2) {
                let through = call(path, i).await;
                (through, call(direct, i).await)
            } else {
                let plain = call(direct, i).await;
                (call(path, i).await, plain)
            };
            added.push((through.as_secs_f64() - plain.as_secs_f64()) * 1e6);
        }
    };
    let workers: Vec<_> = (0..in_flight).map(|_| worker()).collect();
    let mut added: Vec<f64> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    added.sort_by(f64::total_cmp);
    added
}

/// Calls per second through `path` with `in_flight` calls at a time, over [`THROUGHPUT_FOR`].
async fn throughput(path: &Route, in_flight: usize) -> f64 {
    let done = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| async {
            while started.elapsed() < THROUGHPUT_FOR {
                let i = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                call(path, i).await;
            }
        })
        .collect();
    futures::future::join_all(workers).await;
    done.load(std::sync::atomic::Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The memory of the `switchboard serve` started for `config`, in MB: resident (RSS), its
/// proportional share (PSS: pages shared with the daemon, the same binary, count by half) and
/// its own (private), and of that its anonymous memory (heap and stacks: the rest is the
/// binary's pages, clean and shared with every other `serve`).
struct Memory {
    rss: f64,
    pss: f64,
    private: f64,
    anonymous: f64,
}

fn serve_memory(config: &Path) -> Memory {
    let wanted = format!("--config-dir\0{}\0serve", config.display());
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&wanted) {
            let rollup =
                std::fs::read_to_string(entry.path().join("smaps_rollup")).unwrap_or_default();
            let kb = |field: &str| -> f64 {
                rollup
                    .lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(f64::NAN)
            };
            return Memory {
                rss: kb("Rss:") / 1024.0,
                pss: kb("Pss:") / 1024.0,
                private: (kb("Private_Clean:") + kb("Private_Dirty:")) / 1024.0,
                anonymous: kb("Anonymous:") / 1024.0,
            };
        }
    }
    panic!("the serve process for {} is running", config.display())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[tokio::main]
async fn main() {
    let peers = peers_dir();
    let fixture = Fixture::start(Knobs::default()).await.expect("fixture");
    let client = http_client().expect("HTTP client");
    let (config, shared, control) = daemon(&[&fixture]).await;
    let token = "bench-token".to_string();
    let endpoint = HttpEndpoint::start(
        shared.clone(),
        "127.0.0.1:0".parse().expect("addr"),
        Access::Token(token.clone()),
    )
    .await
    .expect("the HTTP endpoint");
    let hub_home = tempfile::tempdir().expect("temp dir");
    let (_hub, hub_url) = start_mcp_hub(&fixture, &peers, hub_home.path()).await;

    let direct = open(
        "direct",
        spec("direct", http(fixture.url(), None, &[])),
        &client,
    )
    .await;
    let paths = vec![
        open("switchboard serve", serve_spec(config.path()), &client).await,
        open(
            "switchboard HTTP endpoint",
            spec(
                "http",
                http(
                    endpoint.url(),
                    None,
                    &[("Authorization", format!("Bearer {token}"))],
                ),
            ),
            &client,
        )
        .await,
        open(
            "mcp-hub",
            spec("mcp-hub", http(hub_url, Some(RemoteKind::Sse), &[])),
            &client,
        )
        .await,
        open(
            "fastmcp proxy",
            spec(
                "fastmcp",
                stdio(
                    &peers.join("venv/bin/python"),
                    &[
                        &Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join("benches/peers/fastmcp_proxy.py")
                            .display()
                            .to_string(),
                        &fixture.url(),
                    ],
                    &[("FASTMCP_CHECK_FOR_UPDATES", "off")],
                ),
            ),
            &client,
        )
        .await,
    ];
    // Warm every path (connections, JITs, caches) before anything is measured.
    for i in 0..50 {
        call(&direct, i).await;
        for path in &paths {
            call(path, i).await;
        }
    }
    let (mut one, mut many) = (Vec::new(), Vec::new());
    for path in paths.iter().chain([&direct]) {
        one.push(paired(&direct, path, ROUNDS, 1).await);
        many.push(paired(&direct, path, ROUNDS, IN_FLIGHT).await);
    }
    let mut per_second = Vec::new();
    per_second.push(throughput(&direct, IN_FLIGHT).await);
    for path in &paths {
        per_second.push(throughput(path, IN_FLIGHT).await);
    }
    let memory = serve_memory(config.path());

    // tools/list of 5,000 tools: a second daemon over 50 servers of 100 tools each.
    let listing = Knobs {
        tools: LIST_TOOLS,
        page_size: LIST_TOOLS,
        ..Knobs::default()
    };
    let fleet = switchboard_fixture::fleet(LIST_SERVERS, &listing)
        .await
        .expect("fleet");
    let (list_config, list_shared, list_control) = daemon(&fleet.iter().collect::<Vec<_>>()).await;
    // A plain rmcp client: the engine's own sessions cap one connector at 2,000 tools.
    let lister = {
        use rmcp::ServiceExt as _;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .arg("--config-dir")
            .arg(list_config.path())
            .arg("serve")
            .env("RUST_LOG", "warn");
        let transport = rmcp::transport::TokioChildProcess::new(command).expect("serve starts");
        ().serve(transport).await.expect("serve over the big fleet")
    };
    // The baseline: one server listing as many tools itself, to the same kind of client.
    let big = Fixture::start(Knobs {
        tools: LIST_SERVERS * LIST_TOOLS,
        page_size: 500,
        ..Knobs::default()
    })
    .await
    .expect("a server of 5,000 tools");
    let big_lister = {
        use rmcp::ServiceExt as _;
        let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(big.url());
        ().serve(transport).await.expect("the big server")
    };
    // rmcp's client caches lists for as long as the server's `ttlMs` says (the fixture: 60 s,
    // serve: 0): without this the baseline would time a cache, not a listing.
    for peer in [&lister, &big_lister] {
        peer.peer()
            .set_response_cache_config(rmcp::ClientCacheConfig::disabled())
            .await;
    }
    let (mut list_ms, mut list_added_ms) = (Vec::new(), Vec::new());
    let time_list = |peer: &rmcp::service::RunningService<rmcp::RoleClient, ()>| {
        let peer = peer.peer().clone();
        async move {
            let started = Instant::now();
            let tools = peer.list_all_tools().await.expect("listed");
            assert_eq!(tools.len(), LIST_SERVERS * LIST_TOOLS, "every tool listed");
            started.elapsed().as_secs_f64() * 1e3
        }
    };
    for i in 0..LISTS {
        let (through, plain) = if i % 2 == 0 {
            let t = time_list(&lister).await;
            (t, time_list(&big_lister).await)
        } else {
            let p = time_list(&big_lister).await;
            (time_list(&lister).await, p)
        };
        list_ms.push(through);
        list_added_ms.push(through - plain);
    }
    list_ms.sort_by(f64::total_cmp);
    list_added_ms.sort_by(f64::total_cmp);
    let _ = big_lister.cancel().await;

    println!("added latency per call over a direct call (paired, interleaved), µs:");
    println!(
        "{:28} {:>10} {:>10} {:>12} {:>12} {:>10}",
        "path", "p50 @1", "p99 @1", "p50 @16", "p99 @16", "calls/s"
    );
    println!(
        "{:28} {:>10} {:>10} {:>12} {:>12} {:>10.0}",
        "direct", "-", "-", "-", "-", per_second[0]
    );
    let names: Vec<&str> = paths
        .iter()
        .map(|p| p.name)
        .chain(["A/A (direct vs direct)"])
        .collect();
    for (k, name) in names.iter().enumerate() {
        let rate = per_second
            .get(k + 1)
            .map_or("-".to_string(), |r| format!("{r:.0}"));
        println!(
            "{name:28} {:>10.0} {:>10.0} {:>12.0} {:>12.0} {rate:>10}",
            percentile(&one[k], 0.5),
            percentile(&one[k], 0.99),
            percentile(&many[k], 0.5),
            percentile(&many[k], 0.99),
        );
    }
    println!(
        "tools/list of {} tools through serve: p50 {:.2} ms (p50 {:.2} ms more than one server \
         listing as many itself, paired); serve RSS {:.1} MB (PSS {:.1}, private {:.1}, anonymous {:.1})",
        LIST_SERVERS * LIST_TOOLS,
        percentile(&list_ms, 0.5),
        percentile(&list_added_ms, 0.5),
        memory.rss,
        memory.pss,
        memory.private,
        memory.anonymous
    );
    let peer_p99 = |k: usize| round1(percentile(&one[k], 0.99));
    let better_peer = peer_p99(2).min(peer_p99(3));
    let line = json!({
        "serve_added_p50_us": round1(percentile(&one[0], 0.5)),
        "serve_added_p99_us": peer_p99(0),
        "serve_added_p99_us_16": round1(percentile(&many[0], 0.99)),
        "http_added_p50_us": round1(percentile(&one[1], 0.5)),
        "http_added_p99_us": peer_p99(1),
        "aa_p99_us": peer_p99(4),
        "peer_added_p99_us": {"mcp-hub": peer_p99(2), "fastmcp": peer_p99(3)},
        "peer_over_serve_p99": round1(better_peer / peer_p99(0).max(1.0)),
        "throughput_per_s": {"direct": per_second[0].round(), "serve": per_second[1].round(), "http": per_second[2].round(), "mcp-hub": per_second[3].round(), "fastmcp": per_second[4].round()},
        "tools_list_5000_ms": (percentile(&list_ms, 0.5) * 100.0).round() / 100.0,
        "tools_list_5000_added_ms": (percentile(&list_added_ms, 0.5) * 100.0).round() / 100.0,
        "serve_rss_mb": round1(memory.rss),
        "serve_pss_mb": round1(memory.pss),
        "serve_private_mb": round1(memory.private),
        "serve_anon_mb": round1(memory.anonymous),
    });
    let _ = lister.cancel().await;
    drop(paths);
    endpoint.close().await;
    for (socket, shared) in [(control, shared), (list_control, list_shared)] {
        socket.close().await;
        if let Some(daemon) = shared.take().await {
            daemon.shutdown().await.expect("shut down");
        }
    }
    println!("{line}");
}
