//! Where the aggregated server's tools and calls come from: the daemon running for the config
//! dir, over its control socket (no upstream session of this process's own), or with none an
//! engine embedded in this process. Either is asked the same [`Request`]s.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::call_log::CallOrigin;
use crate::control::{ControlClient, SharedDaemon};
use crate::daemon::CallToolResult;
use crate::daemon::{Daemon, DaemonError, DaemonOptions};
use crate::overview::{self, ToolView};
use crate::session::Sideband;
use crate::wire::{self, Down, Request, WireError};

/// The longest the first tool listing of an embedded engine waits for its connectors to
/// settle (each is bounded by its own connect timeout, 10 s by default; one still connecting
/// after this is announced when it comes). `initialize` does not wait: only the list does, as
/// a model that starts without some of its tools is worse off than one that starts later.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub enum Upstream {
    /// The daemon running for the config dir, over its control socket.
    Daemon(ControlClient),
    /// An engine started for this process (stopped by [`Upstream::close`]).
    Embedded(Arc<SharedDaemon>),
    /// The daemon this process is (its own HTTP endpoint): never stopped from here.
    Local(Arc<SharedDaemon>),
}

impl Upstream {
    /// The running daemon's, or (saying so on stderr) one embedded here.
    pub async fn open(options: &DaemonOptions) -> Result<Self, DaemonError> {
        match ControlClient::connect(&options.config_dir).await {
            Ok(Some(client)) => return Ok(Self::Daemon(client)),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot reach a daemon"),
        }
        eprintln!(
            "switchboard: no daemon runs for {}; serving from an engine of this process's own",
            options.config_dir.display()
        );
        let daemon = Daemon::start(options.clone()).await?;
        let _ = tokio::time::timeout(FIRST_LIST_WAIT, daemon.settled()).await;
        Ok(Self::Embedded(Arc::new(SharedDaemon::new(daemon))))
    }

    pub async fn ask(&self, request: Request) -> Result<Value, WireError> {
        match self {
            Self::Daemon(client) => client.ask(request).await,
            Self::Embedded(daemon) | Self::Local(daemon) => daemon.answer(request).await,
        }
    }

    /// The tools to serve; an in-process daemon's straight from its snapshot, with no JSON
    /// round trip (5,000 tools are a megabyte).
    pub async fn tools(&self) -> Result<Vec<ToolView>, WireError> {
        match self {
            Self::Daemon(client) => decode(client.ask(Request::Tools {}).await?),
            Self::Embedded(daemon) | Self::Local(daemon) => {
                let daemon = daemon.get().await?;
                Ok(overview::tools(
                    &daemon.engine().snapshot(),
                    &daemon.registry().snapshot(),
                ))
            }
        }
    }

    /// Calls `connector.tool` through the engine's timed path; in process with no JSON round
    /// trip of the answer (the HTTP endpoint's every call).
    pub async fn call(
        &self,
        qualified: String,
        arguments: Value,
        origin: CallOrigin,
        sideband: Sideband,
    ) -> Result<CallToolResult, WireError> {
        match self {
            Self::Daemon(client) => decode(match sideband {
                Sideband {
                    progress: None,
                    questions: None,
                } => {
                    let request = Request::CallTool {
                        tool: qualified,
                        arguments,
                        progress: false,
                        asks: false,
                        client: origin.client,
                        correlation: origin.correlation,
                    };
                    client.ask(request).await?
                }
                sideband => {
                    client
                        .call_reporting(qualified, arguments, origin, sideband)
                        .await?
                }
            }),
            Self::Embedded(daemon) | Self::Local(daemon) => Ok(daemon
                .get()
                .await?
                .call_tool_as(&qualified, arguments, origin, sideband)
                .await?),
        }
    }

    /// What tells of catalog changes from now on.
    pub async fn changes(&self) -> Result<Changes, WireError> {
        Ok(match self {
            Self::Daemon(client) => {
                Changes::Daemon(client.subscribe_to_tools().await?, client.clone())
            }
            Self::Embedded(daemon) | Self::Local(daemon) => {
                let mut changes = daemon.get().await?.tool_changes();
                changes.borrow_and_update();
                Changes::Embedded(changes)
            }
        })
    }

    /// Stops the embedded engine (its stdio servers with it); nothing to do for a daemon's.
    pub async fn close(self) {
        if let Self::Embedded(shared) = self
            && let Some(daemon) = shared.take().await
            && let Err(error) = daemon.shutdown().await
        {
            tracing::warn!(%error, "the embedded engine did not shut down cleanly");
        }
    }
}

/// The code of an answer that is not what was asked for (never seen: both ends are this build).
pub const BAD_ANSWER: &str = "bad_answer";

pub(super) fn decode<T: serde::de::DeserializeOwned>(answer: Value) -> Result<T, WireError> {
    serde_json::from_value(answer)
        .map_err(|e| WireError::new(BAD_ANSWER, format!("the answer cannot be read: {e}")))
}

/// Catalog changes, as an upstream tells them.
pub enum Changes {
    Daemon(broadcast::Receiver<Down>, ControlClient),
    Embedded(watch::Receiver<u64>),
}

/// Why [`Changes::next`] ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The upstream is gone (the daemon went away, or the engine stopped).
    Gone,
}

impl Changes {
    /// Returns once the catalog may have changed (ask for the tools again).
    pub async fn next(&mut self) -> Result<(), Ended> {
        match self {
            Self::Daemon(events, client) => loop {
                tokio::select! {
                    () = client.closed() => return Err(Ended::Gone),
                    event = events.recv() => match event {
                        Ok(Down::Event { name, .. }) if name == wire::TOOLS_EVENT => return Ok(()),
                        Ok(_) => {}
                        // Missed some: one of them may have been a change.
                        Err(broadcast::error::RecvError::Lagged(_)) => return Ok(()),
                        Err(broadcast::error::RecvError::Closed) => return Err(Ended::Gone),
                    },
                }
            },
            Self::Embedded(changes) => changes.changed().await.map_err(|_| Ended::Gone),
        }
    }
}
