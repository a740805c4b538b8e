//! Feeds the engine its desired set: recomputed whenever the registry changes and whenever the
//! manifest is refreshed (when it stops being fresh, at the latest every refresh interval, with
//! jitter so many machines do not refresh together; after a failure, on a backoff).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::RngExt as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connector::{ConnectorSpec, desired_set, manifest_specs};
use crate::manifest::Manifest;
use crate::manifest::loader::{LoaderOptions, ManifestLoader, ManifestSource, Refresh};
use crate::metrics::Metrics;
use crate::registry::{Registry, RegistrySnapshot};

/// Longest wait between manifest refreshes unless `MCP_CONNECTOR_REFRESH_INTERVAL_MS` says.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Shortest wait between refreshes, whatever the manifest's freshness says.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The manifest as the UI should describe it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestView {
    pub connectors: usize,
    /// Why the manifest in use is not the source's current one, if it is not.
    pub stale: Option<String>,
}

/// `MCP_CONNECTOR_REFRESH_INTERVAL_MS`, or the default.
pub fn refresh_interval_from_env() -> Duration {
    std::env::var("MCP_CONNECTOR_REFRESH_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(DEFAULT_REFRESH_INTERVAL, Duration::from_millis)
        .min(MAX_REFRESH_INTERVAL)
}

/// A manifest is looked at once a day at least, whatever the environment says.
const MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// A manifest source that cannot be followed (not a URL or path the loader takes).
#[derive(Debug, Clone, thiserror::Error)]
#[error("manifest {location}: {reason}")]
pub struct ManifestSourceError {
    pub location: String,
    pub reason: String,
}

/// What the feed needs besides the registry.
#[derive(Clone)]
pub struct FeedOptions {
    /// Where the last good manifest is cached.
    pub config_dir: PathBuf,
    /// The manifest followed when the registry names none (`SWITCHBOARD_MANIFEST`).
    pub default_manifest: Option<String>,
    pub http: reqwest::Client,
    pub refresh_interval: Duration,
    pub metrics: Arc<Metrics>,
}

/// The feed's outputs: the desired set, and the manifest as the UI should describe it.
pub struct FeedHandle {
    pub specs: watch::Receiver<Vec<ConnectorSpec>>,
    pub views: watch::Receiver<Option<ManifestView>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the feed; it runs until `stop` is cancelled. It follows the manifest the registry
/// names (or the default), switching loaders when that setting changes.
pub async fn spawn(
    registry: Registry,
    options: FeedOptions,
    stop: CancellationToken,
) -> Result<FeedHandle, ManifestSourceError> {
    let source = wanted_source(&registry.snapshot(), &options);
    let loader = loader_for(source.as_deref(), &options)?;
    let (specs_tx, specs) = watch::channel(Vec::new());
    let (view_tx, views) = watch::channel(None);
    let mut feed = Feed {
        registry,
        source,
        loader,
        options,
        specs: specs_tx,
        views: view_tx,
        failures: 0,
        manifest_specs: Vec::new(),
        specs_of: None,
    };
    // The cached manifest's connectors from the start: an offline start knows them.
    feed.resolve_manifest().await;
    feed.publish();
    let task = tokio::spawn(feed.run(stop));
    Ok(FeedHandle { specs, views, task })
}

/// The manifest to follow: the registry's setting (made in the app) over the default.
fn wanted_source(registry: &RegistrySnapshot, options: &FeedOptions) -> Option<String> {
    registry
        .manifest
        .clone()
        .or_else(|| options.default_manifest.clone())
}

/// The loader for `source`, or none without a manifest.
fn loader_for(
    source: Option<&str>,
    options: &FeedOptions,
) -> Result<Option<ManifestLoader>, ManifestSourceError> {
    source
        .map(|source| manifest_loader(&options.config_dir, source, &options.http))
        .transpose()
}

/// A loader for `source` that keeps its last good manifest in the config dir, verifying
/// signatures with `SWITCHBOARD_MANIFEST_KEY` when set.
pub fn manifest_loader(
    dir: &Path,
    source: &str,
    http: &reqwest::Client,
) -> Result<ManifestLoader, ManifestSourceError> {
    let parsed = ManifestSource::parse(source).map_err(|reason| ManifestSourceError {
        location: source.to_string(),
        reason,
    })?;
    let options = LoaderOptions {
        key: std::env::var("SWITCHBOARD_MANIFEST_KEY")
            .ok()
            .map(String::into_bytes),
        cache_path: Some(dir.join("manifest-cache.json")),
        ..LoaderOptions::default()
    };
    Ok(ManifestLoader::new(parsed, http.clone(), options))
}

struct Feed {
    registry: Registry,
    /// The source `loader` reads (`None`: no manifest).
    source: Option<String>,
    loader: Option<ManifestLoader>,
    options: FeedOptions,
    specs: watch::Sender<Vec<ConnectorSpec>>,
    views: watch::Sender<Option<ManifestView>>,
    failures: u32,
    /// The manifest's connectors with their credentials, for `specs_of`.
    manifest_specs: Vec<ConnectorSpec>,
    specs_of: Option<Arc<Manifest>>,
}

impl Feed {
    async fn run(mut self, stop: CancellationToken) {
        let mut changes = self.registry.subscribe();
        // A deadline, not a sleep per loop: registry edits must not keep pushing it back.
        let mut refresh_at = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let registry = changes.borrow_and_update().clone();
                    if self.follow(&registry) {
                        refresh_at = tokio::time::Instant::now();
                        self.resolve_manifest().await;
                    }
                    self.publish();
                }
                _ = tokio::time::sleep_until(refresh_at), if self.loader.is_some() => {
                    let wait = self.refresh().await;
                    refresh_at = tokio::time::Instant::now() + wait;
                }
            }
        }
    }

    /// Switches to the manifest the registry now names, if it names another; returns whether
    /// it did (the new one is then due for a refresh at once).
    fn follow(&mut self, registry: &RegistrySnapshot) -> bool {
        let wanted = wanted_source(registry, &self.options);
        if wanted == self.source {
            return false;
        }
        match loader_for(wanted.as_deref(), &self.options) {
            Ok(loader) => {
                tracing::info!(manifest = ?wanted, "following another manifest");
                self.source = wanted;
                self.loader = loader;
                self.failures = 0;
                self.views.send_replace(None);
                true
            }
            // Only a hand-edited file gets here (the app validates first): keep the current
            // manifest, say why.
            Err(error) => {
                tracing::warn!(%error, "manifest setting not followed");
                false
            }
        }
    }

    /// Refreshes the manifest; returns how long to wait before the next refresh.
    async fn refresh(&mut self) -> Duration {
        let interval = self.options.refresh_interval.max(MIN_REFRESH_INTERVAL);
        let Some(loader) = &mut self.loader else {
            return interval;
        };
        let started = std::time::Instant::now();
        let outcome = loader.refresh().await;
        let result = match &outcome {
            Refresh::Updated => "updated",
            Refresh::NotModified => "not_modified",
            Refresh::Stale(_) => "stale",
            Refresh::Failed(_) => "failed",
        };
        self.options
            .metrics
            .record_manifest_fetch(result, started.elapsed());
        let wait = match &outcome {
            Refresh::Updated | Refresh::NotModified => {
                self.failures = 0;
                let fresh_for = loader
                    .current()
                    .and_then(|s| s.fresh_until.duration_since(SystemTime::now()).ok())
                    .unwrap_or(Duration::ZERO);
                fresh_for.clamp(MIN_REFRESH_INTERVAL, interval)
            }
            Refresh::Stale(_) | Refresh::Failed(_) => {
                self.failures += 1;
                MIN_REFRESH_INTERVAL
                    .saturating_mul(1 << self.failures.min(6))
                    .min(interval)
            }
        };
        let view = match (&outcome, loader.current()) {
            (Refresh::Failed(reason), None) => Some(ManifestView {
                connectors: 0,
                stale: Some(reason.clone()),
            }),
            (_, Some(state)) => Some(ManifestView {
                connectors: state.manifest.connectors.len(),
                stale: state.stale.clone(),
            }),
            (_, None) => None,
        };
        // The desired set first: whoever sees the view can rely on the set having followed.
        self.resolve_manifest().await;
        self.publish();
        self.views.send_if_modified(|current| {
            let changed = *current != view;
            *current = view;
            changed
        });
        // Up to 10% early, so machines that started together drift apart.
        wait.mul_f64(rand::rng().random_range(0.9..=1.0))
    }

    /// Looks up the current manifest's credentials if it is not the one they were looked up
    /// for (a new manifest, another source); registry edits do not come here.
    async fn resolve_manifest(&mut self) {
        let current = self
            .loader
            .as_ref()
            .and_then(|l| l.current())
            .map(|s| s.manifest.clone());
        let same = match (&current, &self.specs_of) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        self.manifest_specs = match &current {
            Some(manifest) => manifest_specs(manifest.clone()).await,
            None => Vec::new(),
        };
        self.specs_of = current;
    }

    fn publish(&self) {
        let specs = desired_set(&self.manifest_specs, &self.registry.snapshot());
        self.specs.send_if_modified(|current| {
            let changed = *current != specs;
            *current = specs;
            changed
        });
    }
}
