//! `switchboard client …` on real-shaped configs of each AI client in a temp HOME: the entry
//! goes in with everything else (comments too) kept, and uninstall restores byte for byte.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::*;

/// Each client's config path under HOME (with XDG_CONFIG_HOME at HOME/.config), the key of its
/// server list, and a config as the client writes it.
fn configs() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    vec![
        (
            "claude",
            ".config/Claude/claude_desktop_config.json",
            "mcpServers",
            r#"{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/notes"]
    }
  },
  "globalShortcut": "Ctrl+Space"
}
"#,
        ),
        (
            "claude-code",
            ".claude.json",
            "mcpServers",
            r#"{"numStartups":42,"theme":"dark","projects":{"/home/me/app":{"allowedTools":[],"mcpServers":{}}},"mcpServers":{"sentry":{"type":"http","url":"https://mcp.sentry.dev/mcp"}},"oauthAccount":{"emailAddress":"me@example.com"}}"#,
        ),
        (
            "cursor",
            ".cursor/mcp.json",
            "mcpServers",
            r#"{
    "mcpServers": {
        "time": { "command": "uvx", "args": ["mcp-server-time"], "env": { "TZ": "UTC" } }
    }
}
"#,
        ),
        (
            "vscode",
            ".config/Code/User/mcp.json",
            "servers",
            r#"{
	"inputs": [
		{ "type": "promptString", "id": "gh-token", "description": "GitHub token", "password": true }
	],
	"servers": {
		"github": { "type": "http", "url": "https://api.githubcopilot.com/mcp/", "headers": { "Authorization": "Bearer ${input:gh-token}" } }
	}
}
"#,
        ),
        (
            "windsurf",
            ".codeium/windsurf/mcp_config.json",
            "mcpServers",
            r#"{
  "mcpServers": {
    "linear": { "serverUrl": "https://mcp.linear.app/sse", "disabled": false }
  }
}
"#,
        ),
        (
            "zed",
            ".config/zed/settings.json",
            "context_servers",
            r#"// Zed settings
//
// For information on how to configure Zed, see the Zed documentation.
{
  "ui_font_size": 16,
  "buffer_font_size": 15, // a little smaller
  "context_servers": {
    // the notes server I wrote
    "notes": {
      "source": "custom",
      "command": "/home/me/bin/notes-mcp",
      "args": [],
    },
  },
  "theme": { "mode": "system", "light": "One Light", "dark": "One Dark" },
}
"#,
        ),
    ]
}

fn client(home: &Path, dir: &Path, args: &[&str]) -> Output {
    switchboard()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .arg("--config-dir")
        .arg(dir)
        .arg("client")
        .args(args)
        .output()
        .unwrap()
}

/// `client list --json`: one object per client.
fn listed(home: &Path, dir: &Path) -> Vec<Value> {
    let text = ok(&client(home, dir, &["list", "--json"]));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}\n{}", stdout(out), stderr(out));
    stdout(out)
}

fn parse(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    json5::from_str(&text).unwrap_or_else(|e| panic!("{} parses: {e}\n{text}", path.display()))
}

fn write_configs(home: &Path) -> Vec<(String, PathBuf, String, String)> {
    configs()
        .into_iter()
        .map(|(id, rel, key, text)| {
            let path = home.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            (id.to_string(), path, key.to_string(), text.to_string())
        })
        .collect()
}

#[test]
fn every_client_gets_one_entry_keeps_all_else_and_uninstall_restores_it_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, dir) = (tmp.path().join("home"), tmp.path().join("config"));
    let written = write_configs(&home);
    let found = listed(&home, &dir);
    assert!(
        found
            .iter()
            .all(|c| c["exists"] == true && c["routes"] == false),
        "all six found, none routing yet: {found:?}"
    );
    for (id, path, key, original) in &written {
        let out = ok(&client(&home, &dir, &["install", id]));
        assert!(
            out.contains("+ switchboard:"),
            "{id}: the preview names the entry: {out}"
        );
        let before: Value = json5::from_str(original).unwrap();
        let after = parse(path);
        let entry = &after[key.as_str()]["switchboard"];
        assert_eq!(
            entry["command"],
            env!("CARGO_BIN_EXE_switchboard"),
            "{id}: this binary, by its absolute path: {after}"
        );
        assert_eq!(
            entry["args"].as_array().unwrap().last().unwrap(),
            "serve",
            "{id}: {entry}"
        );
        for (field, value) in before.as_object().unwrap() {
            if field == key {
                for (server, definition) in value.as_object().unwrap() {
                    assert_eq!(
                        &after[key.as_str()][server],
                        definition,
                        "{id}: {server} kept"
                    );
                }
            } else {
                assert_eq!(&after[field], value, "{id}: {field} kept");
            }
        }
        assert!(
            path.with_file_name(format!(
                "{}.switchboard-backup",
                path.file_name().unwrap().to_str().unwrap()
            ))
            .is_file(),
            "{id}: the original is kept beside it"
        );
    }
    let zed = std::fs::read_to_string(&written[5].1).unwrap();
    for comment in [
        "// Zed settings",
        "// a little smaller",
        "// the notes server I wrote",
    ] {
        assert!(zed.contains(comment), "Zed's comments survive: {zed}");
    }
    let found = listed(&home, &dir);
    assert!(
        found.iter().all(|c| c["routes"] == true),
        "all six route through Switchboard now: {found:?}"
    );
    // Installing twice changes nothing.
    let again = ok(&client(&home, &dir, &["install", "cursor"]));
    assert!(again.contains("nothing to change"), "{again}");
    for (id, path, _, original) in &written {
        ok(&client(&home, &dir, &["uninstall", id]));
        assert_eq!(
            &std::fs::read_to_string(path).unwrap(),
            original,
            "{id}: restored byte for byte"
        );
    }
    assert_eq!(
        std::fs::read_dir(home.join(".cursor")).unwrap().count(),
        1,
        "no backup left behind"
    );
}

#[test]
fn take_over_switches_off_what_switchboard_serves_and_uninstall_puts_it_back_after_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, dir) = (tmp.path().join("home"), tmp.path().join("config"));
    let cursor = &write_configs(&home)[2];
    // The registry serves the same program under another name.
    let out = cli(
        &dir,
        &[
            "registry",
            "add",
            "clock",
            "--command",
            "uvx",
            "--arg",
            "mcp-server-time",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plain = ok(&client(&home, &dir, &["install", "cursor", "--dry-run"]));
    assert!(
        plain.contains("--take-over"),
        "the duplicate is pointed out: {plain}"
    );
    assert_eq!(
        std::fs::read_to_string(&cursor.1).unwrap(),
        cursor.3,
        "a dry run writes nothing"
    );
    let out = ok(&client(&home, &dir, &["install", "cursor", "--take-over"]));
    assert!(out.contains("- time: switched off here"), "{out}");
    let after = parse(&cursor.1);
    assert!(after["mcpServers"]["time"].is_null(), "{after}");
    // The user adds a server of their own; uninstall keeps it and puts `time` back.
    let edited = std::fs::read_to_string(&cursor.1).unwrap().replace(
        "\"mcpServers\": {",
        "\"mcpServers\": {\n        \"mine\": { \"command\": \"my-mcp\" },",
    );
    std::fs::write(&cursor.1, edited).unwrap();
    let out = ok(&client(&home, &dir, &["uninstall", "cursor"]));
    assert!(out.contains("put back: time"), "{out}");
    let back = parse(&cursor.1);
    assert_eq!(back["mcpServers"]["mine"]["command"], "my-mcp", "{back}");
    assert_eq!(back["mcpServers"]["time"]["env"]["TZ"], "UTC", "{back}");
    assert!(back["mcpServers"]["switchboard"].is_null(), "{back}");
}

#[test]
fn a_missing_client_a_broken_config_and_a_linked_one_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, dir) = (tmp.path().join("home"), tmp.path().join("config"));
    std::fs::create_dir_all(&home).unwrap();
    let out = client(&home, &dir, &["install", "windsurf"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Windsurf is not installed here"),
        "{}",
        stderr(&out)
    );
    std::fs::create_dir_all(home.join(".cursor")).unwrap();
    std::fs::write(home.join(".cursor/mcp.json"), "{\"mcpServers\": {\"a\": ").unwrap();
    let out = client(&home, &dir, &["install", "cursor"]);
    assert!(
        stderr(&out).contains("mcp.json: does not parse"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(home.join(".cursor/mcp.json")).unwrap(),
        "{\"mcpServers\": {\"a\": "
    );
    let real = tmp.path().join("dotfiles-mcp.json");
    std::fs::write(&real, "{}").unwrap();
    std::fs::remove_file(home.join(".cursor/mcp.json")).unwrap();
    std::os::unix::fs::symlink(&real, home.join(".cursor/mcp.json")).unwrap();
    let out = client(&home, &dir, &["install", "cursor"]);
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        "{}",
        "nothing written through the link"
    );
    let out = client(&home, &dir, &["install", "emacs"]);
    assert!(
        stderr(&out).contains("no client \"emacs\""),
        "{}",
        stderr(&out)
    );
}
