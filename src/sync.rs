//! Connecting the desired set: every enabled connector at once, up to a concurrency limit, each
//! bounded by its own deadline, so one that hangs or fails costs only its own timeout.

use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::catalog::{Catalog, split_qualified};
use crate::connector::ConnectorSpec;
use crate::health::Health;
use crate::session::Session;

/// Connectors connected at once unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// How many connectors may be connecting at once (1 = the old one-at-a-time order).
    pub concurrency: usize,
}

impl SyncOptions {
    /// `MCP_CONNECTOR_REFRESH_SYNC=true` keeps the replaced system's one-at-a-time order;
    /// `SWITCHBOARD_SYNC_CONCURRENCY` sets the limit otherwise.
    pub fn from_env() -> Self {
        let sequential = std::env::var("MCP_CONNECTOR_REFRESH_SYNC").is_ok_and(|v| v == "true");
        let limit = std::env::var("SWITCHBOARD_SYNC_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(DEFAULT_CONCURRENCY);
        Self {
            concurrency: if sequential { 1 } else { limit },
        }
    }
}

/// One connector's outcome, as `sync --once --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorReport {
    pub id: String,
    pub transport: &'static str,
    pub state: Health,
    pub tools: usize,
    /// Handshake plus the first tool listing.
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    pub protocol_version: Option<String>,
}

/// The result of connecting a desired set: a report per connector (in the set's order) and the
/// sessions that are up.
pub struct Connected {
    pub reports: Vec<ConnectorReport>,
    pub sessions: IndexMap<String, Session>,
}

impl Connected {
    /// The tools of every live session.
    pub fn catalog(&self) -> Catalog {
        Catalog::from_connectors(
            self.sessions
                .iter()
                .map(|(id, session)| (id.as_str(), session.tools.as_slice())),
        )
    }

    /// Calls `connector.tool` through the engine, bounded by that connector's call deadline.
    pub async fn call(
        &self,
        qualified: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<rmcp::model::CallToolResult, CallError> {
        let (connector, tool) = split_qualified(qualified)
            .ok_or_else(|| CallError::UnknownTool(qualified.to_string()))?;
        let session = self
            .sessions
            .get(connector)
            .ok_or_else(|| CallError::NotConnected(connector.to_string()))?;
        Ok(session.call(tool, arguments, session.call_timeout).await?)
    }

    pub async fn close(self) {
        for (_, session) in self.sessions {
            session.close().await;
        }
    }
}

/// Why a call through the engine failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error("{0:?} is not CONNECTOR.TOOL")]
    UnknownTool(String),
    #[error("connector {0:?} is not connected")]
    NotConnected(String),
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
}

/// Connects every enabled connector of `specs`, at most `options.concurrency` at a time.
pub async fn connect_all(
    specs: Vec<ConnectorSpec>,
    http: &reqwest::Client,
    options: SyncOptions,
) -> Connected {
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut attempts = JoinSet::new();
    for (index, spec) in specs.iter().enumerate() {
        if !spec.enabled || spec.missing_credential.is_some() {
            continue;
        }
        let (spec, http, permits) = (spec.clone(), http.clone(), permits.clone());
        attempts.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, Session::open(&spec, &http).await)
        });
    }
    let mut outcomes: Vec<Option<Result<Session, crate::session::SessionError>>> =
        specs.iter().map(|_| None).collect();
    while let Some(joined) = attempts.join_next().await {
        match joined {
            Ok((index, outcome)) => outcomes[index] = Some(outcome),
            Err(e) => tracing::error!(error = %e, "a connection attempt panicked"),
        }
    }
    let mut reports = Vec::with_capacity(specs.len());
    let mut sessions = IndexMap::new();
    for (spec, outcome) in specs.into_iter().zip(outcomes) {
        let mut report = ConnectorReport {
            id: spec.id.clone(),
            transport: spec.endpoint.transport(),
            state: Health::Disabled,
            tools: 0,
            latency_ms: None,
            error: None,
            protocol_version: None,
        };
        match outcome {
            None if !spec.enabled => {}
            None if spec.missing_credential.is_some() => {
                report.state = Health::Unauthorized;
                report.error = spec
                    .missing_credential
                    .as_ref()
                    .map(|variable| format!("no credential: set {variable}"));
            }
            None => {
                report.state = Health::Down;
                report.error = Some("the connection attempt did not finish".into());
            }
            Some(Err(error)) => {
                tracing::info!(connector = %spec.id, %error, "connector did not connect");
                report.state = Health::after_failure(&error);
                report.error = Some(error.to_string());
            }
            Some(Ok(session)) => {
                let (state, reason) = Health::after_connect(session.tools.len());
                report.state = state;
                report.error = reason;
                report.tools = session.tools.len();
                report.latency_ms = Some(session.connect_latency.as_secs_f64() * 1e3);
                report.protocol_version = session.protocol_version.clone();
                sessions.insert(spec.id, session);
            }
        }
        reports.push(report);
    }
    Connected { reports, sessions }
}
