//! Signing in to OAuth-protected servers (MCP authorization).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard::health::Health;
use switchboard_fixture::{Fixture, Knobs};

use crate::engine::{spec_at, start, state};
use crate::support::*;

#[tokio::test]
async fn an_oauth_challenge_reads_needs_sign_in_and_a_refused_key_unauthorized() {
    let protected = Fixture::start(Knobs {
        oauth: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let refusing = Fixture::start(Knobs {
        unauthorized: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    // A token of its own, refused by a server that offers a sign-in: the token is what to fix.
    let keyed = connector_spec(
        "keyed",
        switchboard::connector::Endpoint::Http {
            url: protected.url(),
            kind: None,
            headers: [("Authorization".into(), "Bearer not-a-token".into())].into(),
        },
    );
    let (engine, _desired) = start(vec![
        spec_at("notes", protected.url()),
        spec_at("wiki", refusing.url()),
        keyed,
    ]);
    let settled = wait_for_watch(engine.subscribe(), "all three refused", |s| {
        state(s, "notes") == Some(Health::NeedsSignIn)
            && state(s, "wiki") == Some(Health::Unauthorized)
            && state(s, "keyed") == Some(Health::Unauthorized)
    })
    .await;
    let keyed = settled.connectors.iter().find(|c| c.id == "keyed").unwrap();
    assert!(
        keyed
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("refused the connector's Authorization header")),
        "{:?}",
        keyed.reason
    );
    let notes = settled.connectors.iter().find(|c| c.id == "notes").unwrap();
    let reason = notes.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("sign-in") && reason.contains("resource_metadata"),
        "the reason says why and where to sign in: {reason}"
    );
    assert_eq!(
        serde_json::to_value(notes.state).unwrap(),
        "needs-sign-in",
        "the state's wire name"
    );
    assert_eq!(
        settled
            .catalog
            .iter()
            .filter(|(_, tool)| tool.connector == "notes")
            .count(),
        0,
        "a connector that needs sign-in lists no tools"
    );
}

/// A `switchboard sync` daemon logging at trace level into `log`, killed when the test ends.
struct TracedDaemon(std::process::Child);

impl Drop for TracedDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_traced(dir: &Path, log: &Path) -> TracedDaemon {
    let output = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap()
    };
    let child = switchboard()
        .env("RUST_LOG", "trace")
        .arg("--config-dir")
        .arg(dir)
        .arg("sync")
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap();
    let socket = switchboard::control::socket::socket_path(dir).unwrap();
    wait_until("the daemon's control socket answers", || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    })
    .await;
    TracedDaemon(child)
}

/// Waits until `status` shows connector `id`'s row as `wanted`; the row then. What `status`
/// printed meanwhile goes to `said`.
async fn wait_for_row(
    dir: &Path,
    id: &str,
    said: &mut String,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let out = run_cli(dir, &["status", "--json"]).await;
        said.push_str(&stdout(&out));
        said.push_str(&stderr(&out));
        let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let row = status["connectors"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["id"] == id).cloned());
        if let Some(row) = row.filter(|r| wanted(r)) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "within {DEADLINE:?}: {id} as wanted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `status` shows connector `id` in `state`; its row then.
async fn wait_state(dir: &Path, id: &str, state: &str, said: &mut String) -> Value {
    wait_for_row(dir, id, said, |row| row["state"] == state).await
}

/// Stands in for the user's browser: opens the page, is sent straight back (the fixture's
/// authorization server approves at once) and lands on Switchboard's redirect.
async fn approve(page: &str) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let approved = browser.get(page).send().await.unwrap();
    assert!(approved.status().is_redirection(), "{approved:?}");
    let back = approved.headers()["location"].to_str().unwrap().to_string();
    assert!(
        back.starts_with("http://127.0.0.1:"),
        "the redirect is on loopback: {back}"
    );
    let landed = browser.get(&back).send().await.unwrap();
    assert_eq!(landed.status(), 200);
    assert!(landed.text().await.unwrap().contains("Signed in"));
    // Used once: refused at once, and closed a moment later.
    let again = browser.get(&back).send().await;
    assert!(
        again.as_ref().map_or(true, |r| r.status() == 410),
        "the redirect takes one landing: {again:?}"
    );
}

/// `auth login ID --no-browser`, the browser played by [`approve`]; what it printed.
async fn login(dir: &Path, id: &str) -> String {
    let mut child = switchboard()
        .arg("--config-dir")
        .arg(dir)
        .args(["auth", "login", id, "--no-browser"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let page = tokio::task::spawn_blocking(move || {
        let mut page = String::new();
        std::io::BufRead::read_line(&mut lines, &mut page).unwrap();
        (page, lines)
    });
    let (page, mut lines) = tokio::time::timeout(DEADLINE, page)
        .await
        .expect("login prints the page to approve")
        .unwrap();
    approve(page.trim()).await;
    let finished = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut lines, &mut rest).unwrap();
        (rest, child.wait_with_output().unwrap())
    });
    let (rest, out) = tokio::time::timeout(DEADLINE, finished)
        .await
        .expect("login ends once the browser is back")
        .unwrap();
    let printed = format!("{page}{rest}{}", stderr(&out));
    assert!(out.status.success(), "{printed}");
    printed
}

/// An OAuth-protected fixture (set up by `prepare` first), `notes` in a temp config dir's
/// registry reaching it, and a traced daemon for that dir, once `notes` needs a sign-in.
struct Protected {
    fixture: Fixture,
    tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
    daemon: Option<TracedDaemon>,
    /// Everything printed so far, to look for tokens in.
    said: String,
}

async fn protected_notes(
    prepare: impl FnOnce(&switchboard_fixture::oauth::Authority),
) -> Protected {
    let fixture = Fixture::start(Knobs {
        oauth: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    prepare(fixture.authority());
    let tmp = tempfile::tempdir().unwrap();
    let (dir, log) = (tmp.path().join("config"), tmp.path().join("daemon.log"));
    let added = run_cli(&dir, &["registry", "add", "notes", "--url", &fixture.url()]).await;
    assert!(added.status.success(), "{}", stderr(&added));
    let daemon = Some(start_traced(&dir, &log).await);
    let mut said = String::new();
    wait_state(&dir, "notes", "needs-sign-in", &mut said).await;
    Protected {
        fixture,
        tmp,
        dir,
        log,
        daemon,
        said,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_in_connector_stays_signed_in_through_expiry_and_restarts_and_no_token_leaks() {
    let Protected {
        fixture,
        tmp: _tmp,
        dir,
        log,
        daemon,
        mut said,
    } = protected_notes(|_| {}).await;
    let printed = login(&dir, "notes").await;
    assert!(printed.contains("signed in: notes is healthy"), "{printed}");
    said.push_str(&printed);
    assert_eq!(fixture.authority().issued().sign_ins, 1);

    // The access token runs out: the next call renews it, and nothing else shows.
    fixture.authority().expire_access_tokens();
    let call = run_cli(&dir, &["call", "notes.tool_000"]).await;
    said.push_str(&format!("{}{}", stdout(&call), stderr(&call)));
    assert!(
        call.status.success(),
        "the call after expiry: {}",
        stderr(&call)
    );
    assert_eq!(fixture.authority().issued().refreshes, 1, "renewed once");
    wait_state(&dir, "notes", "healthy", &mut said).await;

    // The provider revokes the sign-in: the connector needs one again, and says why.
    fixture.authority().revoke_refresh_tokens();
    fixture.authority().expire_access_tokens();
    let refused = run_cli(&dir, &["call", "notes.tool_000"]).await;
    said.push_str(&format!("{}{}", stdout(&refused), stderr(&refused)));
    assert!(!refused.status.success(), "a call without a sign-in fails");
    let row = wait_state(&dir, "notes", "needs-sign-in", &mut said).await;
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("refused to renew"), "{reason}");

    // Signed in again, it stays signed in across a restart of the daemon.
    said.push_str(&login(&dir, "notes").await);
    drop(daemon);
    let _daemon = start_traced(&dir, &log).await;
    wait_state(&dir, "notes", "healthy", &mut said).await;
    assert_eq!(
        fixture.authority().issued().sign_ins,
        2,
        "no sign-in after the restart"
    );
    let status = run_cli(&dir, &["auth", "status", "--json"]).await;
    said.push_str(&stdout(&status));
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["connector"], "notes");
    assert_eq!(status[0]["signed_in"], true);

    // No token anywhere but the token store: not in any output, the trace log, another file.
    let tokens = fixture.authority().issued().tokens;
    assert!(tokens.len() >= 4, "{tokens:?}");
    said.push_str(&std::fs::read_to_string(&log).unwrap());
    let store = dir.join(switchboard::signin::tokens::TOKEN_FILE);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path != store && path.is_file() {
            said.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    for token in &tokens {
        assert!(!said.contains(token.as_str()), "{token} leaked");
    }
    let kept = std::fs::read_to_string(&store).unwrap();
    assert!(
        tokens.iter().any(|t| kept.contains(t.as_str())),
        "the store holds the tokens"
    );
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the token file is the user's alone");

    // Signed out, it needs a sign-in again.
    let out = run_cli(&dir, &["auth", "logout", "notes"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    wait_state(&dir, "notes", "needs-sign-in", &mut said).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pre_registered_client_id_from_the_registry_is_used_instead_of_registering() {
    let fixture = Fixture::start(Knobs {
        oauth: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    fixture.authority().preregister("switchboard-desktop");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    let servers = serde_json::json!({"mcpServers": {"notes": {
        "url": fixture.url(),
        "oauth": {"clientId": "switchboard-desktop", "scopes": ["mcp"]},
    }}});
    std::fs::write(dir.join("servers.json"), servers.to_string()).unwrap();
    let _daemon = start_traced(&dir, &tmp.path().join("daemon.log")).await;
    let mut said = String::new();
    wait_state(&dir, "notes", "needs-sign-in", &mut said).await;
    let printed = login(&dir, "notes").await;
    assert!(
        printed.contains("client_id=switchboard-desktop"),
        "{printed}"
    );
    assert!(printed.contains("signed in: notes is healthy"), "{printed}");
    let issued = fixture.authority().issued();
    assert_eq!(
        (issued.sign_ins, issued.registrations),
        (1, 0),
        "{issued:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_refused_for_scope_makes_the_next_sign_in_ask_for_it_too() {
    let protected = protected_notes(|a| a.require_scope_for("tool_001", "mcp:write")).await;
    let (fixture, dir) = (&protected.fixture, &protected.dir);
    let first = login(dir, "notes").await;
    assert!(
        first.contains("scope=mcp&"),
        "the challenge's scope: {first}"
    );

    let basic = run_cli(dir, &["call", "notes.tool_000"]).await;
    assert!(basic.status.success(), "{}", stderr(&basic));
    let refused = run_cli(dir, &["call", "notes.tool_001"]).await;
    assert!(!refused.status.success(), "a call beyond the scope granted");
    assert!(
        stderr(&refused).contains("insufficient_scope"),
        "{}",
        stderr(&refused)
    );

    let row = wait_for_row(dir, "notes", &mut String::new(), |r| {
        r["wants_scopes"] == serde_json::json!(["mcp", "mcp:write"])
    })
    .await;
    assert_eq!(row["state"], "healthy", "its other tools still work: {row}");
    let step_up = login(dir, "notes").await;
    assert!(
        step_up.contains("scope=mcp+mcp%3Awrite&"),
        "the granted scope and the one asked for: {step_up}"
    );
    let granted = run_cli(dir, &["call", "notes.tool_001"]).await;
    assert!(granted.status.success(), "{}", stderr(&granted));
    wait_for_row(dir, "notes", &mut String::new(), |r| {
        r["wants_scopes"] == serde_json::json!([])
    })
    .await;
    assert_eq!(fixture.authority().issued().sign_ins, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_token_is_renewed_before_it_expires() {
    // Renewed once less than half its life is left (rmcp's rule), well before it runs out.
    let protected = protected_notes(|a| a.set_access_lifetime(Duration::from_secs(6))).await;
    let (fixture, dir, mut said) = (&protected.fixture, &protected.dir, String::new());
    login(dir, "notes").await;
    let deadline = Instant::now() + DEADLINE;
    while fixture.authority().issued().refreshes == 0 {
        assert!(Instant::now() < deadline, "renewed within {DEADLINE:?}");
        let call = run_cli(dir, &["call", "notes.tool_000"]).await;
        assert!(call.status.success(), "{}", stderr(&call));
        // Calls a user makes, a few a second, while the token ages.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        fixture.authority().issued().refused_tokens,
        0,
        "no request went out with a token past its expiry"
    );
    wait_state(dir, "notes", "healthy", &mut said).await;
}
