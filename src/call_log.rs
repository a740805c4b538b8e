//! The last calls made through the daemon, whoever made them (an AI client through `serve` or
//! the HTTP endpoint, the CLI, the window): what the window's call log shows. Arguments and
//! answers are never kept, only what the call was and how it went.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Calls kept; older ones go first.
pub const KEPT: usize = 500;
/// A failed call's message is cut to this many characters (a server's error text can be long).
const MAX_ERROR_CHARS: usize = 300;

/// One call, as the log shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// When it ended, in ms since the Unix epoch.
    pub at_ms: u64,
    /// The client's name as it gave it (`clientInfo.name`), or what made the call.
    pub client: String,
    /// `connector.tool`
    pub tool: String,
    pub duration_ms: f64,
    /// `ok`, `tool_error` (the tool answered with `isError`) or `error`.
    pub outcome: &'static str,
    /// Why it failed, for `error`.
    pub error: Option<String>,
    /// The id the call is logged under, everywhere it is logged.
    pub correlation: String,
}

/// Who made a call, for the log.
#[derive(Debug, Clone, Default)]
pub struct CallOrigin {
    pub client: Option<String>,
    pub correlation: Option<String>,
}

impl CallOrigin {
    /// A call made by `client`, with a new correlation id.
    pub fn new(client: &str) -> Self {
        Self {
            client: Some(client.to_string()),
            correlation: Some(new_correlation()),
        }
    }
}

/// A new correlation id: 16 hex digits.
pub fn new_correlation() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[derive(Default)]
pub struct CallLog {
    calls: Mutex<VecDeque<CallRecord>>,
}

impl CallLog {
    pub fn record(
        &self,
        origin: CallOrigin,
        tool: &str,
        took: Duration,
        outcome: Result<bool, String>,
    ) {
        let (outcome, error) = match outcome {
            Ok(false) => ("ok", None),
            Ok(true) => ("tool_error", None),
            Err(why) => ("error", Some(why.chars().take(MAX_ERROR_CHARS).collect())),
        };
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let record = CallRecord {
            at_ms,
            client: origin.client.unwrap_or_else(|| "unknown".into()),
            tool: tool.to_string(),
            duration_ms: took.as_secs_f64() * 1e3,
            outcome,
            error,
            correlation: origin.correlation.unwrap_or_else(new_correlation),
        };
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        if calls.len() == KEPT {
            calls.pop_front();
        }
        calls.push_back(record);
    }

    /// The calls kept, newest first.
    pub fn recent(&self) -> Vec<CallRecord> {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_calls_newest_first_and_bounds_error_text() {
        let log = CallLog::default();
        for n in 0..KEPT + 3 {
            let outcome = if n % 2 == 0 {
                Ok(false)
            } else {
                Err("x".repeat(10_000))
            };
            log.record(
                CallOrigin::new("cli"),
                &format!("fx.t{n}"),
                Duration::from_millis(1),
                outcome,
            );
        }
        let recent = log.recent();
        assert_eq!(recent.len(), KEPT);
        assert_eq!(recent[0].tool, format!("fx.t{}", KEPT + 2));
        assert_eq!(recent[KEPT - 1].tool, "fx.t3", "the oldest three went");
        let failed = recent.iter().find(|r| r.outcome == "error").unwrap();
        assert_eq!(
            failed.error.as_ref().map(String::len),
            Some(MAX_ERROR_CHARS)
        );
        assert_eq!(recent[0].client, "cli");
        assert_eq!(recent[0].correlation.len(), 16);
    }
}
