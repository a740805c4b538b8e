//! A config dir on a disk that refuses writes: read-only, everything but edits works and an
//! edit says clearly it was not saved; full, an edit that fails was not applied and leaves no
//! temp file. Real disks: a small tmpfs mounted for the test (needs root, as in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A tmpfs of `size` mounted on a temp dir, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (the test says it is skipped) where mounting is not allowed (not root).
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::create_dir(&path).unwrap();
        let options = format!("size={size},mode=0700");
        if !mount(&["-t", "tmpfs", "-o", &options, "tmpfs"], &path) {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Self { path, _dir: dir })
    }

    fn remount(&self, mode: &str) {
        let options = format!("remount,{mode}");
        assert!(mount(&["-o", &options], &self.path), "remount {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn mount(args: &[&str], path: &Path) -> bool {
    Command::new("mount")
        .args(args)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

fn names_listed(dir: &Path) -> Vec<String> {
    let out = cli(dir, &["registry", "list", "--json"]);
    assert!(out.status.success(), "list: {}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

const URL: &str = "http://127.0.0.1:9/mcp";

#[test]
fn a_read_only_config_dir_refuses_edits_only_and_says_so() {
    let Some(disk) = Tmpfs::mount("1m") else {
        return;
    };
    let dir = &disk.path;
    let out = cli(dir, &["registry", "add", "a", "--url", URL]);
    assert!(out.status.success(), "{}", stderr(&out));
    disk.remount("ro");
    assert_eq!(names_listed(dir), ["a"], "listing needs no write");
    let synced = cli(dir, &["sync", "--once", "--json"]);
    assert!(synced.status.success(), "sync --once: {}", stderr(&synced));
    assert!(stdout(&synced).contains("\"a\""), "{}", stdout(&synced));
    let refused = cli(dir, &["registry", "add", "b", "--url", URL]);
    assert!(!refused.status.success());
    let why = stderr(&refused);
    assert!(
        why.contains("is read-only") && why.contains("not saved"),
        "a clear refusal: {why}"
    );
    assert_eq!(
        why.matches("os error 30").count(),
        1,
        "the cause said once: {why}"
    );
    disk.remount("rw");
    assert_eq!(
        names_listed(dir),
        ["a"],
        "nothing of the refused edit is left"
    );
}

#[test]
fn on_a_full_disk_a_failed_edit_is_not_applied_and_leaves_nothing() {
    let Some(disk) = Tmpfs::mount("64k") else {
        return;
    };
    let dir = &disk.path;
    let out = cli(dir, &["registry", "add", "a", "--url", URL]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Fill what is left, to the last byte.
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut file, &[0; 4096]).is_ok() {}
    while std::io::Write::write_all(&mut file, &[0]).is_ok() {}
    drop(file);
    let refused = cli(dir, &["registry", "add", "b", "--url", URL]);
    assert!(!refused.status.success(), "the add cannot be saved");
    assert!(
        stderr(&refused).contains("No space left"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(names_listed(dir), ["a"], "the failed add was not applied");
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
    std::fs::remove_file(&filler).unwrap();
    let retried = cli(dir, &["registry", "add", "b", "--url", URL]);
    assert!(
        retried.status.success(),
        "the retry is a new add: {}",
        stderr(&retried)
    );
    assert_eq!(names_listed(dir), ["a", "b"]);
}

/// Whether anything accepts connections on 127.0.0.1:`port`.
fn listening(port: &str) -> bool {
    std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok()
}

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_change_the_daemon_cannot_save_is_not_served_either() {
    let Some(disk) = Tmpfs::mount("1m") else {
        return;
    };
    let dir = &disk.path;
    let _daemon = crate::daemon::start_daemon_with(dir, &[]).await;
    // The token is made at the first `on`; with it there, only the setting's save can fail.
    let out = run_cli(dir, &["endpoint", "on", "--port", &free_port()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_cli(dir, &["endpoint", "off"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let port = free_port();

    // The daemon keeps files open for writing, so the disk cannot be remounted read-only
    // under it: it is filled instead.
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut file, &[0; 4096]).is_ok() {}
    while std::io::Write::write_all(&mut file, &[0]).is_ok() {}
    drop(file);
    let out = run_cli(dir, &["endpoint", "on", "--port", &port]).await;
    assert!(!out.status.success(), "{}", stdout(&out));
    let why = stderr(&out);
    assert!(
        why.contains("endpoint.json") && why.contains("No space left"),
        "says what could not be saved, and why: {why}"
    );
    assert!(
        !listening(&port),
        "a change that would be undone at the next start is not served now"
    );
    std::fs::remove_file(&filler).unwrap();
    let status = crate::daemon::json(&run_cli(dir, &["endpoint", "--json"]).await);
    assert_eq!(status["enabled"], false, "as it was: {status}");
    let out = run_cli(dir, &["endpoint", "on", "--port", &port]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(listening(&port), "saved, then served");
}
