//! The window, in its own process: the tray process starts `switchboard-app --window` when the
//! window is asked for; that process reaches the daemon over its control socket
//! ([`crate::link`]); closing the window ends it, and with it WebKit and everything it loaded.

use std::sync::{Arc, Mutex};

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use switchboard::wire::{self, Down};
use tauri::{AppHandle, Emitter as _, Manager as _, RunEvent, Runtime, WebviewUrl};

use crate::link::Link;

/// The window's label; capabilities/default.json grants it the commands.
pub const WINDOW: &str = "main";

/// The argument that makes the app the window process.
pub const WINDOW_ARG: &str = "--window";

/// Which window process runs, if one does (a number per start, so a late exit of an old one
/// does not clear a newer one).
#[derive(Default)]
pub struct WindowProcess(Mutex<Option<u64>>);

/// Shows the window: brings the running window process to the front, or starts one.
pub fn open<R: Runtime>(app: &AppHandle<R>) {
    static STARTS: AtomicU64 = AtomicU64::new(0);
    let process = app.state::<WindowProcess>();
    let Ok(mut current) = process.0.lock() else {
        return;
    };
    if current.is_some() {
        app.state::<crate::AppState>().daemon.tell(Down::Show);
        return;
    }
    let start = STARTS.fetch_add(1, Ordering::Relaxed);
    *current = Some(start);
    spawn(app, start);
}

/// Tells the window, if there is one, of an event for its page.
pub fn tell<R: Runtime>(app: &AppHandle<R>, name: &str, payload: &impl Serialize) {
    if let Ok(payload) = serde_json::to_value(payload) {
        app.state::<crate::AppState>().daemon.tell(Down::Event {
            name: name.into(),
            payload,
        });
    }
}

/// Starts the window process (it connects to the daemon's control socket itself) and waits for
/// it to end.
fn spawn<R: Runtime>(app: &AppHandle<R>, start: u64) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        match self::start() {
            Ok(mut child) => {
                let status = child.wait().await;
                tracing::debug!(?status, "the window process ended");
            }
            Err(error) => tracing::error!(%error, "cannot open the window"),
        }
        let process = app.state::<WindowProcess>();
        if let Ok(mut current) = process.0.lock()
            && *current == Some(start)
        {
            *current = None;
        }
        // Without a tray icon to be seen, the window was the app.
        if !app.state::<crate::TrayShown>().0 {
            app.exit(0);
        }
    });
}

fn start() -> std::io::Result<tokio::process::Child> {
    use std::process::Stdio;
    tokio::process::Command::new(std::env::current_exe()?)
        .arg(WINDOW_ARG)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

/// Runs the window process until its window is closed or the tray process goes.
pub fn run_window() {
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_window_state::Builder::default().build())
        // Start at login (the Clients view's toggle, off until the user turns it on): an XDG
        // autostart entry on Linux, a LaunchAgent on macOS, a Run key on Windows, each starting
        // this binary in the tray only.
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .arg("--hidden")
                .build(),
        )
        .invoke_handler(crate::commands::forward)
        .on_window_event(|window, event| {
            tracing::debug!(window = window.label(), ?event, "window event");
        })
        .setup(|app| {
            let stream = tauri::async_runtime::block_on(connect())?;
            let (from_daemon, to_daemon) = stream.into_split();
            let handle = app.handle().clone();
            let (link, reading) = Link::start(from_daemon, to_daemon, move |down| match down {
                Down::Event { name, payload } => {
                    let _ = handle.emit(&name, payload);
                }
                Down::Show => show(&handle),
                // The window asks for no progress and takes no questions.
                Down::Answer { .. } | Down::Progress { .. } | Down::Question { .. } => {}
            });
            let link = Arc::new(link);
            app.manage(link.clone());
            tauri::async_runtime::spawn(async move {
                if let Err(error) = link.call(wire::SUBSCRIBE, serde_json::Value::Null).await {
                    tracing::warn!(%error, "the window hears no events");
                }
            });
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let _ = reading.await;
                handle.exit(0);
            });
            tauri::WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::App("index.html".into()))
                .title("Switchboard")
                .inner_size(1000.0, 700.0)
                .min_inner_size(640.0, 420.0)
                .build()?;
            Ok(())
        })
        .build(tauri::generate_context!());
    match app {
        Ok(app) => app.run(|_, event| {
            if let RunEvent::Exit = event {
                tracing::debug!("the window closed");
            }
        }),
        Err(error) => {
            tracing::error!(%error, "cannot open the window");
            std::process::exit(1);
        }
    }
}

/// The daemon's control socket, for the config dir this process was started with.
async fn connect() -> Result<tokio::net::UnixStream, Box<dyn std::error::Error>> {
    let config_dir = switchboard::registry::resolve_config_dir(None)
        .ok_or("cannot tell where the config dir is; set SWITCHBOARD_CONFIG_DIR")?;
    let path = switchboard::control::socket::socket_path(&config_dir)?;
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .map_err(|e| format!("the daemon's control socket {}: {e}", path.display()))?;
    Ok(stream)
}

fn show<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}
