//! Shared helpers: temp config dirs, registries opened on them, waiting with deadlines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use switchboard::registry::model::{RemoteKind, ServerEntry, ServerName};
use switchboard::registry::{Registry, RegistryOptions, RegistrySnapshot};

/// Generous: CI disks can be slow, and every wait ends as soon as its condition holds.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn name(s: &str) -> ServerName {
    ServerName::new(s).expect("test names are valid")
}

pub fn remote(port: u16) -> ServerEntry {
    ServerEntry::remote(format!("http://127.0.0.1:{port}/mcp"), RemoteKind::Http)
}

pub fn options(dir: &Path) -> RegistryOptions {
    RegistryOptions {
        quiet: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        ..RegistryOptions::in_dir(dir)
    }
}

pub async fn open(dir: &Path) -> Registry {
    Registry::open(options(dir))
        .await
        .expect("registry should open")
}

/// Waits until the watched value satisfies `ready`, failing the test with `what` at the deadline.
pub async fn wait_for_watch<T: Clone + std::fmt::Debug>(
    mut changes: tokio::sync::watch::Receiver<T>,
    what: &str,
    ready: impl Fn(&T) -> bool,
) -> T {
    let waited = tokio::time::timeout(DEADLINE, async {
        loop {
            let current = changes.borrow_and_update().clone();
            if ready(&current) {
                return Ok(current);
            }
            if changes.changed().await.is_err() {
                return Err(current);
            }
        }
    })
    .await;
    match waited {
        Ok(Ok(value)) => value,
        Ok(Err(last)) => panic!("the sender went away while waiting: {what}; last: {last:?}"),
        Err(_) => panic!("within {DEADLINE:?}: {what}; last: {:?}", changes.borrow()),
    }
}

/// Waits until a registry snapshot satisfies `ready`.
pub async fn wait_for_snapshot(
    registry: &Registry,
    what: &str,
    ready: impl Fn(&RegistrySnapshot) -> bool,
) -> std::sync::Arc<RegistrySnapshot> {
    wait_for_watch(registry.subscribe(), what, |s| ready(s)).await
}

/// Polls a condition on something that has no change notification (a file), with a deadline.
pub async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < DEADLINE, "within {DEADLINE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn switchboard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.env_remove("SWITCHBOARD_CONFIG_DIR")
        .env("RUST_LOG", "warn")
        // Sign-in tokens in the test's config dir, never in the keyring of whoever runs them.
        .env("SWITCHBOARD_TOKEN_STORE", "file");
    cmd
}

/// Runs the CLI with `--config-dir dir` and `args`.
pub fn cli(dir: &Path, args: &[&str]) -> Output {
    switchboard()
        .arg("--config-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("the switchboard binary runs")
}

/// [`cli`] off the async runtime, so servers in this test process keep answering meanwhile.
pub async fn run_cli(dir: &Path, args: &[&str]) -> Output {
    let (dir, args): (PathBuf, Vec<String>) = (
        dir.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&dir, &args)
    })
    .await
    .unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn servers_json(dir: &Path) -> PathBuf {
    dir.join("servers.json")
}

/// An enabled registry connector reaching `endpoint`, with the tests' deadline for both timeouts.
pub fn connector_spec(
    id: &str,
    endpoint: switchboard::connector::Endpoint,
) -> switchboard::connector::ConnectorSpec {
    switchboard::connector::ConnectorSpec {
        id: id.into(),
        endpoint,
        enabled: true,
        connect_timeout: DEADLINE,
        call_timeout: DEADLINE,
        source: switchboard::connector::Source::Registry,
        missing_credential: None,
        info: Default::default(),
    }
}

/// A one-shot run, as `sync --once` makes one: the engine over `specs`, awaited until settled.
pub struct OneShot {
    pub engine: switchboard::engine::Engine,
    pub snapshot: std::sync::Arc<switchboard::engine::EngineSnapshot>,
    /// Keeps the engine running: it stops when its desired set's sender is gone.
    _desired: tokio::sync::watch::Sender<Vec<switchboard::connector::ConnectorSpec>>,
}

pub async fn one_shot(
    specs: Vec<switchboard::connector::ConnectorSpec>,
    http: &reqwest::Client,
    concurrency: usize,
) -> OneShot {
    let (desired, receiver) = tokio::sync::watch::channel(specs);
    let options = switchboard::engine::EngineOptions {
        concurrency,
        ..Default::default()
    };
    let engine = switchboard::engine::Engine::start(receiver, http.clone(), options);
    let snapshot = engine.settled(engine.one_shot_deadline()).await;
    assert!(
        snapshot.is_settled(),
        "the engine settles within its one-shot deadline: {:?}",
        snapshot.connectors
    );
    OneShot {
        engine,
        snapshot,
        _desired: desired,
    }
}

impl OneShot {
    /// Each connector's status, in the desired set's order.
    pub fn reports(&self) -> &[switchboard::engine::ConnectorStatus] {
        &self.snapshot.connectors
    }

    pub fn catalog(&self) -> &switchboard::catalog::Catalog {
        &self.snapshot.catalog
    }

    pub async fn call(
        &self,
        qualified: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<rmcp::model::CallToolResult, switchboard::engine::CallError> {
        self.engine.call(qualified, arguments).await
    }

    pub async fn close(self) {
        self.engine.shutdown().await;
    }
}
