//! What Switchboard says about a connector, and why.
//!
//! Healthy means all three: the transport answers, the tool list was fetched, and the
//! credentials were accepted. Anything less gets another state with a reason, so the tray never
//! shows green for a dead server.

use std::time::Duration;

use serde::Serialize;

use crate::engine::ConnectorStatus;
use crate::session::SessionError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Switched off by the user or the manifest.
    Disabled,
    Connecting,
    Healthy,
    /// Answers, but not well: lists no tools, or errors and latency over thresholds.
    Degraded,
    /// Does not answer; retried with backoff.
    Down,
    /// Refused the credentials (HTTP 401/403).
    Unauthorized,
    /// Answered 401 with an OAuth challenge (MCP authorization): the user has to sign in.
    #[serde(rename = "needs-sign-in")]
    NeedsSignIn,
}

impl Health {
    /// Every state, for the metrics that give each its own series.
    pub const ALL: [Self; 7] = [
        Self::Disabled,
        Self::Connecting,
        Self::Healthy,
        Self::Degraded,
        Self::Down,
        Self::Unauthorized,
        Self::NeedsSignIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Connecting => "connecting",
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::Unauthorized => "unauthorized",
            Self::NeedsSignIn => "needs-sign-in",
        }
    }

    /// Whether a connector in this state has a session that takes calls.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Healthy | Self::Degraded)
    }

    /// Whether a connector in this state failed its last attempt (and is being retried).
    pub fn is_failed(self) -> bool {
        match self {
            Self::Down | Self::Unauthorized | Self::NeedsSignIn => true,
            Self::Disabled | Self::Connecting | Self::Healthy | Self::Degraded => false,
        }
    }

    /// The state a failed connection attempt leaves a connector in.
    pub fn after_failure(error: &SessionError) -> Self {
        match error {
            SessionError::Unauthorized(_) => Self::Unauthorized,
            SessionError::NeedsSignIn(_) => Self::NeedsSignIn,
            _ => Self::Down,
        }
    }

    /// The state after a successful connection that listed `tools` tools, with its reason.
    pub fn after_connect(tools: usize) -> (Self, Option<String>) {
        if tools == 0 {
            (Self::Degraded, Some("the server lists no tools".into()))
        } else {
            (Self::Healthy, None)
        }
    }
}

/// What a supervisor observed of its connector: the facts [`next`] turns into a status.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// An attempt to connect began.
    Connecting,
    /// A session is up and listed `tools` tools.
    Up {
        tools: usize,
        latency: Duration,
        protocol_version: Option<String>,
    },
    /// The live session listed its tools again.
    Tools(usize),
    /// The verdict on recent calls: `Some(reason)` to degrade, `None` when they are fine.
    Quality(Option<String>),
    /// The attempt or the session failed; `retry_in` is the wait before the next attempt.
    Failed {
        state: Health,
        reason: String,
        attempt: u32,
        retry_in: Option<Duration>,
    },
}

/// A connector's status after `observed`: the health state machine, without side effects.
pub fn next(status: &ConnectorStatus, observed: Observed) -> ConnectorStatus {
    let mut status = status.clone();
    match observed {
        // A retry does not make a failed connector "connecting" again: it is down (or
        // unauthorized) until an attempt succeeds, so the tray does not flicker.
        Observed::Connecting if status.state.is_failed() => {
            status.retry_in_ms = None;
        }
        Observed::Connecting => {
            status.state = Health::Connecting;
            status.reason = None;
            status.attempt = 0;
            status.retry_in_ms = None;
        }
        Observed::Up {
            tools,
            latency,
            protocol_version,
        } => {
            (status.state, status.reason) = Health::after_connect(tools);
            status.tools = tools;
            status.latency_ms = Some(latency.as_secs_f64() * 1e3);
            status.protocol_version = protocol_version;
            status.attempt = 0;
            status.retry_in_ms = None;
        }
        // Only a connector with tools can be judged on its calls (one with none stays
        // degraded for that reason).
        Observed::Quality(verdict) if status.tools > 0 => {
            status.state = if verdict.is_some() {
                Health::Degraded
            } else {
                Health::Healthy
            };
            status.reason = verdict;
        }
        Observed::Quality(_) => {}
        Observed::Tools(tools) => {
            (status.state, status.reason) = Health::after_connect(tools);
            status.tools = tools;
        }
        Observed::Failed {
            state,
            reason,
            attempt,
            retry_in,
        } => {
            status.state = state;
            status.reason = Some(reason);
            status.tools = 0;
            status.attempt = attempt;
            status.retry_in_ms = retry_in.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        }
    }
    status
}

/// The whole fleet at a glance: the tray icon's four states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    /// Every enabled connector is healthy.
    Healthy,
    /// Some are degraded, down or unauthorized, but not all.
    Degraded,
    /// None of the enabled connectors works.
    Down,
    /// Nothing enabled, or everything still connecting.
    Idle,
}

pub fn overall(connectors: &[ConnectorStatus]) -> Overall {
    let settled: Vec<Health> = connectors
        .iter()
        .map(|c| c.state)
        .filter(|s| !matches!(s, Health::Disabled | Health::Connecting))
        .collect();
    let working = |s: &Health| matches!(s, Health::Healthy | Health::Degraded);
    if settled.is_empty() {
        Overall::Idle
    } else if settled.iter().all(|s| *s == Health::Healthy) {
        Overall::Healthy
    } else if !settled.iter().any(working) {
        Overall::Down
    } else {
        Overall::Degraded
    }
}

/// One line: "7/8 healthy · wiki unauthorized · crm down", naming at most two problems.
pub fn summary(connectors: &[ConnectorStatus]) -> String {
    let enabled: Vec<&ConnectorStatus> = connectors
        .iter()
        .filter(|c| c.state != Health::Disabled)
        .collect();
    if enabled.is_empty() {
        return "no connectors enabled".into();
    }
    let healthy = enabled
        .iter()
        .filter(|c| c.state == Health::Healthy)
        .count();
    let mut line = format!("{healthy}/{} healthy", enabled.len());
    let problems: Vec<&&ConnectorStatus> = enabled
        .iter()
        .filter(|c| !matches!(c.state, Health::Healthy | Health::Connecting))
        .collect();
    for problem in problems.iter().take(2) {
        line.push_str(&format!(
            " · {} {}",
            problem.label(),
            problem.state.as_str()
        ));
    }
    if problems.len() > 2 {
        line.push_str(&format!(" · +{} more", problems.len() - 2));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(id: &str, state: Health) -> ConnectorStatus {
        ConnectorStatus {
            id: id.into(),
            display_name: None,
            source: crate::connector::Source::Registry,
            transport: "http",
            state,
            reason: None,
            tools: 3,
            latency_ms: None,
            protocol_version: None,
            attempt: 0,
            retry_in_ms: None,
            calls: None,
            credential: None,
            wants_scopes: Vec::new(),
        }
    }

    #[test]
    fn the_icon_state_follows_the_fleet() {
        use Health::*;
        let fleet = |states: &[Health]| {
            let connectors: Vec<_> = states
                .iter()
                .enumerate()
                .map(|(i, s)| connector(&format!("c{i}"), *s))
                .collect();
            overall(&connectors)
        };
        assert_eq!(fleet(&[]), Overall::Idle, "nothing configured");
        assert_eq!(
            fleet(&[Disabled, Connecting]),
            Overall::Idle,
            "nothing settled"
        );
        assert_eq!(fleet(&[Healthy, Healthy, Disabled]), Overall::Healthy);
        assert_eq!(fleet(&[Healthy, Down]), Overall::Degraded, "partly down");
        assert_eq!(fleet(&[Healthy, Degraded]), Overall::Degraded);
        assert_eq!(fleet(&[Down, Unauthorized, Disabled]), Overall::Down);
    }

    #[test]
    fn the_summary_names_the_first_problems() {
        let connectors = [
            connector("docs", Health::Healthy),
            connector("wiki", Health::Unauthorized),
            connector("crm", Health::Down),
            connector("git", Health::Degraded),
            connector("off", Health::Disabled),
        ];
        assert_eq!(
            summary(&connectors),
            "1/4 healthy · wiki unauthorized · crm down · +1 more"
        );
        assert_eq!(summary(&connectors[..1]), "1/1 healthy");
        assert_eq!(summary(&connectors[4..]), "no connectors enabled");
    }

    #[test]
    fn the_state_machine_moves_as_observed() {
        let up = Observed::Up {
            tools: 3,
            latency: Duration::from_millis(12),
            protocol_version: Some("2025-11-25".into()),
        };
        let connecting = connector("c", Health::Connecting);
        let healthy = next(&connecting, up);
        assert_eq!((healthy.state, healthy.tools), (Health::Healthy, 3));
        assert_eq!(healthy.latency_ms, Some(12.0));

        let slow = next(&healthy, Observed::Quality(Some("p95 high".into())));
        assert_eq!(slow.state, Health::Degraded);
        assert_eq!(slow.reason.as_deref(), Some("p95 high"));
        assert_eq!(next(&slow, Observed::Quality(None)).state, Health::Healthy);

        let no_tools = Observed::Up {
            tools: 0,
            latency: Duration::ZERO,
            protocol_version: None,
        };
        let empty = next(&connecting, no_tools);
        assert_eq!(empty.state, Health::Degraded, "no tools is not healthy");
        assert_eq!(
            next(&empty, Observed::Quality(None)).state,
            Health::Degraded,
            "good calls do not make a server without tools healthy"
        );

        let failed = next(
            &healthy,
            Observed::Failed {
                state: Health::Down,
                reason: "refused".into(),
                attempt: 2,
                retry_in: Some(Duration::from_millis(700)),
            },
        );
        assert_eq!(
            (failed.state, failed.tools, failed.attempt),
            (Health::Down, 0, 2)
        );
        assert_eq!(failed.retry_in_ms, Some(700));
        let retrying = next(&failed, Observed::Connecting);
        assert_eq!(
            retrying.state,
            Health::Down,
            "a retry does not flicker to connecting"
        );
        assert_eq!(retrying.retry_in_ms, None);
        assert_eq!(
            retrying.reason.as_deref(),
            Some("refused"),
            "the reason stays"
        );
        assert_eq!(
            next(&healthy, Observed::Connecting).state,
            Health::Connecting
        );
    }
}
