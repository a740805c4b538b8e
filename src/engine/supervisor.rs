//! A supervisor keeps one connector connected until told to stop: connects within the shared
//! concurrency limit, then serves (re-lists on `list_changed`, probes when idle, re-checks on
//! demand), and on failure reconnects with capped exponential backoff and full jitter. It only
//! reports; the reconciler decides what the reports mean.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::Tool;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::EngineOptions;
use crate::backoff::full_jitter;
use crate::connector::ConnectorSpec;
use crate::health::{Health, Observed};
use crate::metrics::Metrics;

/// Longest a probe waits for its answer (less where the connector's connect timeout is): a
/// ping is answered at once by a server that works, and a frozen one should show within a probe
/// period plus this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
use crate::session::{Caller, Elicitation, Session, SessionError};

/// What a supervisor tells the reconciler. `generation` tells reports of a replaced supervisor
/// apart from its successor's.
pub(super) struct Report {
    pub(super) id: String,
    pub(super) generation: u64,
    pub(super) update: Update,
}

/// What a supervisor saw: a fact for [`health::next`](crate::health::next) alone, or one that
/// also hands over a session's caller or tool list.
pub(super) enum Update {
    Observed(Observed),
    Up {
        tools: Vec<Tool>,
        latency: Duration,
        protocol_version: Option<String>,
        caller: Caller,
    },
    Tools(Vec<Tool>),
}

/// Keeps one connector connected until told to stop.
pub(super) struct Supervisor {
    recheck: watch::Receiver<u64>,
    metrics: Arc<Metrics>,
    spec: ConnectorSpec,
    http: reqwest::Client,
    permits: Arc<Semaphore>,
    options: EngineOptions,
    stop: CancellationToken,
    reports: mpsc::Sender<Report>,
    generation: u64,
}

/// Why a live session ended.
enum Ended {
    Stopped,
    Failed(Health, String),
}

impl Supervisor {
    #[expect(
        clippy::too_many_arguments,
        reason = "one constructor, called from one place"
    )]
    pub(super) fn new(
        spec: ConnectorSpec,
        generation: u64,
        recheck: watch::Receiver<u64>,
        metrics: Arc<Metrics>,
        http: reqwest::Client,
        permits: Arc<Semaphore>,
        options: EngineOptions,
        stop: CancellationToken,
        reports: mpsc::Sender<Report>,
    ) -> Self {
        Self {
            recheck,
            metrics,
            spec,
            http,
            permits,
            options,
            stop,
            reports,
            generation,
        }
    }

    pub(super) async fn run(mut self) {
        let mut attempt = 0;
        // How the server was reached last time: reconnects skip detecting it again.
        let mut known = None;
        loop {
            self.report(Update::Observed(Observed::Connecting)).await;
            let opened = {
                let _permit = tokio::select! {
                    _ = self.stop.cancelled() => return,
                    permit = self.permits.acquire() => permit,
                };
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    opened = Session::open_with(
                        &self.spec,
                        &self.http,
                        known,
                        Elicitation::Relay,
                        self.options.tokens.as_ref(),
                    ) => opened,
                }
            };
            match opened {
                Ok(mut session) => {
                    attempt = 0;
                    known = Some(session.handshake);
                    // A re-check asked before this point is answered by the session just
                    // opened. Marked before `Up` is reported, not after: a re-check asked once
                    // the reconciler knows the session is live (it then shows it connecting)
                    // must wake `serve`, or the connector would show connecting for good.
                    self.recheck.mark_unchanged();
                    self.report(Update::Up {
                        tools: session.tools.clone(),
                        latency: session.connect_latency,
                        protocol_version: session.protocol_version.clone(),
                        caller: session.caller(),
                    })
                    .await;
                    let ended = self.serve(&mut session).await;
                    match ended {
                        Ended::Stopped => {
                            session.close().await;
                            return;
                        }
                        // A session that worked and broke is retried at once (the server may
                        // just have restarted); backoff starts if that fails too. The failure
                        // is told before the session is closed: closing a frozen server's
                        // HTTP session waits on a DELETE it never answers.
                        Ended::Failed(state, reason) => {
                            let reason = self.explained(state, reason);
                            self.report(Update::Observed(Observed::Failed {
                                state,
                                reason,
                                attempt,
                                retry_in: None,
                            }))
                            .await;
                            session.close().await;
                        }
                    }
                }
                Err(error) => {
                    attempt += 1;
                    let options = &self.options;
                    // The first failed attempt waits up to `backoff_base`.
                    let delay = full_jitter(options.backoff_base, options.backoff_cap, attempt - 1);
                    let state = Health::after_failure(&error);
                    self.report(Update::Observed(Observed::Failed {
                        state,
                        reason: self.explained(state, error.to_string()),
                        attempt,
                        retry_in: Some(delay),
                    }))
                    .await;
                    tokio::select! {
                        _ = self.stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                        // The network may be back: do not wait out the backoff.
                        _ = self.recheck.changed() => {}
                    }
                }
            }
        }
    }

    /// `reason`, or for a connector whose sign-in its provider ended (found by an opening, a
    /// probe or a call alike), why it ended.
    fn explained(&self, state: Health, reason: String) -> String {
        let ended = self
            .options
            .tokens
            .as_ref()
            .and_then(|t| t.ended(&self.spec.id));
        match ended {
            Some(why) if state == Health::NeedsSignIn => format!("needs sign-in: {why}"),
            _ => reason,
        }
    }

    async fn serve(&mut self, session: &mut Session) -> Ended {
        enum Wake {
            Stop,
            ToolsChanged(Result<(), SessionError>),
            ProbeDue,
            /// Asked again, and its tools listed: why, for the reason if it fails.
            Recheck(&'static str),
        }
        loop {
            let look_again = session.look_again();
            let wake = tokio::select! {
                _ = self.stop.cancelled() => Wake::Stop,
                changed = session.tools_changed() => Wake::ToolsChanged(changed),
                _ = tokio::time::sleep(self.options.probe_every) => Wake::ProbeDue,
                _ = self.recheck.changed() => Wake::Recheck("re-check failed"),
                () = look_again => Wake::Recheck("a check after its stream or process ended failed"),
            };
            let probe_timeout = self.spec.connect_timeout.min(PROBE_TIMEOUT);
            match wake {
                Wake::Stop => return Ended::Stopped,
                Wake::ToolsChanged(Err(e)) => {
                    return Ended::Failed(Health::after_failure(&e), e.to_string());
                }
                Wake::ToolsChanged(Ok(())) => match session.relist(self.spec.connect_timeout).await
                {
                    Ok(tools) => self.report(Update::Tools(tools.to_vec())).await,
                    Err(e) => return Ended::Failed(Health::after_failure(&e), e.to_string()),
                },
                Wake::ProbeDue => {
                    if session.is_closed() {
                        return Ended::Failed(Health::Down, "the connection closed".into());
                    }
                    // Half the period: an answer a moment too recent must not skip a whole one.
                    if session.caller().idle_for() >= self.options.probe_every / 2
                        && let Err(e) = session.probe(probe_timeout).await
                    {
                        return Ended::Failed(
                            Health::after_failure(&e),
                            format!("probe failed: {e}"),
                        );
                    }
                    self.report(Update::Observed(Observed::Quality(self.verdict())))
                        .await;
                }
                Wake::Recheck(why) => {
                    if let Err(e) = session.probe(probe_timeout).await {
                        return Ended::Failed(Health::after_failure(&e), format!("{why}: {e}"));
                    }
                    match session.relist(self.spec.connect_timeout).await {
                        Ok(tools) => self.report(Update::Tools(tools.to_vec())).await,
                        Err(e) => return Ended::Failed(Health::after_failure(&e), e.to_string()),
                    }
                    self.report(Update::Observed(Observed::Quality(self.verdict())))
                        .await;
                }
            }
        }
    }

    /// Degraded when recent calls mostly fail or their p95 is over the threshold.
    fn verdict(&self) -> Option<String> {
        let recent = self.metrics.recent(&self.spec.id);
        if recent.calls >= self.options.min_calls_for_error_rate && recent.errors * 2 > recent.calls
        {
            return Some(format!(
                "{} of the last {} calls failed",
                recent.errors, recent.calls
            ));
        }
        (recent.calls > 0 && recent.p95 > self.options.slow_p95).then(|| {
            format!(
                "p95 of recent calls is {} ms, over {} ms",
                recent.p95.as_millis(),
                self.options.slow_p95.as_millis()
            )
        })
    }

    async fn report(&self, update: Update) {
        let report = Report {
            id: self.spec.id.clone(),
            generation: self.generation,
            update,
        };
        let _ = self.reports.send(report).await;
    }
}
