//! Everything Switchboard runs in the background, as one whole: the registry, the manifest feed,
//! the engine and their shared metrics. The tray app and `switchboard sync` both run one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod signin;

pub use signin::SignInStarted;

use crate::call_log::CallOrigin;
use crate::connector::{ConnectorSpec, Source};
use crate::desired::{self, FeedOptions, ManifestSourceError, ManifestView};
use crate::engine::{CallError, Engine, EngineOptions, EngineSnapshot};
use crate::import::{self, ImportError, ImportPlan, ImportSource, Places};
use crate::latency_chart::{self, Theme};
use crate::manifest::loader::ManifestSource;
use crate::metrics::Metrics;
use crate::overview::{self, Overview};
use crate::registry::Edit;
use crate::registry::model::{Invalid, ServerEntry, ServerName};
use crate::registry::{FlushObserver, Registry, RegistryError, RegistryOptions};
use crate::session::{HttpClientError, http_client};

/// A tool's answer, as its server gave it (the UI shows it whole).
pub use rmcp::model::CallToolResult;

/// What decides the tools served to AI clients: the catalog (the engine builds a new one only
/// when tools change) and the tools the user switched off.
#[derive(PartialEq)]
struct ServedTools {
    catalog: usize,
    switched_off: Vec<(String, Vec<String>)>,
}

impl ServedTools {
    fn of(engine: &EngineSnapshot, registry: &crate::registry::RegistrySnapshot) -> Self {
        let servers = registry
            .servers
            .iter()
            .map(|(name, entry)| (name.to_string(), entry.disabled_tools.clone()));
        let overrides = registry
            .overrides
            .iter()
            .map(|(id, o)| (id.clone(), o.disabled_tools.clone()));
        Self {
            catalog: Arc::as_ptr(&engine.catalog) as usize,
            switched_off: servers
                .chain(overrides)
                .filter(|(_, off)| !off.is_empty())
                .collect(),
        }
    }
}

/// Publishes the overview of the engine's snapshot, the registry and the manifest whenever one
/// of them changes (and only when the overview does), and counts the changes of the tools
/// served to AI clients, until `stop`.
fn compose_overviews(
    mut engine: watch::Receiver<Arc<EngineSnapshot>>,
    mut registry: watch::Receiver<Arc<crate::registry::RegistrySnapshot>>,
    mut manifest: watch::Receiver<Option<ManifestView>>,
    stop: CancellationToken,
) -> (
    watch::Receiver<Arc<Overview>>,
    watch::Receiver<u64>,
    tokio::task::JoinHandle<()>,
) {
    let compose = |engine: &watch::Receiver<Arc<EngineSnapshot>>,
                   registry: &watch::Receiver<Arc<crate::registry::RegistrySnapshot>>,
                   manifest: &watch::Receiver<Option<ManifestView>>,
                   figures: overview::Served| {
        overview::overview(
            &engine.borrow(),
            &registry.borrow(),
            manifest.borrow().as_ref(),
            figures,
        )
    };
    let mut served = ServedTools::of(&engine.borrow(), &registry.borrow());
    let mut figures = overview::served(&engine.borrow(), &registry.borrow());
    let first = compose(&engine, &registry, &manifest, figures);
    let (publish, overviews) = watch::channel(Arc::new(first));
    let (count_tool_changes, tool_changes) = watch::channel(0u64);
    let task = tokio::spawn(async move {
        loop {
            let changed = tokio::select! {
                () = stop.cancelled() => return,
                changed = engine.changed() => changed,
                changed = registry.changed() => changed,
                changed = manifest.changed() => changed,
            };
            if changed.is_err() {
                return;
            }
            let now = ServedTools::of(&engine.borrow(), &registry.borrow());
            if now != served {
                served = now;
                figures = overview::served(&engine.borrow(), &registry.borrow());
                count_tool_changes.send_modify(|n| *n += 1);
            }
            let next = compose(&engine, &registry, &manifest, figures);
            publish.send_if_modified(|current| {
                let news = **current != next;
                if news {
                    *current = Arc::new(next);
                }
                news
            });
        }
    });
    (overviews, tool_changes, task)
}

/// The longest a one-shot run waits for the manifest's first refresh (the loader gives up
/// well before: its retries are bounded in number and time).
const MANIFEST_WAIT: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Where `servers.json` lives.
    pub config_dir: PathBuf,
    /// The connector manifest: an https URL, an http URL on this machine, or a file. The
    /// registry's own setting, when the app has set one, wins over this.
    pub manifest: Option<String>,
}

/// Why the daemon could not start, or an edit through it failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Manifest(#[from] ManifestSourceError),
    #[error("{0}")]
    Http(String),
    #[error("no connector named {0:?}")]
    UnknownConnector(String),
    /// A server as entered cannot be saved; `field` is what to fix (`name` or `entry`).
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Import(Arc<ImportError>),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    SignIn(#[from] crate::signin::SignInError),
}

impl DaemonError {
    /// A stable code for the UI, which never parses messages.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Registry(e) => e.code(),
            Self::Manifest(_) => "manifest",
            Self::Http(_) => "http",
            Self::UnknownConnector(_) => "unknown_connector",
            Self::Invalid { .. } => "invalid",
            Self::Import(e) if matches!(**e, ImportError::NothingFound) => "nothing_to_import",
            Self::Import(_) => "import",
            Self::Call(_) => "call",
            Self::SignIn(_) => "sign_in",
        }
    }
}

impl From<Invalid> for DaemonError {
    fn from(error: Invalid) -> Self {
        Self::Invalid {
            field: error.field,
            message: error.reason,
        }
    }
}

impl From<ImportError> for DaemonError {
    fn from(error: ImportError) -> Self {
        Self::Import(Arc::new(error))
    }
}

impl From<HttpClientError> for DaemonError {
    fn from(error: HttpClientError) -> Self {
        Self::Http(error.to_string())
    }
}

/// The running whole. Dropping it without [`Daemon::shutdown`] stops the tasks but may lose the
/// last debounced registry rewrite (never an acknowledged edit: those are in the journal).
pub struct Daemon {
    registry: Registry,
    engine: Engine,
    specs: watch::Receiver<Vec<ConnectorSpec>>,
    manifest: watch::Receiver<Option<ManifestView>>,
    overviews: watch::Receiver<Arc<Overview>>,
    tool_changes: watch::Receiver<u64>,
    call_log: crate::call_log::CallLog,
    default_manifest: Option<String>,
    stop: CancellationToken,
    /// Stops the feed if the daemon is dropped without a shutdown.
    _stop_on_drop: tokio_util::sync::DropGuard,
    feed: tokio::task::JoinHandle<()>,
    composer: tokio::task::JoinHandle<()>,
    sign_ins: crate::signin::SignInDesk,
}

impl Daemon {
    /// Opens the registry, starts the manifest feed and the engine; connecting goes on in the
    /// background.
    pub async fn start(options: DaemonOptions) -> Result<Self, DaemonError> {
        let http = http_client()?;
        // One set of metrics for the engine, the manifest feed and the registry.
        let metrics = Metrics::new();
        let flushes = metrics.clone();
        let registry = Registry::open(RegistryOptions {
            on_flush: Some(FlushObserver(Arc::new(move |took| {
                flushes.record_registry_flush(took)
            }))),
            ..RegistryOptions::in_dir(&options.config_dir)
        })
        .await?;
        let stop = CancellationToken::new();
        let feed = desired::spawn(
            registry.clone(),
            FeedOptions {
                config_dir: options.config_dir.clone(),
                default_manifest: options.manifest.clone(),
                http: http.clone(),
                refresh_interval: desired::refresh_interval_from_env(),
                metrics: metrics.clone(),
            },
            stop.clone(),
        )
        .await?;
        let tokens = crate::signin::TokenStore::in_dir(&options.config_dir);
        let sign_ins = crate::signin::SignInDesk::new(tokens.clone(), http.clone());
        let engine = Engine::start_with_metrics(
            feed.specs.clone(),
            http,
            EngineOptions {
                tokens: Some(tokens),
                ..EngineOptions::from_env()
            },
            metrics,
        );
        let (overviews, tool_changes, composer) = compose_overviews(
            engine.subscribe(),
            registry.subscribe(),
            feed.views.clone(),
            stop.clone(),
        );
        Ok(Self {
            registry,
            engine,
            specs: feed.specs,
            manifest: feed.views,
            overviews,
            tool_changes,
            call_log: crate::call_log::CallLog::default(),
            default_manifest: options.manifest,
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            feed: feed.task,
            composer,
            sign_ins,
        })
    }

    /// Waits until the manifest (if one is followed) has been refreshed once and the engine has
    /// settled on the desired set that gives (each bounded: the loader's own tries and
    /// timeouts, then [`Engine::one_shot_deadline`]); returns the engine's snapshot.
    pub async fn settled(&self) -> Arc<EngineSnapshot> {
        let follows_manifest =
            self.registry.snapshot().manifest.is_some() || self.default_manifest.is_some();
        if follows_manifest {
            let mut views = self.manifest.clone();
            let _ = tokio::time::timeout(MANIFEST_WAIT, views.wait_for(Option::is_some)).await;
        }
        self.engine.settled(self.engine.one_shot_deadline()).await
    }

    /// The fleet as the tray, the window and `switchboard status` show it, as of this moment
    /// (composed afresh: a caller that just saw the engine settle sees it settled here too).
    pub fn overview(&self) -> Overview {
        let (engine, registry) = (self.engine.snapshot(), self.registry.snapshot());
        let served = overview::served(&engine, &registry);
        overview::overview(&engine, &registry, self.manifest.borrow().as_ref(), served)
    }

    /// The overview, and every change of it: the one the tray, the window and `status` read.
    pub fn overviews(&self) -> watch::Receiver<Arc<Overview>> {
        self.overviews.clone()
    }

    /// Changes (by count) whenever the tools served to AI clients may have: one came or went,
    /// or the user switched one on or off.
    pub fn tool_changes(&self) -> watch::Receiver<u64> {
        self.tool_changes.clone()
    }

    /// Switches `connector`'s `tool` on or off for AI clients, durably.
    pub async fn set_tool_enabled(
        &self,
        connector: &str,
        tool: &str,
        enabled: bool,
    ) -> Result<(), DaemonError> {
        self.registry
            .apply(vec![Edit::SetToolEnabled {
                connector: connector.to_string(),
                tool: tool.to_string(),
                enabled,
            }])
            .await?;
        Ok(())
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The manifest in use, and why it is stale if it is; `None` until the first refresh, and
    /// always without a manifest.
    pub fn manifest(&self) -> watch::Receiver<Option<ManifestView>> {
        self.manifest.clone()
    }

    /// Switches a connector on or off, durably: a registry server's own flag, or for a manifest
    /// connector the registry's manual override.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), DaemonError> {
        let unknown = || DaemonError::UnknownConnector(id.to_string());
        // A registry server by that name is switched by its own flag; otherwise only a manifest
        // connector can be meant, switched by the registry's override.
        if let Ok(name) = ServerName::new(id)
            && self.registry.snapshot().servers.contains_key(&name)
        {
            self.registry.set_enabled(name, enabled).await?;
            return Ok(());
        }
        let in_manifest = self
            .specs
            .borrow()
            .iter()
            .any(|spec| spec.id == id && spec.source == Source::Manifest);
        if !in_manifest {
            return Err(unknown());
        }
        self.registry.set_override(id, Some(enabled)).await?;
        Ok(())
    }

    /// Adds a server, or with `original` replaces that one (renaming it when `name` differs),
    /// from an entry in the `mcpServers` shape. Values still showing the redaction marker keep
    /// what `original` had.
    pub async fn save_server(
        &self,
        original: Option<&str>,
        name: &str,
        entry: serde_json::Value,
    ) -> Result<(), DaemonError> {
        let new_name = ServerName::new(name)?;
        let mut entry = ServerEntry::from_json(entry)?;
        let edits = match original {
            None => vec![Edit::Add {
                name: new_name,
                entry,
            }],
            Some(original) => {
                let old_name = ServerName::new(original)
                    .map_err(|_| DaemonError::UnknownConnector(original.to_string()))?;
                let snapshot = self.registry.snapshot();
                let previous = snapshot
                    .servers
                    .get(&old_name)
                    .ok_or_else(|| DaemonError::UnknownConnector(original.to_string()))?;
                entry = entry.unredacted(previous);
                if old_name == new_name {
                    vec![Edit::Upsert {
                        name: new_name,
                        entry,
                    }]
                } else {
                    vec![
                        Edit::Remove { name: old_name },
                        Edit::Add {
                            name: new_name,
                            entry,
                        },
                    ]
                }
            }
        };
        self.registry.apply(edits).await?;
        Ok(())
    }

    /// Follows `source` (a URL or file) as the manifest from now on, or with `None` the
    /// default (`SWITCHBOARD_MANIFEST`, or none); kept in the registry.
    pub async fn set_manifest(&self, source: Option<&str>) -> Result<(), DaemonError> {
        let source = source.map(str::trim).filter(|s| !s.is_empty());
        if let Some(source) = source {
            ManifestSource::parse(source).map_err(|message| DaemonError::Invalid {
                field: "manifest",
                message,
            })?;
        }
        self.registry
            .apply(vec![Edit::SetManifest {
                source: source.map(str::to_string),
            }])
            .await?;
        Ok(())
    }

    pub async fn remove_server(&self, name: &str) -> Result<(), DaemonError> {
        let name =
            ServerName::new(name).map_err(|_| DaemonError::UnknownConnector(name.to_string()))?;
        self.registry.remove(name).await?;
        Ok(())
    }

    /// What importing from `source` (every client config found, without one) would do.
    pub fn import_preview(&self, source: Option<&ImportSource>) -> Result<ImportPlan, DaemonError> {
        let places = Places::detect().ok_or(ImportError::NoHome)?;
        let found = import::find(source, &places)?;
        Ok(import::plan(&self.registry.snapshot(), found))
    }

    /// Imports from `source`: adds what the preview lists as additions; returns how many.
    pub async fn import_apply(&self, source: Option<&ImportSource>) -> Result<usize, DaemonError> {
        let edits = self.import_preview(source)?.edits();
        let added = edits.len();
        if added > 0 {
            self.registry.apply(edits).await?;
        }
        Ok(added)
    }

    /// Calls `connector.tool` through the engine (timed into the metrics like every call).
    /// `arguments` must be a JSON object, or null for none.
    pub async fn call_tool(
        &self,
        qualified: &str,
        arguments: serde_json::Value,
    ) -> Result<CallToolResult, DaemonError> {
        let sideband = crate::session::Sideband::default();
        self.call_tool_as(qualified, arguments, CallOrigin::default(), sideband)
            .await
    }

    /// [`Daemon::call_tool`] for `origin` (kept in the call log), passing the server's progress
    /// updates and questions to `sideband`.
    pub async fn call_tool_as(
        &self,
        qualified: &str,
        arguments: serde_json::Value,
        origin: CallOrigin,
        sideband: crate::session::Sideband,
    ) -> Result<CallToolResult, DaemonError> {
        let arguments = match arguments {
            serde_json::Value::Null => None,
            serde_json::Value::Object(map) => Some(map),
            other => {
                return Err(DaemonError::Invalid {
                    field: "arguments",
                    message: format!("arguments must be a JSON object, not {other}"),
                });
            }
        };
        let started = std::time::Instant::now();
        let answer = self
            .engine
            .call_reporting(qualified, arguments, sideband)
            .await;
        let outcome = match &answer {
            Ok(result) => Ok(result.is_error == Some(true)),
            Err(error) => Err(error.to_string()),
        };
        self.call_log
            .record(origin, qualified, started.elapsed(), outcome);
        Ok(answer?)
    }

    /// The last calls made through this daemon, newest first.
    pub fn call_log(&self) -> Vec<crate::call_log::CallRecord> {
        self.call_log.recent()
    }

    /// The Latency view's chart of `connector`'s calls so far.
    pub fn latency_svg(&self, connector: &str, dark: bool, window: Option<Duration>) -> String {
        let theme = if dark { Theme::Dark } else { Theme::Light };
        let metrics = self.engine.metrics();
        let histogram = match window {
            Some(window) => metrics.histogram_within(connector, window),
            None => metrics.histogram(connector),
        };
        latency_chart::render(connector, histogram.as_ref(), theme)
    }

    /// Stops the feed and the engine (their sessions closed, stdio servers stopped) and writes
    /// the registry's pending rewrite.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        self.stop.cancel();
        let _ = self.feed.await;
        let _ = self.composer.await;
        self.engine.shutdown().await;
        self.registry.close().await?;
        Ok(())
    }
}
