//! Switchboard's tray app: the engine ([`Daemon`]) behind a tray icon and a small window.
//!
//! [`run`] starts the daemon and the tray, and the [`window`] in a process of its own; [`live`]
//! carries engine changes to both; [`commands`] is all the window may call, over [`link`]. No
//! business logic lives here: it is in the engine.

mod commands;
mod link;
mod live;
mod logs;
mod software_gl;
mod tray;
mod window;

use std::sync::{Arc, Mutex};

use switchboard::control::SharedDaemon;
use switchboard::control::socket::ControlSocket;
use switchboard::daemon::{Daemon, DaemonOptions};
use tauri::{AppHandle, Manager, RunEvent, Runtime};

/// What the commands, the tray and the control socket reach: the daemon while it runs.
pub struct AppState {
    pub(crate) daemon: Arc<SharedDaemon>,
    /// The control socket the CLI reaches the daemon by; closed at exit.
    socket: Mutex<Option<ControlSocket>>,
}

/// Whether the tray icon can be seen; without it, closing the window quits the app.
struct TrayShown(bool);

impl AppState {
    pub fn new(daemon: Daemon) -> Self {
        Self {
            daemon: Arc::new(SharedDaemon::new(daemon)),
            socket: Mutex::new(None),
        }
    }
}

/// Runs the app until Quit. Starts with the window open unless `--hidden` (autostart) is given.
pub fn run() {
    software_gl::restart_without_gl();
    let logs = logs::init();
    if std::env::args().any(|a| a == window::WINDOW_ARG) {
        return window::run_window();
    }
    let hidden = std::env::args().any(|a| a == "--hidden");
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            window::open(app);
        }))
        .plugin(tauri_plugin_notification::init())
        .manage(window::WindowProcess::default())
        .setup(move |app| {
            let options = daemon_options()?;
            tracing::info!(config_dir = %options.config_dir.display(), "starting");
            // Claimed before anything connects: with another daemon (`switchboard sync`, or
            // an app for the same config dir) running, this one says whose and stops.
            let claimed = tauri::async_runtime::block_on(async {
                switchboard::control::socket::claim(&options.config_dir)
            })?;
            let daemon = tauri::async_runtime::block_on(Daemon::start(options))?;
            let follow = live::Sources::of(&daemon);
            let state = AppState::new(daemon);
            let socket =
                tauri::async_runtime::block_on(async { claimed.serve(state.daemon.clone()) });
            tracing::info!(path = %socket.path().display(), "control socket ready");
            if let Ok(mut slot) = state.socket.lock() {
                *slot = Some(socket);
            }
            // The MCP endpoint, if the user turned it on (in the window or the CLI).
            let daemon = state.daemon.clone();
            tauri::async_runtime::spawn(async move { daemon.endpoint().restore(&daemon).await });
            app.manage(state);
            let tray = tray::install(app.handle(), logs.clone());
            // The icon is kept up to date even unseen: a host may start later.
            let seen = tray.is_some() && tray::host_present();
            app.manage(TrayShown(seen));
            // One line that says what is true (it used to warn "no tray host" and then log
            // "tray ready tray=true"). scripts/measure-app.py times the launch to it.
            match (tray.is_some(), seen) {
                (_, true) => tracing::info!("tray ready"),
                (true, false) => tracing::info!(
                    "tray ready, unseen: no tray host on this desktop (the icon shows once one \
                     starts); the window stays, and closing it quits"
                ),
                (false, false) => tracing::warn!(
                    "tray ready without an icon (it could not be made); the window stays, and \
                     closing it quits"
                ),
            }
            tauri::async_runtime::spawn(live::follow(app.handle().clone(), tray, follow));
            // --hidden (autostart) is honoured even with no tray to be seen: launching the app
            // again opens the window.
            if !hidden {
                window::open(app.handle());
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
    // No window lives in this process: it runs until Quit (or, with no tray icon to be seen,
    // until the window process ends).
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            shut_down(app);
        }
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

/// Quit: stop the engine (sessions closed, stdio servers stopped) and write pending edits.
fn shut_down<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<AppState>();
    let socket = state.socket.lock().ok().and_then(|mut slot| slot.take());
    tauri::async_runtime::block_on(async {
        state.daemon.endpoint().close().await;
        if let Some(socket) = socket {
            socket.close().await;
        }
        let daemon = state.daemon.take().await;
        if let Some(daemon) = daemon
            && let Err(error) = daemon.shutdown().await
        {
            tracing::error!(%error, "shutting down");
        }
    });
}
