//! The window, in its own process: the tray process starts `switchboard-app --window` when the
//! window is asked for and serves it over [`crate::link`]; closing the window ends that process,
//! and with it WebKit and everything it loaded.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tauri::ipc::{Invoke, InvokeBody, InvokeError};
use tauri::{AppHandle, Emitter as _, Manager as _, RunEvent, Runtime, WebviewUrl};
use tokio::sync::mpsc;

use switchboard::wire::{Down, Request};

use crate::link::{self, Link};

/// The window's label; capabilities/default.json grants it the commands.
pub const WINDOW: &str = "main";

/// The argument that makes the app the window process.
pub const WINDOW_ARG: &str = "--window";

/// The tray process's handle on the window process, while one runs.
#[derive(Default)]
pub struct WindowProcess(Mutex<Option<mpsc::UnboundedSender<Down>>>);

/// Shows the window: brings the running window process to the front, or starts one.
pub fn open<R: Runtime>(app: &AppHandle<R>) {
    let process = app.state::<WindowProcess>();
    let Ok(mut current) = process.0.lock() else {
        return;
    };
    if let Some(down) = current.as_ref()
        && down.send(Down::Show).is_ok()
    {
        return;
    }
    *current = Some(spawn(app));
}

/// Tells the window, if there is one, of an event for its page.
pub fn tell<R: Runtime>(app: &AppHandle<R>, name: &str, payload: &impl Serialize) {
    let process = app.state::<WindowProcess>();
    let Ok(current) = process.0.lock() else {
        return;
    };
    if let Some(down) = current.as_ref()
        && let Ok(payload) = serde_json::to_value(payload)
    {
        let _ = down.send(Down::Event {
            name: name.into(),
            payload,
        });
    }
}

/// Starts the window process and serves it; what is sent to the returned sender meanwhile waits
/// for it.
fn spawn<R: Runtime>(app: &AppHandle<R>) -> mpsc::UnboundedSender<Down> {
    let (down, outgoing) = mpsc::unbounded_channel();
    let (app, mine) = (app.clone(), down.clone());
    tauri::async_runtime::spawn(async move {
        match start() {
            Ok(mut child) => {
                if let (Some(to_window), Some(from_window)) =
                    (child.stdin.take(), child.stdout.take())
                {
                    link::serve(app.clone(), from_window, to_window, mine.clone(), outgoing).await;
                }
                let status = child.wait().await;
                tracing::debug!(?status, "the window process ended");
            }
            Err(error) => tracing::error!(%error, "cannot open the window"),
        }
        let process = app.state::<WindowProcess>();
        if let Ok(mut current) = process.0.lock()
            && current.as_ref().is_some_and(|d| d.same_channel(&mine))
        {
            *current = None;
        }
        // Without a tray icon to be seen, the window was the app.
        if !app.state::<crate::TrayShown>().0 {
            app.exit(0);
        }
    });
    down
}

fn start() -> std::io::Result<tokio::process::Child> {
    use std::process::Stdio;
    tokio::process::Command::new(std::env::current_exe()?)
        .arg(WINDOW_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
}

/// Runs the window process until its window is closed or the tray process goes.
pub fn run_window() {
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .invoke_handler(forward)
        .on_window_event(|window, event| {
            tracing::debug!(window = window.label(), ?event, "window event");
        })
        .setup(|app| {
            let handle = app.handle().clone();
            let (link, reading) = Link::start(
                tokio::io::stdin(),
                tokio::io::stdout(),
                move |down| match down {
                    Down::Event { name, payload } => {
                        let _ = handle.emit(&name, payload);
                    }
                    Down::Show => show(&handle),
                    Down::Answer { .. } => {}
                },
            );
            app.manage(Arc::new(link));
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

fn show<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// The window process's commands: each of the wire's [`Request::NAMES`] goes up the line as the
/// page sent it.
pub fn forward<R: Runtime>(invoke: Invoke<R>) -> bool {
    let command = invoke.message.command().to_string();
    if !Request::NAMES.contains(&command.as_str()) {
        return false;
    }
    let args = match invoke.message.payload() {
        InvokeBody::Json(args) => args.clone(),
        InvokeBody::Raw(_) => serde_json::Value::Null,
    };
    let Some(link) = invoke
        .message
        .webview()
        .try_state::<Arc<Link>>()
        .map(|l| l.inner().clone())
    else {
        return false;
    };
    invoke.resolver.respond_async(async move {
        link.call(&command, args)
            .await
            .map_err(|e| InvokeError(serde_json::to_value(e).unwrap_or_default()))
    });
    true
}
