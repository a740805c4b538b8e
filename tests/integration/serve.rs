//! `switchboard serve` as AI clients meet it: launched by the official Python SDK (both protocol
//! eras) and TypeScript SDK clients, over a fleet of the fixture and servers nobody here wrote.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_fixture::{Fixture, Knobs};

use crate::daemon::{json, start_daemon};
use crate::interop::{everything_js, interop_dir};
use crate::stdio::fixture_bin;
use crate::support::*;

/// How long a change may take to reach every client (the aggregated endpoint's promise).
const CHANGE_LIMIT: Duration = Duration::from_millis(500);

/// Which SDK client launches `serve`.
#[derive(Debug, Clone, Copy)]
enum Sdk {
    /// The initialize handshake (2025-11-25).
    PythonLegacy,
    /// `server/discover` first: 2026-07-28.
    PythonAuto,
    TypeScript,
}

/// One SDK client process, reporting one JSON object per line; killed when dropped.
struct SdkClient {
    sdk: Sdk,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl SdkClient {
    fn start(sdk: Sdk, dir: &Path, scenario: &[&str]) -> Self {
        let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
        let interop = interop_dir();
        let switchboard = env!("CARGO_BIN_EXE_switchboard");
        let mut command = match sdk {
            Sdk::PythonLegacy | Sdk::PythonAuto => {
                let mut c = Command::new(interop.join("venv/bin/python"));
                let mode = if matches!(sdk, Sdk::PythonLegacy) {
                    "legacy"
                } else {
                    "auto"
                };
                c.arg(clients.join("python_client.py"))
                    .arg(switchboard)
                    .arg(dir)
                    .arg(mode);
                c
            }
            Sdk::TypeScript => {
                let mut c = Command::new("node");
                c.env("NODE_PATH", interop.join("npm/node_modules"))
                    .arg(clients.join("typescript_client.cjs"))
                    .arg(switchboard)
                    .arg(dir);
                c
            }
        };
        let mut child = command
            .args(scenario)
            .env_remove("SWITCHBOARD_CONFIG_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{sdk:?} client: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { sdk, child, lines }
    }

    /// The next report, within the test deadline.
    fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("within {DEADLINE:?}: the {:?} client reports", self.sdk));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{:?}: {e}: {line}", self.sdk))
    }
}

impl Drop for SdkClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn names(report: &Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {report}"))
        .iter()
        .map(|n| n.as_str().expect("a name").to_string())
        .collect()
}

/// `^[a-zA-Z0-9_-]{1,64}$`, with room left for Claude Code's `mcp__switchboard__`.
fn every_client_takes(name: &str) -> bool {
    (1..=46).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn add_stdio(dir: &Path, name: &str, command: &Path, args: &[&str]) {
    let mut cli_args = vec!["registry", "add", name, "--command"];
    let command = command.to_str().expect("a UTF-8 path");
    cli_args.push(command);
    for arg in args {
        cli_args.extend(["--arg", arg]);
    }
    let out = cli(dir, &cli_args);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn time_server() -> PathBuf {
    interop_dir().join("venv/bin/mcp-server-time")
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_clients_of_both_eras_get_every_tool_under_a_legal_name_and_call_through() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let long = "a_tool_name_far_too_long_for_any_client_once_prefixed";
    add_stdio(
        dir,
        "fx",
        &fixture_bin(),
        &[
            "--stdio",
            "--tools",
            "3",
            "--tool-name",
            "fs.read",
            "--tool-name",
            long,
        ],
    );
    add_stdio(dir, "time", &time_server(), &[]);
    add_stdio(
        dir,
        "everything",
        Path::new("node"),
        &[&everything_js(), "stdio"],
    );
    // No daemon runs: each client's `serve` runs an engine of its own.
    let runs = [
        (
            Sdk::PythonLegacy,
            "fx_tool_002",
            r#"{"text":"hi"}"#,
            "tool_002",
        ),
        (
            Sdk::PythonAuto,
            "time_get_current_time",
            r#"{"timezone":"UTC"}"#,
            "\"timezone\": \"UTC\"",
        ),
        (
            Sdk::TypeScript,
            "everything_echo",
            r#"{"message":"hi"}"#,
            "Echo: hi",
        ),
    ];
    let clients: Vec<_> = runs
        .iter()
        .map(|(sdk, tool, args, _)| SdkClient::start(*sdk, dir, &["list-call", tool, args]))
        .collect();
    for (client, (sdk, tool, _, expected)) in clients.iter().zip(&runs) {
        let report = client.next();
        let served = names(&report, "tools");
        for name in &served {
            assert!(
                every_client_takes(name),
                "{sdk:?}: {name:?} is refused by some clients"
            );
        }
        for expected in [
            "fx_fs_read",
            "fx_tool_002",
            "time_get_current_time",
            "everything_echo",
        ] {
            assert!(
                served.iter().any(|n| n == expected),
                "{sdk:?}: {expected} in {served:?}"
            );
        }
        let shortened: Vec<_> = served
            .iter()
            .filter(|n| n.starts_with("fx_a_tool_name_far"))
            .collect();
        assert_eq!(
            shortened.len(),
            1,
            "{sdk:?}: the long name, shortened: {served:?}"
        );
        assert!(
            served.len() >= 3 + 2 + 10,
            "{sdk:?}: every server's tools: {served:?}"
        );
        assert_eq!(report["is_error"], false, "{sdk:?}: {tool}: {report}");
        let text = report["text"].as_str().unwrap_or_default();
        assert!(text.contains(expected), "{sdk:?}: {tool} answers: {text}");
        match sdk {
            Sdk::PythonLegacy => assert_eq!(report["protocol"], "2025-11-25"),
            Sdk::PythonAuto => assert_eq!(report["protocol"], "2026-07-28"),
            Sdk::TypeScript => assert_eq!(report["server"], "switchboard"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_daemon_serve_relays_and_a_toggle_elsewhere_reaches_every_client_at_once() {
    let fixture = Fixture::start(Knobs {
        tools: 2,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run_cli(dir, &["registry", "add", "fx", "--url", &fixture.url()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    add_stdio(dir, "time", &time_server(), &[]);
    let _daemon = start_daemon(dir, false).await;
    let start = Instant::now();
    loop {
        let status = json(&run_cli(dir, &["status", "--json"]).await);
        let states: Vec<&Value> = status["connectors"]
            .as_array()
            .map(|c| c.iter().map(|c| &c["state"]).collect())
            .unwrap_or_default();
        if states.len() == 2 && states.iter().all(|s| *s == "healthy") {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "within {DEADLINE:?}: both healthy: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handshakes = || {
        let methods = fixture.methods();
        methods
            .iter()
            .filter(|m| *m == "initialize" || *m == "server/discover")
            .count()
    };
    let lists = || {
        fixture
            .counters()
            .tool_lists
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let (handshakes_before, lists_before) = (handshakes(), lists());

    let sdks = [Sdk::PythonLegacy, Sdk::PythonAuto, Sdk::TypeScript];
    let clients: Vec<_> = sdks
        .iter()
        .map(|sdk| SdkClient::start(*sdk, dir, &["watch", "fx_tool_000"]))
        .collect();
    for client in &clients {
        let ready = names(&client.next(), "ready");
        assert!(
            ready.contains(&"fx_tool_000".to_string()),
            "{:?}: {ready:?}",
            client.sdk
        );
    }
    assert_eq!(
        lists(),
        lists_before,
        "the clients' tools/list came from the daemon's catalog, not the server"
    );
    assert_eq!(
        handshakes(),
        handshakes_before,
        "serve opened no session of its own: {:?}",
        fixture.methods()
    );

    let out = run_cli(dir, &["registry", "disable", "fx"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let disabled = Instant::now();
    for client in &clients {
        let report = client.next();
        let took = disabled.elapsed();
        let after = names(&report, "changed");
        assert!(
            after.iter().all(|n| !n.starts_with("fx_")) && !after.is_empty(),
            "{:?}: fx's tools left, time's stayed: {after:?}",
            client.sdk
        );
        assert!(
            took <= CHANGE_LIMIT,
            "{:?}: told and re-listed {took:?} after the toggle (limit {CHANGE_LIMIT:?})",
            client.sdk
        );
        // A call still aimed at a tool that just left gets an answer saying why.
        assert_eq!(report["is_error"], true, "{:?}: {report}", client.sdk);
        let text = report["text"].as_str().unwrap_or_default();
        assert!(
            text.contains("\"fx\"") && text.contains("disabled"),
            "{:?}: the late call names the connector and its state: {text}",
            client.sdk
        );
    }
}
