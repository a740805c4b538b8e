//! The window process's line to the daemon (`switchboard-app --window`, started by the tray
//! process): the daemon's control socket, the same wire the CLI speaks. The page's requests go
//! up as calls; answers, and after `subscribe` the events and "come to the front", come down.
//!
//! The window lives in its own process so that closing it gives back all that WebKit and the GPU
//! driver took: the process that runs all day never loads them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use switchboard::wire::{self, Call, Down, WireError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

fn line_of(message: &impl serde::Serialize) -> String {
    serde_json::to_string(message).unwrap_or_default()
}

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, WireError>>>>>;

/// The window process's end: calls commands up the line and hears what comes down.
pub struct Link {
    next_id: AtomicU64,
    waiting: Waiting,
    up: mpsc::UnboundedSender<Call>,
}

impl Link {
    /// Starts the line over a connection to the daemon; `on_down` hears every event and `Show`
    /// (once subscribed). The returned task ends when the daemon's end closes (it quit): then
    /// the window should go too.
    pub fn start(
        from_daemon: impl AsyncRead + Unpin + Send + 'static,
        to_daemon: impl AsyncWrite + Unpin + Send + 'static,
        on_down: impl Fn(Down) + Send + 'static,
    ) -> (Self, tauri::async_runtime::JoinHandle<()>) {
        let waiting: Waiting = Arc::default();
        let (up, mut requests) = mpsc::unbounded_channel::<Call>();
        tauri::async_runtime::spawn(async move {
            let mut to_daemon = FramedWrite::new(to_daemon, wire::codec());
            while let Some(request) = requests.recv().await {
                if to_daemon.send(line_of(&request)).await.is_err() {
                    return;
                }
            }
        });
        let answers = waiting.clone();
        let reading = tauri::async_runtime::spawn(async move {
            let mut lines = FramedRead::new(from_daemon, wire::codec());
            while let Some(Ok(line)) = lines.next().await {
                match serde_json::from_str::<Down>(&line) {
                    Ok(Down::Answer { id, result }) => {
                        let caller = answers.lock().ok().and_then(|mut w| w.remove(&id));
                        if let Some(caller) = caller {
                            let _ = caller.send(result);
                        }
                    }
                    Ok(other) => on_down(other),
                    Err(error) => tracing::warn!(%error, "not a message from the tray process"),
                }
            }
            // Callers still waiting hear that the line is gone.
            if let Ok(mut waiting) = answers.lock() {
                waiting.clear();
            }
        });
        let link = Self {
            next_id: AtomicU64::new(1),
            waiting,
            up,
        };
        (link, reading)
    }

    /// Calls `command` in the tray process: its answer, or why it failed.
    pub async fn call(&self, command: &str, args: Value) -> Result<Value, WireError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(id, answer);
        }
        let request = Call {
            id,
            command: command.into(),
            args,
        };
        let gone = || WireError::new("stopped", "Switchboard is not running".into());
        self.up.send(request).map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}
