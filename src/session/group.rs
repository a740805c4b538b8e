//! A stdio server's process group, ended with its session. rmcp stops the server it started
//! (stdin closed, then SIGTERM, then SIGKILL) but not what that server started: an `npx → sh →
//! node` chain, or a helper the server left running, would outlive a clean shutdown.

use std::time::Duration;

/// The pid of the latest server a session started (0: none yet). A handshake may start the
/// server twice (the 2026-07-28 discover, then initialize): the first is gone with its attempt,
/// and only the latest leads the group the session keeps.
#[derive(Default)]
pub(super) struct Leader(std::sync::atomic::AtomicU32);

impl Leader {
    pub(super) fn set(&self, pid: u32) {
        self.0.store(pid, std::sync::atomic::Ordering::Release);
    }

    pub(super) fn get(&self) -> Option<u32> {
        Some(self.0.load(std::sync::atomic::Ordering::Acquire)).filter(|&pid| pid != 0)
    }
}

/// How long the group has after SIGTERM before it is killed. (A helper whose parent is gone
/// may linger as a zombie until init reaps it; it counts as there until then.)
const GRACE: Duration = Duration::from_millis(500);
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// Ends every process left in group `leader` (the pid of the server, which leads its group):
/// SIGTERM, then SIGKILL for whatever is still there after [`GRACE`].
#[cfg(unix)]
pub(super) async fn end(leader: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(leader) else {
        return;
    };
    let group = Pid::from_raw(raw);
    if raw <= 1 || killpg(group, Signal::SIGTERM).is_err() {
        return; // no such group left: everyone exited
    }
    let deadline = tokio::time::Instant::now() + GRACE;
    while tokio::time::Instant::now() < deadline {
        if killpg(group, None).is_err() {
            return;
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    tracing::debug!(
        group = raw,
        "the process group outlived SIGTERM; killing it"
    );
    let _ = killpg(group, Signal::SIGKILL);
}

#[cfg(not(unix))]
pub(super) async fn end(_leader: u32) {}

/// Sends SIGTERM to group `leader`, now.
pub(super) fn terminate(leader: u32) {
    #[cfg(unix)]
    if let Ok(raw) = i32::try_from(leader)
        && raw > 1
    {
        let group = nix::unistd::Pid::from_raw(raw);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
    }
    #[cfg(not(unix))]
    let _ = leader;
}

/// Kills the group of a session whose opening was abandoned (its future dropped mid-handshake,
/// as when the engine stops): there is no time left for SIGTERM then.
pub(super) struct OpeningGuard {
    leader: std::sync::Arc<Leader>,
    armed: bool,
}

impl OpeningGuard {
    pub(super) fn new(leader: std::sync::Arc<Leader>) -> Self {
        Self {
            leader,
            armed: true,
        }
    }

    /// The opening finished (opened, or failed and cleaned up): nothing to kill here.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for OpeningGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if self.armed
            && let Some(leader) = self.leader.get()
            && let Ok(raw) = i32::try_from(leader)
            && raw > 1
        {
            let group = nix::unistd::Pid::from_raw(raw);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
