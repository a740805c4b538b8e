//! The running engine against live fixture servers: reconcile, eviction, list changes in both
//! eras, restarts, backoff, calls.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use switchboard::connector::{ConnectorSpec, Endpoint, Source};
use switchboard::engine::{Engine, EngineOptions, EngineSnapshot};
use switchboard::health::Health;
use switchboard::session::http_client;
use switchboard_fixture::{Fixture, Knobs};
use tokio::sync::watch;

use crate::support::*;

pub(crate) fn spec_at(id: &str, url: String) -> ConnectorSpec {
    ConnectorSpec {
        id: id.into(),
        endpoint: Endpoint::Http {
            url,
            kind: None,
            headers: IndexMap::new(),
        },
        enabled: true,
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(5),
        source: Source::Registry,
        missing_credential: None,
        info: Default::default(),
    }
}

fn options() -> EngineOptions {
    EngineOptions {
        probe_every: Duration::from_millis(100),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(400),
        ..EngineOptions::default()
    }
}

pub(crate) fn start(specs: Vec<ConnectorSpec>) -> (Engine, watch::Sender<Vec<ConnectorSpec>>) {
    let (desired, receiver) = watch::channel(specs);
    (
        Engine::start(receiver, http_client().unwrap(), options()),
        desired,
    )
}

async fn wait_for(
    engine: &Engine,
    what: &str,
    ready: impl Fn(&EngineSnapshot) -> bool,
) -> Arc<EngineSnapshot> {
    wait_for_watch(engine.subscribe(), what, |s| ready(s)).await
}

pub(crate) fn state(snapshot: &EngineSnapshot, id: &str) -> Option<Health> {
    snapshot
        .connectors
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.state)
}

fn tools_of(snapshot: &EngineSnapshot, id: &str) -> usize {
    snapshot
        .catalog
        .iter()
        .filter(|(_, t)| t.connector == id)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_and_removed_connectors_leave_at_once() {
    let (a, b) = (
        Fixture::start(Knobs::default()).await.unwrap(),
        Fixture::start(Knobs::default()).await.unwrap(),
    );
    let (engine, desired) = start(vec![spec_at("a", a.url()), spec_at("b", b.url())]);
    wait_for(&engine, "both healthy", |s| {
        state(s, "a") == Some(Health::Healthy) && state(s, "b") == Some(Health::Healthy)
    })
    .await;
    assert_eq!(engine.snapshot().catalog.len(), 6);
    let result = engine
        .call("a.tool_002", None)
        .await
        .expect("a call through the engine");
    assert_eq!(result.is_error, Some(false));

    let mut off = spec_at("a", a.url());
    off.enabled = false;
    desired.send_replace(vec![off, spec_at("b", b.url())]);
    let snapshot = wait_for(&engine, "a disabled", |s| {
        state(s, "a") == Some(Health::Disabled)
    })
    .await;
    assert_eq!(
        tools_of(&snapshot, "a"),
        0,
        "a disabled connector's tools leave with the same snapshot"
    );
    assert_eq!(snapshot.catalog.len(), 3);
    assert!(
        engine.call("a.tool_002", None).await.is_err(),
        "no calls to a disabled connector"
    );

    desired.send_replace(vec![spec_at("b", b.url())]);
    let snapshot = wait_for(&engine, "a removed", |s| state(s, "a").is_none()).await;
    assert_eq!(snapshot.connectors.len(), 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_changes_are_honoured_in_both_protocol_eras() {
    let modern = Fixture::start(Knobs::default()).await.unwrap();
    let legacy = Fixture::start(Knobs {
        legacy_only: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let (engine, _desired) = start(vec![
        spec_at("modern", modern.url()),
        spec_at("legacy", legacy.url()),
    ]);
    let snapshot = wait_for(&engine, "both healthy", |s| {
        state(s, "modern") == Some(Health::Healthy) && state(s, "legacy") == Some(Health::Healthy)
    })
    .await;
    let era = |id: &str| {
        snapshot
            .connectors
            .iter()
            .find(|c| c.id == id)
            .unwrap()
            .protocol_version
            .clone()
            .unwrap()
    };
    assert_eq!(era("modern"), "2026-07-28");
    assert_eq!(era("legacy"), "2025-11-25");

    wait_until("the change subscription is registered", || {
        modern.subscriptions() == 1
    })
    .await;
    modern.set_knobs(|k| k.tools = 5).await;
    legacy.set_knobs(|k| k.tools = 1).await;
    wait_for(&engine, "both re-listed after list_changed", |s| {
        tools_of(s, "modern") == 5 && tools_of(s, "legacy") == 1
    })
    .await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_server_is_noticed_and_re_established() {
    let fixture = Fixture::start_restartable(Knobs::default()).await.unwrap();
    let addr = fixture.addr();
    let (engine, _desired) = start(vec![spec_at("fx", fixture.url())]);
    wait_for(&engine, "healthy", |s| {
        state(s, "fx") == Some(Health::Healthy)
    })
    .await;

    fixture.stop().await;
    let snapshot = wait_for(&engine, "down once the server is gone", |s| {
        state(s, "fx") == Some(Health::Down)
    })
    .await;
    assert_eq!(
        snapshot.catalog.len(),
        0,
        "a dead server's tools leave the catalog"
    );

    // Back on the same address, but with no tools: not green again.
    let back = Fixture::start_on(
        addr,
        Knobs {
            tools: 0,
            ..Knobs::default()
        },
    )
    .await
    .unwrap();
    let snapshot = wait_for(&engine, "reconnected and the empty list noticed", |s| {
        state(s, "fx") == Some(Health::Degraded)
    })
    .await;
    assert!(
        snapshot.connectors[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("no tools")
    );
    wait_until(
        "the new session's change subscription is registered",
        || back.subscriptions() == 1,
    )
    .await;
    back.set_knobs(|k| k.tools = 2).await;
    wait_for(&engine, "healthy once tools return", |s| {
        state(s, "fx") == Some(Health::Healthy) && tools_of(s, "fx") == 2
    })
    .await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_server_is_retried_with_growing_capped_jittered_delays() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (engine, _desired) = start(vec![spec_at(
        "gone",
        format!("http://127.0.0.1:{port}/mcp"),
    )]);
    let mut changes = engine.subscribe();
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while seen.len() < 5 {
            changes.changed().await.unwrap();
            let status = changes.borrow_and_update().connectors[0].clone();
            if let (Health::Down, Some(retry)) = (status.state, status.retry_in_ms)
                && seen
                    .last()
                    .is_none_or(|(attempt, _)| *attempt != status.attempt)
            {
                seen.push((status.attempt, retry));
            }
        }
    })
    .await
    .expect("five failed attempts within the deadline");
    let opts = options();
    for (attempt, retry_ms) in &seen {
        let bound = (opts.backoff_base * 2u32.pow(attempt - 1)).min(opts.backoff_cap);
        assert!(
            *retry_ms <= bound.as_millis() as u64,
            "attempt {attempt}: {retry_ms} ms over the bound {bound:?}"
        );
    }
    let attempts: Vec<u32> = seen.iter().map(|(a, _)| *a).collect();
    // A watch channel keeps only the latest value, so a busy test may skip one; the count
    // must still only grow.
    assert!(
        attempts.windows(2).all(|pair| pair[1] > pair[0]),
        "each failure counts as a further attempt: {attempts:?}"
    );
    let reason = engine.snapshot().connectors[0].reason.clone().unwrap();
    assert!(reason.contains("refused"), "{reason}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized_and_hanging_servers_do_not_hold_up_the_rest() {
    let refuses = Fixture::start(Knobs {
        unauthorized: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let hangs = Fixture::start(Knobs {
        hang: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let fine = Fixture::start(Knobs::default()).await.unwrap();
    let mut slow = spec_at("hangs", hangs.url());
    slow.connect_timeout = Duration::from_secs(60);
    let (engine, _desired) = start(vec![
        spec_at("refuses", refuses.url()),
        slow,
        spec_at("fine", fine.url()),
    ]);
    let snapshot = wait_for(
        &engine,
        "the good one healthy, the 401 one unauthorized",
        |s| {
            state(s, "fine") == Some(Health::Healthy)
                && state(s, "refuses") == Some(Health::Unauthorized)
        },
    )
    .await;
    assert_eq!(
        state(&snapshot, "hangs"),
        Some(Health::Connecting),
        "still waiting on its own timeout"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_keeps_connectors_in_sync_with_registry_edits() {
    use std::io::{BufRead, BufReader};
    let fixture = Fixture::start(Knobs::default()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    assert!(
        cli(&dir, &["registry", "add", "fx", "--url", &fixture.url()])
            .status
            .success()
    );
    let mut watcher = switchboard()
        .arg("--config-dir")
        .arg(&dir)
        .args(["sync", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str(&line) {
                let _ = tx.send(value);
            }
        }
    });
    let expect = |what: &str, matches: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let event = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("within {DEADLINE:?}: {what}"));
            if matches(&event) {
                return;
            }
        }
    };
    expect("fx becomes healthy", &|e| {
        e["event"] == "state" && e["id"] == "fx" && e["state"] == "healthy"
    });
    let disabled = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || cli(&dir, &["registry", "disable", "fx"])
    });
    assert!(disabled.await.unwrap().status.success());
    expect("the edit reaches the running engine", &|e| {
        e["event"] == "state"
            && e["id"] == "fx"
            && e["from"] == "healthy"
            && e["state"] == "disabled"
    });
    let term = std::process::Command::new("kill")
        .args(["-TERM", &watcher.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = watcher.wait().unwrap();
    assert!(status.success(), "sync exits cleanly on SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_snapshot_follows_the_calls_made() {
    let fixture = Fixture::start(Knobs::default()).await.unwrap();
    let (_desired, receiver) = watch::channel(vec![spec_at("fx", fixture.url())]);
    // No probe tick (which also refreshes the figures) during the test.
    let quiet = EngineOptions {
        probe_every: Duration::from_secs(3600),
        ..options()
    };
    let engine = Engine::start(receiver, http_client().unwrap(), quiet);
    wait_for(&engine, "healthy", |s| {
        state(s, "fx") == Some(Health::Healthy)
    })
    .await;
    for _ in 0..3 {
        engine.call("fx.tool_000", None).await.expect("a call");
    }
    // Nothing else happens: only the calls can bring the figures up to date.
    let snapshot = wait_for(&engine, "three calls in the snapshot", |s| {
        s.connectors[0].calls.is_some_and(|c| c.calls == 3)
    })
    .await;
    let calls = snapshot.connectors[0].calls.unwrap();
    assert!(
        calls.p50_ms > 0.0 && calls.p50_ms <= calls.p99_ms,
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_are_measured_and_mostly_failing_calls_degrade_the_connector() {
    let fixture = Fixture::start(Knobs {
        fail_every: 1,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let (engine, _desired) = start(vec![spec_at("fx", fixture.url())]);
    wait_for(&engine, "healthy", |s| {
        state(s, "fx") == Some(Health::Healthy)
    })
    .await;
    for _ in 0..12 {
        assert!(
            engine.call("fx.tool_000", None).await.is_err(),
            "the fixture fails every call"
        );
    }
    let snapshot = wait_for(&engine, "degraded by failing calls", |s| {
        state(s, "fx") == Some(Health::Degraded)
    })
    .await;
    let reason = snapshot.connectors[0].reason.clone().unwrap();
    assert_eq!(reason, "12 of the last 12 calls failed");
    assert_eq!(
        snapshot.catalog.len(),
        3,
        "a degraded connector keeps its tools: it answers"
    );

    fixture.set_knobs(|k| k.fail_every = 0).await;
    for _ in 0..30 {
        engine
            .call("fx.tool_001", None)
            .await
            .expect("calls succeed again");
    }
    // It may turn healthy while the calls are still going: wait for all 42 in the summary.
    let snapshot = wait_for(
        &engine,
        "healthy once calls succeed, all calls counted",
        |s| {
            state(s, "fx") == Some(Health::Healthy)
                && s.connectors[0].calls.is_some_and(|c| c.calls == 42)
        },
    )
    .await;
    let calls = snapshot.connectors[0].calls.expect("calls are summarised");
    assert_eq!((calls.calls, calls.errors), (42, 12));
    assert!(
        calls.p50_ms > 0.0 && calls.p50_ms <= calls.p95_ms && calls.p95_ms <= calls.p99_ms,
        "{calls:?}"
    );

    let stop = tokio_util::sync::CancellationToken::new();
    let refused =
        switchboard::metrics::serve(engine.metrics(), "0.0.0.0:0".parse().unwrap(), stop.clone())
            .await;
    assert!(refused.is_err(), "metrics must not listen beyond loopback");
    let (addr, server) = switchboard::metrics::serve(
        engine.metrics(),
        "127.0.0.1:0".parse().unwrap(),
        stop.clone(),
    )
    .await
    .unwrap();
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failed_calls = text
        .lines()
        .find(|l| {
            l.starts_with("mcp_client_operation_duration_seconds_count{")
                && l.contains("error_type=\"-32603\"")
        })
        .unwrap_or_else(|| panic!("no failed-call series in:\n{text}"));
    assert!(
        failed_calls.contains("connector=\"fx\"")
            && failed_calls.contains("gen_ai_tool_name=\"tool_000\""),
        "{failed_calls}"
    );
    assert!(failed_calls.ends_with(" 12"), "{failed_calls}");
    assert!(
        text.contains("switchboard_connector_up{connector=\"fx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("switchboard_tools{connector=\"fx\"} 3"),
        "{text}"
    );
    let syncs = text
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_sync_duration_seconds_count "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        syncs.is_some_and(|n| n >= 1),
        "the initial sync is measured:\n{text}"
    );
    stop.cancel();
    let _ = server.await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recheck_shows_connecting_until_each_connector_answers_again() {
    // An initialize-era server: a 2026-era one's change subscription would end with it and
    // give its death away before the re-check (as it should, but not what this tests).
    let (up, gone) = (
        Fixture::start(Knobs::default()).await.unwrap(),
        Fixture::start(Knobs {
            legacy_only: true,
            ..Knobs::default()
        })
        .await
        .unwrap(),
    );
    let (_desired, receiver) =
        watch::channel(vec![spec_at("up", up.url()), spec_at("gone", gone.url())]);
    // Probes far apart, so only the re-check can notice anything.
    let quiet = EngineOptions {
        probe_every: Duration::from_secs(600),
        ..options()
    };
    let engine = Engine::start(receiver, http_client().unwrap(), quiet);
    wait_for(&engine, "both healthy", |s| {
        state(s, "up") == Some(Health::Healthy) && state(s, "gone") == Some(Health::Healthy)
    })
    .await;
    // Listening before the stop: under load, the session may see its stream end (and the
    // connector go down by itself) before the re-check is asked for.
    let mut events = engine.events();
    gone.stop().await;
    engine.recheck_all("the network changed").await;

    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while !(seen.contains(&("up", Health::Healthy)) && seen.contains(&("gone", Health::Down))) {
            if let switchboard::engine::EngineEvent::StateChanged { id, to, reason, .. } =
                events.recv().await.unwrap()
            {
                if to == Health::Connecting && id == "up" {
                    assert_eq!(reason.as_deref(), Some("re-checking: the network changed"));
                }
                seen.push((if id == "up" { "up" } else { "gone" }, to));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("within {DEADLINE:?}: both re-checked; saw {seen:?}"));
    let up_states: Vec<Health> = seen
        .iter()
        .filter(|(id, _)| *id == "up")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(
        up_states,
        [Health::Connecting, Health::Healthy],
        "not green again before it answered"
    );
    // Down by the re-check (connecting first) or, under load, by seeing its stream end first
    // (down at once): either way, never green again.
    assert!(
        !seen.contains(&("gone", Health::Healthy)),
        "the stopped server is never shown healthy: {seen:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_past_its_deadline_is_cancelled_at_the_server_in_both_eras() {
    use std::sync::atomic::Ordering;
    for legacy_only in [false, true] {
        let slow = Knobs {
            call_delay: Duration::from_secs(30),
            legacy_only,
            ..Knobs::default()
        };
        let fixture = Fixture::start(slow).await.unwrap();
        let mut quick = spec_at("slow", fixture.url());
        quick.call_timeout = Duration::from_millis(300);
        let (engine, _desired) = start(vec![quick]);
        wait_for(&engine, "healthy", |s| {
            state(s, "slow") == Some(Health::Healthy)
        })
        .await;
        let error = engine.call("slow.tool_000", None).await.unwrap_err();
        assert!(
            error.to_string().contains("no answer within 300 ms"),
            "{error}"
        );
        wait_until(
            "the server's handler is cancelled, not left running",
            || fixture.counters().cancellations.load(Ordering::Relaxed) == 1,
        )
        .await;
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_uses_the_handshake_detected_before() {
    let legacy = Knobs {
        legacy_only: true,
        ..Knobs::default()
    };
    let first = Fixture::start_restartable(legacy.clone()).await.unwrap();
    let addr = first.addr();
    let (engine, _desired) = start(vec![spec_at("old", first.url())]);
    wait_for(&engine, "healthy", |s| {
        state(s, "old") == Some(Health::Healthy)
    })
    .await;
    assert_eq!(
        first.methods().first().map(String::as_str),
        Some("server/discover"),
        "detection starts with discover"
    );

    first.stop().await;
    wait_for(&engine, "down", |s| state(s, "old") == Some(Health::Down)).await;
    let again = Fixture::start_on(addr, legacy).await.unwrap();
    wait_for(&engine, "reconnected", |s| {
        state(s, "old") == Some(Health::Healthy)
    })
    .await;
    assert_eq!(
        again.methods().first().map(String::as_str),
        Some("initialize"),
        "the reconnect goes straight to initialize, as detected the first time: {:?}",
        again.methods()
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forgotten_session_is_re_established_without_an_outage() {
    let fixture = Fixture::start(Knobs {
        legacy_only: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let (engine, _desired) = start(vec![spec_at("old", fixture.url())]);
    wait_for(&engine, "healthy", |s| {
        state(s, "old") == Some(Health::Healthy)
    })
    .await;
    let mut events = engine.events();
    let initializes = || {
        fixture
            .methods()
            .iter()
            .filter(|m| *m == "initialize")
            .count()
    };
    let before = initializes();

    fixture.forget_sessions().await;
    let result = engine.call("old.tool_001", None).await;
    assert!(
        result.is_ok(),
        "the call after the server forgot the session: {result:?}"
    );
    assert_eq!(
        initializes(),
        before + 1,
        "a fresh initialize, behind the call's back"
    );
    assert_eq!(state(&engine.snapshot(), "old"), Some(Health::Healthy));
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(event, switchboard::engine::EngineEvent::StateChanged { .. }),
            "no state change was shown: {event:?}"
        );
    }
    engine.shutdown().await;
}
