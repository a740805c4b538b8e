//! The control socket: a Unix domain socket (0600, in a 0700 directory of the user's runtime
//! dir) named after the config dir, so there is one daemon per user and config dir. A daemon
//! first [`claim`]s it — an exclusive lock beside the socket, holding its pid — then serves it.
//! A second daemon finds the lock held and names the pid that holds it; a socket left by a
//! killed daemon has no lock holder and is replaced.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Digest as _;

use crate::durable::IoAt;

/// Why the control socket cannot be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    #[error(
        "another Switchboard daemon (pid {pid}) already runs for {}; stop it first, or use it: its clients are `switchboard status`, `tools` and `call`",
        config_dir.display()
    )]
    AlreadyRunning { pid: String, config_dir: PathBuf },
    #[error("{}: {reason}; refusing to put the control socket there", path.display())]
    UnsafeDir { path: PathBuf, reason: String },
    #[error(transparent)]
    Io(#[from] IoAt),
    #[error("control sockets are not supported on this platform yet")]
    Unsupported,
}

/// Where the control socket (and its lock, `.lock` beside it) for `config_dir` lives:
/// `$XDG_RUNTIME_DIR/switchboard/<hash of the config dir>.sock`, or without a runtime dir
/// `<temp>/switchboard-<uid>/…`.
pub fn socket_path(config_dir: &Path) -> Result<PathBuf, ControlError> {
    let dir = runtime_dir()?;
    // The same config dir however it was spelt (relative, through a symlink).
    let canonical = std::fs::canonicalize(config_dir)
        .or_else(|_| std::path::absolute(config_dir))
        .unwrap_or_else(|_| config_dir.to_path_buf());
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(dir.join(format!("{name}.sock")))
}

#[cfg(unix)]
fn runtime_dir() -> Result<PathBuf, ControlError> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
    let uid = current_uid();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("switchboard"),
        None => std::env::temp_dir().join(format!("switchboard-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(IoAt::new(&dir, e).into()),
    }
    // In a shared temp dir someone else may have made it first: it must be ours, private, and
    // not a link to somewhere else.
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| IoAt::new(&dir, e))?;
    let unsafe_dir = |reason: String| ControlError::UnsafeDir {
        path: dir.clone(),
        reason,
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("not a directory".into()));
    }
    if meta.uid() != uid {
        return Err(unsafe_dir(format!(
            "owned by uid {}, not {uid}",
            meta.uid()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(unsafe_dir(format!(
            "mode {:o}, not 700",
            meta.permissions().mode() & 0o777
        )));
    }
    Ok(dir)
}

#[cfg(not(unix))]
fn runtime_dir() -> Result<PathBuf, ControlError> {
    Err(ControlError::Unsupported)
}

/// This process's user id, read off `/proc/self` (or, where there is none, off a new unnamed
/// temp file this process creates), so no `unsafe` call is needed.
#[cfg(unix)]
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self")
        .or_else(|_| tempfile::tempfile().and_then(|file| file.metadata()))
        .map_or(u32::MAX, |meta| meta.uid())
}

/// The claim on the control socket: the lock is held (released when this is dropped, also when
/// the process dies) and the listener is bound. Serve it with [`Claimed::serve`].
#[cfg(unix)]
pub struct Claimed {
    path: PathBuf,
    listener: tokio::net::UnixListener,
    _lock: std::fs::File,
}

/// Claims the control socket for `config_dir`: fails with [`ControlError::AlreadyRunning`]
/// while another daemon holds it. Call it before starting anything that connects.
#[cfg(unix)]
pub fn claim(config_dir: &Path) -> Result<Claimed, ControlError> {
    use std::io::{Read as _, Seek as _, Write as _};
    use std::os::unix::fs::PermissionsExt as _;

    use fs4::TryLockError;

    let path = socket_path(config_dir)?;
    let lock_path = path.with_extension("lock");
    let mut lock = crate::durable::open_regular(
        crate::durable::private_file_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
        &lock_path,
    )?;
    match fs4::FileExt::try_lock(&lock) {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = (&lock).take(32).read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(ControlError::AlreadyRunning {
                pid: if pid.is_empty() { "unknown" } else { pid }.to_string(),
                config_dir: config_dir.to_path_buf(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(IoAt::new(&lock_path, e).into()),
    }
    let io_at = |e| IoAt::new(&lock_path, e);
    lock.set_len(0).map_err(io_at)?;
    lock.rewind().map_err(io_at)?;
    write!(lock, "{}", std::process::id()).map_err(io_at)?;
    lock.flush().map_err(io_at)?;
    // Holding the lock, any socket file there is a dead daemon's.
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(path = %path.display(), "replaced a stale control socket"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(IoAt::new(&path, e).into()),
    }
    let listener = tokio::net::UnixListener::bind(&path).map_err(|e| IoAt::new(&path, e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| IoAt::new(&path, e))?;
    Ok(Claimed {
        path,
        listener,
        _lock: lock,
    })
}

/// The control socket being served; [`ControlSocket::close`] stops it and removes the file.
#[cfg(unix)]
pub struct ControlSocket {
    path: PathBuf,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _lock: std::fs::File,
}

#[cfg(unix)]
impl Claimed {
    /// Answers every client that connects from `daemon`, until closed.
    pub fn serve(self, daemon: Arc<super::SharedDaemon>) -> ControlSocket {
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(serve::accept(self.listener, daemon, stop.clone()));
        ControlSocket {
            path: self.path,
            stop,
            task,
            _lock: self._lock,
        }
    }
}

#[cfg(unix)]
impl ControlSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting and answering, removes the socket file, then lets the lock go.
    pub async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
mod serve {
    //! Accepting clients and answering their calls, each connection on its own task, each call
    //! answered as it finishes (a slow tool call does not hold up an overview).

    use std::sync::Arc;

    use futures::{SinkExt as _, StreamExt as _};
    use std::collections::HashMap;
    use tokio::net::{UnixListener, UnixStream};

    use tokio::sync::mpsc::UnboundedSender;
    use tokio::sync::{broadcast, watch};
    use tokio::task::{AbortHandle, JoinSet};
    use tokio_util::codec::{Framed, LinesCodecError};
    use tokio_util::sync::CancellationToken;

    use crate::control::SharedDaemon;
    use crate::control::mcp::McpDoor;
    use crate::control::sideband::{self, OpenQuestions};
    use crate::wire::{self, Call, Down, Request, WireError};

    pub(super) async fn accept(
        listener: UnixListener,
        daemon: Arc<SharedDaemon>,
        stop: CancellationToken,
    ) {
        let uid = super::current_uid();
        let door = Arc::new(McpDoor::new(daemon.clone()));
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        // The directory already keeps others out; this also turns away root's
                        // processes and anyone who was handed the socket.
                        let peer = stream.peer_cred().map(|c| c.uid());
                        if peer.as_ref().is_ok_and(|&p| p == uid) {
                            let (daemon, door) = (daemon.clone(), door.clone());
                            connections.spawn(connection(stream, daemon, door, stop.clone()));
                        } else {
                            tracing::warn!(?peer, "control socket: refused a client of another user");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "control socket: accept failed"),
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
        door.close().await;
    }

    async fn connection(
        stream: UnixStream,
        daemon: Arc<SharedDaemon>,
        door: Arc<McpDoor>,
        stop: CancellationToken,
    ) {
        let (mut to_client, mut from_client) = Framed::new(stream, wire::codec()).split();
        let mut switched = false;
        let (answers, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<Down>();
        let mut calls = JoinSet::new();
        // The calls still running, by the client's id, so it can cancel one.
        let mut running: HashMap<u64, AbortHandle> = HashMap::new();
        // Set once the client subscribes: the daemon's events, passed on as they come, and the
        // engine's snapshots, to tell it when the catalog changes.
        let mut events: Option<broadcast::Receiver<Down>> = None;
        let mut tool_changes: Option<watch::Receiver<u64>> = None;
        // The servers' questions sent down to this client, waiting for its answers.
        let open = OpenQuestions::default();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                event = next_event(&mut events) => {
                    if to_client.send(line_of(&event)).await.is_err() {
                        break;
                    }
                }
                () = tools_changed(&mut tool_changes) => {
                    let event = Down::Event { name: wire::TOOLS_EVENT.into(), payload: serde_json::Value::Null };
                    if to_client.send(line_of(&event)).await.is_err() {
                        break;
                    }
                }
                line = from_client.next() => match line {
                    None => break,
                    // Parsed once: a subscription changes this connection, a call is answered.
                    Some(Ok(line)) => match serde_json::from_str::<Call>(&line) {
                        Err(e) => {
                            let error = WireError::new("bad_request", format!("not a call: {e}"));
                            let _ = answers.send(Down::Answer { id: 0, result: Err(error) });
                        }
                        Ok(call) if call.command == wire::SUBSCRIBE => {
                            // `serve` follows the served tools only: every overview (one per
                            // call's figures) would be parsed and dropped by each AI client's.
                            let tools_only = call.args["only"] == "tools";
                            events = (!tools_only).then(|| daemon.events());
                            tool_changes = daemon.get().await.ok().map(|d| d.tool_changes());
                            let _ = answers.send(Down::Answer { id: call.id, result: Ok(serde_json::Value::Null) });
                        }
                        Ok(call) if call.command == wire::MCP => {
                            let agreed = Down::Answer { id: call.id, result: Ok(serde_json::Value::Null) };
                            switched = to_client.send(line_of(&agreed)).await.is_ok();
                            break;
                        }
                        Ok(call) if call.command == wire::CANCEL => {
                            // Dropping the call drops its upstream request, which tells the
                            // server (rmcp sends `notifications/cancelled`).
                            let target = call.args["call"].as_u64();
                            if let Some(handle) = target.and_then(|id| running.remove(&id)) {
                                handle.abort();
                            }
                            let _ = answers.send(Down::Answer { id: call.id, result: Ok(serde_json::Value::Null) });
                        }
                        Ok(call) if call.command == wire::ANSWER => {
                            let result = open.answer(&call.args).map(|()| serde_json::Value::Null);
                            let _ = answers.send(Down::Answer { id: call.id, result });
                        }
                        Ok(call) => {
                            let (id, daemon, answers) = (call.id, daemon.clone(), answers.clone());
                            let open = open.clone();
                            running.retain(|_, handle| !handle.is_finished());
                            let handle = calls.spawn(async move {
                                let _ = answers.send(answer(&daemon, call, &answers, &open).await);
                            });
                            running.insert(id, handle);
                        }
                    },
                    Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                        let refused = WireError::new(
                            "too_long",
                            format!("a request is longer than {} bytes", wire::MAX_LINE),
                        );
                        let _ = to_client.send(line_of(&Down::Answer { id: 0, result: Err(refused) })).await;
                        break;
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, "control socket: a client's line broke");
                        break;
                    }
                },
                Some(down) = outgoing.recv() => {
                    if to_client.send(line_of(&down)).await.is_err() {
                        break;
                    }
                }
                Some(_) = calls.join_next(), if !calls.is_empty() => {}
            }
        }
        // Calls still running are dropped with the client that asked.
        calls.shutdown().await;
        if switched && let Ok(framed) = to_client.reunite(from_client) {
            let parts = framed.into_parts();
            tokio::select! {
                () = stop.cancelled() => {}
                () = door.serve(parts.io, parts.read_buf.to_vec()) => {}
            }
        }
    }

    /// The next event for a subscribed client; never, for one that has not subscribed. One
    /// that fell behind skips what it missed (each overview is whole).
    async fn next_event(events: &mut Option<broadcast::Receiver<Down>>) -> Down {
        let Some(events) = events else {
            return std::future::pending().await;
        };
        loop {
            match events.recv().await {
                Ok(down) => return down,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
            }
        }
    }

    /// Returns when the tools served to AI clients may have changed since last told; never,
    /// without a subscription or once the daemon has stopped.
    async fn tools_changed(changes: &mut Option<watch::Receiver<u64>>) {
        let Some(changes) = changes else {
            return std::future::pending().await;
        };
        if changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    async fn answer(
        daemon: &Arc<SharedDaemon>,
        call: Call,
        answers: &UnboundedSender<Down>,
        open: &OpenQuestions,
    ) -> Down {
        let result = match Request::parse(&call.command, call.args) {
            Ok(Request::CallTool {
                tool,
                arguments,
                progress,
                asks,
                client,
                correlation,
            }) if progress || asks => {
                let origin = crate::call_log::CallOrigin {
                    client,
                    correlation,
                };
                let sideband = (progress, asks);
                let id = call.id;
                sideband::call(
                    daemon, id, &tool, arguments, origin, sideband, answers, open,
                )
                .await
            }
            Ok(request) => daemon.answer(request).await,
            Err(error) => Err(error),
        };
        Down::Answer {
            id: call.id,
            result,
        }
    }

    /// A `Down` as one line; one that cannot be encoded (never seen: answers are JSON values
    /// already) becomes an `internal` error for the same call.
    fn line_of(down: &Down) -> String {
        serde_json::to_string(down).unwrap_or_else(|e| {
            let id = match down {
                Down::Answer { id, .. } => *id,
                _ => 0,
            };
            let error = WireError::new("internal", format!("the answer cannot be sent: {e}"));
            let fallback = Down::Answer {
                id,
                result: Err(error),
            };
            serde_json::to_string(&fallback).unwrap_or_default()
        })
    }
}
