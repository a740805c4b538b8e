//! The real app under WebDriver: a private X display (Xvfb), `tauri-driver` in front of
//! WebKitWebDriver, the app binary with its own config dir, and helpers that wait on conditions.

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::tray_host::TrayHost;

/// The longest any condition is waited for.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A child process, started as the leader of its own process group, killed with everything it
/// started (tauri-driver's WebKitWebDriver would outlive it otherwise) when dropped.
struct Killed(Child);

impl Killed {
    fn spawn(command: &mut Command) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        command.process_group(0).spawn().map(Self)
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `tauri-driver`: $SWITCHBOARD_TAURI_DRIVER, where scripts/install-deps.sh --test puts it, or
/// on the PATH.
fn tauri_driver() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_TAURI_DRIVER") {
        return path.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    let installed = cache.join("switchboard/tauri-driver/bin/tauri-driver");
    if installed.exists() {
        return installed;
    }
    PathBuf::from("tauri-driver")
}

/// A private X server, so tests run with or without a desktop and never touch the user's.
fn xvfb() -> (Killed, String) {
    let mut xvfb = Command::new("Xvfb");
    xvfb.args([
        "-displayfd",
        "1",
        "-screen",
        "0",
        "1280x900x24",
        "-nolisten",
        "tcp",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = Killed::spawn(&mut xvfb)
        .expect("Xvfb runs (install it with ./scripts/install-deps.sh --test)");
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("Xvfb reports its display");
    let display = format!(":{}", line.trim());
    (child, display)
}

/// What the app is started with.
#[derive(Default)]
pub struct Launch {
    pub manifest: Option<String>,
    /// Give the app a tray host (a private session bus with a StatusNotifierWatcher and a
    /// notification server).
    pub tray_host: bool,
    /// More environment for the app.
    pub env: Vec<(&'static str, String)>,
}

/// One running app, driven through WebDriver. Dropping it ends the session (the driver kills
/// the app), the driver and the X server.
pub struct App {
    pub client: Client,
    /// The environment the app runs with.
    env: Vec<(&'static str, String)>,
    display: String,
    pub config_dir: PathBuf,
    pub tray: Option<TrayHost>,
    _home: TempDir,
    _driver: Killed,
    _display: Killed,
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sb-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl App {
    /// The names of the processes the driver started (the app and its WebKit helpers), as the
    /// kernel shortens them (`WebKitWebProces`).
    pub fn processes(&self) -> Vec<String> {
        self.descendants()
            .into_iter()
            .map(|(_, name)| name)
            .collect()
    }

    /// The files the app's process has mapped: its libraries. Asked when no window is open, so
    /// the only `switchboard-app` is the tray process (not the window's, nor WebKit's).
    pub fn app_mapped_files(&self) -> Vec<String> {
        let Some((pid, _)) = self
            .descendants()
            .into_iter()
            .find(|(_, name)| name == "switchboard-app")
        else {
            return Vec::new();
        };
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let mut files: Vec<String> = maps
            .lines()
            .filter_map(|line| line.split_whitespace().nth(5))
            .filter(|path| path.starts_with('/'))
            .map(String::from)
            .collect();
        files.dedup();
        files
    }

    /// Every process below the driver, with its name.
    fn descendants(&self) -> Vec<(u32, String)> {
        let mut parents: std::collections::HashMap<u32, Vec<u32>> = Default::default();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse().ok())
            {
                parents.entry(ppid).or_default().push(pid);
            }
        }
        let mut found = Vec::new();
        let mut todo = parents
            .get(&self._driver.0.id())
            .cloned()
            .unwrap_or_default();
        while let Some(pid) = todo.pop() {
            if let Ok(name) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
                found.push((pid, name.trim().to_string()));
            }
            todo.extend(parents.get(&pid).cloned().unwrap_or_default());
        }
        found
    }

    /// The X connection and the shown (mapped) top-level window titled `title`, if there is one.
    fn window(&self, title: &str) -> Option<(x11rb::rust_connection::RustConnection, u32)> {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, MapState};
        let (conn, screen) = x11rb::connect(Some(&self.display)).ok()?;
        let mut todo = vec![conn.setup().roots[screen].root];
        while let Some(window) = todo.pop() {
            // GTK also names an unmapped group-leader window after the app: skip it.
            let named = conn
                .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::STRING, 0, 256)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|p| p.value == title.as_bytes());
            let shown = conn
                .get_window_attributes(window)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|a| a.map_state == MapState::VIEWABLE);
            if named && shown {
                return Some((conn, window));
            }
            if let Ok(tree) = conn.query_tree(window).ok()?.reply() {
                todo.extend(tree.children);
            }
        }
        None
    }

    /// The size of the shown window titled `title`, from the X server.
    pub fn window_size(&self, title: &str) -> Option<(u16, u16)> {
        use x11rb::protocol::xproto::ConnectionExt as _;
        let (conn, window) = self.window(title)?;
        let geometry = conn.get_geometry(window).ok()?.reply().ok()?;
        Some((geometry.width, geometry.height))
    }

    /// The shown window titled `title` as a PNG, read from the X server: what the user sees.
    /// (WebDriver's own screenshot asks WebKit for a snapshot, which never answers when WebKit
    /// draws without OpenGL, as the app has it.)
    fn window_png(&self, title: &str) -> Vec<u8> {
        use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};
        let (conn, window) = self
            .window(title)
            .unwrap_or_else(|| panic!("no window titled {title:?}"));
        let geometry = conn
            .get_geometry(window)
            .expect("geometry")
            .reply()
            .expect("geometry");
        let (width, height) = (geometry.width, geometry.height);
        let image = conn
            .get_image(ImageFormat::Z_PIXMAP, window, 0, 0, width, height, !0)
            .expect("image")
            .reply()
            .expect("image");
        // Xvfb's 24-bit screen: 32 bits a pixel, blue first.
        let pixels = usize::from(width) * usize::from(height);
        assert_eq!(image.data.len(), pixels * 4, "a 32-bit image of the window");
        let rgb: Vec<u8> = image
            .data
            .chunks_exact(4)
            .flat_map(|bgrx| [bgrx[2], bgrx[1], bgrx[0]])
            .collect();
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, width.into(), height.into());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("png header");
        writer.write_image_data(&rgb).expect("png data");
        writer.finish().expect("png end");
        png
    }

    /// Launches the app binary again, with the same environment, and returns its exit status.
    pub async fn launch_again(&self) -> std::process::ExitStatus {
        let mut again = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-app"));
        again
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = again.spawn().expect("a second instance starts");
        tokio::time::timeout(DEADLINE, child.wait())
            .await
            .expect("the second instance exits")
            .expect("its status")
    }

    /// Resizes the shown window titled `title` from outside, as a user dragging its edge does.
    pub fn resize_window(&self, title: &str, width: u32, height: u32) {
        use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _};
        let (conn, window) = self
            .window(title)
            .unwrap_or_else(|| panic!("no window titled {title:?}"));
        let size = ConfigureWindowAux::new().width(width).height(height);
        conn.configure_window(window, &size).expect("configure");
        // A round trip: the server has handled the request before this connection closes.
        conn.get_input_focus().expect("sync").reply().expect("sync");
    }

    /// Asks the shown window titled `title` to close, as a window manager does when its close
    /// button is clicked (a WM_DELETE_WINDOW message). WebDriver's own close would end the app.
    pub fn close_window(&self, title: &str) {
        use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt as _, EventMask};
        let (conn, window) = self
            .window(title)
            .unwrap_or_else(|| panic!("no window titled {title:?}"));
        let atom = |name: &[u8]| {
            conn.intern_atom(false, name)
                .expect("intern")
                .reply()
                .expect("atom")
                .atom
        };
        let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
        let message = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
        conn.send_event(false, window, EventMask::NO_EVENT, message)
            .expect("send");
        // A round trip: the server has handled the request before this connection closes.
        conn.get_input_focus().expect("sync").reply().expect("sync");
    }

    /// Starts the app with `config_dir` as its registry's home (prepared by the test).
    pub async fn start(home: TempDir, launch: Launch) -> App {
        let config_dir = home.0.join("config");
        let (display_process, display) = xvfb();
        let tray = if launch.tray_host {
            Some(TrayHost::start().await)
        } else {
            None
        };
        let port = free_port();
        let mut driver = Command::new(tauri_driver());
        driver
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &free_port().to_string(),
            ])
            .env_remove("WAYLAND_DISPLAY")
            // The app decides about OpenGL itself (off): the developer's choice is not the test's.
            .env_remove("GDK_GL")
            .env_remove("SWITCHBOARD_MANIFEST")
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(home.0.join("app.log")).expect("log file"),
            ));
        let path = |p: &str| home.0.join(p).display().to_string();
        let mut env: Vec<(&str, String)> = vec![
            ("DISPLAY", display.clone()),
            // Other clients' configs (for import) are looked for here, not in the user's home.
            ("HOME", home.0.display().to_string()),
            ("SWITCHBOARD_CONFIG_DIR", config_dir.display().to_string()),
            // Sign-in tokens in the test's config dir, never in the keyring of whoever runs them.
            ("SWITCHBOARD_TOKEN_STORE", "file".into()),
            ("SWITCHBOARD_LOG_DIR", path("logs")),
            // Window state, WebKit's caches: the test's own, not the user's.
            ("XDG_CONFIG_HOME", path("xdg-config")),
            ("XDG_DATA_HOME", path("xdg-data")),
            ("XDG_CACHE_HOME", path("xdg-cache")),
            (
                "RUST_LOG",
                "warn,switchboard=info,switchboard_app=debug".into(),
            ),
            // Without a tray host, no session bus at all: nothing of the user's desktop is reached.
            (
                "DBUS_SESSION_BUS_ADDRESS",
                tray.as_ref()
                    .map_or("unix:path=/nonexistent".into(), |host| host.address.clone()),
            ),
        ];
        env.extend(launch.env);
        if let Some(manifest) = launch.manifest {
            env.push(("SWITCHBOARD_MANIFEST", manifest));
        }
        driver.envs(env.iter().map(|(k, v)| (k, v)));
        let driver = Killed::spawn(&mut driver).unwrap_or_else(|e| {
            panic!(
                "tauri-driver runs ({e}); install it with ./scripts/install-deps.sh --test or set SWITCHBOARD_TAURI_DRIVER"
            )
        });
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < DEADLINE,
                "tauri-driver should listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": env!("CARGO_BIN_EXE_switchboard-app"), "args": [] }),
        );
        // tauri-driver listens before the WebKit driver behind it does, and drops a session
        // request it cannot pass on yet: ask again until one is made, within the deadline.
        let url = format!("http://127.0.0.1:{port}");
        let client = loop {
            let mut builder = ClientBuilder::rustls().expect("rustls");
            builder.capabilities(capabilities.clone());
            match tokio::time::timeout(DEADLINE, builder.connect(&url)).await {
                Ok(Ok(client)) => break client,
                Ok(Err(e)) if started.elapsed() < DEADLINE => {
                    eprintln!("no WebDriver session yet ({e}); asking again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                outcome => {
                    let why = outcome.map_or_else(
                        |e| e.to_string(),
                        |e| e.err().map(|e| e.to_string()).unwrap_or_default(),
                    );
                    let log = std::fs::read_to_string(home.0.join("app.log")).unwrap_or_default();
                    panic!("a WebDriver session within {DEADLINE:?}: {why}\napp.log:\n{log}")
                }
            }
        };
        App {
            client,
            env,
            display,
            config_dir,
            tray,
            _home: home,
            _driver: driver,
            _display: display_process,
        }
    }

    /// The text of the first element matching `css`, once there is one.
    pub async fn text(&self, css: &str) -> String {
        let element = self.element(css).await;
        bounded("an element's text", element.text())
            .await
            .expect("element text")
    }

    pub async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("an element {css} should appear: {e}"))
    }

    pub async fn click(&self, css: &str) {
        let element = self.element(css).await;
        bounded("a click", element.click())
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Replaces the value of the input or textarea matching `css`.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.element(css).await;
        bounded("clearing a field", field.clear())
            .await
            .expect("clear");
        bounded("typing", field.send_keys(value))
            .await
            .expect("type");
    }

    /// Waits until `check` (given the page's text for `css`) holds.
    pub async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text =
                match bounded("finding an element", self.client.find(Locator::Css(css))).await {
                    Ok(element) => bounded("an element's text", element.text())
                        .await
                        .unwrap_or_default(),
                    Err(_) => String::new(),
                };
            if check(&text) {
                return text;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{what}: {css} still reads {text:?} after {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot of the window as docs/screenshots/NAME.png (the README shows them).
    pub async fn screenshot(&self, name: &str) {
        // The picture lags the DOM: wait until the page has painted two frames since.
        bounded(
            "the page paints",
            self.client.execute_async(
                "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done()));",
                vec![],
            ),
        )
        .await
        .expect("the page paints");
        let png = self.window_png("Switchboard");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn close(self) {
        let _ = tokio::time::timeout(DEADLINE, self.client.close()).await;
    }
}

/// Awaits one WebDriver command, or panics naming `what`: a page that stops answering fails the
/// test instead of hanging it.
pub async fn bounded<T>(what: &str, command: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, command)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {DEADLINE:?}"))
}

/// Waits until `check` holds, polling every 100 ms, or panics naming `what`.
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < DEADLINE, "{what} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the CLI against `config_dir`.
pub fn cli(config_dir: &Path, args: &[&str]) -> std::process::Output {
    let cli = Path::new(env!("CARGO_BIN_EXE_switchboard-app")).with_file_name("switchboard");
    Command::new(cli)
        .arg("--config-dir")
        .arg(config_dir)
        .args(args)
        .output()
        .expect("the switchboard CLI runs (cargo test --workspace builds it)")
}
