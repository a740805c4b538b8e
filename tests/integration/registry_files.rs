//! The registry against files it did not write: hostile, broken, edited by hand, torn.

use std::fs;
use std::path::Path;
use std::time::Duration;

use switchboard::registry::{MAX_FILE_BYTES, Registry, RegistryOptions};

use crate::support::*;

/// Files a user, a bug or an attacker could leave; each must be refused with a clear error.
fn hostile_files() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let valid = br#"{"mcpServers":{"wiki":{"url":"http://127.0.0.1:1/mcp"}}}"#.to_vec();
    let mut huge = b"{\"mcpServers\":{},\"pad\":\"".to_vec();
    huge.resize(MAX_FILE_BYTES as usize + 10, b'x');
    huge.extend_from_slice(b"\"}");
    vec![
        (
            "truncated",
            valid[..valid.len() - 5].to_vec(),
            "EOF while parsing",
        ),
        (
            "garbage",
            vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0x01],
            "expected value",
        ),
        ("wrong top-level type", b"[1,2,3]".to_vec(), "invalid type"),
        (
            "wrong servers type",
            br#"{"mcpServers":"all of them"}"#.to_vec(),
            "invalid type",
        ),
        (
            "wrong field type",
            b"{\"mcpServers\":{\"a\":\n{\"command\":[\"x\"]}}}".to_vec(),
            ":2:",
        ),
        ("huge", huge, "over the"),
        (
            "deep nesting",
            [
                &b"{\"mcpServers\":{\"a\":{\"command\":\"x\",\"deep\":"[..],
                &[b'['; 100_000],
                &[b']'; 100_000],
                b"}}}",
            ]
            .concat(),
            "recursion limit",
        ),
        (
            "control char in name",
            br#"{"mcpServers":{"a\u001bb":{"command":"x"}}}"#.to_vec(),
            "control character",
        ),
        (
            "header injection",
            br#"{"mcpServers":{"a":{"url":"http://h/","headers":{"X":"1\r\nHost: evil"}}}}"#
                .to_vec(),
            "line break",
        ),
        (
            "NUL in command",
            br#"{"mcpServers":{"a":{"command":"x\u0000y"}}}"#.to_vec(),
            "NUL",
        ),
        (
            "non-http url",
            br#"{"mcpServers":{"a":{"url":"javascript:alert(1)"}}}"#.to_vec(),
            "scheme",
        ),
        (
            "overlong name",
            format!(
                r#"{{"mcpServers":{{"{}":{{"command":"x"}}}}}}"#,
                "n".repeat(500)
            )
            .into_bytes(),
            "over the limit",
        ),
        (
            "invalid UTF-8",
            b"{\"mcpServers\":{\"\xff\xfe\":{\"command\":\"x\"}}}".to_vec(),
            "invalid unicode",
        ),
    ]
}

#[tokio::test]
async fn hostile_files_get_a_clear_error_and_are_never_overwritten() {
    for (case, bytes, expected) in hostile_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = servers_json(dir.path());
        fs::write(&path, &bytes).unwrap();
        let err = match Registry::open(options(dir.path())).await {
            Ok(_) => panic!("{case}: a bad servers.json must not open"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("servers.json"),
            "{case}: error should name the file: {err}"
        );
        assert!(
            err.contains(expected),
            "{case}: expected {expected:?} in: {err}"
        );

        let out = cli(
            dir.path(),
            &["registry", "add", "new", "--url", "http://127.0.0.1:2/mcp"],
        );
        assert!(!out.status.success(), "{case}: the CLI must refuse to edit");
        let message = stderr(&out);
        assert_eq!(
            message.trim_end().lines().count(),
            1,
            "{case}: one-line error, got {message:?}"
        );
        assert!(message.contains("servers.json"), "{case}: {message}");
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "{case}: the file was modified"
        );
    }
}

#[tokio::test]
async fn unknown_fields_survive_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        servers_json(dir.path()),
        r#"{"globalShortcut":"Ctrl+M","mcpServers":{"fs":{"command":"npx","autoApprove":["read"],"x-note":{"k":1}}}}"#,
    )
    .unwrap();
    let registry = open(dir.path()).await;
    registry.add(name("new"), remote(5)).await.unwrap();
    registry.set_enabled(name("fs"), false).await.unwrap();
    registry.close().await.unwrap();
    let file: serde_json::Value =
        serde_json::from_slice(&fs::read(servers_json(dir.path())).unwrap()).unwrap();
    assert_eq!(
        file["globalShortcut"], "Ctrl+M",
        "top-level unknown field lost: {file}"
    );
    assert_eq!(
        file["mcpServers"]["fs"]["autoApprove"][0], "read",
        "entry unknown field lost: {file}"
    );
    assert_eq!(file["mcpServers"]["fs"]["x-note"]["k"], 1, "{file}");
    assert_eq!(file["mcpServers"]["fs"]["enabled"], false, "{file}");
}

/// Leaves one journaled, not yet rewritten edit in `dir` and returns the journal's bytes.
async fn journal_with_pending_edits(dir: &Path, names: &[&str]) -> Vec<u8> {
    let registry = Registry::open(RegistryOptions {
        quiet: Duration::from_secs(600),
        max_delay: Duration::from_secs(600),
        watch: false,
        ..RegistryOptions::in_dir(dir)
    })
    .await
    .unwrap();
    for (i, n) in names.iter().enumerate() {
        registry.add(name(n), remote(i as u16 + 1)).await.unwrap();
    }
    let journal = fs::read(dir.join("servers.journal")).unwrap();
    assert!(
        !journal.is_empty() && !servers_json(dir).exists(),
        "edits should be journaled only"
    );
    // Simulate a crash: the next opener sees only the journal.
    std::mem::forget(registry);
    journal
}

#[tokio::test]
async fn a_torn_journal_tail_is_ignored_and_cut_before_the_next_append() {
    let source = tempfile::tempdir().unwrap();
    let journal = journal_with_pending_edits(source.path(), &["a", "b"]).await;
    let first_line = journal.iter().position(|&b| b == b'\n').unwrap() + 1;
    for cut in [first_line + 1, first_line + 20, journal.len() - 1] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("servers.journal"), &journal[..cut]).unwrap();
        let registry = open(dir.path()).await;
        let names: Vec<String> = registry
            .snapshot()
            .servers
            .keys()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["a"], "cut at {cut}: only the complete line counts");
        registry.add(name("c"), remote(3)).await.unwrap();
        registry.close().await.unwrap();
        let reopened = open(dir.path()).await;
        let names: Vec<String> = reopened
            .snapshot()
            .servers
            .keys()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["a", "c"], "cut at {cut}");
        reopened.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_damaged_journal_line_is_an_error_naming_it_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = journal_with_pending_edits(dir.path(), &["a", "b", "c"]).await;
    let first_line = journal.iter().position(|&b| b == b'\n').unwrap() + 1;
    journal[first_line + 15] ^= 0x20; // flip a bit inside line 2
    fs::write(dir.path().join("servers.journal"), &journal).unwrap();
    let err = match Registry::open(options(dir.path())).await {
        Ok(_) => panic!("a damaged middle line must not be skipped silently"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("servers.journal line 2"), "{err}");
    assert_eq!(
        fs::read(dir.path().join("servers.journal")).unwrap(),
        journal,
        "the journal was modified"
    );
}

#[tokio::test]
async fn an_external_edit_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path()).await;
    registry.add(name("ours"), remote(1)).await.unwrap();
    registry.flush().await.unwrap();
    let mut file: serde_json::Value =
        serde_json::from_slice(&fs::read(servers_json(dir.path())).unwrap()).unwrap();
    file["mcpServers"]["theirs"] =
        serde_json::json!({"command": "uvx", "args": ["mcp-server-time"]});
    // In place, the way many editors save.
    fs::write(
        servers_json(dir.path()),
        serde_json::to_vec_pretty(&file).unwrap(),
    )
    .unwrap();
    wait_for_snapshot(&registry, "the hand-added server appears", |s| {
        s.servers.contains_key(&name("theirs")) && s.servers.contains_key(&name("ours"))
    })
    .await;
    registry.close().await.unwrap();
}

#[tokio::test]
async fn a_broken_external_edit_is_left_alone_until_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = servers_json(dir.path());
    let registry = open(dir.path()).await;
    registry.add(name("a"), remote(1)).await.unwrap();
    registry.flush().await.unwrap();

    let broken = b"{\"mcpServers\": {\n  \"a\": {\"url\": \"http://127.0.0.1:1/mcp\"},\n  \"b\": {\"url\": }\n}}\n";
    fs::write(&path, broken).unwrap();
    let snapshot = wait_for_snapshot(&registry, "the parse error is reported", |s| {
        s.file_error.is_some()
    })
    .await;
    let error = snapshot.file_error.as_ref().unwrap().to_string();
    assert!(
        error.contains("servers.json:3:"),
        "error should give line 3: {error}"
    );
    assert!(
        snapshot.servers.contains_key(&name("a")),
        "the last good registry is kept"
    );

    registry
        .add(name("during"), remote(2))
        .await
        .expect("edits are still journaled");
    let flushed = registry.flush().await.unwrap_err();
    assert_eq!(flushed.code(), "suspended", "{flushed}");
    assert_eq!(
        fs::read(&path).unwrap(),
        broken,
        "a broken file must never be overwritten"
    );

    fs::write(&path, br#"{"mcpServers": {"a": {"url": "http://127.0.0.1:1/mcp"}, "fixed": {"command": "x"}}, "switchboard": {"journalSeq": 1}}"#).unwrap();
    wait_for_snapshot(
        &registry,
        "the fixed file is loaded and the journaled edit replayed",
        |s| {
            s.file_error.is_none()
                && s.servers.contains_key(&name("fixed"))
                && s.servers.contains_key(&name("during"))
        },
    )
    .await;
    registry
        .flush()
        .await
        .expect("writing resumes once the file is valid");
    let file: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let names: Vec<&String> = file["mcpServers"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["a", "fixed", "during"], "{file}");
    registry.close().await.unwrap();
}
