//! The registry against the store it replaces, which rewrote the whole file on every edit.
//!
//! Both sides start from the same 200-server `servers.json` and make the same 5,000 edits, once
//! from one editor and once from 8 concurrent editors. The baseline takes the same `fs4` lock,
//! reads, parses, modifies, serialises, writes and fsyncs per edit; Switchboard journals with
//! group commit and rewrites on its default debounce (500 ms quiet, 5 s max), with the final
//! rewrite on close included in its time. Prints a table, then one JSON line.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use switchboard::registry::model::{Launch, RemoteKind, ServerEntry, ServerName, ServersFileV1};
use switchboard::registry::{Registry, RegistryLock, RegistryOptions, read_servers_file};

const SERVERS: usize = 200;
const EDITS: usize = 5_000;
const EDITORS: usize = 8;

fn server_name(i: usize) -> ServerName {
    ServerName::new(format!("server-{i:03}")).expect("valid name")
}

/// A realistic mix: half stdio servers with args and env, half remote ones with headers.
fn seed_entry(i: usize) -> ServerEntry {
    let launch = if i.is_multiple_of(2) {
        Launch::Stdio {
            command: "npx".into(),
            args: vec![
                "-y".into(),
                format!("@example/mcp-server-{i}"),
                "--stdio".into(),
            ],
            env: IndexMap::from([("LOG_LEVEL".to_string(), "info".to_string())]),
            cwd: None,
        }
    } else {
        Launch::Remote {
            url: format!("https://mcp-{i}.internal.example/mcp"),
            kind: RemoteKind::Http,
            headers: IndexMap::from([("X-Team".to_string(), "platform".to_string())]),
        }
    };
    ServerEntry {
        tags: vec!["seed".into()],
        ..ServerEntry::new(launch)
    }
}

/// Edit number `k`: retag one server, the kind of change a UI makes.
fn edited_entry(k: usize) -> (ServerName, ServerEntry) {
    let i = k % SERVERS;
    let mut entry = seed_entry(i);
    entry.tags = vec![format!("edit-{k}")];
    entry.enabled = !k.is_multiple_of(3);
    (server_name(i), entry)
}

fn seed(dir: &Path) {
    let mut file = ServersFileV1::default();
    for i in 0..SERVERS {
        file.mcp_servers
            .insert(server_name(i), Arc::new(seed_entry(i)));
    }
    let bytes = serde_json::to_vec_pretty(&file).expect("serialisable");
    fs::write(dir.join("servers.json"), bytes).expect("seed written");
}

/// The old store: one full read-modify-write-fsync per edit, under the lock.
struct RewriteEveryEdit {
    path: PathBuf,
    lock: PathBuf,
    rewrites: AtomicU64,
    bytes: AtomicU64,
}

impl RewriteEveryEdit {
    fn edit(&self, k: usize) {
        let _lock = RegistryLock::acquire(&self.lock, Duration::from_secs(60)).expect("lock");
        let mut file = read_servers_file(&self.path).expect("baseline file parses");
        let (name, entry) = edited_entry(k);
        file.mcp_servers.insert(name, Arc::new(entry));
        let bytes = serde_json::to_vec_pretty(&file).expect("serialisable");
        let mut out = File::create(&self.path).expect("baseline file opens");
        out.write_all(&bytes).expect("baseline write");
        out.sync_all().expect("baseline fsync");
        self.rewrites.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}

struct RunResult {
    seconds: f64,
    rewrites: u64,
    bytes: u64,
    fsyncs: u64,
}

fn baseline(editors: usize) -> RunResult {
    let dir = tempfile::tempdir().expect("temp dir");
    seed(dir.path());
    let store = Arc::new(RewriteEveryEdit {
        path: dir.path().join("servers.json"),
        lock: dir.path().join("servers.lock"),
        rewrites: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
    });
    let started = Instant::now();
    let threads: Vec<_> = (0..editors)
        .map(|e| {
            let store = store.clone();
            std::thread::spawn(move || {
                for k in (e..EDITS).step_by(editors) {
                    store.edit(k);
                }
            })
        })
        .collect();
    threads
        .into_iter()
        .for_each(|t| t.join().expect("editor thread"));
    let seconds = started.elapsed().as_secs_f64();
    check(dir.path());
    let rewrites = store.rewrites.load(Ordering::Relaxed);
    RunResult {
        seconds,
        rewrites,
        bytes: store.bytes.load(Ordering::Relaxed),
        fsyncs: rewrites,
    }
}

fn switchboard(runtime: &tokio::runtime::Runtime, editors: usize) -> RunResult {
    let dir = tempfile::tempdir().expect("temp dir");
    seed(dir.path());
    runtime.block_on(async {
        let registry = Registry::open(RegistryOptions::in_dir(dir.path()))
            .await
            .expect("registry opens");
        let started = Instant::now();
        let tasks: Vec<_> = (0..editors)
            .map(|e| {
                let registry = registry.clone();
                tokio::spawn(async move {
                    for k in (e..EDITS).step_by(editors) {
                        let (name, entry) = edited_entry(k);
                        registry
                            .upsert(name, entry)
                            .await
                            .expect("edit acknowledged");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("editor task");
        }
        let stats_handle = registry.clone();
        registry.close().await.expect("final rewrite");
        let seconds = started.elapsed().as_secs_f64();
        let stats = stats_handle.stats();
        check(dir.path());
        RunResult {
            seconds,
            rewrites: stats.file_rewrites,
            bytes: stats.journal_bytes + stats.file_bytes,
            fsyncs: stats.journal_fsyncs + stats.file_rewrites,
        }
    })
}

/// Both stores must end in the same state: the last edit of every server.
fn check(dir: &Path) {
    let file = read_servers_file(&dir.join("servers.json")).expect("final file parses");
    for i in 0..SERVERS {
        let last = (0..EDITS)
            .rev()
            .find(|k| k % SERVERS == i)
            .expect("every server edited");
        let (name, entry) = edited_entry(last);
        assert_eq!(*file.mcp_servers[&name], entry, "{name} lost its last edit");
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let runs = [
        ("baseline, 1 editor", baseline(1)),
        ("switchboard, 1 editor", switchboard(&runtime, 1)),
        ("baseline, 8 editors", baseline(EDITORS)),
        ("switchboard, 8 editors", switchboard(&runtime, EDITORS)),
    ];
    println!("registry: {SERVERS} servers, {EDITS} edits per run");
    println!(
        "{:<24} {:>9} {:>10} {:>9} {:>8} {:>11}",
        "run", "seconds", "edits/s", "rewrites", "fsyncs", "bytes/edit"
    );
    for (label, r) in &runs {
        println!(
            "{label:<24} {:>9.3} {:>10.0} {:>9} {:>8} {:>11.0}",
            r.seconds,
            EDITS as f64 / r.seconds,
            r.rewrites,
            r.fsyncs,
            r.bytes as f64 / EDITS as f64
        );
    }
    let [(_, base_seq), (_, ours_seq), (_, base_conc), (_, ours_conc)] = &runs;
    let total_edits = (2 * EDITS) as f64;
    let summary = serde_json::json!({
        "bench": "registry",
        "edits": EDITS,
        "servers": SERVERS,
        "seq_speedup": round(base_seq.seconds / ours_seq.seconds),
        "concurrent_speedup": round(base_conc.seconds / ours_conc.seconds),
        "file_rewrites": ours_seq.rewrites + ours_conc.rewrites,
        "baseline_file_rewrites": base_seq.rewrites + base_conc.rewrites,
        "bytes_written_per_edit": round((ours_seq.bytes + ours_conc.bytes) as f64 / total_edits),
        "baseline_bytes_written_per_edit": round((base_seq.bytes + base_conc.bytes) as f64 / total_edits),
    });
    println!("{summary}");
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
