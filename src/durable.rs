//! Crash-safe file writes: temp file in the same directory, `sync_all`, rename, fsync the directory.
//!
//! Every file Switchboard writes may hold a secret (headers, env), so every one is created 0600,
//! and none is opened through a symbolic link: a link planted in the config dir must not get the
//! registry written through it to wherever it points.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An I/O error and the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct IoAt {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl IoAt {
    pub fn new(path: &Path, source: io::Error) -> Self {
        Self {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Attaches a path to an I/O result.
pub trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T, IoAt>;
}

impl<T> AtPath<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, IoAt> {
        self.map_err(|source| IoAt::new(path, plainly(source)))
    }
}

/// The OS's words for a refused link ("Too many levels of symbolic links") say nothing useful.
fn plainly(error: io::Error) -> io::Error {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::ELOOP) {
        return io::Error::other(
            "is a symbolic link, and Switchboard does not write through links (replace it with \
             the file itself)",
        );
    }
    error
}

/// Options that create a file readable and writable by its owner only, never through a link.
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Creates `dir` (and its parents) if missing; the leaf is made 0700 when created here.
pub fn create_private_dir(dir: &Path) -> Result<(), IoAt> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).at(dir)
}

/// Replaces `target` with `bytes` so that a crash at any point leaves either the old or the new
/// file, never a torn one. The temp file beside it gets a random name and is created new (never
/// an existing file or link); it is removed again on any failure. A link at `target` itself is
/// replaced by the file, not written through.
pub fn replace_file(target: &Path, bytes: &[u8]) -> Result<(), IoAt> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let prefix = format!(
        ".{}.",
        target.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let mut temp = builder.tempfile_in(dir).at(dir)?;
    temp.write_all(bytes).at(temp.path())?;
    temp.as_file().sync_all().at(temp.path())?;
    temp.persist(target)
        .map_err(|e| IoAt::new(target, plainly(e.error)))?;
    sync_dir(dir)
}

/// Makes a rename or create in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), IoAt> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).at(dir)?;
    // Windows has no directory handles to sync; NTFS journals the rename itself.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_creates_a_private_file_with_the_new_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.json");
        fs::write(&target, b"old").unwrap();
        replace_file(&target, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "temp file left behind: {names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "registry files must be owner-only");
        }
    }
}
