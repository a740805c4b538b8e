//! The HTTP endpoint switched on and off in the window (Clients): it serves at once on the
//! port chosen, with the token; a port another program holds is refused inline and what
//! served goes on; off stops it; the choice is kept in the config dir.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};

use serde_json::Value;

use crate::ONE_APP_AT_A_TIME;
use crate::support::{App, Launch, TempDir, wait_until};

/// The status line an `initialize` POST to `127.0.0.1:port/mcp` gets, or `None` when nothing
/// listens there.
fn initialize_status(port: u16, token: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}"#;
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("the request is sent");
    let mut status = String::new();
    BufReader::new(stream)
        .read_line(&mut status)
        .expect("the status line is read");
    Some(status.trim_end().to_string())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_switched_on_in_the_window_serves_at_once_and_off_stops_it() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let home = TempDir::new("endpoint");
    let config_dir = home.0.join("config");
    let app = App::start(home, Launch::default()).await;
    app.click("#tab-clients").await;
    app.wait_text("#endpoint-state", "the endpoint is off", |t| t == "Off.")
        .await;
    assert!(
        !app.element("#endpoint-enabled")
            .await
            .is_selected()
            .await
            .expect("the checkbox"),
        "off unless asked"
    );

    let port = free_port();
    app.click("#endpoint-enabled").await;
    app.fill("#endpoint-port", &port.to_string()).await;
    app.click("#endpoint-apply").await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let state = app
        .wait_text("#endpoint-state", "it serves", |t| t.contains("Serving at"))
        .await;
    assert!(
        state.contains(&url) && state.contains("endpoint-token"),
        "{state}"
    );
    let token = std::fs::read_to_string(config_dir.join("endpoint-token")).expect("the token");
    assert!(!state.contains(&token), "the window never shows the token");
    let answered = initialize_status(port, &token);
    assert!(
        answered.as_deref().is_some_and(|s| s.ends_with(" 200 OK")),
        "{answered:?}"
    );

    // A port another program holds: refused in the window; the endpoint serves on.
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let busy = taken.local_addr().expect("its address").port();
    app.fill("#endpoint-port", &busy.to_string()).await;
    app.click("#endpoint-apply").await;
    let refused = app
        .wait_text("#endpoint-error", "the busy port is refused", |t| {
            !t.is_empty()
        })
        .await;
    assert!(
        refused.contains(&format!("port {busy} is in use")),
        "{refused}"
    );
    let answered = initialize_status(port, &token);
    assert!(
        answered.as_deref().is_some_and(|s| s.ends_with(" 200 OK")),
        "what served goes on: {answered:?}"
    );

    app.fill("#endpoint-port", &port.to_string()).await;
    app.click("#endpoint-enabled").await;
    app.click("#endpoint-apply").await;
    app.wait_text("#endpoint-state", "it is off again", |t| t == "Off.")
        .await;
    wait_until("nothing listens on the port", || {
        initialize_status(port, &token).is_none()
    })
    .await;
    let kept: Value = serde_json::from_slice(
        &std::fs::read(config_dir.join("endpoint.json")).expect("the setting is kept"),
    )
    .expect("JSON");
    assert_eq!(kept["enabled"], false, "{kept}");
    assert_eq!(kept["port"], port, "{kept}");
    app.close().await;
}
