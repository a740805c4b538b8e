//! The tray icon: its state, tooltip and menu, computed by plain functions over the engine's
//! connectors (unit-tested), and the glue that puts them on the icon and carries out menu clicks
//! ([`TrayAction`]s).

use std::sync::Arc;

use switchboard::engine::ConnectorStatus;
use switchboard::health::{Health, Overall, overall, summary};
use switchboard::overview::Served;
use switchboard::wire::Request;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};

use tauri::{AppHandle, Manager as _, Runtime};

use crate::AppState;
use crate::logs::LogDir;

/// What a click in the tray menu asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayAction {
    /// Switch this connector on (`true`) or off.
    SetEnabled(String, bool),
    /// Open this connector's sign-in page in the browser.
    SignIn(String),
    SyncNow,
    Open,
    OpenLogs,
    Quit,
}

const TOGGLE_ON: &str = "enable:";
const TOGGLE_OFF: &str = "disable:";
const SIGN_IN: &str = "sign-in:";

impl TrayAction {
    /// The menu item id that stands for this action.
    fn menu_id(&self) -> String {
        match self {
            Self::SetEnabled(id, true) => format!("{TOGGLE_ON}{id}"),
            Self::SetEnabled(id, false) => format!("{TOGGLE_OFF}{id}"),
            Self::SignIn(id) => format!("{SIGN_IN}{id}"),
            Self::SyncNow => "sync".into(),
            Self::Open => "open".into(),
            Self::OpenLogs => "logs".into(),
            Self::Quit => "quit".into(),
        }
    }

    pub fn from_menu_id(id: &str) -> Option<Self> {
        if let Some(connector) = id.strip_prefix(TOGGLE_ON) {
            return Some(Self::SetEnabled(connector.into(), true));
        }
        if let Some(connector) = id.strip_prefix(TOGGLE_OFF) {
            return Some(Self::SetEnabled(connector.into(), false));
        }
        if let Some(connector) = id.strip_prefix(SIGN_IN) {
            return Some(Self::SignIn(connector.into()));
        }
        match id {
            "sync" => Some(Self::SyncNow),
            "open" => Some(Self::Open),
            "logs" => Some(Self::OpenLogs),
            "quit" => Some(Self::Quit),
            _ => None,
        }
    }
}

/// The menu's content; rebuilt on the icon only when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuModel {
    pub status: String,
    /// The status, and what AI clients are served.
    pub tooltip: String,
    pub connectors: Vec<ConnectorItem>,
    /// "Sign in to X…", for each connector that needs a sign-in.
    pub sign_ins: Vec<(String, TrayAction)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorItem {
    pub label: String,
    pub checked: bool,
    /// What clicking it does: the opposite of `checked`.
    pub action: TrayAction,
}

pub fn menu_model(connectors: &[ConnectorStatus], served: Served) -> MenuModel {
    let status = summary(connectors);
    let tooltip = match served.tools {
        0 => format!("Switchboard — {status}"),
        tools => format!(
            "Switchboard — {status} · serving {tools} tool{} to AI clients, about {} of context",
            if tools == 1 { "" } else { "s" },
            tokens(served.context_tokens)
        ),
    };
    MenuModel {
        status,
        tooltip,
        connectors: connectors
            .iter()
            .map(|c| {
                let enabled = c.state != Health::Disabled;
                let label = if enabled {
                    format!("{} — {}", c.label(), c.state.as_str())
                } else {
                    c.label().to_string()
                };
                ConnectorItem {
                    label,
                    checked: enabled,
                    action: TrayAction::SetEnabled(c.id.clone(), !enabled),
                }
            })
            .collect(),
        sign_ins: connectors
            .iter()
            .filter_map(|c| {
                let label = if c.state == Health::NeedsSignIn {
                    format!("Sign in to {}…", c.label())
                } else if !c.wants_scopes.is_empty() {
                    format!("Grant {} more access…", c.label())
                } else {
                    return None;
                };
                Some((label, TrayAction::SignIn(c.id.clone())))
            })
            .collect(),
    }
}

/// "1.2k tokens", "850 tokens".
fn tokens(count: usize) -> String {
    if count < 1000 {
        format!("{count} tokens")
    } else {
        format!("{:.1}k tokens", count as f64 / 1000.0)
    }
}

pub const TRAY_ID: &str = "switchboard";

/// Whether the desktop shows tray icons: on Linux, whether a StatusNotifier watcher runs on the
/// session bus (GNOME without its AppIndicator extension has none, nor has a bare X server).
/// Creating an icon succeeds either way; without a host it is just invisible.
#[cfg(target_os = "linux")]
pub fn host_present() -> bool {
    let ask = || -> zbus::Result<bool> {
        let connection = zbus::blocking::Connection::session()?;
        let bus = zbus::blocking::fdo::DBusProxy::new(&connection)?;
        Ok(bus.name_has_owner("org.kde.StatusNotifierWatcher".try_into()?)?)
    };
    ask().unwrap_or(false)
}

#[cfg(not(target_os = "linux"))]
pub fn host_present() -> bool {
    true
}

fn icon(overall: Overall) -> Image<'static> {
    let bytes: &'static [u8] = match overall {
        Overall::Healthy => include_bytes!("../../icons/tray-healthy.png"),
        Overall::Degraded => include_bytes!("../../icons/tray-degraded.png"),
        Overall::Down => include_bytes!("../../icons/tray-down.png"),
        Overall::Idle => include_bytes!("../../icons/tray-idle.png"),
    };
    // Built into the binary and decoded by a unit test: a failure here is a build bug.
    Image::from_bytes(bytes).expect("bundled tray icon")
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, model: &MenuModel) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(
        app,
        "status",
        &model.status,
        false,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    for item in &model.connectors {
        let id = item.action.menu_id();
        menu.append(&CheckMenuItem::with_id(
            app,
            id,
            &item.label,
            true,
            item.checked,
            None::<&str>,
        )?)?;
    }
    if !model.connectors.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    let item = |action: &TrayAction, label: &str| {
        MenuItem::with_id(app, action.menu_id(), label, true, None::<&str>)
    };
    for (label, action) in &model.sign_ins {
        menu.append(&item(action, label)?)?;
    }
    if !model.sign_ins.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    for (action, label) in [
        (TrayAction::SyncNow, "Sync now"),
        (TrayAction::Open, "Open Switchboard"),
        (TrayAction::OpenLogs, "Open logs"),
        (TrayAction::Quit, "Quit"),
    ] {
        menu.append(&item(&action, label)?)?;
    }
    Ok(menu)
}

/// Puts the icon in the tray; `on_action` gets every menu click.
pub fn create<R: Runtime>(
    app: &AppHandle<R>,
    on_action: impl Fn(&AppHandle<R>, TrayAction) + Send + Sync + 'static,
) -> tauri::Result<TrayIcon<R>> {
    let model = menu_model(&[], Served::default());
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(Overall::Idle))
        .tooltip(&model.tooltip)
        .menu(&build_menu(app, &model)?)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, event| {
            if let Some(action) = TrayAction::from_menu_id(event.id().as_ref()) {
                on_action(app, action);
            }
        })
        .build(app)
}

/// Brings the icon up to date with `connectors`, touching only what changed since `shown`.
pub fn update<R: Runtime>(
    app: &AppHandle<R>,
    tray: &TrayIcon<R>,
    connectors: &[ConnectorStatus],
    served: Served,
    shown: &mut Option<(Overall, MenuModel)>,
) -> tauri::Result<()> {
    let now = (overall(connectors), menu_model(connectors, served));
    let (icon_changed, menu_changed) = match shown {
        Some((overall, model)) => (*overall != now.0, *model != now.1),
        None => (true, true),
    };
    if icon_changed {
        tray.set_icon(Some(icon(now.0)))?;
    }
    if menu_changed {
        tray.set_tooltip(Some(&now.1.tooltip))?;
        tray.set_menu(Some(build_menu(app, &now.1)?))?;
        let items: Vec<String> = now
            .1
            .connectors
            .iter()
            .map(|c| format!("[{}] {}", if c.checked { "x" } else { " " }, c.label))
            .collect();
        tracing::debug!(icon = ?now.0, status = %now.1.status, items = %items.join(", "), "tray menu");
    }
    *shown = Some(now);
    Ok(())
}

/// The tray icon, or `None` (logged once) where there is none to be had: the window stays.
pub fn install<R: Runtime>(
    app: &AppHandle<R>,
    logs: Arc<LogDir>,
) -> Option<tauri::tray::TrayIcon<R>> {
    // A missing AppIndicator library makes tray creation panic rather than fail.
    let created = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        create(app, move |app, action| act(app, action, &logs))
    }));
    match created {
        Ok(Ok(tray)) => Some(tray),
        Ok(Err(error)) => {
            tracing::warn!(%error, "no tray icon on this desktop; the window stays available");
            None
        }
        Err(_) => {
            tracing::warn!(
                "no tray icon (the AppIndicator library is missing); the window stays available"
            );
            None
        }
    }
}

fn act<R: Runtime>(app: &AppHandle<R>, action: TrayAction, logs: &LogDir) {
    match action {
        TrayAction::SetEnabled(id, enabled) => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let state = app.state::<AppState>();
                let request = Request::SetEnabled {
                    id: id.clone(),
                    enabled,
                };
                if let Err(error) = state.daemon.answer(request).await {
                    tracing::warn!(%error, connector = id, "cannot switch from the tray");
                }
            });
        }
        TrayAction::SignIn(id) => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let state = app.state::<AppState>();
                let request = Request::SignIn {
                    id: id.clone(),
                    open_browser: true,
                };
                if let Err(error) = state.daemon.answer(request).await {
                    tracing::warn!(%error, connector = id, "cannot sign in from the tray");
                }
            });
        }
        TrayAction::SyncNow => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let state = app.state::<AppState>();
                let _ = state.daemon.answer(Request::SyncNow { wait: false }).await;
            });
        }
        TrayAction::Open => crate::window::open(app),
        TrayAction::OpenLogs => logs.open(),
        TrayAction::Quit => app.exit(0),
    }
}

#[cfg(test)]
mod tests {
    use switchboard::connector::Source;

    use super::*;

    fn connector(id: &str, state: Health) -> ConnectorStatus {
        ConnectorStatus {
            id: id.into(),
            display_name: None,
            source: Source::Registry,
            transport: "http",
            state,
            reason: None,
            tools: 3,
            latency_ms: None,
            protocol_version: None,
            attempt: 0,
            retry_in_ms: None,
            calls: None,
            credential: None,
            wants_scopes: Vec::new(),
        }
    }

    #[test]
    fn each_connector_is_a_checkbox_that_toggles_it_and_a_sign_in_has_its_entry() {
        let served = Served {
            tools: 3,
            context_tokens: 1234,
        };
        let mut model = menu_model(
            &[
                connector("docs", Health::Healthy),
                connector("off", Health::Disabled),
                connector("wiki", Health::NeedsSignIn),
                ConnectorStatus {
                    wants_scopes: vec!["repo".into()],
                    ..connector("git", Health::Healthy)
                },
            ],
            served,
        );
        assert_eq!(
            model.sign_ins,
            vec![
                (
                    "Sign in to wiki…".to_string(),
                    TrayAction::SignIn("wiki".into())
                ),
                (
                    "Grant git more access…".to_string(),
                    TrayAction::SignIn("git".into())
                ),
            ]
        );
        model.connectors.truncate(2);
        assert_eq!(model.status, "2/3 healthy · wiki needs-sign-in");
        assert_eq!(
            model.tooltip,
            "Switchboard — 2/3 healthy · wiki needs-sign-in · serving 3 tools to AI clients, about 1.2k tokens of context"
        );
        assert_eq!(
            model.connectors,
            vec![
                ConnectorItem {
                    label: "docs — healthy".into(),
                    checked: true,
                    action: TrayAction::SetEnabled("docs".into(), false),
                },
                ConnectorItem {
                    label: "off".into(),
                    checked: false,
                    action: TrayAction::SetEnabled("off".into(), true),
                },
            ]
        );
    }

    #[test]
    fn menu_ids_round_trip_to_actions() {
        for action in [
            TrayAction::SetEnabled("a:b".into(), true),
            TrayAction::SetEnabled("docs".into(), false),
            TrayAction::SignIn("a:b".into()),
            TrayAction::SyncNow,
            TrayAction::Open,
            TrayAction::OpenLogs,
            TrayAction::Quit,
        ] {
            assert_eq!(TrayAction::from_menu_id(&action.menu_id()), Some(action));
        }
        assert_eq!(
            TrayAction::from_menu_id("status"),
            None,
            "the status line does nothing"
        );
    }

    #[test]
    fn every_bundled_icon_decodes() {
        for state in [
            Overall::Healthy,
            Overall::Degraded,
            Overall::Down,
            Overall::Idle,
        ] {
            assert_eq!(icon(state).width(), 64, "{state:?}");
        }
    }
}
