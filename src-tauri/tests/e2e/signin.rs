//! Signing a connector in from the window: the Sign in button, the page the app opens in the
//! browser (a stub `xdg-open` hands it to a scripted browser), and the connector turning green.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;

use switchboard_fixture::{Fixture, Knobs};

use crate::ONE_APP_AT_A_TIME;
use crate::support::{App, Launch, TempDir, cli, wait_until};

/// `GET url` (plain HTTP on loopback), the answer's head: what a browser follows.
fn get_head(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("a loopback http URL");
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let mut stream = std::net::TcpStream::connect(host).expect("the page's server answers");
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is sent");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("the answer is read");
    answer
}

/// The browser: opens the sign-in page, is sent straight back (the fixture approves at once)
/// and lands on the app's redirect listener.
fn browse(page: &str) {
    let approved = get_head(page);
    let back = approved
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .unwrap_or_else(|| panic!("the authorization page redirects: {approved}"))
        .trim()
        .to_string();
    let landed = get_head(&back);
    assert!(landed.starts_with("HTTP/1.1 200"), "{landed}");
    assert!(landed.contains("Signed in"), "{landed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_button_opens_the_browser_and_the_connector_turns_green() {
    let _one = ONE_APP_AT_A_TIME.lock().await;
    let fixture = Fixture::start(Knobs {
        oauth: true,
        ..Knobs::default()
    })
    .await
    .expect("an OAuth-protected fixture");
    let home = TempDir::new("signin");
    let out = cli(
        &home.0.join("config"),
        &["registry", "add", "notes", "--url", &fixture.url()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The browser the app opens: a stub `xdg-open` first on PATH, noting the page it is given.
    let bin = home.0.join("bin");
    let opened = home.0.join("opened.txt");
    std::fs::create_dir_all(&bin).expect("a bin dir");
    let stub = bin.join("xdg-open");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
            opened.display()
        ),
    )
    .expect("the stub is written");
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755))
        .expect("the stub is executable");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let app = App::start(
        home,
        Launch {
            env: vec![("PATH", path)],
            ..Launch::default()
        },
    )
    .await;

    let button = "tr[data-id='notes'].needs-sign-in button.sign-in";
    app.wait_text(button, "notes offers a sign-in", |t| t == "Sign in")
        .await;
    app.click(button).await;
    wait_until("the app opens the sign-in page in the browser", || {
        std::fs::read_to_string(&opened).is_ok_and(|t| t.ends_with('\n'))
    })
    .await;
    let page = std::fs::read_to_string(&opened).expect("the page opened");
    let page = page.trim().to_string();
    assert!(page.contains("/authorize?"), "{page}");
    tokio::task::spawn_blocking(move || browse(&page))
        .await
        .expect("the browser went through the sign-in");
    app.wait_text("#summary", "notes is healthy", |t| t == "1/1 healthy")
        .await;
    let tools = app.text("tr[data-id='notes'] td.tools").await;
    assert_ne!(tools, "0", "signed in, notes lists its tools");
    assert_eq!(fixture.authority().issued().sign_ins, 1, "one sign-in");
    assert_eq!(
        std::fs::read_to_string(&opened)
            .expect("the pages opened")
            .lines()
            .count(),
        1,
        "one tab opened"
    );
    app.close().await;
}
