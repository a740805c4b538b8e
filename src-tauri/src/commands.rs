//! The commands the window may call (and nothing else: see `capabilities/default.json`), served
//! in the tray process for the window process (see [`crate::link`]): the wire's requests, each
//! answered by the engine, failures as the wire's `{code, message, field?}`.

use serde_json::Value;
use switchboard::wire::{Request, WireError};

use crate::AppState;

/// Runs `command` with the page's `args` against the daemon: parsed into the wire's
/// [`Request`], answered by the engine's one door ([`switchboard::control::answer`]).
pub async fn dispatch(state: &AppState, command: &str, args: Value) -> Result<Value, WireError> {
    state.daemon.answer(Request::parse(command, args)?).await
}

#[cfg(test)]
mod tests {
    //! The commands as the page calls them: Tauri's IPC on the mock runtime (no display) in a
    //! "window" app, up the real line to a "tray" app serving a real daemon in a temp config dir.
    use std::sync::Arc;

    use serde_json::json;
    use switchboard::daemon::{Daemon, DaemonOptions};
    use tauri::Manager as _;
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context};
    use tauri::webview::InvokeRequest;

    use super::*;
    use crate::link::{self, Link};

    struct Harness {
        tray: tauri::App<MockRuntime>,
        _window: tauri::App<MockRuntime>,
        webview: tauri::WebviewWindow<MockRuntime>,
        dir: std::path::PathBuf,
    }

    fn harness(tag: &str) -> Harness {
        let dir = std::env::temp_dir().join(format!("sb-cmd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let daemon = tauri::async_runtime::block_on(Daemon::start(DaemonOptions {
            config_dir: dir.clone(),
            manifest: None,
        }))
        .expect("daemon");
        let tray = mock_builder()
            .manage(AppState::new(daemon))
            .build(mock_context(tauri::test::noop_assets()))
            .expect("mock tray app");
        // The line: what the window process has as stdin/stdout, the tray process as its pipes.
        let (window_end, tray_end) = tokio::io::duplex(1 << 16);
        let (from_window, to_window) = tokio::io::split(tray_end);
        let (down, outgoing) = tokio::sync::mpsc::unbounded_channel();
        tauri::async_runtime::spawn(link::serve(
            tray.handle().clone(),
            from_window,
            to_window,
            down,
            outgoing,
        ));
        let (from_tray, to_tray) = tokio::io::split(window_end);
        let (link, _reading) = Link::start(from_tray, to_tray, |_| {});
        let window = mock_builder()
            .invoke_handler(crate::window::forward)
            .manage(Arc::new(link))
            .build(mock_context(tauri::test::noop_assets()))
            .expect("mock window app");
        let webview =
            tauri::WebviewWindowBuilder::new(&window, crate::window::WINDOW, Default::default())
                .build()
                .expect("mock window");
        Harness {
            tray,
            _window: window,
            webview,
            dir,
        }
    }

    impl Harness {
        fn invoke(&self, command: &str, args: Value) -> Result<Value, Value> {
            get_ipc_response(
                &self.webview,
                InvokeRequest {
                    cmd: command.into(),
                    callback: CallbackFn(0),
                    error: CallbackFn(1),
                    url: "tauri://localhost".parse().expect("url"),
                    body: InvokeBody::Json(args),
                    headers: Default::default(),
                    invoke_key: INVOKE_KEY.to_string(),
                },
            )
            .map(|body| body.deserialize::<Value>().expect("JSON answer"))
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn an_empty_registry_is_a_first_run() {
        let h = harness("first");
        let overview = h.invoke("overview", json!({})).expect("overview");
        assert_eq!(overview["first_run"], true);
        assert_eq!(overview["overall"], "idle");
        assert_eq!(overview["connectors"], json!([]));
    }

    #[test]
    fn an_invalid_server_is_refused_with_a_code_and_the_field_to_fix() {
        let h = harness("invalid");
        let bad_url = json!({"name": "web", "entry": {"url": "ftp://x.example/mcp"}});
        let error = h.invoke("save_server", bad_url).expect_err("refused");
        assert_eq!(error["code"], "invalid");
        assert_eq!(error["field"], "entry");
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains("ftp")),
            "{error}"
        );
        let bad_name = json!({"name": "a.b", "entry": {"url": "https://x.example/mcp"}});
        let error = h.invoke("save_server", bad_name).expect_err("refused");
        assert_eq!(error["field"], "name", "{error}");
        assert_eq!(
            h.invoke("registry_entries", json!({})).expect("entries"),
            json!([])
        );
    }

    #[test]
    fn secrets_stay_out_of_the_ui_and_survive_an_edit() {
        let h = harness("secrets");
        let entry =
            json!({"url": "https://x.example/mcp", "headers": {"Authorization": "Bearer s3cret"}});
        h.invoke("save_server", json!({"name": "web", "entry": entry}))
            .expect("saved");
        let entries = h.invoke("registry_entries", json!({})).expect("entries");
        let shown = &entries[0]["entry"];
        assert_eq!(shown["headers"]["Authorization"], "<redacted>", "{entries}");
        assert!(!entries.to_string().contains("s3cret"));
        // The UI sends back what it was shown, with another field changed.
        let mut edited = shown.clone();
        edited["url"] = json!("https://y.example/mcp");
        h.invoke(
            "save_server",
            json!({"original": "web", "name": "web", "entry": edited}),
        )
        .expect("edited");
        let daemon = tauri::async_runtime::block_on(async {
            let state = h.tray.state::<AppState>();
            let daemon = state.daemon.get().await.expect("running");
            serde_json::to_value(&daemon.registry().snapshot().servers).expect("servers")
        });
        assert_eq!(daemon["web"]["url"], "https://y.example/mcp");
        assert_eq!(
            daemon["web"]["headers"]["Authorization"], "Bearer s3cret",
            "{daemon}"
        );
    }

    #[test]
    fn arguments_of_the_wrong_shape_are_refused_naming_the_command() {
        let h = harness("shape");
        let error = h
            .invoke("set_enabled", json!({"id": "web", "enabled": "yes"}))
            .expect_err("refused");
        assert_eq!(error["code"], "bad_arguments", "{error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("set_enabled:")),
            "{error}"
        );
    }

    #[test]
    fn the_capabilities_grant_exactly_the_wires_commands() {
        assert_eq!(
            crate::command_names::COMMANDS,
            Request::NAMES,
            "build.rs's list (the app manifest) is the wire's"
        );
        let file: Value =
            serde_json::from_str(include_str!("../capabilities/default.json")).expect("JSON");
        let mut granted: Vec<String> = file["permissions"]
            .as_array()
            .expect("a permission list")
            .iter()
            .filter_map(Value::as_str)
            .filter(|p| !p.starts_with("core:"))
            .map(|p| p.trim_start_matches("allow-").replace('-', "_"))
            .collect();
        let mut commands: Vec<String> = Request::NAMES.iter().map(|n| n.to_string()).collect();
        granted.sort();
        commands.sort();
        assert_eq!(
            granted, commands,
            "capabilities/default.json vs the wire's Request"
        );
    }

    #[test]
    fn only_switchboard_commands_go_up_the_line() {
        let h = harness("other");
        h.invoke("shut_down", json!({}))
            .expect_err("not a command the window has");
    }

    #[test]
    fn switching_an_unknown_connector_says_so() {
        let h = harness("unknown");
        let error = h
            .invoke("set_enabled", json!({"id": "nope", "enabled": false}))
            .expect_err("refused");
        assert_eq!(error["code"], "unknown_connector", "{error}");
    }
}
