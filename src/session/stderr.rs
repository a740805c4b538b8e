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
    /// Whether [`StderrTail::ended_once`] has returned.
    told: std::sync::atomic::AtomicBool,
    /// Which process's stderr is followed (a session may try more than one handshake).
    generation: std::sync::atomic::AtomicU64,
}

/// The longest stderr line kept; the rest of a longer one is dropped as it is read.
pub const MAX_LINE: usize = 4096;

impl StderrTail {
    const KEEP: usize = 20;

    /// Reads `stderr` to its end in the background.
    /// A session that tried one handshake and then another follows a second process: what is
    /// told of the stream's end is about the new one.
    pub(super) fn follow(self: &Arc<Self>, stderr: tokio::process::ChildStderr, connector: String) {
        use std::sync::atomic::Ordering;
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.done.store(false, Ordering::Release);
        self.told.store(false, Ordering::Release);
        let tail = self.clone();
        tokio::spawn(async move {
            let mut stderr = tokio::io::BufReader::new(stderr);
            while let Ok(Some(line)) = next_line(&mut stderr, MAX_LINE).await {
                tracing::debug!(connector, line, "stderr");
                if let Ok(mut kept) = tail.lines.lock() {
                    if kept.len() == Self::KEEP {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            }
            // The end of an earlier process's stderr says nothing about the current one.
            if tail.generation.load(Ordering::Acquire) == generation {
                tail.done.store(true, Ordering::Release);
                tail.closed.notify_waiters();
            }
        });
    }

    pub(super) fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Returns once stderr has ended (the server exited, as a rule), the first time it is
    /// asked; never after: a server that closes stderr and runs on is not checked in a loop.
    pub(super) async fn ended_once(&self) {
        use std::sync::atomic::Ordering;
        let closed = self.closed.notified();
        if !self.done.load(Ordering::Acquire) {
            closed.await;
        }
        if self.told.swap(true, Ordering::AcqRel) {
            std::future::pending::<()>().await;
        }
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

/// The next line of `reader` without its line break, at most `max` bytes of it kept (a
/// server can write one line of a hundred megabytes); `None` at the end.
async fn next_line(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    max: usize,
) -> std::io::Result<Option<String>> {
    use tokio::io::AsyncBufReadExt as _;
    let mut line = Vec::new();
    let mut dropped = 0usize;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            if line.is_empty() && dropped == 0 {
                return Ok(None);
            }
            break;
        }
        let end = buffer.iter().position(|&b| b == b'\n');
        let chunk = &buffer[..end.unwrap_or(buffer.len())];
        let room = max.saturating_sub(line.len()).min(chunk.len());
        line.extend_from_slice(&chunk[..room]);
        dropped += chunk.len() - room;
        let used = end.map_or(buffer.len(), |i| i + 1);
        reader.consume(used);
        if end.is_some() {
            break;
        }
    }
    let mut text = String::from_utf8_lossy(&line)
        .trim_end_matches('\r')
        .to_string();
    if dropped > 0 {
        text.push_str(&format!("… ({dropped} more bytes)"));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_line_is_cut_as_it_is_read_and_the_next_one_kept_whole() {
        let text = format!("{}\nnext\r\nlast", "x".repeat(10_000));
        let mut reader = tokio::io::BufReader::with_capacity(64, text.as_bytes());
        let first = next_line(&mut reader, 100).await.unwrap().unwrap();
        assert_eq!(first, format!("{}… (9900 more bytes)", "x".repeat(100)));
        assert_eq!(next_line(&mut reader, 100).await.unwrap().unwrap(), "next");
        assert_eq!(next_line(&mut reader, 100).await.unwrap().unwrap(), "last");
        assert_eq!(next_line(&mut reader, 100).await.unwrap(), None);
    }
}
