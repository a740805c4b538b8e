//! Switchboard's tray app: the engine ([`Daemon`]) behind a tray icon and a small window.
//!
//! [`run`] starts the daemon, the tray and the window; [`live`] carries engine changes to both;
//! [`commands`] is all the window may call. No business logic lives here: it is in the engine.

mod commands;
mod live;
mod logs;
mod software_gl;
mod tray;
mod view;

use switchboard::daemon::{Daemon, DaemonOptions};
use tauri::{AppHandle, Manager, RunEvent, Runtime, WebviewUrl, WebviewWindowBuilder};
use tokio::sync::RwLock;

/// What the commands reach: the daemon while it runs (`None` once shutting down).
pub struct AppState {
    pub(crate) daemon: RwLock<Option<Daemon>>,
}

/// Whether the tray icon can be seen; without it, closing the window quits the app.
struct TrayShown(bool);

impl AppState {
    pub fn new(daemon: Daemon) -> Self {
        Self {
            daemon: RwLock::new(Some(daemon)),
        }
    }
}

/// The window's label; capabilities/default.json grants it the commands.
pub const WINDOW: &str = "main";

/// Every command the window may call.
pub fn handlers<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        commands::overview,
        commands::set_enabled,
        commands::sync_now,
        commands::tools,
        commands::call_tool,
        commands::latency_svg,
        commands::registry_entries,
        commands::save_server,
        commands::remove_server,
        commands::set_manifest,
        commands::import_preview,
        commands::import_apply,
    ]
}

/// Runs the app until Quit. Starts with the window open unless `--hidden` (autostart) is given.
pub fn run() {
    software_gl::restart_without_gl();
    let logs = logs::init();
    let hidden = std::env::args().any(|a| a == "--hidden");
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            open_window(app);
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_notification::init())
        .invoke_handler(handlers())
        .on_window_event(|window, event| {
            tracing::debug!(window = window.label(), ?event, "window event");
        })
        .setup(move |app| {
            let options = daemon_options()?;
            tracing::info!(config_dir = %options.config_dir.display(), "starting");
            let daemon = tauri::async_runtime::block_on(Daemon::start(options))?;
            let follow = live::Sources::of(&daemon);
            app.manage(AppState::new(daemon));
            let tray = tray::install(app.handle(), logs.clone());
            // The icon is kept up to date even unseen: a host may start later.
            let seen = tray.is_some() && tray::host_present();
            if tray.is_some() && !seen {
                tracing::warn!(
                    "no tray host on this desktop: the window stays, and closing it quits"
                );
            }
            app.manage(TrayShown(seen));
            // scripts/measure-app.py times the launch to this line.
            tracing::info!(tray = tray.is_some(), "tray ready");
            tauri::async_runtime::spawn(live::follow(app.handle().clone(), tray, follow));
            // --hidden (autostart) is honoured even with no tray to be seen: launching the app
            // again opens the window.
            if !hidden {
                open_window(app.handle());
            }
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            eprintln!("switchboard-app: cannot start: {error}");
            std::process::exit(1);
        }
    };
    app.run(|app, event| match event {
        // The last window closed: keep running in the tray, if there is one to be seen. Quit
        // exits with a code.
        RunEvent::ExitRequested {
            api, code: None, ..
        } if app.state::<TrayShown>().0 => api.prevent_exit(),
        RunEvent::Exit => shut_down(app),
        _ => {}
    });
}

fn daemon_options() -> Result<DaemonOptions, Box<dyn std::error::Error>> {
    let config_dir = switchboard::registry::resolve_config_dir(None)
        .ok_or("cannot tell where the config dir is; set SWITCHBOARD_CONFIG_DIR")?;
    Ok(DaemonOptions {
        config_dir,
        manifest: std::env::var("SWITCHBOARD_MANIFEST").ok(),
    })
}

/// Shows the window, creating it if it was closed (closing destroys it, so an idle tray app
/// holds no browser engine).
pub fn open_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::App("index.html".into()))
        .title("Switchboard")
        .inner_size(1000.0, 700.0)
        .min_inner_size(640.0, 420.0)
        .build();
    if let Err(error) = built {
        tracing::error!(%error, "cannot open the window");
    }
}

/// Quit: stop the engine (sessions closed, stdio servers stopped) and write pending edits.
fn shut_down<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<AppState>();
    tauri::async_runtime::block_on(async {
        let daemon = state.daemon.write().await.take();
        if let Some(daemon) = daemon
            && let Err(error) = daemon.shutdown().await
        {
            tracing::error!(%error, "shutting down");
        }
    });
}
