//! The line between the tray process and the window process (`switchboard-app --window`): JSON
//! lines over the window process's stdin and stdout. The window's requests go up and are
//! answered by [`crate::commands::dispatch`]; answers and events come down.
//!
//! The window lives in its own process so that closing it gives back all that WebKit and the GPU
//! driver took: the process that runs all day never loads them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tauri::{AppHandle, Manager as _, Runtime};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::commands::{self, CommandError};

/// A command the window calls, as the page gave it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub command: String,
    #[serde(default)]
    pub args: Value,
}

/// What the tray process sends the window.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Down {
    /// The answer to request `id`: what the command returned, or its `{code, message}`.
    Answer {
        id: u64,
        result: Result<Value, Value>,
    },
    /// An event for the page (`overview`).
    Event { name: String, payload: Value },
    /// Come to the front (the user asked for the window again).
    Show,
}

/// Serves one window process until its end of the line closes: answers its requests from the
/// daemon, in parallel, and writes whatever is sent to `down` meanwhile.
pub async fn serve<R: Runtime>(
    app: AppHandle<R>,
    from_window: impl AsyncRead + Unpin,
    mut to_window: impl AsyncWrite + Unpin,
    down: mpsc::UnboundedSender<Down>,
    mut outgoing: mpsc::UnboundedReceiver<Down>,
) {
    let mut lines = BufReader::new(from_window).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => answer(&app, &line, &down),
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "the window's line broke");
                    return;
                }
            },
            Some(message) = outgoing.recv() => {
                if write_line(&mut to_window, &message).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn answer<R: Runtime>(app: &AppHandle<R>, line: &str, down: &mpsc::UnboundedSender<Down>) {
    let request: Request = match serde_json::from_str(line) {
        Ok(request) => request,
        // Not ours (a library printing to stdout): say so, go on.
        Err(_) => {
            tracing::debug!(line, "not a request from the window");
            return;
        }
    };
    let (app, down) = (app.clone(), down.clone());
    tauri::async_runtime::spawn(async move {
        let state = app.state::<crate::AppState>();
        let result = commands::dispatch(&state, &request.command, request.args)
            .await
            .map_err(|error: CommandError| serde_json::to_value(error).unwrap_or_default());
        let _ = down.send(Down::Answer {
            id: request.id,
            result,
        });
    });
}

async fn write_line(
    to: &mut (impl AsyncWrite + Unpin),
    message: &impl Serialize,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    to.write_all(&line).await?;
    to.flush().await
}

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, Value>>>>>;

/// The window process's end: calls commands up the line and hears what comes down.
pub struct Link {
    next_id: AtomicU64,
    waiting: Waiting,
    up: mpsc::UnboundedSender<Request>,
}

impl Link {
    /// Starts the line; `on_down` hears every event and `Show`. The returned task ends when the
    /// tray process's end closes (it quit): then the window should go too.
    pub fn start(
        from_tray: impl AsyncRead + Unpin + Send + 'static,
        mut to_tray: impl AsyncWrite + Unpin + Send + 'static,
        on_down: impl Fn(Down) + Send + 'static,
    ) -> (Self, tauri::async_runtime::JoinHandle<()>) {
        let waiting: Waiting = Arc::default();
        let (up, mut requests) = mpsc::unbounded_channel::<Request>();
        tauri::async_runtime::spawn(async move {
            while let Some(request) = requests.recv().await {
                if write_line(&mut to_tray, &request).await.is_err() {
                    return;
                }
            }
        });
        let answers = waiting.clone();
        let reading = tauri::async_runtime::spawn(async move {
            let mut lines = BufReader::new(from_tray).lines();
            while let Ok(Some(line)) = lines.next_line().await {
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

    /// Calls `command` in the tray process: its answer, or the `{code, message}` of its failure.
    pub async fn call(&self, command: &str, args: Value) -> Result<Value, Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(id, answer);
        }
        let request = Request {
            id,
            command: command.into(),
            args,
        };
        let gone =
            || serde_json::json!({"code": "stopped", "message": "Switchboard is not running"});
        self.up.send(request).map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}
