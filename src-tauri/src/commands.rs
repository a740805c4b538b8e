//! The commands the window may call (and nothing else: see `capabilities/default.json`). Each
//! delegates to the engine and maps its error to `{code, message}` once, here.

use serde::Serialize;
use serde_json::Value;
use switchboard::daemon::{Daemon, DaemonError};
use switchboard::import::ImportSource;
use tauri::State;
use tokio::sync::RwLockReadGuard;

use crate::AppState;
use crate::view::{self, ImportItem, Overview, RegistryEntry, ToolView};

/// What the UI gets when a command fails; it branches on `code`, shows `message`.
#[derive(Debug, Serialize)]
pub struct CommandError {
    code: &'static str,
    message: String,
    /// For `invalid`: which input is wrong (`name`, `entry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

impl From<DaemonError> for CommandError {
    fn from(error: DaemonError) -> Self {
        let field = match &error {
            DaemonError::Invalid { field, .. } => Some(*field),
            _ => None,
        };
        Self {
            code: error.code(),
            message: error.to_string(),
            field,
        }
    }
}

type Answer<T> = Result<T, CommandError>;

async fn daemon(state: &AppState) -> Answer<RwLockReadGuard<'_, Daemon>> {
    RwLockReadGuard::try_map(state.daemon.read().await, Option::as_ref).map_err(|_| CommandError {
        code: "stopped",
        message: "Switchboard is shutting down".into(),
        field: None,
    })
}

fn source(from: Option<String>) -> Option<ImportSource> {
    from.and_then(|from| from.parse().ok())
}

#[tauri::command]
pub async fn overview(state: State<'_, AppState>) -> Answer<Overview> {
    Ok(view::overview_of(&*daemon(&state).await?))
}

#[tauri::command]
pub async fn set_enabled(state: State<'_, AppState>, id: String, enabled: bool) -> Answer<()> {
    Ok(daemon(&state).await?.set_enabled(&id, enabled).await?)
}

#[tauri::command]
pub async fn sync_now(state: State<'_, AppState>) -> Answer<()> {
    daemon(&state)
        .await?
        .engine()
        .recheck_all("asked from the app")
        .await;
    Ok(())
}

#[tauri::command]
pub async fn tools(state: State<'_, AppState>) -> Answer<Vec<ToolView>> {
    Ok(view::tools(&daemon(&state).await?.engine().snapshot()))
}

#[tauri::command]
pub async fn call_tool(
    state: State<'_, AppState>,
    tool: String,
    arguments: Value,
) -> Answer<Value> {
    Ok(daemon(&state).await?.call_tool(&tool, arguments).await?)
}

#[tauri::command]
pub async fn latency_svg(state: State<'_, AppState>, id: String, dark: bool) -> Answer<String> {
    Ok(daemon(&state).await?.latency_svg(&id, dark))
}

#[tauri::command]
pub async fn registry_entries(state: State<'_, AppState>) -> Answer<Vec<RegistryEntry>> {
    Ok(view::registry_entries(
        &daemon(&state).await?.registry().snapshot(),
    ))
}

#[tauri::command]
pub async fn save_server(
    state: State<'_, AppState>,
    original: Option<String>,
    name: String,
    entry: Value,
) -> Answer<()> {
    let daemon = daemon(&state).await?;
    Ok(daemon
        .save_server(original.as_deref(), &name, entry)
        .await?)
}

#[tauri::command]
pub async fn set_manifest(state: State<'_, AppState>, source: Option<String>) -> Answer<()> {
    Ok(daemon(&state)
        .await?
        .set_manifest(source.as_deref())
        .await?)
}

#[tauri::command]
pub async fn remove_server(state: State<'_, AppState>, name: String) -> Answer<()> {
    Ok(daemon(&state).await?.remove_server(&name).await?)
}

#[tauri::command]
pub async fn import_preview(
    state: State<'_, AppState>,
    from: Option<String>,
) -> Answer<Vec<ImportItem>> {
    let plan = daemon(&state)
        .await?
        .import_preview(source(from).as_ref())?;
    Ok(view::import_items(&plan))
}

#[tauri::command]
pub async fn import_apply(state: State<'_, AppState>, from: Option<String>) -> Answer<usize> {
    Ok(daemon(&state)
        .await?
        .import_apply(source(from).as_ref())
        .await?)
}

#[cfg(test)]
mod tests {
    //! The commands through Tauri's IPC on the mock runtime (no display), over a real daemon in
    //! a temp config dir.

    use serde_json::json;
    use switchboard::daemon::DaemonOptions;
    use tauri::Manager as _;
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context};
    use tauri::webview::InvokeRequest;

    use super::*;

    struct Harness {
        _app: tauri::App<MockRuntime>,
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
        let app = mock_builder()
            .invoke_handler(crate::handlers())
            .manage(AppState::new(daemon))
            .build(mock_context(tauri::test::noop_assets()))
            .expect("mock app");
        let webview = tauri::WebviewWindowBuilder::new(&app, crate::WINDOW, Default::default())
            .build()
            .expect("mock window");
        Harness {
            _app: app,
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
            let state = h.webview.state::<AppState>();
            let daemon = state.daemon.read().await;
            let snapshot = daemon.as_ref().expect("running").registry().snapshot();
            serde_json::to_value(&snapshot.servers).expect("servers")
        });
        assert_eq!(daemon["web"]["url"], "https://y.example/mcp");
        assert_eq!(
            daemon["web"]["headers"]["Authorization"], "Bearer s3cret",
            "{daemon}"
        );
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
