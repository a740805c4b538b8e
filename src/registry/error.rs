//! What can go wrong with the registry, as values the CLI prints and the UI branches on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::edit::EditRejected;
use crate::durable::IoAt;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// `servers.json` is not valid: syntax, a wrong type or a value that fails validation.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{} is {size} bytes, over the {limit}-byte limit for registry files", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{} line {line} is damaged ({reason}); nothing after it was applied", path.display())]
    JournalDamaged {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(transparent)]
    Rejected(#[from] EditRejected),
    /// The edit is durable in the journal, but `servers.json` cannot be rewritten until the
    /// broken file is fixed by whoever broke it.
    #[error("not rewriting {}, which does not parse: {reason}", path.display())]
    Suspended { path: PathBuf, reason: String },
    #[error("gave up after {:.1} s waiting for {} (held by another Switchboard process)", waited.as_secs_f64(), path.display())]
    LockTimeout { path: PathBuf, waited: Duration },
    /// The config dir cannot be written: the edit was refused before anything changed.
    #[error("{} is read-only ({reason}): the change was not saved", dir.display())]
    ReadOnly { dir: PathBuf, reason: String },
    #[error("the registry is closed")]
    Closed,
}

impl RegistryError {
    /// A stable code for the UI, which never parses messages.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Parse { .. } => "parse",
            Self::TooLarge { .. } => "too_large",
            Self::JournalDamaged { .. } => "journal_damaged",
            Self::Rejected(EditRejected::AlreadyExists(_)) => "already_exists",
            Self::Rejected(EditRejected::NotFound(_)) => "not_found",
            Self::Rejected(_) => "invalid",
            Self::Suspended { .. } => "suspended",
            Self::LockTimeout { .. } => "lock_timeout",
            Self::ReadOnly { .. } => "read_only",
            Self::Closed => "closed",
        }
    }

    /// A problem with a file's content (as opposed to the disk): the file is left alone.
    pub(crate) fn is_bad_content(&self) -> bool {
        matches!(self, Self::Parse { .. } | Self::TooLarge { .. })
    }

    pub(crate) fn parse(path: PathBuf, error: &serde_json::Error) -> Self {
        let (line, column) = (error.line(), error.column());
        let full = error.to_string();
        let suffix = format!(" at line {line} column {column}");
        Self::Parse {
            path,
            line,
            column,
            message: full.strip_suffix(&suffix).unwrap_or(&full).to_string(),
        }
    }
}

impl From<IoAt> for RegistryError {
    fn from(e: IoAt) -> Self {
        Self::Io {
            path: e.path,
            source: Arc::new(e.source),
        }
    }
}
