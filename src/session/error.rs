//! Why a session could not be opened or a request failed, and the cause worth showing.

use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceError;

/// Why a session could not be opened or a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server refused the credentials (HTTP 401/403): its own state, not "down".
    #[error("authorization rejected: {0}")]
    Unauthorized(String),
    /// The server answered 401 with an OAuth challenge naming its protected-resource
    /// metadata: a sign-in, not a wrong key, is what it takes.
    #[error("needs sign-in: {0}")]
    NeedsSignIn(String),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// No connection could be made (refused, no route, DNS): says nothing of the protocol.
    #[error("{message}")]
    Unreachable {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// The connection failed or closed.
    #[error("{message}")]
    Transport {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// The server answered with a JSON-RPC error.
    #[error("server error {code}: {message}")]
    Server { code: i32, message: String },
    #[error("{0}")]
    Unsupported(String),
    /// The server sent more than Switchboard takes (tools, pages): said by what and how much.
    #[error("{0}")]
    OverLimit(String),
}

/// The error a [`SessionError`] came from, whole, for whoever walks `source()` (a debug log):
/// the message says only its innermost part. Errors compare by what they say.
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl SessionError {
    /// A transport failure that Switchboard itself noticed: there is no cause beneath it.
    pub(crate) fn transport(message: impl Into<String>) -> Self {
        Self::Transport {
            message: message.into(),
            cause: None,
        }
    }

    /// The same error, keeping `cause` beneath it where it has room for one.
    fn caused_by(self, cause: BoxedError) -> Self {
        let cause = Some(Cause(Arc::from(cause)));
        match self {
            Self::Transport { message, .. } => Self::Transport { message, cause },
            Self::Unreachable { message, .. } => Self::Unreachable { message, cause },
            other => other,
        }
    }

    /// A short label for metrics and the UI (`error.type` in the OpenTelemetry conventions).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::NeedsSignIn(_) => "needs_sign_in",
            Self::Timeout(_) => "timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::Transport { .. } => "transport",
            Self::Server { .. } => "server_error",
            Self::Unsupported(_) => "unsupported",
            Self::OverLimit(_) => "over_limit",
        }
    }

    /// The same error, with a stdio server's last stderr lines appended to its message.
    pub(super) fn with_stderr(self, tail: &[String]) -> Self {
        let Some(last) = tail.iter().rev().find(|l| !l.trim().is_empty()) else {
            return self;
        };
        match self {
            Self::Transport { message, cause } | Self::Unreachable { message, cause } => {
                Self::Transport {
                    message: bounded(&format!("{message}; stderr: {last}")),
                    cause,
                }
            }
            Self::Timeout(after) => Self::transport(format!(
                "no answer within {} ms; stderr: {last}",
                after.as_millis()
            )),
            other => other,
        }
    }

    /// A 401's `WWW-Authenticate`: an OAuth challenge (RFC 9728's `resource_metadata`, which
    /// MCP servers send) means sign in; any other means the credentials were refused.
    fn refused(challenge: &str) -> Self {
        let oauth = challenge
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
            && challenge
                .to_ascii_lowercase()
                .contains("resource_metadata=");
        if oauth {
            Self::NeedsSignIn(bounded(challenge))
        } else {
            Self::Unauthorized(bounded(challenge))
        }
    }

    pub(super) fn from_service(error: ServiceError) -> Self {
        if let Some(challenge) = error.auth_challenge() {
            return Self::refused(challenge);
        }
        match error {
            ServiceError::McpError(e) => Self::Server {
                code: e.code.0,
                message: bounded(&e.message),
            },
            ServiceError::Timeout { timeout } => Self::Timeout(timeout),
            ServiceError::TransportSend(under) => {
                let error = ServiceError::TransportSend(exposed(under));
                Self::from_cause(&error, None).caused_by(Box::new(error))
            }
            other => Self::from_cause(&other, None).caused_by(Box::new(other)),
        }
    }

    pub(super) fn from_init(error: rmcp::service::ClientInitializeError) -> Self {
        Self::from_init_ref(&error).caused_by(init_chain(error))
    }

    pub(super) fn from_init_ref(error: &rmcp::service::ClientInitializeError) -> Self {
        if let Some(challenge) = error.auth_challenge() {
            return Self::refused(challenge);
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

/// The longest text from a server (a challenge, an error message, a stderr line) an error
/// carries; a server can send megabytes, and errors are shown, logged and kept.
pub const MAX_ERROR_TEXT: usize = 512;

/// `text`, cut at [`MAX_ERROR_TEXT`] bytes (on a character boundary) with how much was left out.
pub(crate) fn bounded(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text.to_string();
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One error over another, for the links rmcp's types leave out of `source()`.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
struct Over {
    text: String,
    #[source]
    under: BoxedError,
}

/// A failed initialization with every cause beneath it reachable through `source()`.
fn init_chain(error: rmcp::service::ClientInitializeError) -> BoxedError {
    use rmcp::service::ClientInitializeError;
    let text = error.to_string();
    match error {
        ClientInitializeError::TransportError { error, .. } => Box::new(Over {
            text,
            under: Box::new(exposed(error)),
        }),
        ClientInitializeError::LegacyFallbackFailed { fallback, .. } => Box::new(Over {
            text,
            under: init_chain(*fallback),
        }),
        other => Box::new(other),
    }
}

/// The transport error with the HTTP client's error beneath it: rmcp's
/// `StreamableHttpError::Client` does not name it as its source.
fn exposed(
    mut error: rmcp::transport::DynamicTransportError,
) -> rmcp::transport::DynamicTransportError {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    error.error = match error
        .error
        .downcast::<StreamableHttpError<reqwest::Error>>()
    {
        Ok(http) => {
            let text = http.to_string();
            match *http {
                StreamableHttpError::Client(client) => Box::new(Over {
                    text,
                    under: Box::new(client),
                }),
                other => Box::new(other),
            }
        }
        Err(other) => other,
    };
    error
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
            Some(step) => format!("{} (during {step})", bounded(&text)),
            None => bounded(&text),
        };
        if unreachable {
            Self::Unreachable {
                message: text,
                cause: None,
            }
        } else {
            Self::transport(text)
        }
    }
}
