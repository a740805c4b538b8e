//! The `switchboard registry …` command line, exactly as outside tests drive it.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::support::*;

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
    stdout(&out)
}

fn fails(dir: &Path, args: &[&str], expected: &str) {
    let out = cli(dir, args);
    assert!(!out.status.success(), "{args:?} should fail");
    let message = stderr(&out);
    assert!(
        message.contains(expected),
        "{args:?}: expected {expected:?} in {message:?}"
    );
    assert_eq!(
        message.trim_end().lines().count(),
        1,
        "{args:?}: one-line error: {message:?}"
    );
}

fn list(dir: &Path) -> Vec<Value> {
    let rows: Value = serde_json::from_str(&ok(dir, &["registry", "list", "--json"])).unwrap();
    rows.as_array().unwrap().clone()
}

#[test]
fn registry_commands_follow_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("config");
    assert!(list(dir).is_empty(), "a fresh config dir lists nothing");
    ok(
        dir,
        &[
            "registry",
            "add",
            "wiki",
            "--url",
            "http://127.0.0.1:7001/sse",
            "--type",
            "sse",
            "--header",
            "Authorization=Bearer sekrit",
        ],
    );
    ok(
        dir,
        &[
            "registry",
            "add",
            "fs",
            "--command",
            "npx",
            "--arg",
            "-y",
            "--arg",
            "@modelcontextprotocol/server-filesystem",
            "--env",
            "ROOT=/tmp",
        ],
    );

    let rows = list(dir);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "wiki");
    assert_eq!(rows[0]["transport"], "sse");
    assert_eq!(rows[0]["url"], "http://127.0.0.1:7001/sse");
    assert_eq!(rows[0]["enabled"], true);
    assert_eq!(rows[1]["transport"], "stdio");
    assert_eq!(rows[1]["command"], "npx");
    assert_eq!(
        rows[1]["args"],
        serde_json::json!(["-y", "@modelcontextprotocol/server-filesystem"])
    );
    let listed = ok(dir, &["registry", "list", "--json"]) + &ok(dir, &["registry", "list"]);
    assert!(
        !listed.contains("sekrit"),
        "a header value leaked into the listing: {listed}"
    );

    ok(dir, &["registry", "disable", "wiki"]);
    assert_eq!(list(dir)[0]["enabled"], false);
    let export: Value =
        serde_json::from_str(&ok(dir, &["registry", "export", "--format", "claude"])).unwrap();
    assert!(
        export["mcpServers"].get("wiki").is_none(),
        "a disabled server is not exported: {export}"
    );
    assert_eq!(export["mcpServers"]["fs"]["command"], "npx");
    ok(dir, &["registry", "enable", "wiki"]);
    let export: Value = serde_json::from_str(&ok(dir, &["registry", "export"])).unwrap();
    assert_eq!(export["mcpServers"]["wiki"]["type"], "sse");
    assert_eq!(
        export["mcpServers"]["wiki"]["headers"]["Authorization"], "Bearer sekrit",
        "export is for other clients: it carries the header"
    );

    // The file on disk holds the edit once the command has returned.
    let file: Value = serde_json::from_slice(&fs::read(dir.join("servers.json")).unwrap()).unwrap();
    assert!(
        file["mcpServers"]["wiki"].get("enabled").is_none(),
        "enabled is the default: {file}"
    );

    ok(dir, &["registry", "remove", "fs"]);
    assert_eq!(list(dir).len(), 1);

    fails(
        dir,
        &["registry", "add", "wiki", "--url", "http://127.0.0.1:1/mcp"],
        "already exists",
    );
    fails(
        dir,
        &["registry", "remove", "nope"],
        "no server named \"nope\"",
    );
    fails(dir, &["registry", "enable", "nope"], "nope");
    fails(
        dir,
        &["registry", "add", "bad", "--url", "ftp://127.0.0.1/"],
        "scheme",
    );
    let out = cli(dir, &["registry", "add", "x.y", "--command", "x"]);
    assert!(
        !out.status.success() && stderr(&out).contains("'.'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn import_previews_then_applies_and_reports_clashes_and_secrets() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let project = home.join("project");
    let write = |rel: &str, text: &str| {
        let path = home.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        ".config/Claude/claude_desktop_config.json",
        r#"{"mcpServers":{"time":{"command":"uvx","args":["mcp-server-time"]},"gh":{"command":"npx","env":{"GITHUB_TOKEN":"ghp_secret"}}}}"#,
    );
    write(
        ".cursor/mcp.json",
        r#"{"mcpServers":{"wiki":{"url":"http://127.0.0.1:7002/mcp"}}}"#,
    );
    write(
        "project/.cursor/mcp.json",
        r#"{"mcpServers":{"time":{"command":"uvx","args":["mcp-server-time"]}}}"#,
    );
    write(
        "project/.vscode/mcp.json",
        "{\n// comment\n\"servers\":{\"vs\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:7003/mcp\"}}}",
    );
    write(
        ".codeium/windsurf/mcp_config.json",
        r#"{"mcpServers":{"surf":{"serverUrl":"http://127.0.0.1:7004/sse"}}}"#,
    );
    write(
        ".config/zed/settings.json",
        r#"{"context_servers":{"zed-one":{"command":{"path":"node","args":["z.js"]}}}}"#,
    );
    write(
        ".config/cortex-os/mcp/servers.json",
        r#"{"servers":[{"name":"old","transport":"sse","endpoint":"http://127.0.0.1:7005/sse"}]}"#,
    );
    let config = home.join("switchboard");
    let run = |args: &[&str]| {
        let out = switchboard()
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .current_dir(&project)
            .arg("--config-dir")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };

    let preview = run(&["registry", "import", "--from", "claude", "--dry-run"]);
    assert!(preview.contains("+ add        time"), "{preview}");
    assert!(preview.contains("secret in env.GITHUB_TOKEN"), "{preview}");
    assert!(
        !preview.contains("ghp_secret"),
        "the secret itself must not be printed: {preview}"
    );
    assert!(preview.contains("would add 2"), "{preview}");
    assert!(list(&config).is_empty(), "a dry run writes nothing");

    let all = run(&["registry", "import"]);
    assert!(
        all.contains("= unchanged  time"),
        "the project's copy of time is the same server: {all}"
    );
    let names: BTreeSet<String> = list(&config)
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = ["time", "gh", "wiki", "vs", "surf", "zed-one", "old"]
        .map(String::from)
        .into();
    assert_eq!(names, want);

    write(
        ".config/Claude/claude_desktop_config.json",
        r#"{"mcpServers":{"time":{"command":"uvx","args":["mcp-server-time","--local-timezone=UTC"]}}}"#,
    );
    let again = run(&["registry", "import", "--from", "claude"]);
    assert!(again.contains("! conflict   time: args differs"), "{again}");
    let time = list(&config)
        .into_iter()
        .find(|r| r["name"] == "time")
        .unwrap();
    assert_eq!(
        time["args"],
        serde_json::json!(["mcp-server-time"]),
        "a clash is never overwritten"
    );

    let by_path = run(&[
        "registry",
        "import",
        "--from",
        home.join(".cursor/mcp.json").to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(by_path.contains("= unchanged  wiki"), "{by_path}");
}

use std::collections::BTreeSet;

#[test]
fn without_an_os_keyring_token_set_says_what_to_use_instead() {
    let tmp = tempfile::tempdir().unwrap();
    // No session bus, so no Secret Service: never touches a developer's real keyring.
    let mut child = switchboard()
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR")
        .arg("--config-dir")
        .arg(tmp.path())
        .args(["token", "set", "wiki-2"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "s3cret").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "there is no keyring to store in");
    let message = stderr(&out);
    assert!(
        message.contains("set SWITCHBOARD_TOKEN_WIKI_2 instead"),
        "{message}"
    );
    assert!(
        !message.contains("s3cret") && !stdout(&out).contains("s3cret"),
        "the token leaked"
    );
}

#[test]
fn registry_add_says_what_it_needs_and_refuses_options_of_the_other_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let neither = cli(dir, &["registry", "add", "x"]);
    assert!(!neither.status.success());
    let said = stderr(&neither);
    assert!(
        said.contains("--url") && said.contains("--command"),
        "both ways to add a server are named: {said}"
    );
    for (args, other) in [
        (&["--command", "srv", "--header", "A=b"][..], "--header"),
        (
            &["--url", "https://x.example/mcp", "--env", "A=b"][..],
            "--env",
        ),
        (
            &["--url", "https://x.example/mcp", "--cwd", "/tmp"][..],
            "--cwd",
        ),
    ] {
        let mut all = vec!["registry", "add", "x"];
        all.extend_from_slice(args);
        let out = cli(dir, &all);
        assert!(
            !out.status.success() && stderr(&out).contains(other),
            "{args:?} is refused, not dropped: {}",
            stderr(&out)
        );
    }
    assert_eq!(list(dir), Vec::<Value>::new(), "nothing was added");
    let help = stdout(&cli(dir, &["registry", "add", "--help"]));
    assert!(help.contains("The server's name"), "{help}");
    let help = stdout(&cli(dir, &["sync", "--help"]));
    assert!(help.contains("one object per"), "{help}");
}
