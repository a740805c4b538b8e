//! MCP sessions on the control socket: after a [`wire::MCP`](crate::wire::MCP) call the
//! connection carries one MCP session, which the daemon serves itself from the same
//! aggregated server as its HTTP endpoint (calls in process, the tool list from its own
//! served set). `switchboard serve` then only passes lines between its AI client and here:
//! no second MCP stack, no second JSON round trip of every answer, and none of the engine's
//! code paged into each AI client's `serve`.

use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt as _;
use tokio::net::UnixStream;
use tokio::sync::OnceCell;

use super::SharedDaemon;
use crate::endpoint::{AggregatedServer, Following, Source};

/// The aggregated server for the socket's MCP sessions, started at the first.
pub(super) struct McpDoor {
    daemon: Arc<SharedDaemon>,
    server: OnceCell<AggregatedServer>,
    following: Mutex<Option<Following>>,
}

impl McpDoor {
    pub(super) fn new(daemon: Arc<SharedDaemon>) -> Self {
        Self {
            daemon,
            server: OnceCell::new(),
            following: Mutex::default(),
        }
    }

    /// Serves one MCP session on `stream` (`already_read`: what came after the switch in the
    /// same read) until either side ends it.
    pub(super) async fn serve(&self, stream: UnixStream, already_read: Vec<u8>) {
        use rmcp::ServiceExt as _;
        let server = self
            .server
            .get_or_init(|| async {
                let (server, following) =
                    AggregatedServer::start(Source::Local(self.daemon.clone()));
                if let Ok(mut kept) = self.following.lock() {
                    *kept = Some(following);
                }
                server
            })
            .await
            .clone();
        let (reader, writer) = stream.into_split();
        let reader = std::io::Cursor::new(already_read).chain(reader);
        match server.serve((reader, writer)).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "control socket: an MCP session did not start"),
        }
    }

    /// Stops following the catalog (after every session has ended).
    pub(super) async fn close(&self) {
        let following = self.following.lock().ok().and_then(|mut kept| kept.take());
        if let Some(following) = following {
            following.close().await;
        }
    }
}
