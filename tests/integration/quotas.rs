//! A connector's quotas hold whoever calls: beyond `concurrent` a call waits its turn, beyond
//! `perMinute` one is refused at once saying when to retry, and an AI client through `serve`
//! gets that as a tool error. Each is counted in `/metrics`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use switchboard_fixture::{Fixture, Knobs};

use crate::daemon::{scrape, start_daemon};
use crate::sdk::{Sdk, SdkClient, Target};
use crate::support::*;

const CALL_DELAY: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread")]
async fn a_connectors_quotas_hold_for_the_cli_and_for_ai_clients() {
    let fixture = Fixture::start(Knobs {
        tools: 1,
        call_delay: CALL_DELAY,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let registry = serde_json::json!({"mcpServers": {"fx": {
        "url": fixture.url(),
        "quotas": {"concurrent": 1, "perMinute": 3},
    }}});
    std::fs::write(dir.join("servers.json"), registry.to_string()).unwrap();
    let daemon = start_daemon(dir, true).await;
    let start = Instant::now();
    while !stdout(&run_cli(dir, &["status", "--json"]).await).contains("\"healthy\"") {
        assert!(start.elapsed() < DEADLINE, "fx healthy within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Two at once through the daemon: the server sees one at a time, the second waited.
    let started = Instant::now();
    let (first, second) = tokio::join!(
        run_cli(dir, &["call", "fx.tool_000"]),
        run_cli(dir, &["call", "fx.tool_000"]),
    );
    let took = started.elapsed();
    for out in [&first, &second] {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let most = fixture
        .counters()
        .most_calls_running
        .load(Ordering::Acquire);
    assert_eq!(most, 1, "never more than `concurrent` at the server");
    assert!(took >= CALL_DELAY * 2, "one after the other: {took:?}");

    // The third of the minute is let through; the fourth is refused at once, through serve.
    let third = run_cli(dir, &["call", "fx.tool_000"]).await;
    assert!(third.status.success(), "{}", stderr(&third));
    let calls_before = fixture.counters().tool_calls.load(Ordering::Acquire);
    let client = SdkClient::start(
        Sdk::PythonAuto,
        Target::Serve(dir),
        &["list-call", "fx_tool_000", "{}"],
    );
    let report = client.next();
    client.finish().await;
    assert_eq!(report["is_error"], true, "{report}");
    let text = report["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("\"fx\"") && text.contains("3 calls per minute; retry in"),
        "names the connector, the limit and when to retry: {text}"
    );
    assert_eq!(
        fixture.counters().tool_calls.load(Ordering::Acquire),
        calls_before,
        "the refused call never reached the server"
    );

    let metrics = scrape(daemon.metrics.as_deref().unwrap());
    for outcome in ["waited", "rate_limited"] {
        let series =
            format!("switchboard_quota_calls_total{{connector=\"fx\",outcome=\"{outcome}\"}} 1");
        assert!(metrics.contains(&series), "{series} in:\n{metrics}");
    }
}
