//! Crash-safe file writes: temp file in the same directory, `sync_all`, rename, fsync the directory.
//!
//! Every file Switchboard writes may hold a secret (headers, env), so every one is created 0600.

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
        self.map_err(|source| IoAt::new(path, source))
    }
}

/// Options that create a file readable and writable by its owner only.
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
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
/// file, never a torn one. `temp` must be in the same directory (rename is atomic only there).
pub fn replace_file(target: &Path, temp: &Path, bytes: &[u8]) -> Result<(), IoAt> {
    let mut file = private_file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .at(temp)?;
    file.write_all(bytes).at(temp)?;
    file.sync_all().at(temp)?;
    drop(file);
    fs::rename(temp, target).at(target)?;
    sync_dir(target.parent().unwrap_or(Path::new(".")))
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
        replace_file(&target, &dir.path().join(".f.tmp"), b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert!(!dir.path().join(".f.tmp").exists(), "temp file left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "registry files must be owner-only");
        }
    }
}
