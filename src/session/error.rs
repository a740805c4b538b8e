//! Why a session could not be opened or a request failed, and the cause worth showing.

use std::time::Duration;

use rmcp::ServiceError;

/// Why a session could not be opened or a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server refused the credentials (HTTP 401/403): its own state, not "down".
    #[error("authorization rejected: {0}")]
    Unauthorized(String),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// No connection could be made (refused, no route, DNS): says nothing of the protocol.
    #[error("{0}")]
    Unreachable(String),
    /// The connection failed or closed.
    #[error("{0}")]
    Transport(String),
    /// The server answered with a JSON-RPC error.
    #[error("server error {code}: {message}")]
    Server { code: i32, message: String },
    #[error("{0}")]
    Unsupported(String),
}

impl SessionError {
    /// A short label for metrics and the UI (`error.type` in the OpenTelemetry conventions).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Transport(_) => "transport",
            Self::Server { .. } => "server_error",
            Self::Unsupported(_) => "unsupported",
        }
    }

    /// The same error, with a stdio server's last stderr lines appended to its message.
    pub(super) fn with_stderr(self, tail: &[String]) -> Self {
        let Some(last) = tail.iter().rev().find(|l| !l.trim().is_empty()) else {
            return self;
        };
        match self {
            Self::Transport(message) | Self::Unreachable(message) => {
                Self::Transport(format!("{message}; stderr: {last}"))
            }
            Self::Timeout(after) => Self::Transport(format!(
                "no answer within {} ms; stderr: {last}",
                after.as_millis()
            )),
            other => other,
        }
    }

    pub(super) fn from_service(error: ServiceError) -> Self {
        if let Some(challenge) = error.auth_challenge() {
            return Self::Unauthorized(challenge.to_string());
        }
        match error {
            ServiceError::McpError(e) => Self::Server {
                code: e.code.0,
                message: e.message.to_string(),
            },
            ServiceError::Timeout { timeout } => Self::Timeout(timeout),
            other => Self::from_cause(&other, None),
        }
    }

    pub(super) fn from_init(error: rmcp::service::ClientInitializeError) -> Self {
        Self::from_init_ref(&error)
    }

    pub(super) fn from_init_ref(error: &rmcp::service::ClientInitializeError) -> Self {
        if let Some(challenge) = error.auth_challenge() {
            return Self::Unauthorized(challenge.to_string());
        }
        if error.is_authorization_required() {
            return Self::Unauthorized("the server requires authorization".into());
        }
        match error {
            // This variant keeps its cause in a field the error chain does not follow.
            rmcp::service::ClientInitializeError::TransportError { error, context } => {
                Self::from_cause(error, Some(context))
            }
            rmcp::service::ClientInitializeError::LegacyFallbackFailed { fallback, .. } => {
                // Discover failed, then initialize: the second says what is wrong.
                Self::from_init_ref(fallback)
            }
            other => Self::from_cause(other, None),
        }
    }
}

/// The innermost cause ("Connection refused (os error 111)"): what a person can act on, as the
/// outer layers name SDK types; and whether the connection itself could not be made.
pub(crate) fn innermost_cause(error: &(dyn std::error::Error + 'static)) -> (String, bool) {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    let mut cause = error;
    let mut unreachable = false;
    loop {
        unreachable |= cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_connect);
        if let Some(inner) = cause.source() {
            cause = inner;
        } else if let Some(StreamableHttpError::Client(inner)) =
            cause.downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            // rmcp wraps reqwest's error without exposing it as a source.
            cause = inner;
        } else {
            return (cause.to_string(), unreachable);
        }
    }
}

impl SessionError {
    pub(super) fn from_cause(
        error: &(dyn std::error::Error + 'static),
        during: Option<&str>,
    ) -> Self {
        let (text, unreachable) = innermost_cause(error);
        let text = match during {
            Some(step) => format!("{text} (during {step})"),
            None => text,
        };
        if unreachable {
            Self::Unreachable(text)
        } else {
            Self::Transport(text)
        }
    }
}
