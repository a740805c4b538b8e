//! Resources and prompts through the aggregated server, as the official Python SDK sees them in
//! both protocol eras: server-everything's, under `switchboard://everything/…` URIs that read
//! back, templates mapped the same way, prompts named like tools and got by those names.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::{json, start_daemon_with};
use crate::interop::everything_js;
use crate::sdk::{Sdk, SdkClient, Target, every_client_takes, names};
use crate::support::*;

fn check(sdk: Sdk, report: &Value) {
    let resources = names(report, "resources");
    assert!(!resources.is_empty(), "{sdk:?}: {report}");
    for uri in &resources {
        assert!(
            uri.starts_with("switchboard://everything/demo://"),
            "{sdk:?}: {uri}"
        );
    }
    let read = &report["read"];
    assert_eq!(
        read[0].as_str(),
        Some(resources[0].as_str()),
        "{sdk:?}: read back under the served URI"
    );
    assert!(
        read[1].as_str().is_some_and(|t| !t.is_empty()),
        "{sdk:?}: {read}"
    );
    let templates = names(report, "templates");
    assert!(
        !templates.is_empty()
            && templates
                .iter()
                .all(|t| t.starts_with("switchboard://everything/") && t.contains('{')),
        "{sdk:?}: {templates:?}"
    );
    let prompts = names(report, "prompts");
    assert!(
        prompts.contains(&"everything_simple-prompt".to_string()),
        "{sdk:?}: {prompts:?}"
    );
    assert!(
        prompts.iter().all(|p| every_client_takes(p)),
        "{sdk:?}: {prompts:?}"
    );
    assert_eq!(
        report["prompt"][0], "everything_simple-prompt",
        "{sdk:?}: {report}"
    );
    assert!(
        report["prompt"][1].as_u64().unwrap_or(0) >= 1,
        "{sdk:?}: {report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_and_prompts_are_served_namespaced_and_read_back_in_both_eras() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let everything = everything_js();
    let out = run_cli(
        dir,
        &[
            "registry",
            "add",
            "everything",
            "--command",
            "node",
            "--arg",
            &everything,
            "--arg",
            "stdio",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));

    // No daemon: serve's own engine answers.
    let client = SdkClient::start(Sdk::PythonLegacy, Target::Serve(dir), &["offerings"]);
    check(Sdk::PythonLegacy, &client.next());
    client.finish().await;

    // A daemon: serve relays over the control socket.
    let _daemon = start_daemon_with(dir, &[]).await;
    healthy(dir).await;
    let client = SdkClient::start(Sdk::PythonAuto, Target::Serve(dir), &["offerings"]);
    check(Sdk::PythonAuto, &client.next());
    client.finish().await;
}

async fn healthy(dir: &Path) {
    let start = Instant::now();
    loop {
        let status = json(&run_cli(dir, &["status", "--json"]).await);
        if status["connectors"][0]["state"] == "healthy" {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "healthy within {DEADLINE:?}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
