//! End-to-end: the real app binary in a real WebKit window, driven through tauri-driver under a
//! private Xvfb display, against fixture MCP servers on loopback. One app at a time (each is a
//! browser engine: on two cores, several at once would only race each other).

mod ai_client;
mod endpoint;
mod signin;
mod support;
mod tray_host;

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_fixture::{Fixture, Knobs, fleet};

use support::{App, Launch, TempDir, bounded, cli, wait_until};

pub(crate) static ONE_APP_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) fn knobs() -> Knobs {
    Knobs {
        tools: 4,
        ..Knobs::default()
    }
}

/// A config dir whose registry lists `urls` as fx1, fx2, …
pub(crate) fn registry_with(home: &TempDir, urls: &[String]) {
    let config = home.0.join("config");
    for (i, url) in urls.iter().enumerate() {
        let out = cli(
            &config,
            &["registry", "add", &format!("fx{}", i + 1), "--url", url],
        );
        assert!(
            out.status.success(),
            "registry add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A fleet of `n` fixture servers, all in the registry (fx1, fx2, …), and the app started on it.
async fn app_on_fleet(tag: &str, n: usize, knobs: Knobs, launch: Launch) -> (App, Vec<Fixture>) {
    let fixtures = fleet(n, &knobs).await.expect("fixture fleet");
    let home = TempDir::new(tag);
    registry_with(&home, &fixtures.iter().map(|f| f.url()).collect::<Vec<_>>());
    (App::start(home, launch).await, fixtures)
}

fn with_tray_host() -> Launch {
    Launch {
        tray_host: true,
        ..Launch::default()
    }
}

/// `servers.json` as JSON, once it exists and parses.
fn servers_file(app: &App) -> Option<Value> {
    let text = std::fs::read_to_string(app.config_dir.join("servers.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Picks the Latency view's time window (`""`: since start), as a user's choice does.
async fn choose_latency_window(app: &App, seconds: &str) {
    let script = "const [value] = arguments; const s = document.getElementById('latency-window'); \
        s.value = value; s.dispatchEvent(new Event('change'));";
    bounded(
        "choosing a time window",
        app.client.execute(script, vec![seconds.into()]),
    )
    .await
    .expect("the window chosen");
}

/// Calls a command from inside the page, as the UI does.
async fn invoke(app: &App, command: &str, args: Value) -> Value {
    let script = "const [command, args, done] = arguments; \
        window.__TAURI__.core.invoke(command, args).then(done, (e) => done({ failed: e }));";
    bounded(
        "an invoke from the page",
        app.client.execute_async(script, vec![command.into(), args]),
    )
    .await
    .unwrap_or_else(|e| panic!("invoke {command}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connectors_view_follows_the_fleet_and_a_toggle_evicts_the_tools() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let (app, _fixtures) = app_on_fleet("connectors", 3, knobs(), with_tray_host()).await;
    let tray = app.tray.as_ref().expect("a tray host");

    app.wait_text("#summary", "all three connect", |t| t == "3/3 healthy")
        .await;
    for id in ["fx1", "fx2", "fx3"] {
        let tools = app
            .text(&format!("tr[data-id='{id}'].healthy td.tools"))
            .await;
        assert_eq!(tools, "4", "{id} lists the fixture's 4 tools");
    }
    app.screenshot("connectors").await;
    // The protocol version is one date on one line: it used to wrap in a narrow window (the
    // test window's width is the app's own, so the style that prevents it is checked too).
    let cell = bounded(
        "measuring the protocol cell",
        app.client.execute(
            "const cell = document.querySelector(\"tr[data-id='fx1'] td.protocol\");
             const range = document.createRange();
             range.selectNodeContents(cell);
             return [cell.textContent, getComputedStyle(cell).whiteSpace,
                     new Set([...range.getClientRects()].map(r => r.top)).size];",
            vec![],
        ),
    )
    .await
    .expect("the protocol cell");
    assert_eq!(cell[1], "nowrap", "{cell}");
    assert_eq!(cell[2], 1, "the protocol cell is one line: {cell}");

    app.click("tr[data-id='fx2'] input.toggle").await;
    app.wait_text("#summary", "fx2 leaves the count", |t| t == "2/2 healthy")
        .await;
    app.wait_text("tr[data-id='fx2'] td.tools", "fx2's tools are gone", |t| {
        t == "0"
    })
    .await;
    wait_until("servers.json says fx2 is off", || {
        servers_file(&app).is_some_and(|f| f["mcpServers"]["fx2"]["enabled"] == false)
    })
    .await;
    wait_until_async("the tray menu shows fx2 unticked", || async {
        let menu = tray.menu().await;
        menu.iter()
            .any(|e| e.label == "fx2" && e.checked == Some(false))
            && menu
                .iter()
                .any(|e| e.label == "fx1 — healthy" && e.checked == Some(true))
    })
    .await;
    let tools = invoke(&app, "tools", Value::Null).await;
    let names: Vec<&str> = tools
        .as_array()
        .expect("a tool list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names.len(), 8, "fx1 and fx3 keep their tools: {names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("fx2.")),
        "fx2's tools are evicted: {names:?}"
    );

    app.click("tr[data-id='fx2'] input.toggle").await;
    app.wait_text("#summary", "fx2 is back", |t| t == "3/3 healthy")
        .await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_added_in_the_registry_view_connects_and_a_bad_one_is_refused_inline() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let fixtures = fleet(2, &knobs()).await.expect("fixture fleet");
    let home = TempDir::new("registry");
    registry_with(&home, &[fixtures[0].url()]);
    let app = App::start(home, Launch::default()).await;
    app.wait_text("#summary", "fx1 connects", |t| t == "1/1 healthy")
        .await;

    app.click("#tab-registry").await;
    app.click("#server-new").await;
    app.fill("#server-form input[name=name]", "added").await;
    app.click("#server-form input[name=kind][value=http]").await;
    app.fill("#server-form input[name=url]", &fixtures[1].url())
        .await;
    app.click("#server-save").await;
    app.wait_text("#servers", "the new server is listed", |t| {
        t.contains("added")
    })
    .await;
    app.click("#tab-connectors").await;
    app.wait_text("#summary", "the added server connects", |t| {
        t == "2/2 healthy"
    })
    .await;
    app.element("tr[data-id='added'].healthy").await;

    // A server with a token: the window is told it is set, never what it is.
    let keyed = json!({"url": fixtures[0].url(), "headers": {"Authorization": "Bearer s3cret"}});
    let saved = invoke(
        &app,
        "save_server",
        json!({"name": "keyed", "entry": keyed}),
    )
    .await;
    assert!(saved.get("failed").is_none(), "{saved}");
    app.wait_text(
        "tr[data-id='keyed'] td.credential",
        "its token shows as set",
        |t| t == "set",
    )
    .await;
    assert_eq!(app.text("tr[data-id='fx1'] td.credential").await, "—");
    let page = bounded("the page's text", app.client.source())
        .await
        .expect("page source");
    assert!(!page.contains("s3cret"), "the token reached the window");

    app.click("#tab-registry").await;
    app.click("#server-new").await;
    app.fill("#server-form input[name=name]", "broken").await;
    app.click("#server-form input[name=kind][value=http]").await;
    app.fill("#server-form input[name=url]", "ftp://files.example/mcp")
        .await;
    app.click("#server-save").await;
    let error = app
        .wait_text(
            ".field-error[data-for=url]",
            "the engine's reason shows beside the URL",
            |t| !t.is_empty(),
        )
        .await;
    assert!(
        error.contains("ftp"),
        "the message names the bad scheme: {error}"
    );
    assert!(
        servers_file(&app).is_none_or(|f| f["mcpServers"].get("broken").is_none()),
        "nothing was saved"
    );
    app.screenshot("registry").await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latency_view_draws_the_calls_made() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let slow = Knobs {
        latency: Duration::from_millis(5),
        ..knobs()
    };
    let (app, fixtures) = app_on_fleet("latency", 1, slow, Launch::default()).await;
    app.wait_text("#summary", "fx1 connects", |t| t == "1/1 healthy")
        .await;

    app.click("#tab-latency").await;
    app.wait_text("#call-tool", "the tool list fills", |t| {
        t.contains("fx1.tool_000")
    })
    .await;
    // The form asks for the selected tool's arguments, one field per schema property, and
    // writes them into the JSON it sends.
    app.fill("#call-fields input[name='text']", "hello from the form")
        .await;
    let sent = bounded(
        "reading the arguments",
        app.client
            .execute("return document.getElementById('call-args').value", vec![]),
    )
    .await
    .expect("the arguments");
    assert_eq!(sent, r#"{"text":"hello from the form"}"#);
    app.click("#call-run").await;
    app.wait_text("#call-result", "the call echoes the field", |t| {
        t.contains("hello from the form")
    })
    .await;
    app.screenshot("call-form").await;
    clear_call_result(&app).await;
    for _ in 0..4 {
        app.click("#call-run").await;
        app.wait_text("#call-result", "the call answers", |t| {
            t.contains("content")
        })
        .await;
        app.fill("#call-args", "{}").await; // also clears the result's wait for the next call
        clear_call_result(&app).await;
    }
    let figure = app
        .element("#charts figure[data-id='fx1'][data-calls='5']")
        .await;
    let src = figure
        .find(fantoccini::Locator::Css("img"))
        .await
        .expect("the chart image")
        .attr("src")
        .await
        .expect("src")
        .unwrap_or_default();
    assert!(
        src.starts_with("data:image/svg+xml"),
        "an SVG chart: {src:.60}"
    );
    let svg = urlencoding_decode(&src);
    assert!(
        svg.contains("5 calls") && svg.contains("p95"),
        "the chart has the data: {svg:.400}"
    );
    app.screenshot("latency").await;

    // The last 5 minutes hold the same five calls, drawn from the by-minute counts.
    choose_latency_window(&app, "300").await;
    let windowed = app
        .element("#charts figure[data-id='fx1'][data-window='300'] img")
        .await
        .attr("src")
        .await
        .expect("src")
        .unwrap_or_default();
    let svg = urlencoding_decode(&windowed);
    assert!(svg.contains("5 calls"), "the window's chart: {svg:.400}");
    choose_latency_window(&app, "").await;

    // The app is the daemon: the CLI's call goes over its session and into its histograms.
    let accepted = fixtures[0].accepted_connections();
    let dir = app.config_dir.clone();
    let call = tokio::task::spawn_blocking(move || {
        cli(
            &dir,
            &[
                "call",
                "fx1.tool_001",
                "--args",
                r#"{"text":"from the CLI"}"#,
            ],
        )
    })
    .await
    .expect("joined");
    let said = String::from_utf8_lossy(&call.stderr).into_owned();
    assert!(call.status.success(), "{said}");
    assert!(!said.contains("no daemon runs"), "the app answered: {said}");
    assert_eq!(
        fixtures[0].accepted_connections(),
        accepted,
        "the CLI's call opened no connection of its own"
    );
    app.element("#charts figure[data-id='fx1'][data-calls='6']")
        .await;
    let dir = app.config_dir.clone();
    let second = tokio::task::spawn_blocking(move || cli(&dir, &["sync"]))
        .await
        .expect("joined");
    let said = String::from_utf8_lossy(&second.stderr).into_owned();
    assert!(
        !second.status.success() && said.contains("already runs"),
        "a second daemon beside the app refuses: {said}"
    );
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_manifest_shows_the_stale_banner_and_another_can_be_chosen() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let fixtures = fleet(2, &knobs()).await.expect("fixture fleet");
    let home = TempDir::new("manifest");
    let manifest = home.0.join("service-map.json");
    let good = switchboard_fixture::service_map::service_map(&[("mapped", fixtures[0].url())], 60);
    std::fs::write(&manifest, good.to_string()).expect("manifest");
    // A first sync keeps the good manifest in the config dir's cache; then the source breaks.
    let config = home.0.join("config");
    let out = cli(
        &config,
        &[
            "sync",
            "--once",
            "--manifest",
            manifest.to_str().expect("utf-8"),
        ],
    );
    assert!(
        out.status.success(),
        "first sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&manifest, "{ this is not json").expect("break the manifest");
    let second = home.0.join("second-map.json");
    let connectors = [("mapped", fixtures[0].url()), ("second", fixtures[1].url())];
    let map = switchboard_fixture::service_map::service_map(&connectors, 60);
    std::fs::write(&second, map.to_string()).expect("second manifest");

    let app = App::start(
        home,
        Launch {
            manifest: Some(manifest.display().to_string()),
            ..Launch::default()
        },
    )
    .await;
    let banner = app
        .wait_text("#stale-banner", "the stale banner shows", |t| !t.is_empty())
        .await;
    assert!(banner.contains("stale"), "{banner}");
    assert!(
        banner.contains("line 1"),
        "the reason says where the manifest is broken: {banner}"
    );
    app.wait_text("#summary", "the last good manifest's connector runs", |t| {
        t == "1/1 healthy"
    })
    .await;
    app.screenshot("stale-manifest").await;

    app.click("#tab-registry").await;
    app.fill("#manifest-source", second.to_str().expect("utf-8"))
        .await;
    app.click("#manifest-save").await;
    app.click("#tab-connectors").await;
    app.wait_text(
        "#summary",
        "the chosen manifest's two connectors run",
        |t| t == "2/2 healthy",
    )
    .await;
    app.wait_text(
        "#stale-banner",
        "the new manifest is not stale",
        str::is_empty,
    )
    .await;
    wait_until("servers.json keeps the choice", || {
        servers_file(&app)
            .is_some_and(|f| f["switchboard"]["manifest"] == second.to_str().unwrap_or_default())
    })
    .await;
    // No tray host on this desktop: the window is the app, and closing it quits.
    app.close_window("Switchboard");
    wait_until(
        "with no tray to come back from, closing the window quits",
        || !app.processes().iter().any(|p| p == "switchboard-app"),
    )
    .await;
    app.close().await;
}

/// Percent-decoding for the chart's data: URL (test-only, so no crate for it).
/// Empties the call form's result, so the next wait sees the next call's answer.
async fn clear_call_result(app: &App) {
    bounded(
        "clearing the result",
        app.client.execute(
            "document.getElementById('call-result').textContent = ''",
            vec![],
        ),
    )
    .await
    .expect("clear the result");
}

fn urlencoding_decode(src: &str) -> String {
    let data = src.split_once(',').map_or(src, |(_, d)| d);
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&data[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_menu_switches_connectors_and_brings_a_closed_window_back() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let (app, _fixtures) = app_on_fleet("tray", 2, knobs(), with_tray_host()).await;
    let tray = app.tray.as_ref().expect("a tray host");
    app.wait_text("#summary", "both connect", |t| t == "2/2 healthy")
        .await;
    wait_until_async("the icon registers with the tray host", || async {
        tray.has_item()
    })
    .await;
    wait_until_async("the menu lists both, ticked", || async {
        let menu = tray.menu().await;
        let ticked = |label: &str| {
            menu.iter()
                .any(|e| e.label == label && e.checked == Some(true))
        };
        menu.iter().any(|e| e.label == "2/2 healthy")
            && ticked("fx1 — healthy")
            && ticked("fx2 — healthy")
    })
    .await;

    tray.click("fx2").await;
    wait_until("servers.json says fx2 is off", || {
        servers_file(&app).is_some_and(|f| f["mcpServers"]["fx2"]["enabled"] == false)
    })
    .await;
    app.wait_text("#summary", "the window follows the tray", |t| {
        t == "1/1 healthy"
    })
    .await;
    wait_until_async("the menu shows fx2 unticked", || async {
        tray.menu()
            .await
            .iter()
            .any(|e| e.label == "fx2" && e.checked == Some(false))
    })
    .await;

    // A size of the user's own, to be remembered.
    app.resize_window("Switchboard", 900, 620);
    wait_until("the window takes the new size", || {
        app.window_size("Switchboard") == Some((900, 620))
    })
    .await;
    app.close_window("Switchboard");
    wait_until(
        "closing the window ends its process and WebKit's, not the app",
        || {
            let processes = app.processes();
            processes.iter().filter(|p| *p == "switchboard-app").count() == 1
                && !processes
                    .iter()
                    .any(|p| p.starts_with("WebKitWebProc") || p.starts_with("WebKitNetwork"))
        },
    )
    .await;
    // What stays resident holds no OpenGL driver (on Mesa, LLVM alone is 26 MB).
    let gl: Vec<String> = app
        .app_mapped_files()
        .into_iter()
        .filter(|f| {
            ["libLLVM", "_dri.so", "libGLX_mesa"]
                .iter()
                .any(|l| f.contains(l))
        })
        .collect();
    assert!(gl.is_empty(), "the tray app maps an OpenGL driver: {gl:?}");
    // Launching it again (a second instance) opens the first one's window, then exits.
    let status = app.launch_again().await;
    assert!(
        status.success(),
        "the second instance hands over and exits: {status}"
    );
    wait_until("the first instance opens its window", || {
        app.processes()
            .iter()
            .any(|p| p.starts_with("WebKitWebProc"))
    })
    .await;
    wait_until("the window comes back at the size it was left at", || {
        app.window_size("Switchboard") == Some((900, 620))
    })
    .await;
    app.close_window("Switchboard");
    wait_until("closed again", || {
        !app.processes()
            .iter()
            .any(|p| p.starts_with("WebKitWebProc"))
    })
    .await;
    tray.click("Open Switchboard").await;
    wait_until("Open Switchboard makes a new window", || {
        app.processes()
            .iter()
            .any(|p| p.starts_with("WebKitWebProc"))
    })
    .await;
    wait_until(
        "the new window has the size the last one was left at",
        || app.window_size("Switchboard") == Some((900, 620)),
    )
    .await;
    tray.click_to_quit("Quit").await;
    wait_until("Quit ends the app", || {
        !app.processes().iter().any(|p| p == "switchboard-app")
    })
    .await;
}

/// [`wait_until`] for a check that needs to await.
async fn wait_until_async<F: std::future::Future<Output = bool>>(
    what: &str,
    check: impl Fn() -> F,
) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < support::DEADLINE,
            "{what} within {:?}",
            support::DEADLINE
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_stays_down_is_notified_once_and_so_is_its_recovery() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let launch = Launch {
        env: vec![("SWITCHBOARD_ALERT_SETTLE_MS", "1500".into())],
        ..with_tray_host()
    };
    let (app, mut fixtures) = app_on_fleet("notify", 2, knobs(), launch).await;
    let host = app.tray.as_ref().expect("a notification server");
    app.wait_text("#summary", "both connect", |t| t == "2/2 healthy")
        .await;

    let fx2 = fixtures.pop().expect("fx2");
    let addr = fx2.addr();
    fx2.stop().await;
    app.wait_text("#summary", "fx2 goes down", |t| t.contains("fx2 down"))
        .await;
    wait_until("a notification says fx2 is down", || {
        host.notifications()
            .iter()
            .any(|(title, _)| title == "fx2 is down")
    })
    .await;

    let _back = switchboard_fixture::Fixture::start_on(addr, knobs())
        .await
        .expect("fx2 again, on its address");
    app.click("#sync-now").await;
    app.wait_text("#summary", "fx2 is back", |t| t == "2/2 healthy")
        .await;
    wait_until("a notification says fx2 is back", || {
        host.notifications()
            .iter()
            .any(|(title, _)| title == "fx2 is back")
    })
    .await;
    let shown = host.notifications();
    assert_eq!(
        shown.len(),
        2,
        "one for the outage, one for the recovery: {shown:?}"
    );
    assert!(!shown[0].1.is_empty(), "the outage says why: {shown:?}");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_first_run_offers_the_servers_another_client_has() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let fixture = Fixture::start(knobs()).await.expect("fixture");
    let home = TempDir::new("first-run");
    let claude = home.0.join("xdg-config/Claude");
    std::fs::create_dir_all(&claude).expect("Claude's config dir");
    let config = serde_json::json!({"mcpServers": {"from-claude": {"url": fixture.url()}}});
    std::fs::write(
        claude.join("claude_desktop_config.json"),
        config.to_string(),
    )
    .expect("Claude's config");
    let autostart = home.0.join(".config/autostart/Switchboard.desktop");
    let app = App::start(home, Launch::default()).await;

    let offer = app
        .wait_text("#first-run-found", "the offer lists what was found", |t| {
            !t.is_empty()
        })
        .await;
    assert!(
        offer.contains("1 server in") && offer.contains("claude_desktop_config.json"),
        "{offer}"
    );
    app.screenshot("first-run").await;
    app.click("#first-run-import").await;
    app.wait_text("#import-plan", "the preview lists the server", |t| {
        t.contains("+ add") && t.contains("from-claude")
    })
    .await;
    app.click("#import-apply").await;
    app.wait_text("#import-result", "the import is done", |t| {
        t == "Imported 1 server."
    })
    .await;
    app.click("#tab-connectors").await;
    app.wait_text("#summary", "the imported server connects", |t| {
        t == "1/1 healthy"
    })
    .await;
    assert!(
        app.element("#first-run")
            .await
            .is_displayed()
            .await
            .is_ok_and(|shown| !shown)
    );

    // Then the client is pointed here from the Clients view: a preview, then the file written
    // with one entry, its own copy of the server switched off; uninstall puts it back exactly.
    let file = claude.join("claude_desktop_config.json");
    let original = std::fs::read(&file).expect("Claude's config");
    app.click("#tab-clients").await;
    app.click("#clients tr[data-client='claude'] button[data-action='install']")
        .await;
    let preview = app
        .wait_text("#client-preview", "the preview", |t| {
            t.contains("+ switchboard:")
        })
        .await;
    assert!(
        preview.contains("serve") && preview.contains("from-claude: switched off here"),
        "{preview}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original,
        "a preview writes nothing"
    );
    app.screenshot("clients").await;
    app.click("#client-apply").await;
    app.wait_text("#clients-result", "written", |t| t.contains("written to"))
        .await;
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).expect("JSON");
    let entry = &written["mcpServers"]["switchboard"];
    assert!(
        entry["command"]
            .as_str()
            .is_some_and(|c| c.ends_with("switchboard"))
            && entry["args"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "serve")),
        "{written}"
    );
    assert!(
        written["mcpServers"].get("from-claude").is_none(),
        "{written}"
    );
    app.wait_text("#clients tr[data-client='claude']", "it routes here", |t| {
        t.contains("yes")
    })
    .await;
    app.click("#clients tr[data-client='claude'] button[data-action='uninstall']")
        .await;
    app.wait_text("#clients-result", "restored", |t| {
        t.contains("back as it was")
    })
    .await;
    assert_eq!(std::fs::read(&file).unwrap(), original, "byte for byte");

    // Start at login: off until switched on; on writes the XDG autostart entry, which starts
    // this binary in the tray only; off removes it.
    let checked = || async { app.element("#autostart").await.is_selected().await.unwrap() };
    assert!(!checked().await && !autostart.exists(), "off by default");
    app.click("#autostart").await;
    wait_until_async("start at login is on", || async {
        checked().await && autostart.exists()
    })
    .await;
    let entry = std::fs::read_to_string(&autostart).unwrap();
    assert!(
        entry.lines().any(|l| l.starts_with("Exec=")
            && l.contains("switchboard-app")
            && l.ends_with(" --hidden")),
        "{entry}"
    );
    app.click("#autostart").await;
    wait_until_async("start at login is off", || async {
        !checked().await && !autostart.exists()
    })
    .await;
    app.close().await;
}
