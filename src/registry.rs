//! The user's server registry: `servers.json` under the config dir, edited only through here.
//!
//! An edit is acknowledged once it is fsynced to `servers.journal` (concurrent edits share one
//! fsync); readers see it at once; `servers.json` is rewritten atomically once a burst of edits
//! settles. Start-up replays the journal. An `fs4` lock lets the CLI and the app edit at once, and
//! a watcher reloads the file when a person edits it — a version that does not parse is never
//! overwritten. See the design's "Persistence" section for the seven rules this implements.

mod edit;
mod error;
mod journal;
mod lock;
pub mod model;
mod store;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::{oneshot, watch};

pub use edit::{Edit, EditRejected};
pub use error::RegistryError;
pub use lock::RegistryLock;
use model::{ConnectorOverride, ServerEntry, ServerName, Servers};
pub use store::{MAX_FILE_BYTES, MAX_JOURNAL_BYTES, RegistryPaths, read_servers_file};
use store::{Store, StoreCounters};
use writer::{Debounce, Request, Writer};

/// How to open the registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub dir: PathBuf,
    /// Rewrite `servers.json` once edits pause this long (default 500 ms)…
    pub quiet: Duration,
    /// …or at the latest this long after the first unwritten edit (default 5 s).
    pub max_delay: Duration,
    /// Reload when someone else changes `servers.json` (default on; one-shot CLI commands turn it
    /// off).
    pub watch: bool,
    /// How long to wait for another process's lock before failing (default 30 s).
    pub lock_timeout: Duration,
    /// Told how long each rewrite of `servers.json` took (for metrics).
    pub on_flush: Option<FlushObserver>,
}

/// Something to tell how long a rewrite took; the registry itself knows nothing of metrics.
#[derive(Clone)]
pub struct FlushObserver(pub Arc<dyn Fn(Duration) + Send + Sync>);

impl std::fmt::Debug for FlushObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlushObserver")
    }
}

impl RegistryOptions {
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            quiet: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
            watch: true,
            lock_timeout: Duration::from_secs(30),
            on_flush: None,
        }
    }
}

/// The registry as of one moment.
#[derive(Debug, Clone, Default)]
pub struct RegistrySnapshot {
    pub servers: Servers,
    pub overrides: IndexMap<String, ConnectorOverride>,
    /// The manifest set from the app, if any (see [`model::FileMeta::manifest`]).
    pub manifest: Option<String>,
    /// The journal sequence number of the last edit included.
    pub seq: u64,
    /// Set while `servers.json` does not parse (with line and column); rewrites wait until a
    /// person fixes it, edits are still accepted and journaled.
    pub file_error: Option<RegistryError>,
}

impl RegistrySnapshot {
    /// The tools of `connector` the user switched off: a registry server's own list, else its
    /// manifest override's.
    pub fn disabled_tools(&self, connector: &str) -> &[String] {
        if let Ok(name) = model::ServerName::new(connector)
            && let Some(entry) = self.servers.get(&name)
        {
            return &entry.disabled_tools;
        }
        self.overrides
            .get(connector)
            .map_or(&[], |o| o.disabled_tools.as_slice())
    }
}

impl PartialEq for RegistrySnapshot {
    fn eq(&self, other: &Self) -> bool {
        let error_text = |s: &Self| s.file_error.as_ref().map(ToString::to_string);
        self.seq == other.seq
            && self.servers == other.servers
            && self.overrides == other.overrides
            && self.manifest == other.manifest
            && error_text(self) == error_text(other)
    }
}

/// Work the registry has done since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RegistryStats {
    pub journal_bytes: u64,
    pub journal_fsyncs: u64,
    pub file_rewrites: u64,
    pub file_bytes: u64,
    pub rewrite_seconds_total: f64,
}

/// A handle on the open registry; cheap to clone. The writer thread stops once every handle is
/// dropped (after a last rewrite) or when [`Registry::close`] is called.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    requests: mpsc::Sender<Request>,
    snapshots: watch::Receiver<Arc<RegistrySnapshot>>,
    counters: Arc<StoreCounters>,
    paths: RegistryPaths,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    // Dropped with the last handle; it holds a sender, so it must not outlive them.
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Registry {
    /// Opens (creating if needed) the registry in `options.dir`, replaying its journal.
    pub async fn open(options: RegistryOptions) -> Result<Self, RegistryError> {
        let paths = RegistryPaths::in_dir(&options.dir);
        let counters = Arc::new(StoreCounters::default());
        let (requests, inbox) = mpsc::channel();
        let (opened_tx, opened) = oneshot::channel();
        let debounce = Debounce {
            quiet: options.quiet,
            max_delay: options.max_delay,
        };
        let on_flush = options.on_flush.clone();
        let thread = {
            let (paths, counters, timeout) =
                (paths.clone(), counters.clone(), options.lock_timeout);
            std::thread::Builder::new()
                .name("registry-writer".into())
                .spawn(move || match Store::open(paths, timeout, counters) {
                    Ok((store, replayed)) => {
                        let (publish, snapshots) = watch::channel(Arc::default());
                        let writer = Writer::new(store, debounce, publish, replayed, on_flush);
                        writer.publish_snapshot();
                        let _ = opened_tx.send(Ok(snapshots));
                        writer.run(inbox);
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                    }
                })
                .map_err(|e| RegistryError::from(crate::durable::IoAt::new(&options.dir, e)))?
        };
        let snapshots = opened.await.map_err(|_| RegistryError::Closed)??;
        let watcher = if options.watch {
            watch_servers_file(&paths, requests.clone())
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                requests,
                snapshots,
                counters,
                paths,
                thread: std::sync::Mutex::new(Some(thread)),
                _watcher: watcher,
            }),
        })
    }

    /// The registry now.
    pub fn snapshot(&self) -> Arc<RegistrySnapshot> {
        self.inner.snapshots.borrow().clone()
    }

    /// A receiver that wakes on every change, ours or anyone else's.
    pub fn subscribe(&self) -> watch::Receiver<Arc<RegistrySnapshot>> {
        self.inner.snapshots.clone()
    }

    pub fn paths(&self) -> &RegistryPaths {
        &self.inner.paths
    }

    pub fn stats(&self) -> RegistryStats {
        let c = &self.inner.counters;
        RegistryStats {
            journal_bytes: c.journal_bytes.load(Ordering::Relaxed),
            journal_fsyncs: c.journal_fsyncs.load(Ordering::Relaxed),
            file_rewrites: c.file_rewrites.load(Ordering::Relaxed),
            file_bytes: c.file_bytes.load(Ordering::Relaxed),
            rewrite_seconds_total: c.rewrite_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }

    /// Applies `edits` all or nothing; returns once they are durable, with their sequence number.
    pub async fn apply(&self, edits: Vec<Edit>) -> Result<u64, RegistryError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Apply { edits, reply })?;
        answer.await.map_err(|_| RegistryError::Closed)?
    }

    pub async fn add(&self, name: ServerName, entry: ServerEntry) -> Result<u64, RegistryError> {
        self.apply(vec![Edit::Add { name, entry }]).await
    }

    pub async fn upsert(&self, name: ServerName, entry: ServerEntry) -> Result<u64, RegistryError> {
        self.apply(vec![Edit::Upsert { name, entry }]).await
    }

    pub async fn remove(&self, name: ServerName) -> Result<u64, RegistryError> {
        self.apply(vec![Edit::Remove { name }]).await
    }

    pub async fn set_enabled(&self, name: ServerName, enabled: bool) -> Result<u64, RegistryError> {
        self.apply(vec![Edit::SetEnabled { name, enabled }]).await
    }

    /// Sets or clears (`None`) the manual toggle of a manifest connector.
    pub async fn set_override(
        &self,
        connector: impl Into<String>,
        enabled: Option<bool>,
    ) -> Result<u64, RegistryError> {
        let connector = connector.into();
        self.apply(vec![Edit::SetOverride { connector, enabled }])
            .await
    }

    /// Rewrites `servers.json` now instead of when the debounce fires.
    pub async fn flush(&self) -> Result<(), RegistryError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Flush { reply })?;
        answer.await.map_err(|_| RegistryError::Closed)?
    }

    /// Rewrites what is pending and stops the writer thread, waiting for it to end.
    pub async fn close(self) -> Result<(), RegistryError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Shutdown { reply })?;
        let result = answer.await.map_err(|_| RegistryError::Closed)?;
        let thread = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        result
    }

    fn send(&self, request: Request) -> Result<(), RegistryError> {
        self.inner
            .requests
            .send(request)
            .map_err(|_| RegistryError::Closed)
    }
}

/// Watches the config dir (not the file: editors and our own rewrites replace it) and tells the
/// writer when `servers.json` may have changed. Without a watcher the registry still works; it
/// just notices outside edits only when it next writes.
fn watch_servers_file(
    paths: &RegistryPaths,
    requests: mpsc::Sender<Request>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let file_name = paths.servers.file_name().map(ToOwned::to_owned);
    let handler = move |event: notify::Result<notify::Event>| {
        let touches_file = event.is_ok_and(|e| {
            e.paths
                .iter()
                .any(|p| p.file_name() == file_name.as_deref())
        });
        if touches_file {
            let _ = requests.send(Request::FileChanged);
        }
    };
    let started = notify::recommended_watcher(handler).and_then(|mut watcher| {
        watcher
            .watch(&paths.dir, notify::RecursiveMode::NonRecursive)
            .map(|()| watcher)
    });
    match started {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::warn!(dir = %paths.dir.display(), error = %e, "cannot watch the config dir; outside edits are seen at the next write");
            None
        }
    }
}

/// Where Switchboard keeps its files when neither `--config-dir` nor `SWITCHBOARD_CONFIG_DIR`
/// says otherwise: the platform's config dir (`~/.config/switchboard` on Linux).
pub fn default_config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "Switchboard", "switchboard")
        .map(|dirs| dirs.config_dir().to_path_buf())
}

/// The config dir to use: an explicit one, else `SWITCHBOARD_CONFIG_DIR`, else the default.
pub fn resolve_config_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("SWITCHBOARD_CONFIG_DIR").map(PathBuf::from))
        .or_else(default_config_dir)
}
