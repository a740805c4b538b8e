//! `serve` with a daemon passes the AI client's session to the daemon, which serves it; when
//! the daemon goes away in the middle of a call, that call is answered saying why (it would
//! otherwise wait for an answer nobody will send) and the session goes on.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use switchboard_fixture::Knobs;

use crate::sdk::{Sdk, SdkClient, Target};
use crate::serve::healthy_fleet_with;
use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_call_caught_by_the_daemon_quitting_is_answered_saying_why_and_the_session_goes_on() {
    for sdk in [Sdk::PythonLegacy, Sdk::PythonAuto] {
        caught_by_the_daemon_quitting(sdk).await;
    }
}

async fn caught_by_the_daemon_quitting(sdk: Sdk) {
    // Calls that take far longer than the test: only the relay can answer this one in time.
    let slow = Knobs {
        tools: 2,
        call_delay: Duration::from_secs(300),
        ..Knobs::default()
    };
    let (fixture, tmp, daemon) = healthy_fleet_with(slow, &[]).await;
    let client = SdkClient::start(
        sdk,
        Target::Serve(tmp.path()),
        &["repeat", "fx_tool_000", "{}", "2"],
    );
    let counters = fixture.counters();
    wait_until("the client's call reaches the server", || {
        counters.calls_running.load(Ordering::Relaxed) == 1
    })
    .await;

    drop(daemon);
    let quit = Instant::now();
    let report = client.next();
    assert_eq!(report["is_error"], true, "{sdk:?}: a tool error: {report}");
    let text = report["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("daemon stopped while this was asked"),
        "{sdk:?}: it says why: {report}"
    );
    assert!(
        quit.elapsed() < Duration::from_secs(5),
        "{sdk:?}: answered at the switch, not at a timeout: {:?}",
        quit.elapsed()
    );
    // The same session, opened again from serve's own engine: the next call reaches the server.
    wait_until("the next call reaches the server again", || {
        counters.tool_calls.load(Ordering::Relaxed) >= 2
    })
    .await;
}
