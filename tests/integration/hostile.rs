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

/// Durations from outside are added to clocks: the largest a manifest or its server can write
/// must not overflow one (it panicked, and `sync` exited 0 with its engine dead).
#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_claiming_forever_neither_panics_nor_stops_the_sync() {
    use switchboard_fixture::service_map::{ManifestServer, service_map};
    use switchboard_fixture::{Fixture, Knobs};
    let fixture = Fixture::start(Knobs::default()).await.unwrap();
    let server =
        ManifestServer::start(service_map(&[("wiki", fixture.url())], u64::MAX).to_string())
            .await
            .unwrap();
    server.set_max_age(Some(u64::MAX));
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(
        dir.path(),
        &["sync", "--once", "--json", "--manifest", &server.url()],
    )
    .await;
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(out.status.success(), "{}", stderr(&out));
    let reports: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(reports[0]["state"], "healthy", "{reports}");

    // A timeout that large is refused by name, in a manifest and in the registry alike.
    let mut map = service_map(&[("wiki", fixture.url())], 300);
    map["connectors"][0]["timeouts"]["connectMs"] = u64::MAX.into();
    let refused = switchboard::manifest::Manifest::parse(&map.to_string(), None).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("timeouts.connectMs: must be 1 to"),
        "{refused}"
    );
    fs::write(
        servers_json(dir.path()),
        format!(
            r#"{{"mcpServers":{{"a":{{"url":"http://127.0.0.1:9/mcp","timeouts":{{"callMs":{}}}}}}}}}"#,
            u64::MAX
        ),
    )
    .unwrap();
    let out = cli(dir.path(), &["registry", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("timeouts must be 1 to"),
        "{}",
        stderr(&out)
    );
}

/// Runs `cmd`, failing the test (and killing the process) if it has not exited by the deadline.
/// Its output is read meanwhile, so a full pipe cannot stall it.
fn output_within(cmd: &mut std::process::Command) -> std::process::Output {
    use std::process::Stdio;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match finished.recv_timeout(DEADLINE) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("{cmd:?} still runs after {DEADLINE:?}");
        }
    }
}

fn mkfifo(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
}

/// A FIFO where a file belongs hung the reader (or read past the limits); now it is refused
/// by name, at once, wherever a file is read.
#[test]
fn fifos_given_as_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.json");
    mkfifo(&fifo);
    let fifo_arg = fifo.to_str().unwrap();
    let config = dir.path().join("config");
    for (args, file) in [
        (
            vec!["registry", "import", "--from", fifo_arg, "--dry-run"],
            "pipe.json",
        ),
        (vec!["sync", "--once", "--manifest", fifo_arg], "pipe.json"),
    ] {
        let out = output_within(switchboard().arg("--config-dir").arg(&config).args(&args));
        let said = stderr(&out) + &stdout(&out);
        assert!(
            said.contains(file) && said.contains("a FIFO, not a regular file"),
            "{args:?}: {said}"
        );
    }
    let servers = tempfile::tempdir().unwrap();
    mkfifo(&servers_json(servers.path()));
    let out = output_within(
        switchboard()
            .arg("--config-dir")
            .arg(servers.path())
            .args(["registry", "list"]),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("servers.json: is a FIFO, not a regular file"),
        "{}",
        stderr(&out)
    );
}

/// An import file nested 30,000 levels deep overflowed the stack, also when found by itself in
/// a project's `.vscode/mcp.json`.
#[test]
fn a_deeply_nested_client_config_is_refused_without_a_crash() {
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("project");
    fs::create_dir_all(project.join(".vscode")).unwrap();
    let deep = format!(
        r#"{{"servers":{{"a":{{"command":"x","args":{}{}}}}}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    fs::write(project.join(".vscode/mcp.json"), deep).unwrap();
    let out = output_within(
        switchboard()
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .current_dir(&project)
            .arg("--config-dir")
            .arg(home.path().join("switchboard"))
            .args(["registry", "import", "--dry-run"]),
    );
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {}",
        stderr(&out)
    );
    let said = stderr(&out) + &stdout(&out);
    assert!(
        said.contains("mcp.json") && said.contains("nested more than 128 levels deep"),
        "{said}"
    );
}

fn http_spec(id: &str, url: String) -> switchboard::connector::ConnectorSpec {
    connector_spec(
        id,
        switchboard::connector::Endpoint::Http {
            url,
            kind: None,
            headers: Default::default(),
        },
    )
}

/// What a server sends is capped, and each cap hit says which: 840,000 tools took 1.5 GB, an
/// endless cursor read as "no answer within 3000 ms", a 60 KB challenge was copied whole.
#[tokio::test(flavor = "multi_thread")]
async fn what_a_server_sends_is_capped_and_each_cap_named() {
    use switchboard::health::Health;
    use switchboard_fixture::{Fixture, Knobs};
    let many = Fixture::start(Knobs {
        tools: 2_500,
        page_size: 500,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let endless = Fixture::start(Knobs {
        tools: 10,
        page_size: 5,
        endless_cursor: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let loud = Fixture::start(Knobs {
        unauthorized: true,
        challenge: format!("Bearer realm=\"{}\"", "x".repeat(60_000)),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let repeats = Fixture::start(Knobs {
        tools: 3,
        tool_names: vec!["same".into(), "same".into()],
        ..Knobs::default()
    })
    .await
    .unwrap();
    // The same, as an OAuth challenge: the sign-in's reason is capped too.
    let loud_sign_in = Fixture::start(Knobs {
        unauthorized: true,
        challenge: format!(
            "Bearer resource_metadata=\"http://127.0.0.1:9/x\", realm=\"{}\"",
            "y".repeat(60_000)
        ),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let run = one_shot(
        vec![
            http_spec("many", many.url()),
            http_spec("endless", endless.url()),
            http_spec("loud", loud.url()),
            http_spec("repeats", repeats.url()),
            http_spec("loud-sign-in", loud_sign_in.url()),
        ],
        &switchboard::session::http_client().unwrap(),
        4,
    )
    .await;
    let reason = |i: usize| run.reports()[i].reason.clone().unwrap_or_default();
    assert_eq!(run.reports()[0].state, Health::Down);
    assert!(reason(0).contains("more than 2000 tools"), "{}", reason(0));
    assert_eq!(run.reports()[1].state, Health::Down);
    assert!(
        reason(1).contains("a cursor it had sent before"),
        "{}",
        reason(1)
    );
    assert!(started.elapsed() < DEADLINE, "named at once, not a timeout");
    assert_eq!(run.reports()[2].state, Health::Unauthorized);
    assert!(
        reason(2).len() < 1_000 && reason(2).contains("more bytes"),
        "{} bytes: {:.200}",
        reason(2).len(),
        reason(2)
    );
    assert_eq!(run.reports()[3].state, Health::Healthy);
    assert_eq!(run.reports()[4].state, Health::NeedsSignIn);
    assert!(
        reason(4).len() < 1_000 && reason(4).contains("more bytes"),
        "{} bytes: {:.200}",
        reason(4).len(),
        reason(4)
    );
    let names: Vec<&str> = run
        .catalog()
        .iter()
        .filter(|(_, t)| t.connector == "repeats")
        .map(|(_, t)| t.tool.name.as_ref())
        .collect();
    assert_eq!(
        names,
        ["same", "tool_002"],
        "the first of a repeated name kept"
    );
    run.close().await;
}

/// One stderr line of 20 MB was kept and printed whole (in `sync --once --json` too).
#[test]
fn a_huge_stderr_line_is_cut_before_it_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        servers_json(dir.path()),
        r#"{"mcpServers":{"loud":{"command":"sh","args":["-c","head -c 20000000 /dev/zero | tr '\\000' x >&2; exit 3"]}}}"#,
    )
    .unwrap();
    let out = output_within(
        switchboard()
            .arg("--config-dir")
            .arg(dir.path())
            .args(["sync", "--once", "--json"]),
    );
    let reports: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let error = reports[0]["error"].as_str().unwrap();
    assert!(error.len() < 1_000, "{} bytes", error.len());
    assert!(error.contains("stderr: xxxx"), "{error:.200}");
    assert!(stdout(&out).len() + stderr(&out).len() < 10_000);
}

/// No byte a server chose reaches the terminal as a control: ESC, BEL, CR and LF in tool names
/// and error texts retitled the terminal and forged table rows.
#[tokio::test(flavor = "multi_thread")]
async fn server_text_cannot_act_on_the_terminal() {
    use switchboard_fixture::{Fixture, Knobs};
    let fixture = Fixture::start(Knobs {
        tools: 3,
        // The repeat makes the CLI log a warning: logs into a pipe carry no colour codes.
        tool_names: vec![
            "retitle\u{1b}]0;owned\u{7}".into(),
            "fake\r\nwiki.row  healthy".into(),
            "retitle\u{1b}]0;owned\u{7}".into(),
        ],
        ..Knobs::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        servers_json(dir.path()),
        serde_json::json!({"mcpServers": {
            "evil": {"url": fixture.url()},
            "noisy": {"command": "sh", "args": ["-c", "printf 'bad\\033[2J\\033]0;owned\\007\\rforged\\n' >&2; exit 3"]},
        }})
        .to_string(),
    )
    .unwrap();
    for args in [&["tools"][..], &["sync", "--once"][..], &["status"][..]] {
        let out = run_cli(dir.path(), args).await;
        for (stream, text) in [("stdout", stdout(&out)), ("stderr", stderr(&out))] {
            let raw: Vec<char> = text
                .chars()
                .filter(|c| c.is_control() && *c != '\n')
                .collect();
            assert!(raw.is_empty(), "{args:?} {stream}: raw {raw:?} in {text}");
        }
        let printed = stdout(&out);
        assert!(
            !printed.lines().any(|l| l.starts_with("wiki.row")),
            "{args:?}: a forged row: {printed}"
        );
    }
    let tools = run_cli(dir.path(), &["tools"]).await;
    assert!(
        stdout(&tools).contains("retitle\\u{1b}]0;owned\\u{7}"),
        "{}",
        stdout(&tools)
    );
    assert!(
        stderr(&tools).contains("more than once"),
        "{}",
        stderr(&tools)
    );
}

/// A URL's userinfo (`https://user:token@…`) and secret-looking query values showed in
/// `registry list`; they are credentials, shown as such, and kept in the file.
#[test]
fn credentials_inside_a_url_are_never_listed() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://bot:pw5ecret@127.0.0.1:9/mcp?api_key=k3yvalue&page=2";
    let out = cli(dir.path(), &["registry", "add", "x", "--url", url]);
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [
        &["registry", "list"][..],
        &["registry", "list", "--json"][..],
    ] {
        let out = cli(dir.path(), args);
        let shown = stdout(&out) + &stderr(&out);
        assert!(
            !shown.contains("pw5ecret") && !shown.contains("k3yvalue"),
            "{args:?}: {shown}"
        );
        assert!(shown.contains("<redacted>@127.0.0.1:9/mcp") && shown.contains("page=2"));
    }
    let file = fs::read_to_string(servers_json(dir.path())).unwrap();
    assert!(file.contains(url), "the file keeps the URL whole: {file}");
}

/// A token passed to a stdio server on its command line (`--token ghp_…`) was listed raw.
#[test]
fn secrets_in_a_stdio_command_line_are_never_listed() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--token",
        "t0psecret",
        "--api-key=k3yvalue",
        "--port",
        "8080",
    ];
    let mut add = vec!["registry", "add", "gh", "--command", "npx"];
    for arg in args {
        add.extend(["--arg", arg]);
    }
    let out = cli(dir.path(), &add);
    assert!(out.status.success(), "{}", stderr(&out));
    for list in [
        &["registry", "list"][..],
        &["registry", "list", "--json"][..],
    ] {
        let out = cli(dir.path(), list);
        let shown = stdout(&out) + &stderr(&out);
        assert!(
            !shown.contains("t0psecret") && !shown.contains("k3yvalue"),
            "{list:?}: {shown}"
        );
        assert!(
            shown.contains("--api-key=<redacted>") && shown.contains("8080"),
            "{list:?}: {shown}"
        );
    }
    let file = fs::read_to_string(servers_json(dir.path())).unwrap();
    assert!(
        file.contains("t0psecret"),
        "the file keeps the arguments whole"
    );
}

/// `sync --once --metrics 0.0.0.0:…` ignored the flag; with `[::]:…` servers were contacted
/// before the address was refused. Both are refused while the arguments are read.
#[tokio::test(flavor = "multi_thread")]
async fn a_metrics_address_is_checked_before_anything_is_contacted() {
    use switchboard_fixture::{Fixture, Knobs};
    let fixture = Fixture::start(Knobs::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        servers_json(dir.path()),
        serde_json::json!({"mcpServers": {"fx": {"url": fixture.url()}}}).to_string(),
    )
    .unwrap();
    for (args, said) in [
        (
            &["sync", "--once", "--metrics", "127.0.0.1:0"][..],
            "cannot be used with",
        ),
        (&["sync", "--metrics", "[::]:0"][..], "is not loopback"),
        (
            &["sync", "--metrics", "0.0.0.0:9464"][..],
            "is not loopback",
        ),
    ] {
        let out = run_cli(dir.path(), args).await;
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(said), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(fixture.accepted_connections(), 0, "nothing was contacted");
}

/// A stdio server whose helper shares its process group: `sh` starts `sleep` in the
/// background (the helper), writes its pid to `helper`, then becomes the server (or, with
/// `fail`, exits as a server that will not start). The server speaks the initialize era only,
/// where it exits as soon as its stdin closes, leaving the helper behind.
fn server_with_helper(helper: &std::path::Path, fail: bool) -> serde_json::Value {
    let then = if fail {
        "exit 3".to_string()
    } else {
        format!(
            "exec '{}' --stdio --legacy-only",
            crate::stdio::fixture_bin().display()
        )
    };
    let script = format!("sleep 300 & echo $! > '{}'; {then}", helper.display());
    // The helper holds the pipes open, so a server that exited is noticed by the deadline only.
    serde_json::json!({"command": "sh", "args": ["-c", script], "timeouts": {"connectMs": 2000}})
}

fn helper_pid(path: &std::path::Path) -> u32 {
    fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

/// `switchboard sync --json` on a config dir, its events read as they come.
struct SyncJson {
    child: std::process::Child,
    events: std::sync::mpsc::Receiver<serde_json::Value>,
    /// Events not yet forgotten: two connectors' events may come in any order.
    seen: Vec<serde_json::Value>,
}

impl SyncJson {
    fn start(dir: &std::path::Path) -> Self {
        use std::io::BufRead as _;
        let mut child = switchboard()
            .arg("--config-dir")
            .arg(dir)
            .args(["sync", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (lines, events) = std::sync::mpsc::channel();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str(&line) {
                    let _ = lines.send(event);
                }
            }
        });
        Self {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// Waits for connector `id` to report `state` (since the last [`SyncJson::forget`]).
    fn expect(&mut self, id: &str, state: &str) -> serde_json::Value {
        let started = std::time::Instant::now();
        loop {
            if let Some(event) = self
                .seen
                .iter()
                .find(|e| e["id"] == id && e["state"] == state)
            {
                return event.clone();
            }
            let left = DEADLINE.saturating_sub(started.elapsed());
            match tokio::task::block_in_place(|| self.events.recv_timeout(left)) {
                Ok(event) => self.seen.push(event),
                Err(_) => panic!("within {DEADLINE:?}: {id} {state}; saw {:?}", self.seen),
            }
        }
    }

    fn forget(&mut self) {
        self.seen.clear();
    }

    fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    async fn stopped(mut self) -> std::process::ExitStatus {
        tokio::task::spawn_blocking(move || self.child.wait().unwrap())
            .await
            .unwrap()
    }
}

/// A stdio server's helper in its process group survived a clean shutdown: the end of
/// `sync --once`, SIGTERM or SIGINT of `sync`, a server that would not start.
#[tokio::test(flavor = "multi_thread")]
async fn no_helper_of_a_stdio_server_outlives_any_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (up, broken) = (dir.path().join("up.pid"), dir.path().join("broken.pid"));
    fs::write(
        servers_json(dir.path()),
        serde_json::json!({"mcpServers": {
            "up": server_with_helper(&up, false),
            "broken": server_with_helper(&broken, true),
        }})
        .to_string(),
    )
    .unwrap();
    let out = run_cli(dir.path(), &["sync", "--once", "--json"]).await;
    assert!(stdout(&out).contains("healthy"), "{}", stderr(&out));
    for file in [&up, &broken] {
        let pid = helper_pid(file);
        wait_until("the helper ends with the one-shot sync", || {
            !crate::stdio::running(pid)
        })
        .await;
    }

    for signal in ["TERM", "INT"] {
        fs::remove_file(&up).unwrap();
        let mut daemon = SyncJson::start(dir.path());
        daemon.expect("up", "healthy");
        let pid = helper_pid(&up);
        assert!(crate::stdio::running(pid));
        daemon.signal(&format!("-{signal}"));
        let status = daemon.stopped().await;
        assert!(status.success(), "SIG{signal}: {status}");
        wait_until(&format!("the helper ends with SIG{signal} of sync"), || {
            !crate::stdio::running(pid)
        })
        .await;
    }
}

/// An answer over the 16 MiB an SSE event may hold read "Transport closed".
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_answer_says_so() {
    use switchboard_fixture::{Fixture, Knobs};
    let fixture = Fixture::start(Knobs {
        answer_padding: 17 * 1024 * 1024,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let run = one_shot(
        vec![http_spec("big", fixture.url())],
        &switchboard::session::http_client().unwrap(),
        1,
    )
    .await;
    let error = run
        .call("big.tool_000", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("could not be read") && error.contains("exceeded the maximum size"),
        "{error}"
    );
    run.close().await;
}

/// A process frozen for a while (SIGSTOP, a paused VM) saw its monotonic clock run on, so the
/// sleep check never fired and stale connectors stayed green. Now: every live connector is
/// re-checked before it is green again, and one that died meanwhile shows down; a stdio server
/// that lived through it is asked again on its session, not restarted.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_freeze_every_connector_is_checked_again() {
    use switchboard_fixture::{Fixture, Knobs};
    let alive = Fixture::start(Knobs::default()).await.unwrap();
    let dies = Fixture::start(Knobs::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("stdio.pid");
    let stdio_args = ["--stdio", "--pid-file", pid_file.to_str().unwrap()];
    fs::write(
        servers_json(dir.path()),
        serde_json::json!({"mcpServers": {
            "alive": {"url": alive.url()},
            "dies": {"url": dies.url()},
            "local": {"command": crate::stdio::fixture_bin(), "args": stdio_args},
        }})
        .to_string(),
    )
    .unwrap();
    let mut daemon = SyncJson::start(dir.path());
    daemon.expect("alive", "healthy");
    daemon.expect("dies", "healthy");
    daemon.expect("local", "healthy");
    daemon.forget();
    let stdio_pid = fs::read_to_string(&pid_file).unwrap();
    daemon.signal("-STOP");
    drop(dies); // a server that goes away while nobody looks
    // The freeze itself: longer than the check's period (5 s) plus its threshold (10 s).
    tokio::time::sleep(std::time::Duration::from_secs(16)).await;
    daemon.signal("-CONT");
    let checking = daemon.expect("alive", "connecting");
    assert!(
        checking["reason"]
            .as_str()
            .is_some_and(|r| r.contains("stopped for a while")),
        "{checking}"
    );
    daemon.expect("alive", "healthy");
    daemon.expect("dies", "down");
    daemon.expect("local", "healthy");
    let pid: u32 = stdio_pid.parse().unwrap();
    assert!(crate::stdio::running(pid), "the stdio server lived on");
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap(),
        stdio_pid,
        "and was not started again"
    );
    daemon.signal("-TERM");
    let status = daemon.stopped().await;
    assert!(status.success(), "{status}");
}

/// An AI client is outside input too: a 120 MiB line, a thousand lines that are not JSON-RPC and
/// a thousand pings sent to `serve` at once neither end it nor make it hoard memory, and the
/// request after them is answered.
#[test]
fn serve_outlasts_a_client_flooding_it_with_garbage() {
    use std::io::{BufRead as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let mut child = switchboard()
        .arg("--config-dir")
        .arg(dir.path())
        .arg("serve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut flood = String::new();
        flood.push_str(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"flood","version":"1"}}}"#);
        flood.push('\n');
        flood.push_str(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        flood.push('\n');
        flood.push_str(&"x".repeat(120 << 20));
        flood.push('\n');
        for i in 0..1000 {
            flood.push_str(&format!(
                "not json {i}\n{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}}\n",
                i + 1
            ));
        }
        flood.push_str(r#"{"jsonrpc":"2.0","id":99999,"method":"tools/list"}"#);
        flood.push('\n');
        // A client that stops reading its answers must not stop this write (they are drained).
        let _ = stdin.write_all(flood.as_bytes());
        stdin
    });
    let (answered, pings) = {
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut pings = 0;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let answer: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                if answer["id"] == 99999 {
                    let _ = tx.send((answer, pings));
                    return;
                }
                if answer["result"].is_object() && answer["id"].as_u64().is_some_and(|id| id > 0) {
                    pings += 1;
                }
            }
        });
        rx.recv_timeout(DEADLINE)
            .expect("the request after the flood is answered")
    };
    assert!(answered["result"]["tools"].is_array(), "{answered}");
    assert_eq!(pings, 1000, "every ping in the flood answered");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    // Under the line it was sent: what is kept of one line is capped (rmcp's 16 MiB).
    assert!(
        peak_kb < 100 * 1024,
        "serve's peak memory stays bounded: {peak_kb} kB"
    );
    drop(writer.join().unwrap());
    let _ = child.kill();
    let _ = child.wait();
}
