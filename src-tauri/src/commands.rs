//! The commands the window may call (and nothing else: see `capabilities/default.json`): each
//! of the wire's requests goes from the page, unchanged, up the window process's line to the
//! daemon, which parses and answers it ([`switchboard::control::answer`]); failures come back as
//! the wire's `{code, message, field?}`.

use std::sync::Arc;

use switchboard::wire::Request;
use tauri::ipc::{Invoke, InvokeBody, InvokeError};
use tauri::{Manager as _, Runtime};

use crate::link::Link;

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

#[cfg(test)]
mod tests {
    //! The commands as the page calls them: Tauri's IPC on the mock runtime (no display) in a
    //! "window" app, up the real line (the control socket) to a real daemon in a temp config dir.
    use serde_json::{Value, json};
    use switchboard::control::SharedDaemon;
    use switchboard::control::socket::{self, ControlSocket};
    use switchboard::daemon::{Daemon, DaemonOptions};
    use tauri::ipc::CallbackFn;
    use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context};
    use tauri::webview::InvokeRequest;

    use super::*;

    struct Harness {
        daemon: Arc<SharedDaemon>,
        _socket: ControlSocket,
        _window: tauri::App<MockRuntime>,
        webview: tauri::WebviewWindow<MockRuntime>,
        dir: std::path::PathBuf,
    }

    fn harness(tag: &str) -> Harness {
        let dir = std::env::temp_dir().join(format!("sb-cmd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (daemon, socket, stream) = tauri::async_runtime::block_on(async {
            let claimed = socket::claim(&dir).expect("the control socket");
            let daemon = Daemon::start(DaemonOptions {
                config_dir: dir.clone(),
                manifest: None,
            })
            .await
            .expect("daemon");
            let daemon = Arc::new(SharedDaemon::new(daemon));
            let socket = claimed.serve(daemon.clone());
            let stream = tokio::net::UnixStream::connect(socket.path())
                .await
                .expect("connected");
            (daemon, socket, stream)
        });
        let (from_daemon, to_daemon) = stream.into_split();
        let (link, _reading) = Link::start(from_daemon, to_daemon, |_| {});
        let window = mock_builder()
            .invoke_handler(forward)
            .manage(Arc::new(link))
            .build(mock_context(tauri::test::noop_assets()))
            .expect("mock window app");
        let webview =
            tauri::WebviewWindowBuilder::new(&window, crate::window::WINDOW, Default::default())
                .build()
                .expect("mock window");
        Harness {
            daemon,
            _socket: socket,
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
        assert_eq!(
            error["field"], "url",
            "the field to fix, not just the entry: {error}"
        );
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
            let daemon = h.daemon.get().await.expect("running");
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
        // Beyond the wire, only the start-at-login toggle's plugin, and only these.
        commands
            .extend(["enable", "disable", "is_enabled"].map(|c| format!("autostart:allow_{c}")));
        granted.sort();
        commands.sort();
        assert_eq!(
            granted, commands,
            "capabilities/default.json vs the wire's Request and the autostart plugin"
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
