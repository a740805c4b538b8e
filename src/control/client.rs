//! The CLI's end of the control socket: one call at a time to the daemon for a config dir.

use std::path::Path;

use serde_json::Value;

use super::socket::{ControlError, socket_path};
use crate::wire::{Request, WireError};

/// A connection to the running daemon.
#[cfg(unix)]
pub struct ControlClient {
    lines: tokio_util::codec::Framed<tokio::net::UnixStream, tokio_util::codec::LinesCodec>,
    next_id: u64,
}

#[cfg(unix)]
impl ControlClient {
    /// Connects to the daemon for `config_dir`; `Ok(None)` when none runs (no socket there, or
    /// one left by a daemon that died).
    pub async fn connect(config_dir: &Path) -> Result<Option<Self>, ControlError> {
        let path = socket_path(config_dir)?;
        match tokio::net::UnixStream::connect(&path).await {
            Ok(stream) => Ok(Some(Self {
                lines: tokio_util::codec::Framed::new(stream, crate::wire::codec()),
                next_id: 1,
            })),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(crate::durable::IoAt::new(&path, e).into()),
        }
    }

    /// Asks the daemon and waits for its answer.
    pub async fn ask(&mut self, request: Request) -> Result<Value, WireError> {
        use futures::{SinkExt as _, StreamExt as _};

        use crate::wire::Down;

        let id = self.next_id;
        self.next_id += 1;
        let line = serde_json::to_string(&request.into_call(id))
            .map_err(|e| WireError::new("internal", format!("the request cannot be sent: {e}")))?;
        let gone = |why: String| WireError::new("stopped", format!("the daemon went away: {why}"));
        self.lines
            .send(line)
            .await
            .map_err(|e| gone(e.to_string()))?;
        loop {
            let line = match self.lines.next().await {
                None => return Err(gone("it closed the connection".into())),
                Some(line) => line.map_err(|e| gone(e.to_string()))?,
            };
            match serde_json::from_str::<Down>(&line) {
                Ok(Down::Answer {
                    id: answered,
                    result,
                }) if answered == id || answered == 0 => {
                    return result;
                }
                // Events and other answers are not for this one-call-at-a-time client.
                Ok(_) => {}
                Err(e) => {
                    return Err(WireError::new(
                        "bad_answer",
                        format!("the daemon sent something else: {e}"),
                    ));
                }
            }
        }
    }
}
