//! The other end of the control socket (the CLI, `switchboard serve`): any number of calls in
//! flight at once over one connection, each answered as the daemon finishes it, and the
//! daemon's events for those who subscribe.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::socket::{ControlError, socket_path};
use crate::session::Sideband;
use crate::wire::{Down, Request, WireError};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, WireError>>>>>;
/// Where the progress and questions of calls asked with them go, by call id.
type Reporting = Arc<Mutex<HashMap<u64, Sideband>>>;

/// A connection to the running daemon; cheap to clone, closed when the last clone is dropped.
#[cfg(unix)]
#[derive(Clone)]
pub struct ControlClient {
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    reporting: Reporting,
    events: broadcast::Sender<Down>,
    /// Cancelled once the connection has ended.
    closed: tokio_util::sync::CancellationToken,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

#[cfg(unix)]
impl ControlClient {
    /// Connects to the daemon for `config_dir`; `Ok(None)` when none runs (no socket there, or
    /// one left by a daemon that died).
    pub async fn connect(config_dir: &Path) -> Result<Option<Self>, ControlError> {
        let path = socket_path(config_dir)?;
        let stream = match tokio::net::UnixStream::connect(&path).await {
            Ok(stream) => stream,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(crate::durable::IoAt::new(&path, e).into()),
        };
        let (outgoing, to_send) = mpsc::unbounded_channel();
        let pending = Pending::default();
        let reporting = Reporting::default();
        let events = broadcast::channel(64).0;
        let closed = tokio_util::sync::CancellationToken::new();
        tokio::spawn(carry(
            stream,
            (to_send, outgoing.downgrade()),
            pending.clone(),
            reporting.clone(),
            events.clone(),
            closed.clone(),
        ));
        Ok(Some(Self {
            outgoing,
            pending,
            reporting,
            events,
            closed,
            next_id: Arc::new(1.into()),
        }))
    }

    /// Asks the daemon and waits for its answer.
    pub async fn ask(&self, request: Request) -> Result<Value, WireError> {
        self.send(request.into_call(self.next_id())).await
    }

    /// Calls `connector.tool`, passing the server's progress updates and questions to
    /// `sideband` (where it takes them) until the answer comes.
    pub async fn call_reporting(
        &self,
        tool: String,
        arguments: Value,
        origin: crate::call_log::CallOrigin,
        sideband: Sideband,
    ) -> Result<Value, WireError> {
        let id = self.next_id();
        let (progress, asks) = (sideband.progress.is_some(), sideband.questions.is_some());
        if let Ok(mut reporting) = self.reporting.lock() {
            reporting.insert(id, sideband);
        }
        let request = Request::CallTool {
            tool,
            arguments,
            progress,
            asks,
            client: origin.client,
            correlation: origin.correlation,
        };
        let answer = self.send(request.into_call(id)).await;
        if let Ok(mut reporting) = self.reporting.lock() {
            reporting.remove(&id);
        }
        answer
    }

    /// From now on the daemon's events ([`Down::Event`], `Down::Show`) arrive on the receiver
    /// (until [`ControlClient::closed`]).
    pub async fn subscribe(&self) -> Result<broadcast::Receiver<Down>, WireError> {
        self.subscribe_with(Value::Null).await
    }

    /// Like [`ControlClient::subscribe`], but only the served tools' changes
    /// ([`crate::wire::TOOLS_EVENT`]) arrive.
    pub async fn subscribe_to_tools(&self) -> Result<broadcast::Receiver<Down>, WireError> {
        self.subscribe_with(serde_json::json!({"only": "tools"}))
            .await
    }

    async fn subscribe_with(&self, args: Value) -> Result<broadcast::Receiver<Down>, WireError> {
        let events = self.events.subscribe();
        let call = crate::wire::Call {
            id: self.next_id(),
            command: crate::wire::SUBSCRIBE.into(),
            args,
        };
        self.send(call).await?;
        Ok(events)
    }

    /// Returns once the connection has ended (the daemon went away).
    pub async fn closed(&self) {
        self.closed.cancelled().await;
    }

    fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    async fn send(&self, call: crate::wire::Call) -> Result<Value, WireError> {
        let line = serde_json::to_string(&call)
            .map_err(|e| WireError::new("internal", format!("the request cannot be sent: {e}")))?;
        let (answer, answered) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(call.id, answer);
        }
        let mut waiting = Waiting {
            client: self,
            id: call.id,
            answered: false,
        };
        if self.outgoing.send(line).is_err() {
            waiting.answered = true;
            return Err(gone("it closed the connection"));
        }
        let result = answered
            .await
            .unwrap_or_else(|_| Err(gone("it closed the connection")));
        waiting.answered = true;
        result
    }

    fn forget(&self, id: u64) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&id);
        }
    }
}

/// A call sent and not yet answered. Dropped unanswered (its caller gave up: an AI client
/// cancelled), it asks the daemon to cancel the call, so the server stops working on it.
#[cfg(unix)]
struct Waiting<'a> {
    client: &'a ControlClient,
    id: u64,
    answered: bool,
}

#[cfg(unix)]
impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.client.forget(self.id);
        if !self.answered {
            let cancel = crate::wire::Call {
                id: self.client.next_id(),
                command: crate::wire::CANCEL.into(),
                args: serde_json::json!({"call": self.id}),
            };
            if let Ok(line) = serde_json::to_string(&cancel) {
                let _ = self.client.outgoing.send(line);
            }
        }
    }
}

/// The connection's outgoing lines, held weakly where holding them would keep it open.
type WeakSender = mpsc::WeakUnboundedSender<String>;

/// Asks the caller of a call the daemon's question, and sends its answer up (declined when the
/// caller takes no questions or is gone).
async fn answer(
    asker: Option<crate::session::QuestionSink>,
    question: u64,
    asked: rmcp::model::ElicitRequestParams,
    outgoing: WeakSender,
) {
    use rmcp::model::{ElicitResult, ElicitationAction};
    let answer = match asker {
        Some(asker) => crate::session::ask(&asker, asked).await,
        None => None,
    };
    let answer = answer.unwrap_or_else(|| ElicitResult::new(ElicitationAction::Decline));
    let call = crate::wire::Call {
        // Its answer is for no one: ids from the top of the range never meet a caller's.
        id: u64::MAX - question,
        command: crate::wire::ANSWER.into(),
        args: serde_json::json!({"question": question, "answer": answer}),
    };
    if let (Some(outgoing), Ok(line)) = (outgoing.upgrade(), serde_json::to_string(&call)) {
        let _ = outgoing.send(line);
    }
}

fn gone(why: &str) -> WireError {
    WireError::new("stopped", format!("the daemon went away: {why}"))
}

/// Writes the calls and hands out what comes back, until either side closes; then every call
/// still waiting is told the daemon went away (its sender dropped) and the events close.
#[cfg(unix)]
async fn carry(
    stream: tokio::net::UnixStream,
    (mut to_send, answering): (mpsc::UnboundedReceiver<String>, WeakSender),
    pending: Pending,
    reporting: Reporting,
    events: broadcast::Sender<Down>,
    closed: tokio_util::sync::CancellationToken,
) {
    use futures::{SinkExt as _, StreamExt as _};

    let (mut to_daemon, mut from_daemon) =
        tokio_util::codec::Framed::new(stream, crate::wire::codec()).split();
    loop {
        tokio::select! {
            line = to_send.recv() => match line {
                Some(line) => if to_daemon.send(line).await.is_err() { break },
                // Every handle dropped: nobody is left to ask.
                None => break,
            },
            line = from_daemon.next() => {
                let Some(Ok(line)) = line else { break };
                match serde_json::from_str::<Down>(&line) {
                    // Id 0 answers a line the daemon could not read as a call at all.
                    Ok(Down::Answer { id: 0, result }) => {
                        tracing::warn!(?result, "the daemon refused a request it could not read");
                    }
                    Ok(Down::Answer { id, result }) => {
                        let waiting = pending.lock().ok().and_then(|mut p| p.remove(&id));
                        if let Some(waiting) = waiting {
                            let _ = waiting.send(result);
                        }
                    }
                    Ok(Down::Progress { id, update }) => {
                        let sink = reporting.lock().ok().and_then(|r| r.get(&id)?.progress.clone());
                        if let Some(sink) = sink {
                            let _ = sink.try_send(update);
                        }
                    }
                    Ok(Down::Question { id, question, asked }) => {
                        let asker = reporting.lock().ok().and_then(|r| r.get(&id)?.questions.clone());
                        tokio::spawn(answer(asker, question, asked, answering.clone()));
                    }
                    Ok(event) => {
                        let _ = events.send(event);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the daemon sent something that is not on the wire");
                    }
                }
            }
        }
    }
    // Closed before the waiting calls are failed, so no call can slip in between unanswered.
    drop(to_send);
    if let Ok(mut pending) = pending.lock() {
        pending.clear();
    }
    closed.cancel();
}
