//! The resident daemon (`switchboard sync`) and its clients over the control socket: one owner
//! of every upstream session per config dir, and the CLI as a client of it.

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use switchboard_fixture::{Fixture, Knobs};

use crate::support::*;

/// A `switchboard sync` daemon, killed when the test ends however it ends.
pub struct Daemon {
    child: Child,
    /// The `--metrics` address it printed, if asked to serve metrics.
    pub metrics: Option<String>,
    /// The MCP endpoint's URL it printed, if asked to serve one (`--http`).
    pub mcp: Option<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the daemon for `dir` and waits until its control socket answers.
pub async fn start_daemon(dir: &Path, with_metrics: bool) -> Daemon {
    let args: &[&str] = if with_metrics {
        &["--metrics", "127.0.0.1:0"]
    } else {
        &[]
    };
    start_daemon_with(dir, args).await
}

/// Starts `switchboard sync ARGS` for `dir`; waits for the addresses it was asked to serve on
/// (`--metrics`, `--http`) and until its control socket answers.
pub async fn start_daemon_with(dir: &Path, args: &[&str]) -> Daemon {
    let mut child = switchboard()
        .arg("--config-dir")
        .arg(dir)
        .arg("sync")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut metrics, mut mcp) = (None, None);
    let deadline = std::time::Instant::now() + DEADLINE;
    while (args.contains(&"--metrics") && metrics.is_none())
        || (args.contains(&"--http") && mcp.is_none())
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("within {DEADLINE:?}: sync prints the addresses it serves"));
        if let Some(rest) = line.strip_prefix("metrics: http://") {
            metrics = Some(rest.trim_end_matches("/metrics").to_string());
        }
        if let Some(rest) = line.strip_prefix("mcp: ") {
            mcp = rest.split_whitespace().next().map(str::to_string);
        }
    }
    let daemon = Daemon {
        child,
        metrics,
        mcp,
    };
    let path = socket_path(dir);
    wait_until("the daemon's control socket answers", || {
        std::os::unix::net::UnixStream::connect(&path).is_ok()
    })
    .await;
    daemon
}

fn socket_path(dir: &Path) -> PathBuf {
    switchboard::control::socket::socket_path(dir).unwrap()
}

pub fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// `GET /metrics` from the daemon's metrics endpoint.
pub fn scrape(addr: &str) -> String {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_commands_use_the_daemons_sessions_and_show_in_its_figures() {
    let fixture = Fixture::start(Knobs {
        tools: 2,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    assert!(
        run_cli(&dir, &["registry", "add", "fx", "--url", &fixture.url()])
            .await
            .status
            .success()
    );
    let daemon = start_daemon(&dir, true).await;
    let healthy = || async {
        let status = json(&run_cli(&dir, &["status", "--json"]).await);
        status["connectors"][0]["state"] == "healthy"
    };
    let deadline = std::time::Instant::now() + DEADLINE;
    while !healthy().await {
        assert!(
            std::time::Instant::now() < deadline,
            "fx healthy in the daemon"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Only the daemon and its user reach the socket.
    let path = socket_path(&dir);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "{}", path.display());
    assert_eq!(mode(path.parent().unwrap()), 0o700);

    let accepted = fixture.accepted_connections();
    let call = run_cli(
        &dir,
        &[
            "call",
            "fx.tool_001",
            "--args",
            r#"{"text":"via the daemon"}"#,
        ],
    )
    .await;
    assert!(call.status.success(), "{}", stderr(&call));
    assert!(
        stdout(&call).contains("via the daemon"),
        "{}",
        stdout(&call)
    );
    assert!(
        !stderr(&call).contains("no daemon runs"),
        "the call went to the daemon: {}",
        stderr(&call)
    );
    // The server's progress reaches the terminal, in order, on stderr.
    let progress: Vec<String> = stderr(&call)
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .map(String::from)
        .collect();
    assert_eq!(
        progress,
        ["progress: 1/2 started", "progress: 2/2 done"],
        "{}",
        stderr(&call)
    );
    let tools = json(&run_cli(&dir, &["tools", "--json"]).await);
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fx.tool_000", "fx.tool_001"]);
    assert_eq!(
        fixture.accepted_connections(),
        accepted,
        "call and tools reuse the daemon's session: no new connection"
    );
    let once = run_cli(&dir, &["sync", "--once", "--json"]).await;
    assert!(
        !stderr(&once).contains("no daemon runs"),
        "{}",
        stderr(&once)
    );
    let once = json(&once);
    assert_eq!(once[0]["state"], "healthy", "{once}");
    assert!(once[0]["latency_ms"].as_f64().is_some(), "{once}");
    // The daemon's re-check (a probe, then a re-list, back to back) may meet hyper's pool
    // while it is still taking the probe's connection back, and open one more (see
    // sync::calls_reuse_the_connection_the_handshake_opened); a session of its own would
    // open two (its request and subscription streams) and would say "no daemon runs".
    assert!(
        fixture.accepted_connections() <= accepted + 1,
        "sync --once re-checks over the daemon's session: {} new connections",
        fixture.accepted_connections() - accepted
    );

    let status = json(&run_cli(&dir, &["status", "--json"]).await);
    assert_eq!(status["connectors"][0]["calls"]["calls"], 1, "{status}");
    assert_eq!(status["overall"], "healthy", "{status}");
    let metrics = scrape(daemon.metrics.as_deref().unwrap());
    let count = metrics
        .lines()
        .find(|l| {
            l.starts_with("mcp_client_operation_duration_seconds_count{")
                && l.contains("connector=\"fx\"")
                && l.contains("gen_ai_tool_name=\"tool_001\"")
        })
        .unwrap_or_else(|| panic!("the call is in the daemon's histogram:\n{metrics}"));
    assert!(count.ends_with(" 1"), "{count}");

    let text = run_cli(&dir, &["status"]).await;
    assert!(
        stdout(&text).starts_with("1/1 healthy"),
        "{}",
        stdout(&text)
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_daemon_refuses_and_a_killed_ones_socket_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut first = start_daemon(&dir, false).await;

    let second = run_cli(&dir, &["sync"]).await;
    assert!(!second.status.success(), "a second daemon must not start");
    let pid = first.child.id().to_string();
    assert!(
        stderr(&second).contains(&format!("pid {pid}")),
        "it names the daemon that runs: {}",
        stderr(&second)
    );

    first.child.kill().unwrap(); // SIGKILL: the socket file stays behind
    first.child.wait().unwrap();
    let path = socket_path(&dir);
    assert!(path.exists(), "a killed daemon leaves its socket");
    let status = run_cli(&dir, &["status"]).await;
    assert!(
        stderr(&status).contains("no daemon runs"),
        "a stale socket is no daemon: {}",
        stderr(&status)
    );

    let third = start_daemon(&dir, false).await;
    let status = run_cli(&dir, &["status", "--json"]).await;
    assert!(
        !stderr(&status).contains("no daemon runs"),
        "the next daemon took over the stale socket: {}",
        stderr(&status)
    );
    drop(third);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_daemon_commands_say_they_run_an_engine_of_their_own() {
    let fixture = Fixture::start(Knobs::default()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    run_cli(&dir, &["registry", "add", "fx", "--url", &fixture.url()]).await;
    let status = run_cli(&dir, &["status", "--json"]).await;
    let overview = json(&status);
    assert_eq!(overview["connectors"][0]["state"], "healthy", "{overview}");
    let notes: Vec<&str> = std::str::from_utf8(&status.stderr)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(notes.len(), 1, "one line on stderr: {notes:?}");
    assert!(notes[0].contains("no daemon runs"), "{notes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_socket_answers_what_is_not_a_call_clearly_and_keeps_serving() {
    use std::io::Write as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let _daemon = start_daemon(&dir, false).await;
    let path = socket_path(&dir);
    let answers = tokio::task::spawn_blocking(move || {
        let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        stream
            .set_read_timeout(Some(DEADLINE))
            .expect("a read deadline");
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut ask = |line: &str| -> serde_json::Value {
            writer.write_all(line.as_bytes()).unwrap();
            writer.write_all(b"\n").unwrap();
            let mut answer = String::new();
            reader.read_line(&mut answer).unwrap();
            serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
        };
        let answers = vec![
            ask("not json at all"),
            ask(r#"{"id":2,"command":"shut_down","args":{}}"#),
            ask(r#"{"id":3,"command":"set_enabled","args":{"id":"x","enabled":"yes"}}"#),
            ask(r#"{"id":4,"command":"overview"}"#),
        ];
        // A line longer than the wire's bound: refused, and this connection closed, without
        // the daemon buffering it.
        let huge = vec![b'x'; switchboard::wire::MAX_LINE + 1024];
        let _ = writer.write_all(&huge); // the daemon may hang up before it is all written
        let mut refused = String::new();
        let _ = reader.read_line(&mut refused);
        let mut rest = String::new();
        let closed = reader.read_line(&mut rest).map_or(true, |n| n == 0);
        (answers, refused, closed)
    })
    .await
    .unwrap();
    let (answers, refused, closed) = answers;
    let code = |a: &serde_json::Value| a["result"]["Err"]["code"].clone();
    assert_eq!(code(&answers[0]), "bad_request", "{}", answers[0]);
    assert_eq!(
        (answers[1]["id"].clone(), code(&answers[1])),
        (serde_json::json!(2), serde_json::json!("unknown_command")),
        "{}",
        answers[1]
    );
    assert_eq!(code(&answers[2]), "bad_arguments", "{}", answers[2]);
    assert!(
        answers[3]["result"]["Ok"]["connectors"].is_array(),
        "{}",
        answers[3]
    );
    assert!(refused.contains("too_long"), "{refused:.200}");
    assert!(closed, "the connection that sent it is closed");
    let status = run_cli(&dir, &["status", "--json"]).await;
    assert!(
        status.status.success() && !stderr(&status).contains("no daemon runs"),
        "the daemon still serves: {}",
        stderr(&status)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_first_run_says_how_to_get_going_naming_the_clients_found() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".cursor")).unwrap();
    std::fs::write(
        home.join(".cursor/mcp.json"),
        r#"{"mcpServers":{"fs":{"command":"npx","args":["-y","fs"]}}}"#,
    )
    .unwrap();
    let mut daemon = switchboard()
        .arg("--config-dir")
        .arg(tmp.path().join("config"))
        .arg("sync")
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .current_dir(&home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = daemon.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    let deadline = std::time::Instant::now() + DEADLINE;
    while !said.iter().any(|l: &String| l.contains("--command CMD")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => said.push(line),
            Err(_) => panic!("within {DEADLINE:?}: the first steps; saw {said:?}"),
        }
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let text = said.join("\n");
    assert!(text.contains("following 0 connector(s)"), "{text}");
    assert!(text.contains("no servers yet"), "{text}");
    assert!(
        text.contains("registry import --dry-run") && text.contains("cursor ("),
        "it names the client whose servers can be imported: {text}"
    );
    assert!(text.contains("registry add NAME --url URL"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tools_only_subscriber_hears_tool_changes_and_no_overview() {
    use std::sync::Arc;
    use switchboard::control::{ControlClient, SharedDaemon, socket};
    use switchboard::daemon::{Daemon as Engine, DaemonOptions};
    use switchboard::wire::{Down, TOOLS_EVENT};

    let fixture = switchboard_fixture::Fixture::start(switchboard_fixture::Knobs::default())
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = run_cli(
        tmp.path(),
        &["registry", "add", "fx", "--url", &fixture.url()],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let claimed = socket::claim(tmp.path()).unwrap();
    let engine = Engine::start(DaemonOptions {
        config_dir: tmp.path().to_path_buf(),
        manifest: None,
    })
    .await
    .unwrap();
    let shared = Arc::new(SharedDaemon::new(engine));
    let served = claimed.serve(shared.clone());
    let client = ControlClient::connect(tmp.path()).await.unwrap().unwrap();
    let mut tools_only = client.subscribe_to_tools().await.unwrap();
    let window = ControlClient::connect(tmp.path()).await.unwrap().unwrap();
    let mut everything = window.subscribe().await.unwrap();

    // What the app tells its window of every overview.
    shared.tell(Down::Event {
        name: "overview".into(),
        payload: serde_json::json!({}),
    });
    let heard = tokio::time::timeout(DEADLINE, everything.recv()).await;
    assert!(
        matches!(heard, Ok(Ok(Down::Event { ref name, .. })) if name == "overview"),
        "the window hears it: {heard:?}"
    );
    // The connector comes up (or, had it already, is switched off): the tools change.
    let out = run_cli(tmp.path(), &["registry", "disable", "fx"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let first = tokio::time::timeout(DEADLINE, tools_only.recv()).await;
    assert!(
        matches!(first, Ok(Ok(Down::Event { ref name, .. })) if name == TOOLS_EVENT),
        "the first event a tools-only subscriber hears is a tool change: {first:?}"
    );
    drop((client, window));
    served.close().await;
    if let Some(engine) = shared.take().await {
        engine.shutdown().await.unwrap();
    }
}
