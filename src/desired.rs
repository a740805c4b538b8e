//! Feeds the engine its desired set: recomputed whenever the registry changes and whenever the
//! manifest is refreshed (when it stops being fresh, at the latest every refresh interval, with
//! jitter so many machines do not refresh together; after a failure, on a backoff).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::RngExt as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connector::{ConnectorSpec, desired_set};
use crate::manifest::Manifest;
use crate::manifest::loader::{ManifestLoader, Refresh};
use crate::metrics::Metrics;
use crate::registry::Registry;

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
}

/// Starts the feed; it runs until `stop` is cancelled.
pub fn spawn(
    registry: Registry,
    loader: Option<ManifestLoader>,
    refresh_interval: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> (
    watch::Receiver<Vec<ConnectorSpec>>,
    watch::Receiver<Option<ManifestView>>,
    tokio::task::JoinHandle<()>,
) {
    let manifest = loader
        .as_ref()
        .and_then(|l| l.current())
        .map(|s| s.manifest.clone());
    let (specs_tx, specs) = watch::channel(desired_set(manifest.as_deref(), &registry.snapshot()));
    let (view_tx, views) = watch::channel(None);
    let feed = Feed {
        registry,
        loader,
        refresh_interval,
        specs: specs_tx,
        views: view_tx,
        failures: 0,
        metrics,
    };
    (specs, views, tokio::spawn(feed.run(stop)))
}

struct Feed {
    registry: Registry,
    loader: Option<ManifestLoader>,
    refresh_interval: Duration,
    specs: watch::Sender<Vec<ConnectorSpec>>,
    views: watch::Sender<Option<ManifestView>>,
    failures: u32,
    metrics: Arc<Metrics>,
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
                    self.publish();
                }
                _ = tokio::time::sleep_until(refresh_at), if self.loader.is_some() => {
                    refresh_at = tokio::time::Instant::now() + self.refresh().await;
                    self.publish();
                }
            }
        }
    }

    /// Refreshes the manifest; returns how long to wait before the next refresh.
    async fn refresh(&mut self) -> Duration {
        let Some(loader) = &mut self.loader else {
            return self.refresh_interval;
        };
        let started = std::time::Instant::now();
        let outcome = loader.refresh().await;
        let result = match &outcome {
            Refresh::Updated => "updated",
            Refresh::NotModified => "not_modified",
            Refresh::Stale(_) => "stale",
            Refresh::Failed(_) => "failed",
        };
        self.metrics
            .record_manifest_fetch(result, started.elapsed());
        let wait = match &outcome {
            Refresh::Updated | Refresh::NotModified => {
                self.failures = 0;
                let fresh_for = loader
                    .current()
                    .and_then(|s| s.fresh_until.duration_since(SystemTime::now()).ok())
                    .unwrap_or(Duration::ZERO);
                fresh_for.clamp(
                    MIN_REFRESH_INTERVAL,
                    self.refresh_interval.max(MIN_REFRESH_INTERVAL),
                )
            }
            Refresh::Stale(_) | Refresh::Failed(_) => {
                self.failures += 1;
                MIN_REFRESH_INTERVAL
                    .saturating_mul(1 << self.failures.min(6))
                    .min(self.refresh_interval.max(MIN_REFRESH_INTERVAL))
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
        self.views.send_if_modified(|current| {
            let changed = *current != view;
            *current = view;
            changed
        });
        // Up to 10% early, so machines that started together drift apart.
        wait.mul_f64(rand::rng().random_range(0.9..=1.0))
    }

    fn publish(&self) {
        let manifest: Option<Arc<Manifest>> = self
            .loader
            .as_ref()
            .and_then(|l| l.current())
            .map(|s| s.manifest.clone());
        let specs = desired_set(manifest.as_deref(), &self.registry.snapshot());
        self.specs.send_if_modified(|current| {
            let changed = *current != specs;
            *current = specs;
            changed
        });
    }
}
