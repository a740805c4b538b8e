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
