//! An AI client as the official Python SDK makes one, launching `switchboard serve` for the
//! app's config dir: what the window's Calls, Latency and Tools views are about.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::Value;

use crate::support::{App, DEADLINE, Launch, TempDir};
use crate::{ONE_APP_AT_A_TIME, knobs, registry_with};

/// The Python SDK client (tests/clients/python_client.py) running `scenario`; killed when
/// dropped.
struct AiClient {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl AiClient {
    fn start(config_dir: &Path, scenario: &[&str]) -> Self {
        let interop = std::env::var_os("SWITCHBOARD_INTEROP_DIR")
            .map(PathBuf::from)
            .expect("SWITCHBOARD_INTEROP_DIR (./scripts/install-interop.sh; test.sh sets it)");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let switchboard =
            Path::new(env!("CARGO_BIN_EXE_switchboard-app")).with_file_name("switchboard");
        let mut child = Command::new(interop.join("venv/bin/python"))
            .arg(repo.join("tests/clients/python_client.py"))
            .arg(switchboard)
            .arg(config_dir)
            .arg("auto")
            .args(scenario)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the Python SDK client starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    /// Its next report, within the deadline.
    fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("the AI client reported within {DEADLINE:?}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }
}

impl Drop for AiClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn names(report: &Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_clients_call_shows_in_the_window_and_a_tool_switched_off_there_leaves_it() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let fixtures = switchboard_fixture::fleet(1, &knobs())
        .await
        .expect("fixture");
    let home = TempDir::new("ai-client");
    registry_with(&home, &[fixtures[0].url()]);
    let app = App::start(home, Launch::default()).await;
    app.wait_text("#summary", "fx1 connects", |t| t == "1/1 healthy")
        .await;

    // An AI client calls a tool through serve, which relays to the app's daemon.
    let caller = AiClient::start(
        &app.config_dir,
        &[
            "list-call",
            "fx1_tool_000",
            r#"{"text":"from an AI client"}"#,
        ],
    );
    let report = caller.next();
    assert_eq!(report["is_error"], false, "{report}");
    drop(caller);

    app.click("#tab-calls").await;
    let row = app
        .wait_text("#calls tbody", "the call in the log", |t| {
            t.contains("fx1.tool_000")
        })
        .await;
    assert!(row.contains("mcp"), "the Python SDK's client name: {row}");
    assert!(row.contains("ok"), "its outcome: {row}");
    app.fill("#calls-filter", "no-such-tool").await;
    app.wait_text("#calls-count", "the filter hides it", |t| {
        t.starts_with("0 of")
    })
    .await;
    app.fill("#calls-filter", "fx1").await;
    app.wait_text("#calls-count", "and shows it again", |t| {
        t.starts_with("1 of")
    })
    .await;
    app.screenshot("calls").await;

    app.click("#tab-latency").await;
    app.element("#charts figure[data-id='fx1'][data-calls='1']")
        .await;

    // A tool switched off in the window leaves a watching client within the promise.
    let watcher = AiClient::start(&app.config_dir, &["watch"]);
    let ready = names(&watcher.next(), "ready");
    assert!(ready.contains(&"fx1_tool_001".to_string()), "{ready:?}");
    app.click("#tab-tools").await;
    app.wait_text("#tools-summary", "the tools are listed", |t| {
        t.starts_with("Serving 4 of 4 tools")
    })
    .await;
    app.click("input[aria-label='serve fx1.tool_001']").await;
    let after = names(&watcher.next(), "changed");
    assert!(
        !after.contains(&"fx1_tool_001".to_string()) && after.contains(&"fx1_tool_000".to_string()),
        "switched off, its siblings stay: {after:?}"
    );
    app.wait_text("#tools-summary", "the total follows", |t| {
        t.starts_with("Serving 3 of 4 tools")
    })
    .await;
    app.screenshot("tools").await;
    // Kept where the registry keeps it.
    crate::support::wait_until("disabledTools in the registry", || {
        std::fs::read_to_string(app.config_dir.join("servers.journal"))
            .unwrap_or_default()
            .contains("tool_001")
            || std::fs::read_to_string(app.config_dir.join("servers.json"))
                .unwrap_or_default()
                .contains("disabledTools")
    })
    .await;
}
