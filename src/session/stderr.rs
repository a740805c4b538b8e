//! A stdio server's stderr, kept: the last lines, for the reason it gives and for the UI.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// The last lines a stdio server wrote to stderr: usually the reason it would not start.
#[derive(Default)]
pub(super) struct StderrTail {
    lines: std::sync::Mutex<std::collections::VecDeque<String>>,
    closed: Notify,
    done: std::sync::atomic::AtomicBool,
}

impl StderrTail {
    const KEEP: usize = 20;

    /// Reads `stderr` to its end in the background.
    pub(super) fn follow(self: &Arc<Self>, stderr: tokio::process::ChildStderr, connector: String) {
        use tokio::io::AsyncBufReadExt as _;
        let tail = self.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(connector, line, "stderr");
                if let Ok(mut kept) = tail.lines.lock() {
                    if kept.len() == Self::KEEP {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            }
            tail.done.store(true, std::sync::atomic::Ordering::Release);
            tail.closed.notify_waiters();
        });
    }

    pub(super) fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The kept lines, once the stream has ended or `wait` has passed.
    pub(super) async fn settled(&self, wait: Duration) -> Vec<String> {
        let closed = self.closed.notified();
        if !self.done.load(std::sync::atomic::Ordering::Acquire) {
            let _ = tokio::time::timeout(wait, closed).await;
        }
        self.lines()
    }
}
