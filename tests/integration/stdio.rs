//! Stdio servers: launched as children in their own process group, and never outliving the
//! engine, even one killed with SIGKILL.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use switchboard::connector::{ConnectorSpec, Endpoint};
use switchboard::health::Health;
use switchboard::session::http_client;

use crate::support::*;

/// The fixture binary, built by `cargo test --workspace` for the fixture's own stdio test.
pub fn fixture_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(Path::parent).unwrap();
    let bin = target.join(format!(
        "switchboard-fixture{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (./scripts/test.sh does)",
        bin.display()
    );
    bin
}

fn stdio_spec(id: &str, args: &[&str]) -> ConnectorSpec {
    connector_spec(
        id,
        Endpoint::Stdio {
            command: fixture_bin().display().to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: IndexMap::new(),
            cwd: None,
        },
    )
}

pub fn running(pid: u32) -> bool {
    // Gone, or a zombie waiting for init to reap it: either way it has exited.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_connects_answers_and_is_stopped_on_close() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pid");
    let spec = stdio_spec(
        "local",
        &[
            "--stdio",
            "--tools",
            "60",
            "--page-size",
            "25",
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
    );
    let connected = one_shot(vec![spec], &http_client().unwrap(), 4).await;
    let report = &connected.reports()[0];
    assert_eq!(report.state, Health::Healthy, "{report:?}");
    assert_eq!(report.tools, 60, "three pages over stdio");
    assert_eq!(report.transport, "stdio");
    let result = connected.call("local.tool_059", None).await.unwrap();
    assert_eq!(result.is_error, Some(false));
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(running(pid), "the child runs while its session is open");
    connected.close().await;
    wait_until("closing the session stops the child", || !running(pid)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_stdio_child_outlives_an_engine_killed_with_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pid");
    let config = tmp.path().join("config");
    let bin = fixture_bin().display().to_string();
    let add = cli(
        &config,
        &[
            "registry",
            "add",
            "slow",
            "--command",
            &bin,
            "--arg",
            "--stdio",
            "--arg",
            "--call-delay-ms",
            "--arg",
            "600000",
            "--arg",
            "--pid-file",
            "--arg",
            pid_file.to_str().unwrap(),
        ],
    );
    assert!(add.status.success(), "{}", stderr(&add));
    // The engine calls a tool that takes ten minutes, and is killed while it waits.
    let mut engine = switchboard()
        .arg("--config-dir")
        .arg(&config)
        .args(["call", "slow.tool_000"])
        .spawn()
        .unwrap();
    wait_until("the stdio child starts", || {
        pid_file.exists() && std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.is_empty())
    })
    .await;
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(running(pid));
    engine.kill().unwrap(); // SIGKILL: no cleanup code runs in the engine
    engine.wait().unwrap();
    wait_until("the orphaned child exits once its stdin closes", || {
        !running(pid)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_that_will_not_start_says_why() {
    let spec = ConnectorSpec {
        endpoint: Endpoint::Stdio {
            command: "sh".into(),
            args: vec![
                "-c".into(),
                "echo 'starting'; echo 'fatal: GITHUB_TOKEN is not set' >&2; exit 3".into(),
            ],
            env: IndexMap::new(),
            cwd: None,
        },
        ..stdio_spec("broken", &[])
    };
    // The same reason every run: which pipe broke first used to decide it.
    for _ in 0..3 {
        let connected = one_shot(vec![spec.clone()], &http_client().unwrap(), 1).await;
        let report = &connected.reports()[0];
        assert_eq!(report.state, Health::Down, "{report:?}");
        assert_eq!(
            report.reason.as_deref(),
            Some("the server exited with status 3; stderr: fatal: GITHUB_TOKEN is not set"),
        );
        connected.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_stdio_servers_stderr_is_there_for_the_ui() {
    let script = format!(
        "echo 'ready, using cache /tmp/x' >&2; exec '{}' --stdio",
        fixture_bin().display()
    );
    let spec = ConnectorSpec {
        endpoint: Endpoint::Stdio {
            command: "sh".into(),
            args: vec!["-c".into(), script],
            env: IndexMap::new(),
            cwd: None,
        },
        ..stdio_spec("chatty", &[])
    };
    let (_desired, receiver) = tokio::sync::watch::channel(vec![spec]);
    let engine =
        switchboard::engine::Engine::start(receiver, http_client().unwrap(), Default::default());
    wait_for_watch(engine.subscribe(), "healthy", |s| {
        s.connectors
            .first()
            .is_some_and(|c| c.state == Health::Healthy)
    })
    .await;
    let mut lines = Vec::new();
    wait_until("the stderr line is kept", || {
        lines = engine.stderr("chatty").unwrap_or_default();
        lines.iter().any(|l| l.contains("ready, using cache"))
    })
    .await;
    assert_eq!(engine.stderr("nobody"), None);
    engine.shutdown().await;
}
