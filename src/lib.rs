//! Switchboard's engine: keeps a developer's MCP connectors healthy and fast.
//!
//! Data flows one way. Two sources — the connector manifest and the user's server [`registry`] —
//! add up to the desired set of connectors; the sync engine reconciles running sessions against
//! it; the tool catalog, health and latency figures are read from one snapshot plus an event
//! stream by the tray app, the CLI and the metrics endpoint. Edits flow back through one door, the
//! registry API, which is the only writer of state on disk.
//!
//! This crate never depends on a GUI toolkit: the headless CLI (`src/main.rs`) and the Tauri shell
//! (`src-tauri/`, with its own issue) are thin layers over it.

/// Which connector changes deserve a notification (debounced, not once per flap).
pub mod alerts;
/// Retry delays: capped exponential backoff with full jitter.
pub mod backoff;
/// The last calls made through the daemon, for the window's call log.
pub mod call_log;
/// Every live tool, named `connector.tool`.
pub mod catalog;
/// The AI clients' own configs: does each route through Switchboard; installing its entry.
pub mod clients;
/// The desired set of connectors, from the registry (and the manifest).
pub mod connector;
/// The daemon's door for its clients: answering the wire's requests, the control socket.
pub mod control;
/// Connector tokens in the OS keyring.
pub mod credentials;
/// The registry, manifest feed and engine running as one (what the app and `sync` run).
pub mod daemon;
/// Feeds the engine the desired set as the registry and the manifest change.
pub mod desired;
/// Crash-safe file writes (temp, fsync, rename, fsync dir), 0600 by default.
pub mod durable;
/// The aggregated MCP server (`switchboard serve`): every live tool behind one server.
pub mod endpoint;
/// The running engine: a supervisor per connector, reconciled against the desired set.
pub mod engine;
/// Connector health states and what moves a connector between them.
pub mod health;
/// Reading other MCP clients' configs and previewing what importing them changes.
pub mod import;
/// The Latency view's histogram, rendered to SVG.
pub mod latency_chart;
/// The connector manifest ("service map"): validation, signatures, fetching, stale-on-error.
pub mod manifest;
/// Every call measured: Prometheus series and HDR histograms.
pub mod metrics;
/// Resources and prompts of every live connector, for the aggregated server.
pub mod offerings;
/// The daemon's state in the shapes its clients read (overview, tools, registry entries).
pub mod overview;
/// The user's server registry: journaled, debounced, locked, watched `servers.json`.
pub mod registry;
/// One live MCP session per connector over `rmcp`, and the shared HTTP client.
pub mod session;
/// Signing in to OAuth-protected servers; their tokens, in the keyring or a 0600 file.
pub mod signin;
/// The one typed wire between the daemon and its clients (window process, CLI).
pub mod wire;
