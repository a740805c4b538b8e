//! What `servers.json` accepts, keeps and refuses.

use super::*;

fn parse(json: &str) -> Result<ServersFileV1, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

#[test]
fn claude_shape_parses_and_keeps_unknown_fields_on_rewrite() {
    let json = r#"{"mcpServers":{"fs":{"command":"npx","args":["-y","x"],"env":{"A":"1"},"autoApprove":["read"]},
        "wiki":{"url":"https://wiki.example/mcp","headers":{"X-Team":"core"}}},"globalShortcut":"Ctrl+M"}"#;
    let file = parse(json).expect("claude-shaped file should parse");
    assert_eq!(file.mcp_servers.len(), 2);
    let text = serde_json::to_string(&file).unwrap();
    assert!(
        text.contains(r#""autoApprove":["read"]"#),
        "entry extra lost: {text}"
    );
    assert!(
        text.contains(r#""globalShortcut":"Ctrl+M""#),
        "top-level extra lost: {text}"
    );
    let again = parse(&text).unwrap();
    assert_eq!(
        again.mcp_servers, file.mcp_servers,
        "round trip changed entries"
    );
}

#[test]
fn validation_errors_carry_line_and_column() {
    let err = parse("{\"mcpServers\": {\n  \"bad\\u0007\": {\"command\": \"x\"}}}").unwrap_err();
    assert!(
        err.contains("control character") && err.contains("line 2"),
        "{err}"
    );
    let err = parse("{\"mcpServers\": {\"a\": {\n\"command\": \"x\", \"url\": \"http://h\"}}}")
        .unwrap_err();
    assert!(err.contains("both") && err.contains("line 2"), "{err}");
    let err = parse(r#"{"mcpServers": {"a": {"url": "file:///etc/passwd"}}}"#).unwrap_err();
    assert!(err.contains("scheme"), "{err}");
    let err =
        parse(r#"{"mcpServers": {"a": {"url": "http://h", "headers": {"X": "a\r\nEvil: 1"}}}}"#)
            .unwrap_err();
    assert!(err.contains("line break"), "{err}");
    let err = parse(r#"{"mcpServers": []}"#).unwrap_err();
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn quotas_are_kept_and_checked() {
    let file = parse(
        r#"{"mcpServers": {"a": {"url": "http://h", "quotas": {"concurrent": 2, "perHour": 9}}}}"#,
    )
    .unwrap();
    let quotas = file.mcp_servers[0].quotas;
    assert_eq!(
        (quotas.concurrent, quotas.per_minute, quotas.per_hour),
        (Some(2), None, Some(9))
    );
    let text = serde_json::to_string(&file).unwrap();
    assert!(
        text.contains(r#""quotas":{"concurrent":2,"perHour":9}"#),
        "{text}"
    );
    for (bad, says) in [
        (
            r#"{"perMinute": 0}"#,
            "perMinute: 0 would refuse every call",
        ),
        (
            r#"{"perHour": 100001}"#,
            "perHour: 100001 is above the most",
        ),
        (r#"{"perminute": 5}"#, "unknown field `perminute`"),
    ] {
        let json = format!(r#"{{"mcpServers": {{"a": {{"url": "http://h", "quotas": {bad}}}}}}}"#);
        let err = parse(&json).unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn names_are_bounded_and_dot_free() {
    assert!(ServerName::new("github-tools").is_ok());
    assert!(ServerName::new("").is_err());
    assert!(ServerName::new(" padded").is_err());
    assert!(ServerName::new("a.b").is_err());
    assert!(ServerName::new("x".repeat(MAX_NAME_CHARS + 1)).is_err());
    assert!(ServerName::new("é".repeat(MAX_NAME_CHARS)).is_ok());
}

#[test]
fn disabled_and_type_round_trip() {
    let file = parse(
        r#"{"mcpServers":{"s":{"url":"http://127.0.0.1:1/sse","type":"sse","enabled":false}}}"#,
    )
    .unwrap();
    let entry = &file.mcp_servers[0];
    let entry: &ServerEntry = entry;
    assert!(!entry.enabled);
    assert_eq!(entry.launch.transport(), "sse");
    let text = serde_json::to_string(&file).unwrap();
    assert!(
        text.contains(r#""enabled":false"#) && text.contains(r#""type":"sse""#),
        "{text}"
    );
}

#[test]
fn redaction_hides_header_and_env_values() {
    let mut entry = ServerEntry::remote("https://h/mcp", RemoteKind::Http);
    if let Launch::Remote { headers, .. } = &mut entry.launch {
        headers.insert("Authorization".into(), "Bearer sekrit".into());
    }
    let shown = format!("{:?}", entry.redacted());
    assert!(
        !shown.contains("sekrit") && shown.contains("Authorization"),
        "{shown}"
    );
}

#[test]
fn a_masked_argument_saved_back_from_the_ui_keeps_its_value() {
    let entry = ServerEntry::from_json(serde_json::json!({
        "command": "npx",
        "args": ["--token", "t0psecret", "--verbose"]
    }))
    .unwrap();
    let shown = entry.redacted();
    let Launch::Stdio { args, .. } = &shown.launch else {
        panic!("stdio")
    };
    assert_eq!(args, &["--token", REDACTED, "--verbose"]);
    // The user added an argument and left the masked one alone.
    let mut edited = shown.clone();
    if let Launch::Stdio { args, .. } = &mut edited.launch {
        args.push("--debug".into());
    }
    let saved = edited.unredacted(&entry);
    let Launch::Stdio { args, .. } = &saved.launch else {
        panic!("stdio")
    };
    assert_eq!(args, &["--token", "t0psecret", "--verbose", "--debug"]);
}

#[test]
fn a_remote_servers_oauth_client_is_kept_and_checked() {
    let file = parse(
        r#"{"mcpServers": {"a": {"url": "https://h/mcp", "oauth": {"clientId": "sb", "scopes": ["read", "write"]}}}}"#,
    )
    .unwrap();
    let oauth = file.mcp_servers[0].oauth.clone().expect("the oauth block");
    assert_eq!(oauth.client_id.as_deref(), Some("sb"));
    assert_eq!(oauth.scopes, ["read", "write"]);
    let text = serde_json::to_string(&file).unwrap();
    assert!(
        text.contains(r#""oauth":{"clientId":"sb","scopes":["read","write"]}"#),
        "{text}"
    );
    for (entry, says) in [
        (
            r#"{"command": "x", "oauth": {"clientId": "sb"}}"#,
            "is for remote",
        ),
        (
            r#"{"url": "https://h", "oauth": {"clientMetadataUrl": "http://h/c.json"}}"#,
            "not an https URL",
        ),
        (
            r#"{"url": "https://h", "oauth": {"scopes": ["a b"]}}"#,
            "has spaces",
        ),
        (
            r#"{"url": "https://h", "oauth": {"clientSecret": "s"}}"#,
            "unknown field `clientSecret`",
        ),
    ] {
        let err = parse(&format!(r#"{{"mcpServers": {{"a": {entry}}}}}"#)).unwrap_err();
        assert!(err.contains(says), "{entry}: {err}");
    }
}
