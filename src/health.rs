//! What Switchboard says about a connector, and why.
//!
//! Healthy means all three: the transport answers, the tool list was fetched, and the
//! credentials were accepted. Anything less gets another state with a reason, so the tray never
//! shows green for a dead server.

use serde::Serialize;

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
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Connecting => "connecting",
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::Unauthorized => "unauthorized",
        }
    }

    /// The state a failed connection attempt leaves a connector in.
    pub fn after_failure(error: &SessionError) -> Self {
        match error {
            SessionError::Unauthorized(_) => Self::Unauthorized,
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
