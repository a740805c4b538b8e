//! The cross-process writer lock on `servers.lock`.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use fs4::{FileExt, TryLockError};

use super::RegistryError;
use crate::durable::{IoAt, Opened, open_or_read_only, private_file_options};

/// An exclusive `fs4` lock on `servers.lock`, held by one Switchboard process (app or CLI) while
/// it touches the registry files. Released when this value is dropped (closing the file releases
/// the lock, also when the process dies).
#[must_use = "the lock is released as soon as this value is dropped"]
pub struct RegistryLock {
    _file: Option<File>,
}

impl RegistryLock {
    /// Waits for the lock, giving up after `timeout` with an error naming the file.
    /// In a config dir that cannot be written the lock file is locked read-only where it
    /// exists; where it does not, nobody can have written since, and no lock is needed.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Self, RegistryError> {
        let mut options = private_file_options();
        options.read(true).write(true).create(true).truncate(false);
        let file = match open_or_read_only(&options, path)? {
            Opened::Writable(file) | Opened::ReadOnly(Some(file), _) => file,
            Opened::ReadOnly(None, _) => return Ok(Self { _file: None }),
        };
        let started = Instant::now();
        let mut pause = Duration::from_micros(100);
        loop {
            match FileExt::try_lock(&file) {
                Ok(()) => return Ok(Self { _file: Some(file) }),
                Err(TryLockError::Error(e)) => return Err(IoAt::new(path, e).into()),
                Err(TryLockError::WouldBlock) if started.elapsed() >= timeout => {
                    return Err(RegistryError::LockTimeout {
                        path: path.to_path_buf(),
                        waited: started.elapsed(),
                    });
                }
                // Holders keep the lock for one fsync, so a short capped backoff is enough; flock
                // has no timed wait to block on instead.
                Err(TryLockError::WouldBlock) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_with_its_path_and_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("servers.lock");
        let held = RegistryLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let err = RegistryLock::acquire(&path, Duration::from_millis(30))
            .err()
            .expect("a second holder must wait");
        assert!(err.to_string().contains("servers.lock"), "{err}");
        drop(held);
        let _again =
            RegistryLock::acquire(&path, Duration::from_millis(30)).expect("released on drop");
    }
}
