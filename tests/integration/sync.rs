//! Connecting real MCP servers (the fixture, on loopback sockets) in parallel.

use std::time::{Duration, Instant};

use indexmap::IndexMap;
use switchboard::connector::{ConnectorSpec, Endpoint, Source};
use switchboard::health::Health;
use switchboard::session::{Session, http_client};
use switchboard_fixture::{Fixture, Knobs};

use crate::support::*;

fn spec(id: &str, fixture: &Fixture, connect_timeout: Duration) -> ConnectorSpec {
    ConnectorSpec {
        id: id.into(),
        endpoint: Endpoint::Http {
            url: fixture.url(),
            kind: None,
            headers: IndexMap::new(),
        },
        enabled: true,
        connect_timeout,
        call_timeout: Duration::from_secs(10),
        source: Source::Registry,
        missing_credential: None,
        info: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_connects_with_every_tool_listed_across_pages() {
    let mut fixtures = Vec::new();
    for tools in [3, 3, 3, 120] {
        fixtures.push(
            Fixture::start(Knobs {
                tools,
                page_size: 50,
                ..Knobs::default()
            })
            .await
            .unwrap(),
        );
    }
    let specs = fixtures
        .iter()
        .enumerate()
        .map(|(i, f)| spec(&format!("fx{i}"), f, DEADLINE))
        .collect();
    let connected = one_shot(specs, &http_client().unwrap(), 16).await;
    for report in connected.reports() {
        assert_eq!(report.state, Health::Healthy, "{report:?}");
        assert!(report.protocol_version.is_some(), "{report:?}");
        assert!(report.latency_ms.is_some(), "{report:?}");
    }
    assert_eq!(
        connected.reports()[3].tools,
        120,
        "all three pages of tools are listed"
    );
    let catalog = connected.catalog();
    assert_eq!(
        catalog.len(),
        129,
        "the catalog holds exactly the live tools"
    );
    assert!(
        catalog.get("fx3.tool_119").is_some(),
        "last tool of the last page"
    );
    connected.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hanging_connectors_cost_only_their_own_timeout() {
    const HANG_TIMEOUT: Duration = Duration::from_secs(2);
    const HANGERS: u32 = 4;
    let mut specs = Vec::new();
    let mut fixtures = Vec::new();
    for i in 0..8 {
        let hang = i % 2 == 0;
        let fixture = Fixture::start(Knobs {
            hang,
            ..Knobs::default()
        })
        .await
        .unwrap();
        let timeout = if hang { HANG_TIMEOUT } else { DEADLINE };
        specs.push(spec(&format!("c{i}"), &fixture, timeout));
        fixtures.push(fixture);
    }
    let started = Instant::now();
    let connected = one_shot(specs, &http_client().unwrap(), 16).await;
    let elapsed = started.elapsed();
    for (i, report) in connected.reports().iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(report.state, Health::Down, "{report:?}");
            assert!(
                report
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains("no answer within 2000 ms"),
                "{report:?}"
            );
        } else {
            assert_eq!(report.state, Health::Healthy, "{report:?}");
            let latency = Duration::from_secs_f64(report.latency_ms.unwrap() / 1e3);
            assert!(
                latency < HANG_TIMEOUT,
                "a healthy connector waited on the hanging ones: {latency:?}"
            );
        }
    }
    // One at a time, the hangers alone would take HANGERS × HANG_TIMEOUT.
    assert!(
        elapsed < HANG_TIMEOUT * (HANGERS - 1),
        "the sync took {elapsed:?}: hanging connectors delayed each other"
    );
    connected.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sequential_fallback_connects_one_at_a_time() {
    const TIMEOUT: Duration = Duration::from_millis(400);
    let mut fixtures = Vec::new();
    for _ in 0..3 {
        fixtures.push(
            Fixture::start(Knobs {
                hang: true,
                ..Knobs::default()
            })
            .await
            .unwrap(),
        );
    }
    let specs = fixtures
        .iter()
        .enumerate()
        .map(|(i, f)| spec(&format!("h{i}"), f, TIMEOUT))
        .collect();
    let started = Instant::now();
    let connected = one_shot(specs, &http_client().unwrap(), 1).await;
    assert!(
        started.elapsed() >= TIMEOUT * 3,
        "concurrency 1 must wait for each in turn"
    );
    assert!(connected.reports().iter().all(|r| r.state == Health::Down));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_is_unauthorized_not_down_and_headers_are_sent() {
    let open = Fixture::start(Knobs {
        unauthorized: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let guarded = Fixture::start(Knobs {
        require_authorization: Some("Bearer right".into()),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let mut with_token = spec("guarded", &guarded, DEADLINE);
    if let Endpoint::Http { headers, .. } = &mut with_token.endpoint {
        headers.insert("Authorization".into(), "Bearer right".into());
    }
    let specs = vec![
        spec("refuses", &open, DEADLINE),
        spec("no-token", &guarded, DEADLINE),
        with_token,
    ];
    let connected = one_shot(specs, &http_client().unwrap(), 16).await;
    let states: Vec<Health> = connected.reports().iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [Health::Unauthorized, Health::Unauthorized, Health::Healthy],
        "{:?}",
        connected.reports()
    );
    assert!(
        !format!("{:?}", connected.reports()).contains("right"),
        "a token leaked into a report"
    );
    connected.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_tools_is_degraded_and_disabled_is_never_contacted() {
    let empty = Fixture::start(Knobs {
        tools: 0,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let off = Fixture::start(Knobs::default()).await.unwrap();
    let mut disabled = spec("off", &off, DEADLINE);
    disabled.enabled = false;
    let connected = one_shot(
        vec![spec("empty", &empty, DEADLINE), disabled],
        &http_client().unwrap(),
        16,
    )
    .await;
    assert_eq!(connected.reports()[0].state, Health::Degraded);
    assert!(
        connected.reports()[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("no tools")
    );
    assert_eq!(connected.reports()[1].state, Health::Disabled);
    assert_eq!(
        off.accepted_connections(),
        0,
        "a disabled connector must not be contacted"
    );
    assert!(connected.catalog().is_empty());
    connected.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_reuse_the_connection_the_handshake_opened() {
    let fixture = Fixture::start(Knobs::default()).await.unwrap();
    let http = http_client().unwrap();
    let session = Session::open(&spec("fx", &fixture, DEADLINE), &http)
        .await
        .unwrap();
    let after_handshake = fixture.accepted_connections();
    let caller = session.caller();
    for i in 0..20 {
        let args = serde_json::json!({"text": format!("call {i}")});
        let result = caller
            .call("tool_001", args.as_object().cloned())
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(false));
    }
    // The engine hands a response over only once its stream has ended, but hyper puts the
    // connection back in its pool from a task of its own; a call that starts in between gets a
    // fresh loopback connection. CI caught that once in many runs, so what is guaranteed is no
    // connection per call: at most one more, ever (the sync benchmark measures 0 in 2,000).
    assert!(
        fixture.accepted_connections() <= after_handshake + 1,
        "20 sequential calls opened {} connections beyond the handshake's {after_handshake}",
        fixture.accepted_connections() - after_handshake
    );
    let failed = caller.call("missing", None).await.unwrap_err();
    assert!(failed.to_string().contains("no tool missing"), "{failed}");
    session.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_syncs_lists_and_calls_registry_servers() {
    let fixture = Fixture::start(Knobs {
        tools: 2,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let url = fixture.url();
    let run = move |args: Vec<String>| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&dir, &args)
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let added = run(args(&["registry", "add", "fx", "--url", &url]))
        .await
        .unwrap();
    assert!(added.status.success(), "{}", stderr(&added));
    run(args(&[
        "registry",
        "add",
        "gone",
        "--url",
        "http://127.0.0.1:1/mcp",
    ]))
    .await
    .unwrap();

    let out = run(args(&["sync", "--once", "--json"])).await.unwrap();
    assert!(
        out.status.success(),
        "sync --once exits 0 even with a connector down: {}",
        stderr(&out)
    );
    let reports: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(reports[0]["id"], "fx");
    assert_eq!(reports[0]["state"], "healthy");
    assert_eq!(reports[0]["tools"], 2);
    assert!(reports[0]["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(reports[0]["protocol_version"].is_string());
    assert_eq!(reports[1]["state"], "down");
    assert!(
        reports[1]["error"].as_str().unwrap().contains("refused"),
        "{}",
        reports[1]
    );

    let tools = run(args(&["tools", "--json"])).await.unwrap();
    let tools: serde_json::Value = serde_json::from_str(&stdout(&tools)).unwrap();
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fx.tool_000", "fx.tool_001"]);
    assert_eq!(
        tools[0]["input_schema"]["properties"]["text"]["type"], "string",
        "tools --json says what arguments each tool takes: {tools}"
    );

    let call = run(args(&[
        "call",
        "fx.tool_001",
        "--args",
        r#"{"text":"hello"}"#,
    ]))
    .await
    .unwrap();
    assert!(call.status.success(), "{}", stderr(&call));
    assert!(stdout(&call).contains("hello"), "{}", stdout(&call));
    let bad = run(args(&["call", "fx.nope"])).await.unwrap();
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("no tool nope"), "{}", stderr(&bad));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_server_is_never_answered_from_a_cache() {
    let fixture = Fixture::start(Knobs::default()).await.unwrap();
    let mut session = Session::open(&spec("fx", &fixture, DEADLINE), &http_client().unwrap())
        .await
        .unwrap();
    session
        .probe(DEADLINE)
        .await
        .expect("a live server answers the probe");
    session.relist(DEADLINE).await.expect("and lists its tools");
    fixture.stop().await;
    let probe = session.probe(Duration::from_secs(5)).await;
    assert!(
        probe.is_err(),
        "a stopped server must fail the probe, got {probe:?}"
    );
    let relist = session.relist(Duration::from_secs(5)).await.map(<[_]>::len);
    assert!(
        relist.is_err(),
        "a stopped server's tools must not come from a cache: {relist:?}"
    );
    session.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_sse_transport_declared_or_detected() {
    let fixture = Fixture::start(Knobs {
        tools: 60,
        page_size: 25,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let sse = |kind| ConnectorSpec {
        endpoint: Endpoint::Http {
            url: fixture.sse_url(),
            kind,
            headers: IndexMap::new(),
        },
        ..spec("old", &fixture, DEADLINE)
    };
    for kind in [Some(switchboard::registry::model::RemoteKind::Sse), None] {
        let connected = one_shot(vec![sse(kind)], &http_client().unwrap(), 16).await;
        let report = &connected.reports()[0];
        assert_eq!(report.state, Health::Healthy, "{kind:?}: {report:?}");
        assert_eq!(report.tools, 60, "{kind:?}: pages over SSE");
        let result = connected.call("old.tool_042", None).await.unwrap();
        assert_eq!(result.is_error, Some(false));
        connected.close().await;
    }
    let methods = fixture.methods();
    assert!(methods.contains(&"initialize".to_string()), "{methods:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_server_is_reached_over_http2_on_one_connection() {
    use std::sync::atomic::Ordering;
    let fixture = Fixture::start_tls(Knobs {
        tools: 2,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let untrusted = one_shot(
        vec![spec("tls", &fixture, DEADLINE)],
        &http_client().unwrap(),
        16,
    )
    .await;
    assert_eq!(
        untrusted.reports()[0].state,
        Health::Down,
        "a self-signed certificate is not trusted by default"
    );
    // Its engine would go on retrying (and connecting) in the background.
    untrusted.close().await;
    let accepted_before = fixture.accepted_connections();

    let http =
        switchboard::session::http_client_trusting(fixture.ca_pem().unwrap().as_bytes()).unwrap();
    let connected = one_shot(vec![spec("tls", &fixture, DEADLINE)], &http, 16).await;
    assert_eq!(
        connected.reports()[0].state,
        Health::Healthy,
        "{:?}",
        connected.reports()[0]
    );
    for _ in 0..10 {
        connected.call("tls.tool_001", None).await.unwrap();
    }
    let counters = fixture.counters();
    assert!(counters.http_requests.load(Ordering::Relaxed) > 10);
    assert_eq!(
        counters.http2_requests.load(Ordering::Relaxed),
        counters.http_requests.load(Ordering::Relaxed),
        "every request over TLS went over HTTP/2"
    );
    assert_eq!(
        fixture.accepted_connections() - accepted_before,
        1,
        "HTTP/2 multiplexes the session, its subscription stream and every call on one connection"
    );
    connected.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_origin_is_not_followed_so_no_header_goes_there() {
    use std::io::{Read as _, Write as _};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Another origin (another port on this machine), counting what reaches it.
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let elsewhere_port = elsewhere.local_addr().unwrap().port();
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    std::thread::spawn(move || {
        for _ in elsewhere.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    // A server that answers every request with a redirect there.
    let redirector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = redirector.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in redirector.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{elsewhere_port}/mcp\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let spec = ConnectorSpec {
        id: "moved".into(),
        endpoint: Endpoint::Http {
            url: format!("http://127.0.0.1:{port}/mcp"),
            kind: None,
            headers: [("X-Api-Key".to_string(), "s3cret".to_string())]
                .into_iter()
                .collect(),
        },
        enabled: true,
        connect_timeout: DEADLINE,
        call_timeout: DEADLINE,
        source: Source::Registry,
        missing_credential: None,
        info: Default::default(),
    };
    let connected = one_shot(vec![spec], &http_client().unwrap(), 16).await;
    let report = &connected.reports()[0];
    assert_ne!(report.state, Health::Healthy, "{report:?}");
    connected.close().await;
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing, and so no X-Api-Key, went to the other origin"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_says_why_and_keeps_the_whole_cause() {
    // A port that was just free: nothing listens on it now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut spec = spec(
        "gone",
        &Fixture::start(Knobs::default()).await.unwrap(),
        DEADLINE,
    );
    spec.endpoint = Endpoint::Http {
        url: format!("http://127.0.0.1:{port}/mcp"),
        kind: None,
        headers: IndexMap::new(),
    };
    let error = match Session::open(&spec, &http_client().unwrap()).await {
        Err(error) => error,
        Ok(_) => panic!("nothing listens on port {port}"),
    };
    assert_eq!(error.kind(), "unreachable", "{error}");
    assert!(error.to_string().contains("refused"), "{error}");
    // The message is the innermost cause; the chain beneath it still reaches the OS error.
    let mut chain = Vec::new();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        chain.push(inner.to_string());
        cause = inner.source();
    }
    assert!(chain.len() >= 2, "{chain:#?}");
    assert!(
        chain.last().is_some_and(|last| last.contains("refused")),
        "{chain:#?}"
    );
}
