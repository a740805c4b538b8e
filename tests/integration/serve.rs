//! The aggregated server as AI clients meet it: `switchboard serve` launched by, and the
//! daemon's HTTP endpoint reached by, the official Python SDK (both protocol eras) and
//! TypeScript SDK clients, over a fleet of the fixture and servers nobody here wrote.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_fixture::{Fixture, Knobs};

use crate::daemon::{Daemon, json, start_daemon_with};
use crate::interop::{everything_js, interop_dir};
use crate::sdk::{Sdk, SdkClient, Target, every_client_takes, names};
use crate::stdio::fixture_bin;
use crate::support::*;

/// How long a change may take to reach every client (the aggregated endpoint's promise).
const CHANGE_LIMIT: Duration = Duration::from_millis(500);

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
        .map(|(sdk, tool, args, _)| {
            SdkClient::start(*sdk, Target::Serve(dir), &["list-call", tool, args])
        })
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
    for client in clients {
        client.finish().await;
    }
}

/// The fixture over HTTP (`fx`, two tools, its requests counted here) and mcp-server-time
/// (`time`), both healthy under a daemon started with `args`.
pub(crate) async fn healthy_fleet_under_a_daemon(
    args: &[&str],
) -> (Fixture, tempfile::TempDir, Daemon) {
    let knobs = Knobs {
        tools: 2,
        ..Knobs::default()
    };
    healthy_fleet_with(knobs, args).await
}

/// [`healthy_fleet_under_a_daemon`] with the fixture's `knobs`.
pub(crate) async fn healthy_fleet_with(
    knobs: Knobs,
    args: &[&str],
) -> (Fixture, tempfile::TempDir, Daemon) {
    let fixture = Fixture::start(knobs).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run_cli(dir, &["registry", "add", "fx", "--url", &fixture.url()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    add_stdio(dir, "time", &time_server(), &[]);
    let daemon = start_daemon_with(dir, args).await;
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
    (fixture, tmp, daemon)
}

/// Sessions the fixture has seen opened: an initialize handshake, or a 2026-07-28 session's
/// change subscription (its `server/discover` is also every idle probe's, so it counts no
/// session).
fn sessions_opened(fixture: &Fixture) -> usize {
    let methods = fixture.methods();
    methods
        .iter()
        .filter(|m| *m == "initialize" || *m == "subscriptions/listen")
        .count()
}

/// Three clients (Python in both eras, TypeScript) watch `target`; `fx` is switched off from
/// another process; each is told, re-lists without fx's tools within [`CHANGE_LIMIT`], and a
/// late call to a tool that left gets a tool error saying why. Their listing never reached the
/// server and opened no session of its own.
async fn a_toggle_elsewhere_reaches_every_client(
    fixture: &Fixture,
    dir: &Path,
    target: Target<'_>,
) {
    let lists = || {
        fixture
            .counters()
            .tool_lists
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let (sessions_before, lists_before) = (sessions_opened(fixture), lists());

    let sdks = [Sdk::PythonLegacy, Sdk::PythonAuto, Sdk::TypeScript];
    let clients: Vec<_> = sdks
        .iter()
        .map(|sdk| SdkClient::start(*sdk, target, &["watch", "fx_tool_000"]))
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
        sessions_opened(fixture),
        sessions_before,
        "no session of its own to the server: {:?}",
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
    for client in clients {
        client.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_daemon_serve_relays_and_a_toggle_elsewhere_reaches_every_client_at_once() {
    let (fixture, tmp, _daemon) = healthy_fleet_under_a_daemon(&[]).await;
    a_toggle_elsewhere_reaches_every_client(&fixture, tmp.path(), Target::Serve(tmp.path())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_endpoint_serves_both_eras_with_its_token_and_refuses_strangers() {
    let (fixture, tmp, daemon) = healthy_fleet_under_a_daemon(&["--http", "127.0.0.1:0"]).await;
    let url = daemon.mcp.clone().expect("sync printed its MCP endpoint");
    let token_file = tmp.path().join("endpoint-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is the user's alone");

    let port = url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .unwrap();
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "probe", "version": "1"}}});
    let http = reqwest::Client::new();
    let post = |headers: &[(&str, String)]| {
        let mut request = http
            .post(&url)
            .header("Accept", "application/json, text/event-stream")
            .json(&initialize);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send()
    };
    let bearer = ("Authorization", format!("Bearer {token}"));
    let cases = [
        ("no token", vec![], 401),
        (
            "a wrong token",
            vec![("Authorization", "Bearer nope".to_string())],
            401,
        ),
        (
            "a foreign Origin",
            vec![bearer.clone(), ("Origin", "http://evil.example".into())],
            403,
        ),
        (
            "a rebound Host",
            vec![bearer.clone(), ("Host", format!("evil.example:{port}"))],
            403,
        ),
        (
            "a page on this machine",
            vec![
                bearer.clone(),
                ("Origin", format!("http://localhost:{port}")),
            ],
            200,
        ),
        ("the token alone", vec![bearer.clone()], 200),
    ];
    for (what, headers, expected) in cases {
        let response = post(&headers).await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            expected,
            "{what}: {:?}",
            response.text().await
        );
    }
    a_toggle_elsewhere_reaches_every_client(&fixture, tmp.path(), Target::Http(&url, Some(&token)))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_switched_off_leaves_every_client_and_its_context_cost_is_told() {
    let (_fixture, tmp, _daemon) = healthy_fleet_under_a_daemon(&[]).await;
    let dir = tmp.path();
    let listed = json(&run_cli(dir, &["tools", "--json"]).await);
    let first = &listed[0];
    assert_eq!(first["enabled"], true, "{first}");
    assert!(
        first["context_tokens"].as_u64().unwrap_or(0) > 10,
        "{first}"
    );

    let watching = SdkClient::start(Sdk::PythonAuto, Target::Serve(dir), &["watch"]);
    let ready = names(&watching.next(), "ready");
    assert!(ready.contains(&"fx_tool_000".to_string()), "{ready:?}");
    let out = run_cli(dir, &["tools", "disable", "fx.tool_000"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let after = names(&watching.next(), "changed");
    assert!(
        !after.contains(&"fx_tool_000".to_string()),
        "switched off: {after:?}"
    );
    assert!(
        after.contains(&"fx_tool_001".to_string()),
        "its sibling stays: {after:?}"
    );
    watching.finish().await;

    let file = std::fs::read_to_string(dir.join("servers.json")).unwrap_or_default();
    let journal = std::fs::read_to_string(dir.join("servers.journal")).unwrap_or_default();
    assert!(
        file.contains("disabledTools") || journal.contains("tool_000"),
        "kept durably:\n{file}\n{journal}"
    );
    let text = stdout(&run_cli(dir, &["tools"]).await);
    assert!(text.contains("fx.tool_000  [off]"), "{text}");
    assert!(
        text.contains("serving 3 of 4 tools to AI clients, about"),
        "{text}"
    );

    let out = run_cli(dir, &["tools", "enable", "fx.tool_000"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let start = Instant::now();
    loop {
        let listed = json(&run_cli(dir, &["tools", "--json"]).await);
        if listed
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["enabled"] == true)
        {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "within {DEADLINE:?}: served again: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = SdkClient::start(
        Sdk::TypeScript,
        Target::Serve(dir),
        &["list-call", "fx_tool_000", "{}"],
    );
    let report = client.next();
    assert!(
        names(&report, "tools").contains(&"fx_tool_000".to_string()),
        "{report}"
    );
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_the_client_cancels_is_cancelled_at_the_server_too() {
    let knobs = Knobs {
        tools: 2,
        call_delay: Duration::from_secs(20),
        ..Knobs::default()
    };
    let (fixture, tmp, daemon) = healthy_fleet_with(knobs, &["--http", "127.0.0.1:0"]).await;
    let url = daemon.mcp.clone().expect("sync printed its MCP endpoint");
    let token = std::fs::read_to_string(tmp.path().join("endpoint-token")).unwrap();
    let cancellations = || {
        fixture
            .counters()
            .cancellations
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // Through serve, relayed over the control socket, and through the HTTP endpoint.
    for (n, target) in [Target::Serve(tmp.path()), Target::Http(&url, Some(&token))]
        .into_iter()
        .enumerate()
    {
        let client = SdkClient::start(Sdk::TypeScript, target, &["cancel", "fx_tool_001", "300"]);
        let report = client.next();
        assert_eq!(report["cancelled"], true, "{report}");
        assert!(
            report["ms"].as_u64().unwrap_or(u64::MAX) < 5_000,
            "the client was not kept waiting: {report}"
        );
        // The client stays connected: the server's call must end on the cancellation itself,
        // not on the connection closing.
        let start = Instant::now();
        while cancellations() < n as u64 + 1 {
            assert!(
                start.elapsed() < DEADLINE,
                "within {DEADLINE:?}: call {n}'s server side was cancelled, not left running 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(client);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_servers_progress_reaches_the_calling_client_in_order_before_the_answer() {
    let knobs = Knobs {
        tools: 2,
        call_delay: Duration::from_millis(200),
        ..Knobs::default()
    };
    let (_fixture, tmp, daemon) = healthy_fleet_with(knobs, &["--http", "127.0.0.1:0"]).await;
    let url = daemon.mcp.clone().expect("sync printed its MCP endpoint");
    let token = std::fs::read_to_string(tmp.path().join("endpoint-token")).unwrap();
    let scenario = ["progress", "fx_tool_001", "{}"];
    // Relayed by serve over the control socket in both SDKs, and by the HTTP endpoint.
    let clients = [
        SdkClient::start(Sdk::TypeScript, Target::Serve(tmp.path()), &scenario),
        SdkClient::start(Sdk::PythonAuto, Target::Serve(tmp.path()), &scenario),
        SdkClient::start(
            Sdk::PythonLegacy,
            Target::Http(&url, Some(&token)),
            &scenario,
        ),
    ];
    for client in clients {
        let report = client.next();
        // Numbers as numbers: one SDK writes 1, the other 1.0.
        let updates: Vec<(f64, f64, &str)> = report["progress"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| {
                let number = |i: usize| u[i].as_f64().unwrap_or(f64::NAN);
                (number(0), number(1), u[2].as_str().unwrap_or_default())
            })
            .collect();
        let expected = [(1.0, 2.0, "started"), (2.0, 2.0, "done")];
        match client.sdk {
            // The TypeScript SDK handles a notification a tick after the answer read with it,
            // and by then has forgotten the token: the last update is lost when both arrive
            // together (typescript-sdk#2580). What arrives is in order, the first update first.
            Sdk::TypeScript => assert!(
                !updates.is_empty() && expected.starts_with(&updates),
                "{report}"
            ),
            _ => assert_eq!(updates, expected, "{:?}: {report}", client.sdk),
        }
        assert_eq!(report["is_error"], false, "{:?}: {report}", client.sdk);
        assert!(
            report["text"]
                .as_str()
                .unwrap_or_default()
                .contains("tool_001"),
            "{:?}: {report}",
            client.sdk
        );
        client.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_outlives_its_daemon_an_ai_clients_calls_go_on_from_an_engine_of_its_own() {
    let (fixture, _tmp, daemon) = healthy_fleet_under_a_daemon(&[]).await;
    let dir = _tmp.path();
    let client = SdkClient::start(
        Sdk::PythonAuto,
        Target::Serve(dir),
        &["repeat", "fx_tool_000", "{}", "200"],
    );
    for _ in 0..2 {
        let report = client.next();
        assert_eq!(report["is_error"], false, "through the daemon: {report}");
    }
    let before = sessions_opened(&fixture);
    // The user quits the app (the daemon): the AI client, and its serve, stay.
    drop(daemon);
    let quit = Instant::now();
    loop {
        // A call caught in the switch may fail, as a tool error saying why; the client never
        // does (`next` would find it gone).
        let report = client.next();
        let text = report["text"].as_str().unwrap_or_default();
        if report["is_error"] == false && sessions_opened(&fixture) > before {
            assert!(text.contains("tool_000"), "{report}");
            break;
        }
        assert!(
            report["is_error"] == false || !text.is_empty(),
            "a failure says why: {report}"
        );
        assert!(
            quit.elapsed() < DEADLINE,
            "within {DEADLINE:?}: calls answer again from serve's own engine"
        );
    }
}
