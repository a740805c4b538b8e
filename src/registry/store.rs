//! The registry's files on disk and the in-memory state they add up to.
//!
//! Blocking code, owned by the writer thread. Every method that touches the files takes the
//! cross-process lock first and catches up with what other processes wrote since it last looked:
//! a replaced `servers.json` is reloaded, new journal lines are replayed.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::RegistryError;
use super::edit::{Edit, apply_batch};
use super::journal;
use super::lock::RegistryLock;
use super::model::ServersFileV1;
use crate::durable::{self, AtPath, IoAt, private_file_options};

/// Largest `servers.json` read: far beyond any real registry (200 servers take ~40 KB), small
/// enough that a hostile or runaway file cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Largest journal read. It is emptied on every rewrite, so it only grows while `servers.json`
/// is broken and rewrites are suspended.
pub const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Where the registry's files live.
#[derive(Debug, Clone)]
pub struct RegistryPaths {
    pub dir: PathBuf,
    pub servers: PathBuf,
    pub journal: PathBuf,
    pub lock: PathBuf,
}

impl RegistryPaths {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            servers: dir.join("servers.json"),
            journal: dir.join("servers.journal"),
            lock: dir.join("servers.lock"),
        }
    }
}

/// Counters of the work the registry did, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct StoreCounters {
    pub journal_bytes: AtomicU64,
    pub journal_fsyncs: AtomicU64,
    pub file_rewrites: AtomicU64,
    pub file_bytes: AtomicU64,
    pub rewrite_nanos: AtomicU64,
}

/// Identifies one version of `servers.json`, so a change by anyone else is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp_of(path: &Path) -> Result<Option<FileStamp>, RegistryError> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
            #[cfg(not(unix))]
            inode: 0,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoAt::new(path, e).into()),
    }
}

/// Reads and validates `servers.json`; a missing file is an empty registry.
pub fn read_servers_file(path: &Path) -> Result<ServersFileV1, RegistryError> {
    let bytes = match durable::read_bounded(path, MAX_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(ServersFileV1::default()),
        Err(durable::ReadError::Io(e)) => return Err(e.into()),
        Err(durable::ReadError::TooLarge { path, size, limit }) => {
            return Err(RegistryError::TooLarge { path, size, limit });
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::parse(path.to_path_buf(), &e))
}

/// Opens the journal for appending; in a config dir that cannot be written, for reading (with
/// why edits cannot be saved), or, where there is none, an empty stand-in nothing writes to.
fn open_journal(path: &Path) -> Result<(File, Option<String>), RegistryError> {
    let mut options = private_file_options();
    options.read(true).append(true).create(true);
    let (journal, refused) = match durable::open_or_read_only(&options, path)? {
        durable::Opened::Writable(journal) => return Ok((journal, None)),
        durable::Opened::ReadOnly(Some(journal), refused) => (journal, refused),
        durable::Opened::ReadOnly(None, refused) => (
            tempfile::tempfile().map_err(|e| durable::IoAt::new(path, e))?,
            refused,
        ),
    };
    tracing::info!(path = %path.display(), reason = %refused, "the registry is read-only here");
    Ok((journal, Some(refused)))
}

/// What the registry holds, and how far into the files it has read.
pub struct Store {
    paths: RegistryPaths,
    lock_timeout: Duration,
    journal: File,
    state: ServersFileV1,
    last_seq: u64,
    /// Bytes of the journal already applied; always at a line boundary.
    journal_offset: u64,
    file_stamp: Option<FileStamp>,
    /// Set while `servers.json` does not parse: its content is unknown, so it is not rewritten.
    file_error: Option<RegistryError>,
    /// Why edits cannot be saved, when the config dir cannot be written (a read-only disk or
    /// mount): the registry is read and followed as usual, and every edit is refused up front.
    read_only: Option<String>,
    counters: Arc<StoreCounters>,
}

impl Store {
    /// Loads the registry. A `servers.json` that does not parse is an error here: with no earlier
    /// state to fall back on, starting empty would invite overwriting the user's servers.
    pub fn open(
        paths: RegistryPaths,
        lock_timeout: Duration,
        counters: Arc<StoreCounters>,
    ) -> Result<(Self, usize), RegistryError> {
        durable::create_private_dir(&paths.dir)?;
        let (journal, read_only) = open_journal(&paths.journal)?;
        let mut store = Self {
            paths,
            lock_timeout,
            journal,
            state: ServersFileV1::default(),
            last_seq: 0,
            journal_offset: 0,
            file_stamp: None,
            file_error: None,
            read_only,
            counters,
        };
        let lock = store.lock()?;
        store.state = read_servers_file(&store.paths.servers)?;
        store.last_seq = store.state.switchboard.journal_seq;
        store.file_stamp = stamp_of(&store.paths.servers)?;
        let replayed = store.catch_up(&lock)?;
        Ok((store, replayed))
    }

    pub fn state(&self) -> &ServersFileV1 {
        &self.state
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn file_error(&self) -> Option<&RegistryError> {
        self.file_error.as_ref()
    }

    /// Refuses what would write to a config dir that cannot be written.
    fn writable(&self) -> Result<(), RegistryError> {
        match &self.read_only {
            None => Ok(()),
            Some(reason) => Err(RegistryError::ReadOnly {
                dir: self.paths.dir.clone(),
                reason: reason.clone(),
            }),
        }
    }

    fn lock(&self) -> Result<RegistryLock, RegistryError> {
        RegistryLock::acquire(&self.paths.lock, self.lock_timeout)
    }

    /// Looks for changes made by others (another process, or a person editing the file).
    /// Returns whether anything visible changed.
    pub fn refresh(&mut self) -> Result<bool, RegistryError> {
        let lock = self.lock()?;
        let error_before = self.file_error.as_ref().map(ToString::to_string);
        let seq_before = self.last_seq;
        let reloaded = self.reload_if_replaced(&lock)?;
        self.catch_up(&lock)?;
        let error_after = self.file_error.as_ref().map(ToString::to_string);
        Ok(reloaded || seq_before != self.last_seq || error_before != error_after)
    }

    /// Journals a group of batches with one write and one fsync (group commit), each batch
    /// validated against the state the ones before it left. Returns one result per batch.
    pub fn commit(&mut self, batches: &[Vec<Edit>]) -> Vec<Result<u64, RegistryError>> {
        let fail_all = |e: RegistryError| batches.iter().map(|_| Err(e.clone())).collect();
        if let Err(e) = self.writable() {
            return fail_all(e);
        }
        let lock = match self.lock() {
            Ok(lock) => lock,
            Err(e) => return fail_all(e),
        };
        if let Err(e) = self
            .reload_if_replaced(&lock)
            .and_then(|_| self.catch_up(&lock))
        {
            return fail_all(e);
        }
        let mut lines = Vec::new();
        let mut results = Vec::with_capacity(batches.len());
        for batch in batches {
            match apply_batch(batch, &mut self.state) {
                Ok(()) => {
                    self.last_seq += 1;
                    match journal::encode(self.last_seq, batch) {
                        Ok(line) => lines.extend(line),
                        Err(e) => unreachable!("journal lines are plain data: {e}"),
                    }
                    results.push(Ok(self.last_seq));
                }
                Err(rejected) => results.push(Err(rejected.into())),
            }
        }
        if lines.is_empty() {
            return results;
        }
        let written = self
            .journal
            .write_all(&lines)
            .and_then(|()| self.journal.sync_data())
            .at(&self.paths.journal);
        match written {
            Ok(()) => {
                self.journal_offset += lines.len() as u64;
                self.counters
                    .journal_bytes
                    .fetch_add(lines.len() as u64, Ordering::Relaxed);
                self.counters.journal_fsyncs.fetch_add(1, Ordering::Relaxed);
                results
            }
            Err(e) => {
                // Nothing in this group was acknowledged: cut what may have reached the file and
                // rebuild memory from disk, so neither holds an edit its caller saw fail.
                let _ = self.journal.set_len(self.journal_offset);
                if let Err(reload) = self.reload(&lock).and_then(|_| self.catch_up(&lock)) {
                    tracing::error!(%reload, "could not reload the registry after a failed write");
                }
                let e = RegistryError::from(e);
                results.into_iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    /// Writes the whole registry to `servers.json` atomically and empties the journal.
    pub fn rewrite(&mut self) -> Result<(), RegistryError> {
        self.writable()?;
        let lock = self.lock()?;
        self.reload_if_replaced(&lock)?;
        self.catch_up(&lock)?;
        if let Some(error) = &self.file_error {
            return Err(RegistryError::Suspended {
                path: self.paths.servers.clone(),
                reason: error.to_string(),
            });
        }
        let started = Instant::now();
        self.state.switchboard.journal_seq = self.last_seq;
        let mut bytes = match serde_json::to_vec_pretty(&self.state) {
            Ok(bytes) => bytes,
            Err(e) => unreachable!("the registry is plain data: {e}"),
        };
        bytes.push(b'\n');
        durable::replace_file(&self.paths.servers, &bytes)?;
        // The new file holds every journaled edit (its journalSeq says so); a crash before this
        // truncation only leaves lines that replay will skip.
        self.journal
            .set_len(0)
            .and_then(|()| self.journal.sync_all())
            .at(&self.paths.journal)?;
        self.journal_offset = 0;
        self.file_stamp = stamp_of(&self.paths.servers)?;
        let c = &self.counters;
        c.file_rewrites.fetch_add(1, Ordering::Relaxed);
        c.file_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        c.rewrite_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Reloads `servers.json` if someone replaced or edited it. A version that does not parse is
    /// remembered as the file error and the current state kept.
    fn reload_if_replaced(&mut self, lock: &RegistryLock) -> Result<bool, RegistryError> {
        let stamp = stamp_of(&self.paths.servers)?;
        let journal_len = self.journal.metadata().at(&self.paths.journal)?.len();
        if stamp == self.file_stamp && journal_len >= self.journal_offset {
            return Ok(false);
        }
        self.reload(lock)
    }

    /// Reads `servers.json` afresh (the journal is then replayed from its start by `catch_up`).
    /// Also after a failed journal write, which left memory ahead of the files: whatever the
    /// file's stamp says.
    fn reload(&mut self, _lock: &RegistryLock) -> Result<bool, RegistryError> {
        self.file_stamp = stamp_of(&self.paths.servers)?;
        match read_servers_file(&self.paths.servers) {
            Ok(file) => {
                if self.file_error.take().is_some() {
                    tracing::info!(path = %self.paths.servers.display(), "servers.json is valid again");
                }
                self.last_seq = file.switchboard.journal_seq;
                self.state = file;
                self.journal_offset = 0;
                Ok(true)
            }
            Err(e) if e.is_bad_content() => {
                tracing::warn!(error = %e, "servers.json does not parse; keeping the last good registry");
                self.file_error = Some(e);
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Replays journal lines written since `journal_offset`. Returns how many batches applied.
    fn catch_up(&mut self, _lock: &RegistryLock) -> Result<usize, RegistryError> {
        let path = &self.paths.journal;
        let len = self.journal.metadata().at(path)?.len();
        if len == self.journal_offset {
            return Ok(0);
        }
        if len - self.journal_offset > MAX_JOURNAL_BYTES {
            return Err(RegistryError::TooLarge {
                path: path.clone(),
                size: len,
                limit: MAX_JOURNAL_BYTES,
            });
        }
        let mut bytes = Vec::with_capacity((len - self.journal_offset) as usize);
        self.journal
            .seek(SeekFrom::Start(self.journal_offset))
            .and_then(|_| {
                (&self.journal)
                    .take(len - self.journal_offset)
                    .read_to_end(&mut bytes)
            })
            .at(path)?;
        let scan = journal::scan(&bytes).map_err(|damaged| RegistryError::JournalDamaged {
            path: path.clone(),
            line: self.lines_before_offset() + damaged.line,
            reason: damaged.reason,
        })?;
        let mut applied = 0;
        for record in scan.records {
            if record.seq <= self.last_seq {
                continue; // already in servers.json (a crash came between rename and truncate)
            }
            for edit in &record.edits {
                edit.replay(&mut self.state);
            }
            self.last_seq = record.seq;
            applied += 1;
        }
        self.journal_offset += scan.valid_len as u64;
        if scan.torn_tail {
            // An unacknowledged write cut short by a crash; the next append must not follow it.
            self.journal
                .set_len(self.journal_offset)
                .and_then(|()| self.journal.sync_data())
                .at(path)?;
        }
        Ok(applied)
    }

    fn lines_before_offset(&self) -> usize {
        let mut head = Vec::new();
        let read = File::open(&self.paths.journal)
            .and_then(|f| f.take(self.journal_offset).read_to_end(&mut head));
        read.map(|_| head.iter().filter(|&&b| b == b'\n').count())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::edit::Edit;
    use crate::registry::model::{RemoteKind, ServerEntry, ServerName};

    fn add(name: &str) -> Vec<Edit> {
        vec![Edit::Add {
            name: ServerName::new(name).unwrap(),
            entry: ServerEntry::remote("http://127.0.0.1:9/mcp", RemoteKind::Http),
        }]
    }

    #[test]
    fn an_edit_whose_journal_write_failed_is_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        let paths = RegistryPaths::in_dir(dir.path());
        let (mut store, _) =
            Store::open(paths.clone(), Duration::from_secs(5), Arc::default()).unwrap();
        assert!(store.commit(&[add("kept")])[0].is_ok());
        // As a full disk would: the journal refuses the next write.
        let writable = std::mem::replace(&mut store.journal, File::open(&paths.journal).unwrap());
        assert!(store.commit(&[add("lost")])[0].is_err());
        let names: Vec<&str> = store
            .state()
            .mcp_servers
            .keys()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(
            names,
            ["kept"],
            "memory holds what the files hold, no more, no less"
        );
        store.journal = writable;
        assert!(
            store.commit(&[add("lost")])[0].is_ok(),
            "the retry of the failed add is not 'already exists'"
        );
    }
}
