//! Interoperability with MCP servers nobody here wrote, installed by scripts/install-interop.sh:
//! npm `@modelcontextprotocol/server-everything` (stdio, streamable HTTP) and PyPI
//! `mcp-server-time` (stdio). Connect, list every tool, call one, probe.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use indexmap::IndexMap;
use switchboard::connector::{ConnectorSpec, Endpoint};
use switchboard::health::Health;
use switchboard::session::http_client;

use crate::support::*;

pub fn interop_dir() -> PathBuf {
    let dir = std::env::var_os("SWITCHBOARD_INTEROP_DIR").map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/switchboard/interop")
        },
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "{} is missing: run ./scripts/install-interop.sh (./scripts/test.sh does)",
        dir.display()
    );
    dir
}

pub fn everything_js() -> String {
    interop_dir()
        .join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
        .display()
        .to_string()
}

fn spec(id: &str, endpoint: Endpoint) -> ConnectorSpec {
    connector_spec(id, endpoint)
}

fn stdio(command: String, args: &[&str]) -> Endpoint {
    Endpoint::Stdio {
        command,
        args: args.iter().map(|a| a.to_string()).collect(),
        env: IndexMap::new(),
        cwd: None,
    }
}

/// Connects one connector, checks it is healthy with at least `min_tools`, and probes it.
async fn connect_healthy(spec: ConnectorSpec, min_tools: usize) -> OneShot {
    let connected = one_shot(vec![spec], &http_client().unwrap(), 1).await;
    let report = &connected.reports()[0];
    assert_eq!(report.state, Health::Healthy, "{report:?}");
    assert!(report.tools >= min_tools, "{report:?}");
    // A re-check probes the live session (ping, or discover on the new era) and lists again.
    connected.engine.recheck_all("the test asks").await;
    let again = connected.engine.settled(DEADLINE).await;
    assert_eq!(
        again.connectors[0].state,
        Health::Healthy,
        "the server answers a health probe: {:?}",
        again.connectors[0]
    );
    connected
}

async fn echo(connected: &OneShot, id: &str) {
    let args = serde_json::json!({"message": "hello from switchboard"});
    let result = connected
        .call(&format!("{id}.echo"), args.as_object().cloned())
        .await
        .unwrap();
    let text = serde_json::to_string(&result.content).unwrap();
    assert!(text.contains("Echo: hello from switchboard"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_everything_over_stdio() {
    let connected = connect_healthy(
        spec(
            "everything",
            stdio("node".into(), &[&everything_js(), "stdio"]),
        ),
        10,
    )
    .await;
    echo(&connected, "everything").await;
    assert!(
        connected.catalog().get("everything.get-sum").is_some(),
        "every tool is listed"
    );
    connected.close().await;
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts server-everything with `transport` on a free port. It binds every interface: the
/// port is fresh and the process is stopped by pid when the guard drops.
async fn everything_over(transport: &str) -> (KillOnDrop, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = KillOnDrop(
        Command::new("node")
            .args([everything_js().as_str(), transport])
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("server-everything listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    (server, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn server_everything_over_the_legacy_sse_transport_declared_and_detected() {
    let (_server, port) = everything_over("sse").await;
    for (label, kind) in [
        (
            "declared",
            Some(switchboard::registry::model::RemoteKind::Sse),
        ),
        ("detected", None),
    ] {
        let endpoint = Endpoint::Http {
            url: format!("http://127.0.0.1:{port}/sse"),
            kind,
            headers: IndexMap::new(),
        };
        let connected = connect_healthy(spec("everything", endpoint), 10).await;
        assert_eq!(
            connected.reports()[0].transport,
            if kind.is_some() { "sse" } else { "http" },
            "{label}"
        );
        echo(&connected, "everything").await;
        connected.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_everything_over_streamable_http() {
    let (_server, port) = everything_over("streamableHttp").await;
    let endpoint = Endpoint::Http {
        url: format!("http://127.0.0.1:{port}/mcp"),
        kind: None,
        headers: IndexMap::new(),
    };
    let connected = connect_healthy(spec("everything", endpoint), 10).await;
    echo(&connected, "everything").await;
    connected.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_server_time_from_pypi_over_stdio() {
    let command = interop_dir()
        .join("venv/bin/mcp-server-time")
        .display()
        .to_string();
    let connected = connect_healthy(
        spec("time", stdio(command, &["--local-timezone", "UTC"])),
        2,
    )
    .await;
    let args = serde_json::json!({"timezone": "Europe/Paris"});
    let result = connected
        .call("time.get_current_time", args.as_object().cloned())
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let text = serde_json::to_string(&result.content).unwrap();
    assert!(text.contains("Europe/Paris"), "{text}");
    connected.close().await;
}
