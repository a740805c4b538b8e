//! AI clients as the official SDKs make them, as processes the tests drive: the Python SDK
//! (PyPI `mcp`, both protocol eras) and the TypeScript SDK (npm `@modelcontextprotocol/sdk`),
//! running the scenarios in `tests/clients/` against `switchboard serve` or the HTTP endpoint.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::interop::interop_dir;
use crate::support::*;

/// Which SDK client launches `serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// The initialize handshake (2025-11-25).
    PythonLegacy,
    /// `server/discover` first: 2026-07-28.
    PythonAuto,
    TypeScript,
}

/// What a client talks to.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// `switchboard serve` for this config dir, launched by the client.
    Serve(&'a Path),
    /// The daemon's endpoint, with this bearer token if any.
    Http(&'a str, Option<&'a str>),
}

/// One SDK client process, reporting one JSON object per line; killed when dropped.
pub struct SdkClient {
    pub sdk: Sdk,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl SdkClient {
    pub fn start(sdk: Sdk, target: Target, scenario: &[&str]) -> Self {
        let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
        let interop = interop_dir();
        let (switchboard, dir, token) = match target {
            Target::Serve(dir) => (env!("CARGO_BIN_EXE_switchboard"), dir, None),
            Target::Http(url, token) => (url, Path::new("-"), token),
        };
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
        match token {
            Some(token) => command.env("SWITCHBOARD_TOKEN", token),
            None => command.env_remove("SWITCHBOARD_TOKEN"),
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
    pub fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("within {DEADLINE:?}: the {:?} client reports", self.sdk));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{:?}: {e}: {line}", self.sdk))
    }
}

impl SdkClient {
    /// Waits for the client to end by itself (closing what it launched) and checks it did well.
    pub async fn finish(mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "the {:?} client ended with {status}",
                    self.sdk
                );
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "within {DEADLINE:?}: the {:?} client ends",
                self.sdk
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SdkClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn names(report: &Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {report}"))
        .iter()
        .map(|n| n.as_str().expect("a name").to_string())
        .collect()
}

/// `^[a-zA-Z0-9_-]{1,64}$`, with room left for Claude Code's `mcp__switchboard__`.
pub fn every_client_takes(name: &str) -> bool {
    (1..=46).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
