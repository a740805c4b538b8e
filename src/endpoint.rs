//! The aggregated MCP server: every tool of every healthy, enabled connector behind one server,
//! for the AI clients on this machine. `switchboard serve` speaks it on stdin/stdout, relaying
//! to the daemon (or, with none running, an engine of its own).
//!
//! Tools are served as `<connector>_<tool>` in names every client takes ([`naming`]); the list
//! comes from the catalog, never from an upstream round trip ([`served`]); calls go through the
//! engine's timed path, and every client is told when the set changes ([`server`]).

mod calls;
pub mod naming;
mod offered;
mod relay;
mod rounds;
pub mod served;
mod server;
pub mod setting;
mod sideband;
mod stdio;
mod upstream;
mod uris;

pub mod http;

pub use server::{AggregatedServer, Following, Source};
pub use setting::{EndpointSetting, EndpointStatus, EndpointSwitch};

use crate::daemon::DaemonOptions;

/// Why serving stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    #[error("the client's first message was not the start of an MCP session: {0}")]
    Handshake(String),
}

/// Serves MCP on stdin/stdout until the client closes it, then stops what it started: with a
/// daemon running, the daemon serves the session and this process passes it along.
pub async fn serve_stdio(options: DaemonOptions) -> Result<(), EndpointError> {
    use rmcp::ServiceExt as _;
    if let Some(link) = relay::open(&options.config_dir).await {
        relay::run(link, options).await;
        return Ok(());
    }

    let (server, following) = AggregatedServer::start(Source::Open(options));
    let outcome = match server.serve(stdio::streams()).await {
        Ok(running) => {
            let _ = running.waiting().await;
            Ok(())
        }
        Err(error) => Err(EndpointError::Handshake(error.to_string())),
    };
    following.close().await;
    outcome
}
