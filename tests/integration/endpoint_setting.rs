//! The HTTP endpoint as a setting: `switchboard endpoint on | off` switches the running
//! daemon's endpoint at once and keeps it for the next start; a port that cannot be served is
//! refused, naming it, nothing is kept and what served goes on.

use std::net::TcpListener;

use serde_json::Value;

use crate::daemon::{json, start_daemon_with};
use crate::serve::healthy_fleet_under_a_daemon;
use crate::support::*;

/// What an `initialize` POST to `url` gets: the HTTP status, or `None` when nothing listens.
async fn initialize_status(url: &str, token: Option<&str>) -> Option<u16> {
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "probe", "version": "1"}}});
    let mut request = reqwest::Client::new()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .json(&initialize);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(response) => Some(response.status().as_u16()),
        Err(error) if error.is_connect() => None,
        Err(error) => panic!("{url}: {error}"),
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn endpoint_status(dir: &std::path::Path) -> Value {
    let out = run_cli(dir, &["endpoint", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_endpoint_setting_switches_the_running_daemon_and_holds_for_its_next_start() {
    let (_fixture, tmp, daemon) = healthy_fleet_under_a_daemon(&[]).await;
    let dir = tmp.path();
    let status = endpoint_status(dir).await;
    assert_eq!(status["enabled"], false, "off unless asked: {status}");
    assert!(status["url"].is_null(), "{status}");

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let out = run_cli(dir, &["endpoint", "on", "--port", &port.to_string()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("serving: {url}")),
        "{}",
        stdout(&out)
    );
    let token = std::fs::read_to_string(dir.join("endpoint-token")).unwrap();
    assert!(!stdout(&out).contains(&token), "the token is never printed");
    assert_eq!(initialize_status(&url, Some(&token)).await, Some(200));
    assert_eq!(initialize_status(&url, None).await, Some(401));

    // A port another program holds: refused, naming it; the endpoint serves on as it was.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port().to_string();
    let out = run_cli(dir, &["endpoint", "on", "--port", &busy]).await;
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("port {busy} is in use")),
        "{}",
        stderr(&out)
    );
    let status = endpoint_status(dir).await;
    assert_eq!(status["url"], url.as_str(), "{status}");
    assert_eq!(status["port"], port, "nothing kept: {status}");
    assert_eq!(initialize_status(&url, Some(&token)).await, Some(200));
    let out = run_cli(dir, &["endpoint", "on", "--port", "80"]).await;
    assert!(
        stderr(&out).contains("port 80 cannot be"),
        "{}",
        stderr(&out)
    );

    let out = run_cli(dir, &["endpoint", "off"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        initialize_status(&url, Some(&token)).await,
        None,
        "off at once"
    );

    // On again, then a new daemon: it serves as set from its start.
    let out = run_cli(dir, &["endpoint", "on"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let kept = std::fs::read_to_string(dir.join("endpoint.json")).unwrap();
    let kept: Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(kept["enabled"], true, "{kept}");
    assert_eq!(kept["port"], port, "{kept}");
    drop(daemon);
    let _daemon = start_daemon_with(dir, &[]).await;
    let deadline = std::time::Instant::now() + DEADLINE;
    while initialize_status(&url, Some(&token)).await != Some(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "within {DEADLINE:?}: the restarted daemon serves {url}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_daemon_the_setting_is_kept_for_the_next_start_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run_cli(dir, &["endpoint", "on", "--port", "9", "--no-token"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("port 9 cannot be"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.join("endpoint.json").exists(),
        "a refused setting is not kept"
    );

    let out = run_cli(dir, &["endpoint", "on", "--no-token"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("next start"), "{}", stdout(&out));
    assert!(
        !stderr(&out).contains("running an engine"),
        "no engine is started to keep a setting: {}",
        stderr(&out)
    );
    let status = endpoint_status(dir).await;
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["requireToken"], false, "{status}");
    assert_eq!(status["port"], 7420, "{status}");

    // A link planted where the setting is kept: the save replaces the link, never writes
    // through it.
    let elsewhere = dir.join("elsewhere.json");
    std::fs::write(&elsewhere, b"{\"enabled\": false}").unwrap();
    std::fs::remove_file(dir.join("endpoint.json")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("endpoint.json")).unwrap();
    let out = run_cli(dir, &["endpoint", "on", "--port", "7555"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&elsewhere).unwrap(), b"{\"enabled\": false}");
    let kept = std::fs::symlink_metadata(dir.join("endpoint.json")).unwrap();
    assert!(kept.file_type().is_file(), "the link itself was replaced");
    assert_eq!(endpoint_status(dir).await["port"], 7555);

    std::fs::write(
        dir.join("endpoint.json"),
        b"{\"enabled\": true, \"prot\": 1}",
    )
    .unwrap();
    let out = run_cli(dir, &["endpoint", "--json"]).await;
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("endpoint.json") && said.contains("prot"),
        "{said}"
    );
}
