//! Crash safety: writer processes killed with SIGKILL at random points, and two processes
//! editing at once. The child is this same test binary re-executed into `editor_child`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rand::RngExt;
use switchboard::registry::{Registry, RegistryOptions, read_servers_file};

use crate::support::*;

const CHILD_DIR: &str = "SWITCHBOARD_TEST_EDITOR_DIR";
const CHILD_PREFIX: &str = "SWITCHBOARD_TEST_EDITOR_PREFIX";
const CHILD_COUNT: &str = "SWITCHBOARD_TEST_EDITOR_COUNT";

/// The editing process: adds servers (and disables every third one it added), printing
/// `ACK <op> <name>` only after each edit is acknowledged. Runs until killed, or for
/// `CHILD_COUNT` edits and then closes cleanly. Only meaningful when started by the tests below.
#[tokio::test]
#[ignore = "child process of the crash tests; they run it themselves"]
async fn editor_child() {
    let dir = std::env::var(CHILD_DIR).expect("started by a crash test");
    let prefix = std::env::var(CHILD_PREFIX).unwrap();
    let count: usize = std::env::var(CHILD_COUNT)
        .ok()
        .map_or(usize::MAX, |c| c.parse().unwrap());
    // Short debounce, so kills also land inside rewrites, not only inside journal appends.
    let registry = Registry::open(RegistryOptions {
        quiet: Duration::from_millis(3),
        max_delay: Duration::from_millis(15),
        watch: false,
        ..RegistryOptions::in_dir(dir)
    })
    .await
    .unwrap();
    let mut i = 0;
    while i < count {
        let server = format!("{prefix}-{i}");
        registry.add(name(&server), remote(1)).await.unwrap();
        println!("ACK add {server}");
        if i % 3 == 0 {
            registry.set_enabled(name(&server), false).await.unwrap();
            println!("ACK disable {server}");
        }
        i += 1;
    }
    registry.close().await.unwrap();
}

fn spawn_editor(dir: &Path, prefix: &str, count: Option<usize>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "registry_crash::editor_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_DIR, dir)
    .env(CHILD_PREFIX, prefix)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Some(count) = count {
        cmd.env(CHILD_COUNT, count.to_string());
    }
    cmd.spawn().expect("the test binary re-executes")
}

/// Forwards the child's `ACK` lines as they come.
fn acks(child: &mut Child) -> mpsc::Receiver<(String, String)> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // With --nocapture the harness's "test … " prefix shares the first line.
            if let Some(at) = line.find("ACK ")
                && let Some((op, server)) = line[at + 4..].split_once(' ')
            {
                let _ = tx.send((op.to_string(), server.to_string()));
            }
        }
    });
    rx
}

#[derive(Default)]
struct Expected {
    added: BTreeSet<String>,
    disabled: BTreeSet<String>,
}

impl Expected {
    fn record(&mut self, (op, server): (String, String)) {
        match op.as_str() {
            "add" => self.added.insert(server),
            "disable" => self.disabled.insert(server),
            other => panic!("unknown ack {other}"),
        };
    }

    async fn check(&self, dir: &Path, when: &str) {
        // The file as the crash left it must parse, before anything reopens it.
        read_servers_file(&servers_json(dir))
            .unwrap_or_else(|e| panic!("{when}: servers.json does not parse after a kill: {e}"));
        let registry = Registry::open(RegistryOptions {
            watch: false,
            ..options(dir)
        })
        .await
        .unwrap_or_else(|e| panic!("{when}: the registry does not open after a kill: {e}"));
        let snapshot = registry.snapshot();
        for server in &self.added {
            let entry = snapshot
                .servers
                .get(&name(server))
                .unwrap_or_else(|| panic!("{when}: acknowledged add of {server} was lost"));
            // Only acknowledged facts are owed: an unacknowledged disable may or may not be there.
            assert!(
                !(self.disabled.contains(server) && entry.enabled),
                "{when}: acknowledged disable of {server} was lost"
            );
        }
        registry.close().await.unwrap();
    }
}

#[tokio::test]
async fn no_acknowledged_edit_is_lost_when_a_writer_is_killed_at_random_points() {
    const KILLS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::default();
    let mut rng = rand::rng();
    let mut acked_total = 0;
    for round in 0..KILLS {
        let mut child = spawn_editor(dir.path(), &format!("r{round}"), None);
        let acked = acks(&mut child);
        // Wait for at least one acknowledgement, so every round kills a process mid-work, then
        // let it run a random while longer.
        let first = acked
            .recv_timeout(DEADLINE)
            .expect("the editor acknowledges an edit");
        expected.record(first);
        std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
        child.kill().unwrap(); // SIGKILL: no destructor, no flush
        child.wait().unwrap();
        // The pipe closes with the process, so this ends.
        for ack in acked.iter() {
            acked_total += 1;
            expected.record(ack);
        }
        expected
            .check(dir.path(), &format!("after kill {round}"))
            .await;
    }
    assert!(
        acked_total > KILLS,
        "the editors should have acknowledged more than one edit per round, got {acked_total}"
    );
    println!(
        "{KILLS} kills, {} servers acknowledged, all present",
        expected.added.len()
    );
}

#[tokio::test]
async fn two_processes_editing_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut children: Vec<Child> = ["left", "right"]
        .iter()
        .map(|p| spawn_editor(dir.path(), p, Some(500)))
        .collect();
    let receivers: Vec<_> = children.iter_mut().map(acks).collect();
    for child in &mut children {
        let status = child.wait().unwrap();
        assert!(status.success(), "an editor failed: {status}");
    }
    let mut expected = Expected::default();
    for rx in receivers {
        rx.iter().for_each(|ack| expected.record(ack));
    }
    assert_eq!(
        expected.added.len(),
        1000,
        "each editor acknowledges its 500 adds"
    );
    expected
        .check(dir.path(), "after two concurrent editors")
        .await;
    let file = read_servers_file(&servers_json(dir.path())).unwrap();
    assert_eq!(
        file.mcp_servers.len(),
        1000,
        "servers.json holds all 1000 after both closed"
    );
}
