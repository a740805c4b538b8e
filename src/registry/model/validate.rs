//! Checks on what a server entry holds, each naming the field it is about.

use indexmap::IndexMap;

/// What is wrong with a server's name or entry: the field to fix and why, so the window can
/// say it beside that field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Invalid {
    /// `name`, `command`, `env`, `url`, `headers`, or `entry` for the entry as a whole.
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    pub(super) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

pub(super) fn check_command(command: &str, args: &[String]) -> Result<(), Invalid> {
    if command.trim().is_empty() {
        return Err(Invalid::new("command", "\"command\" is empty"));
    }
    if command.contains('\0') || args.iter().any(|a| a.contains('\0')) {
        return Err(Invalid::new(
            "command",
            "\"command\" or \"args\" contains a NUL character",
        ));
    }
    Ok(())
}

pub(super) fn check_env(env: &IndexMap<String, String>) -> Result<(), Invalid> {
    for (key, value) in env {
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(Invalid::new(
                "env",
                format!("environment variable name {key:?} is empty or has '=' or NUL"),
            ));
        }
        if value.contains('\0') {
            return Err(Invalid::new(
                "env",
                format!("environment variable {key} has a NUL in its value"),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_url(raw: &str) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid::new("url", reason);
    let url =
        url::Url::parse(raw).map_err(|e| invalid(format!("\"url\" {raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "\"url\" {raw:?} has scheme {:?}; expected http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("\"url\" {raw:?} has no host")));
    }
    Ok(())
}

pub(crate) fn check_headers(headers: &IndexMap<String, String>) -> Result<(), Invalid> {
    let invalid = |reason: String| Invalid::new("headers", reason);
    for (name, value) in headers {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(invalid(format!(
                "header name {name:?} is not a valid HTTP header name"
            )));
        }
        // A CR or LF in a value would let a file inject extra headers into every request.
        if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(invalid(format!(
                "header {name} has a line break or NUL in its value"
            )));
        }
    }
    Ok(())
}
