//! Files Switchboard reads and writes. Writes are crash-safe: temp file in the same directory,
//! `sync_all`, rename, fsync the directory.
//!
//! Every file Switchboard writes may hold a secret (headers, env), so every one is created 0600,
//! and none is opened through a symbolic link: a link planted in the config dir must not get the
//! registry written through it to wherever it points. Every file it reads is read whole through
//! one bounded reader that takes regular files only: a FIFO or a device where a file belongs
//! would block it or never end.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
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

/// Whether `error` says the place cannot be written at all (a read-only disk or mount, a
/// directory without write permission), as opposed to a fault of this one write.
pub fn is_unwritable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied
    )
}

/// A file opened to be written, or, where its place cannot be written, to be read only.
pub enum Opened {
    Writable(fs::File),
    /// Why it cannot be written, and the file itself where it exists.
    ReadOnly(Option<fs::File>, String),
}

/// Opens the regular file `path` with `options`; where the place cannot be written at all (see
/// [`is_unwritable`]), opens it to read instead, saying why.
pub fn open_or_read_only(options: &OpenOptions, path: &Path) -> Result<Opened, IoAt> {
    let refused = match open_regular(options, path) {
        Ok(file) => return Ok(Opened::Writable(file)),
        Err(e) if is_unwritable(&e.source) => e.source.to_string(),
        Err(e) => return Err(e),
    };
    match open_regular(OpenOptions::new().read(true), path) {
        Ok(file) => Ok(Opened::ReadOnly(Some(file), refused)),
        Err(e) if e.source.kind() == io::ErrorKind::NotFound => Ok(Opened::ReadOnly(None, refused)),
        Err(e) => Err(e),
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
/// Open them with [`open_regular`].
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO must not wait for its other end (no effect on files).
        options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options
}

/// Opens `path` with `options`, refusing anything but a regular file.
pub fn open_regular(options: &OpenOptions, path: &Path) -> Result<File, IoAt> {
    open_checked(options, path).map(|(file, _)| file)
}

/// [`open_regular`], with the metadata it checked.
fn open_checked(options: &OpenOptions, path: &Path) -> Result<(File, fs::Metadata), IoAt> {
    let file = options.open(path).at(path)?;
    let meta = file.metadata().at(path)?;
    if meta.file_type().is_file() {
        Ok((file, meta))
    } else {
        Err(IoAt::new(
            path,
            io::Error::other(format!(
                "is {}, not a regular file",
                what_it_is(meta.file_type())
            )),
        ))
    }
}

fn what_it_is(kind: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Why a file could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] IoAt),
    #[error("{}: is {size} bytes or more, over the {limit}-byte limit", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io(e) if e.source.kind() == io::ErrorKind::NotFound)
    }
}

/// Reads the regular file at `path` (links followed: a config file may live in a dotfiles
/// repo), at most `limit` bytes of it, also if it grows while being read.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let (file, meta) = open_checked(&options, path)?;
    let too_large = |size| ReadError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    };
    let size = meta.len();
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).at(path)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
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
