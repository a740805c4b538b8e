//! Hostile files, servers and faults (issue 15): each case a regression test for a failure seen
//! when the engine was attacked on purpose.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use crate::support::*;

/// A link planted where Switchboard once put its temp file, and one for every name a writer
/// could pick, must not get the registry (secrets included) written through them.
#[tokio::test]
async fn links_in_the_config_dir_are_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, "untouched\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    for planted in [
        ".servers.json.tmp",
        "servers.json.tmp",
        "manifest-cache.json.tmp",
    ] {
        symlink(&victim, dir.path().join(planted)).unwrap();
    }

    let out = cli(
        dir.path(),
        &[
            "registry",
            "add",
            "wiki",
            "--url",
            "http://127.0.0.1:9/mcp",
            "--header",
            "X-Api-Key=very-secret",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched\n");
    let servers = servers_json(dir.path());
    let meta = fs::symlink_metadata(&servers).unwrap();
    assert!(meta.file_type().is_file(), "servers.json is a plain file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(
        fs::read_to_string(&servers)
            .unwrap()
            .contains("very-secret")
    );
    let left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") && !n.contains("json.tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left behind: {left:?}");
}

/// A journal that is a link to another file is refused by name, and that file keeps its bytes.
#[tokio::test]
async fn a_linked_journal_is_refused_and_its_target_kept() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("notes.txt");
    fs::write(&victim, "one line worth keeping\n").unwrap();
    symlink(&victim, dir.path().join("servers.journal")).unwrap();

    for args in [
        &["registry", "add", "wiki", "--url", "http://127.0.0.1:9/mcp"][..],
        &["registry", "list"][..],
    ] {
        let out = cli(dir.path(), args);
        assert!(
            !out.status.success(),
            "{args:?} must not go through the link"
        );
        let message = stderr(&out);
        assert!(
            message.contains("servers.journal") && message.contains("symbolic link"),
            "{args:?}: the error names the file and why: {message}"
        );
        assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    }
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        "one line worth keeping\n"
    );
}
