//! The one thread that owns the registry's files: it group-commits edits to the journal,
//! debounces full rewrites, and reloads on external changes.
//!
//! A thread rather than a task because every step is a blocking fsync or lock wait; callers talk
//! to it through a channel and await a oneshot reply.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::edit::Edit;
use super::store::Store;
use super::{RegistryError, RegistrySnapshot};

pub enum Request {
    Apply {
        edits: Vec<Edit>,
        reply: oneshot::Sender<Result<u64, RegistryError>>,
    },
    Flush {
        reply: oneshot::Sender<Result<(), RegistryError>>,
    },
    /// The watcher saw `servers.json` change; maybe us, maybe someone else.
    FileChanged,
    Shutdown {
        reply: oneshot::Sender<Result<(), RegistryError>>,
    },
}

/// When to rewrite `servers.json` after edits.
#[derive(Debug, Clone, Copy)]
pub struct Debounce {
    /// Rewrite once no edit has come for this long…
    pub quiet: Duration,
    /// …but no later than this after the first unwritten edit.
    pub max_delay: Duration,
}

/// Editors save in several steps (truncate, write, rename); reading mid-save would report a parse
/// error that is gone a moment later.
const SETTLE: Duration = Duration::from_millis(50);
/// The longest a group waits for followers, whatever the last commit took.
const MAX_GROUP_WAIT: Duration = Duration::from_millis(2);
/// How long to wait before retrying a rewrite that failed on I/O (disk full, permissions).
const RETRY_AFTER_IO_ERROR: Duration = Duration::from_secs(2);

struct Pending {
    first_edit: Instant,
    last_edit: Instant,
    /// Set after a failed rewrite: do not retry before this.
    not_before: Option<Instant>,
}

pub struct Writer {
    store: Store,
    debounce: Debounce,
    publish: watch::Sender<Arc<RegistrySnapshot>>,
    pending: Option<Pending>,
    reload_at: Option<Instant>,
    /// Size and duration of the last group commit, to size the wait for the next one.
    last_group: usize,
    last_commit: Duration,
    on_flush: Option<super::FlushObserver>,
}

impl Writer {
    pub fn new(
        store: Store,
        debounce: Debounce,
        publish: watch::Sender<Arc<RegistrySnapshot>>,
        replayed_at_open: usize,
        on_flush: Option<super::FlushObserver>,
    ) -> Self {
        let now = Instant::now();
        Self {
            store,
            debounce,
            publish,
            // Lines replayed at start-up are folded into servers.json soon, like fresh edits.
            pending: (replayed_at_open > 0).then_some(Pending {
                first_edit: now,
                last_edit: now,
                not_before: None,
            }),
            reload_at: None,
            last_group: 0,
            last_commit: Duration::ZERO,
            on_flush,
        }
    }

    pub fn run(mut self, requests: Receiver<Request>) {
        loop {
            let next = match self.next_deadline() {
                Some(deadline) => {
                    requests.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                }
                None => requests.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match next {
                Ok(first) => {
                    let batch = self.gather(first, &requests);
                    if let Some(reply) = self.handle(batch) {
                        let _ = reply.send(self.flush());
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.on_timers(),
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle is gone. The journal already holds every edit; folding it
                    // into servers.json now just saves the next start a replay.
                    if let Err(e) = self.flush() {
                        tracing::warn!(error = %e, "final registry rewrite failed; the journal keeps the edits");
                    }
                    return;
                }
            }
        }
    }

    /// Collects the requests that join `first` in one group. Everything already queued joins;
    /// and when the last group had several editors, it waits (at most one commit's duration)
    /// for as many edits as that group had, so concurrent editors keep sharing fsyncs instead
    /// of splitting into groups of one or two. A lone editor never waits. (PostgreSQL's
    /// `commit_delay`/`commit_siblings`, sized from what was just measured.)
    fn gather(&self, first: Request, requests: &Receiver<Request>) -> Vec<Request> {
        let mut batch = vec![first];
        batch.extend(requests.try_iter());
        let applies = |batch: &[Request]| {
            batch
                .iter()
                .filter(|r| matches!(r, Request::Apply { .. }))
                .count()
        };
        if self.last_group < 2 || applies(&batch) == 0 {
            return batch;
        }
        let deadline = Instant::now() + self.last_commit.min(MAX_GROUP_WAIT);
        while applies(&batch) < self.last_group {
            match requests.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        batch
    }

    /// Handles a group of requests that arrived together. Returns the shutdown reply, if asked to
    /// stop.
    fn handle(
        &mut self,
        requests: Vec<Request>,
    ) -> Option<oneshot::Sender<Result<(), RegistryError>>> {
        let mut batches = Vec::new();
        let mut replies = Vec::new();
        let mut flushes = Vec::new();
        let mut shutdown = None;
        for request in requests {
            match request {
                Request::Apply { edits, reply } => {
                    batches.push(edits);
                    replies.push(reply);
                }
                Request::Flush { reply } => flushes.push(reply),
                Request::FileChanged => self.reload_at = Some(Instant::now() + SETTLE),
                Request::Shutdown { reply } => shutdown = Some(reply),
            }
        }
        if !batches.is_empty() {
            let started = Instant::now();
            let results = self.store.commit(&batches);
            self.last_commit = started.elapsed();
            self.last_group = batches.len();
            if results.iter().any(Result::is_ok) {
                let now = Instant::now();
                let pending = self.pending.get_or_insert(Pending {
                    first_edit: now,
                    last_edit: now,
                    not_before: None,
                });
                pending.last_edit = now;
            }
            // Readers see the edit before its caller hears it is done.
            self.publish_snapshot();
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        if !flushes.is_empty() {
            let result = self.flush();
            for reply in flushes {
                let _ = reply.send(result.clone());
            }
        }
        shutdown
    }

    fn next_deadline(&self) -> Option<Instant> {
        let rewrite = self.pending.as_ref().and_then(|p| {
            if self.store.file_error().is_some() {
                return None; // suspended until the file changes again
            }
            let due =
                (p.last_edit + self.debounce.quiet).min(p.first_edit + self.debounce.max_delay);
            Some(p.not_before.map_or(due, |nb| due.max(nb)))
        });
        [rewrite, self.reload_at].into_iter().flatten().min()
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        if self.reload_at.is_some_and(|at| at <= now) {
            self.reload_at = None;
            match self.store.refresh() {
                Ok(true) => self.publish_snapshot(),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not reload the registry"),
            }
        }
        if self.next_deadline().is_some_and(|at| at <= now)
            && self.pending.is_some()
            && let Err(e) = self.flush()
        {
            tracing::warn!(error = %e, "registry rewrite postponed");
        }
    }

    /// Rewrites `servers.json` now if anything is pending.
    fn flush(&mut self) -> Result<(), RegistryError> {
        if self.pending.is_none() && self.store.file_error().is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.store.rewrite();
        match &result {
            Ok(()) => {
                self.pending = None;
                if let Some(observer) = &self.on_flush {
                    (observer.0)(started.elapsed());
                }
            }
            Err(RegistryError::Suspended { .. }) => {}
            Err(_) => {
                if let Some(p) = &mut self.pending {
                    p.not_before = Some(Instant::now() + RETRY_AFTER_IO_ERROR);
                }
            }
        }
        // A rewrite catches up first, so it may have picked up other writers' edits.
        self.publish_snapshot();
        result
    }

    pub fn publish_snapshot(&self) {
        let snapshot = RegistrySnapshot {
            servers: self.store.state().mcp_servers.clone(),
            overrides: self.store.state().connector_overrides.clone(),
            manifest: self.store.state().switchboard.manifest.clone(),
            seq: self.store.last_seq(),
            file_error: self.store.file_error().cloned(),
        };
        self.publish.send_if_modified(|current| {
            let changed = **current != snapshot;
            if changed {
                *current = Arc::new(snapshot);
            }
            changed
        });
    }
}
