//! A stdio server's process group, ended with its session. rmcp stops the server it started
//! (stdin closed, then SIGTERM, then SIGKILL) but not what that server started: an `npx → sh →
//! node` chain, or a helper the server left running, would outlive a clean shutdown.

use std::time::Duration;

/// The latest server a session started: its pid (0: none yet) and, once something has waited
/// for it, how it ended. A handshake may start the server twice (the 2026-07-28 discover, then
/// initialize): the first is gone with its attempt; only the latest leads the group the session
/// keeps.
#[derive(Default)]
pub(super) struct Leader {
    pid: std::sync::atomic::AtomicU32,
    exit: std::sync::Mutex<Option<ExitSlot>>,
}

type ExitSlot = std::sync::Arc<tokio::sync::watch::Sender<Option<std::process::ExitStatus>>>;

impl Leader {
    /// A server is about to start: its exit will be recorded in what this returns.
    fn next_exit(&self) -> ExitSlot {
        let slot = ExitSlot::new(tokio::sync::watch::Sender::new(None));
        if let Ok(mut exit) = self.exit.lock() {
            *exit = Some(slot.clone());
        }
        slot
    }

    /// The server started as `pid`.
    pub(super) fn set(&self, pid: u32) {
        self.pid.store(pid, std::sync::atomic::Ordering::Release);
    }

    pub(super) fn get(&self) -> Option<u32> {
        Some(self.pid.load(std::sync::atomic::Ordering::Acquire)).filter(|&pid| pid != 0)
    }

    /// How the latest server ended, said the same way every time ("exited with status 3"),
    /// if it ended on its own (a SIGKILL is Switchboard's own, after the handshake failed).
    /// Waits up to `wait` for it to be reaped (rmcp does that in a task of its own).
    pub(super) async fn ended(&self, wait: Duration) -> Option<String> {
        let slot = self.exit.lock().ok()?.clone()?;
        let mut exit = slot.subscribe();
        let status = tokio::time::timeout(wait, exit.wait_for(Option::is_some))
            .await
            .ok()?
            .ok()?
            .as_ref()
            .copied()?;
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            if status.signal() == Some(nix::sys::signal::Signal::SIGKILL as i32) {
                return None;
            }
            if let Some(signal) = status.signal() {
                return Some(format!("the server was ended by signal {signal}"));
            }
        }
        Some(match status.code() {
            Some(0) => "the server exited (status 0) before it answered".to_string(),
            Some(code) => format!("the server exited with status {code}"),
            None => format!("the server ended ({status})"),
        })
    }
}

/// A `process_wrap` layer that records how the server ended, whoever waits for it (rmcp reaps
/// it when a handshake fails, before Switchboard could look).
#[derive(Debug)]
pub(super) struct RecordExit(ExitSlot);

impl RecordExit {
    pub(super) fn new(leader: &Leader) -> Self {
        Self(leader.next_exit())
    }
}

impl process_wrap::tokio::CommandWrapper for RecordExit {
    fn wrap_child(
        &mut self,
        child: Box<dyn process_wrap::tokio::ChildWrapper>,
        _core: &process_wrap::tokio::CommandWrap,
    ) -> std::io::Result<Box<dyn process_wrap::tokio::ChildWrapper>> {
        Ok(Box::new(ExitRecorder {
            inner: child,
            slot: self.0.clone(),
        }))
    }
}

#[derive(Debug)]
struct ExitRecorder {
    inner: Box<dyn process_wrap::tokio::ChildWrapper>,
    slot: ExitSlot,
}

impl process_wrap::tokio::ChildWrapper for ExitRecorder {
    fn inner(&self) -> &dyn process_wrap::tokio::ChildWrapper {
        self.inner.as_ref()
    }

    fn inner_mut(&mut self) -> &mut dyn process_wrap::tokio::ChildWrapper {
        self.inner.as_mut()
    }

    fn into_inner(self: Box<Self>) -> Box<dyn process_wrap::tokio::ChildWrapper> {
        self.inner
    }

    fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        let status = self.inner.try_wait()?;
        if let Some(status) = status {
            self.slot.send_replace(Some(status));
        }
        Ok(status)
    }

    fn wait(
        &mut self,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = std::io::Result<std::process::ExitStatus>> + Send + '_>,
    > {
        let slot = self.slot.clone();
        let waiting = self.inner.wait();
        Box::pin(async move {
            let status = waiting.await?;
            slot.send_replace(Some(status));
            Ok(status)
        })
    }
}

/// How long the group has after SIGTERM before it is killed. (A helper whose parent is gone
/// may linger as a zombie until init reaps it; it counts as there until then.)
const GRACE: Duration = Duration::from_millis(500);
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// The signals this module sends a group.
#[derive(Clone, Copy)]
enum GroupSignal {
    Term,
    Kill,
    /// None: only whether the group still exists.
    Probe,
}

/// Sends `what` to group `leader` (the pid of the server, which leads its group); returns
/// whether the group exists. Pids 0 and 1 (and any past `i32`) are never signalled.
fn signal(leader: u32, what: GroupSignal) -> bool {
    #[cfg(unix)]
    {
        use nix::sys::signal::{Signal, killpg};
        let Ok(raw) = i32::try_from(leader) else {
            return false;
        };
        if raw <= 1 {
            return false;
        }
        let signal = match what {
            GroupSignal::Term => Some(Signal::SIGTERM),
            GroupSignal::Kill => Some(Signal::SIGKILL),
            GroupSignal::Probe => None,
        };
        killpg(nix::unistd::Pid::from_raw(raw), signal).is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = (leader, what);
        false
    }
}

/// Ends every process left in group `leader`: SIGTERM, then SIGKILL for whatever is still there
/// after [`GRACE`].
pub(super) async fn end(leader: u32) {
    if !signal(leader, GroupSignal::Term) {
        return; // no such group left: everyone exited
    }
    let deadline = tokio::time::Instant::now() + GRACE;
    while tokio::time::Instant::now() < deadline {
        if !signal(leader, GroupSignal::Probe) {
            return;
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    tracing::debug!(
        group = leader,
        "the process group outlived SIGTERM; killing it"
    );
    signal(leader, GroupSignal::Kill);
}

/// Sends SIGTERM to group `leader`, now.
pub(super) fn terminate(leader: u32) {
    signal(leader, GroupSignal::Term);
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
        if self.armed
            && let Some(leader) = self.leader.get()
        {
            signal(leader, GroupSignal::Kill);
        }
    }
}
