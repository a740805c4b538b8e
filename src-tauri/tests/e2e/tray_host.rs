//! A stand-in for the desktop's tray host: a private D-Bus session bus with a
//! StatusNotifierWatcher on it, so the app's real tray icon registers there, and its menu can be
//! read and clicked over D-Bus (`com.canonical.dbusmenu`), as a panel does.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use switchboard_fixture::tray_watcher::{TrayWatcher, WATCHER_NAME, WATCHER_PATH};
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// The bus and the watcher; dropping it stops both.
pub struct TrayHost {
    pub address: String,
    connection: zbus::Connection,
    watcher: TrayWatcher,
    notifications: Arc<Mutex<Vec<(String, String)>>>,
    bus: Child,
}

/// The desktop's notification server, keeping what it is asked to show.
struct Notifications {
    shown: Arc<Mutex<Vec<(String, String)>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(
        clippy::too_many_arguments,
        reason = "the method as the spec defines it"
    )]
    async fn notify(
        &self,
        _app_name: &str,
        _replaces_id: u32,
        _app_icon: &str,
        summary: &str,
        body: &str,
        _actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.shown.lock().expect("notifications");
        shown.push((summary.to_string(), body.to_string()));
        shown.len() as u32
    }

    async fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    async fn get_server_information(&self) -> (String, String, String, String) {
        (
            "test".into(),
            "switchboard".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    async fn close_notification(&self, _id: u32) {}
}

impl Drop for TrayHost {
    fn drop(&mut self) {
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// One entry of the tray menu as the panel sees it.
#[derive(Debug, Clone)]
pub struct MenuEntry {
    pub id: i32,
    pub label: String,
    /// `Some(true)` for a ticked checkbox.
    pub checked: Option<bool>,
}

impl TrayHost {
    pub async fn start() -> TrayHost {
        let mut bus = Command::new("dbus-daemon")
            .args([
                "--config-file=/usr/share/dbus-1/session.conf",
                "--print-address=1",
                "--nofork",
                "--nopidfile",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().expect("piped"))
            .read_line(&mut address)
            .expect("dbus-daemon prints its address");
        let address = address.trim().to_string();
        let watcher = TrayWatcher::default();
        let notifications = Arc::new(Mutex::new(Vec::new()));
        let connection = zbus::connection::Builder::address(address.as_str())
            .expect("bus address")
            .name(WATCHER_NAME)
            .expect("watcher name")
            .serve_at(WATCHER_PATH, watcher.clone())
            .expect("watcher object")
            .name("org.freedesktop.Notifications")
            .expect("notifications name")
            .serve_at(
                "/org/freedesktop/Notifications",
                Notifications {
                    shown: notifications.clone(),
                },
            )
            .expect("notifications object")
            .build()
            .await
            .expect("connect to the private bus");
        TrayHost {
            address,
            connection,
            watcher,
            notifications,
            bus,
        }
    }

    /// The notifications shown so far, as (summary, body).
    pub fn notifications(&self) -> Vec<(String, String)> {
        self.notifications.lock().expect("notifications").clone()
    }

    /// The first registered item as (bus name, object path).
    fn item(&self) -> Option<(String, String)> {
        let items = self.watcher.items();
        let first = items.first()?;
        let slash = first.find('/')?;
        Some((first[..slash].to_string(), first[slash..].to_string()))
    }

    pub fn has_item(&self) -> bool {
        self.item().is_some()
    }

    async fn menu_path(&self) -> Option<(String, OwnedObjectPath)> {
        let (bus, path) = self.item()?;
        let properties = zbus::fdo::PropertiesProxy::builder(&self.connection)
            .destination(bus.clone())
            .ok()?
            .path(path)
            .ok()?
            .build()
            .await
            .ok()?;
        let menu = properties
            .get("org.kde.StatusNotifierItem".try_into().ok()?, "Menu")
            .await
            .ok()?;
        Some((bus, OwnedObjectPath::try_from(menu).ok()?))
    }

    /// The menu's entries, flattened, or empty while there is none.
    pub async fn menu(&self) -> Vec<MenuEntry> {
        let Some((bus, path)) = self.menu_path().await else {
            return Vec::new();
        };
        type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
        let reply = self
            .connection
            .call_method(
                Some(bus.as_str()),
                path.as_str(),
                Some("com.canonical.dbusmenu"),
                "GetLayout",
                &(0i32, -1i32, Vec::<String>::new()),
            )
            .await;
        let Ok(reply) = reply else { return Vec::new() };
        let Ok((_revision, root)) = reply.body().deserialize::<(u32, Layout)>() else {
            return Vec::new();
        };
        let mut entries = Vec::new();
        let mut todo: Vec<OwnedValue> = root.2;
        while let Some(child) = todo.pop() {
            let value: Value<'_> = child.into();
            let value = match value {
                Value::Value(inner) => *inner,
                other => other,
            };
            let Ok((id, props, children)) = <Layout>::try_from(value) else {
                continue;
            };
            let text = |key: &str| {
                props
                    .get(key)
                    .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
            };
            let checked = text("toggle-type").filter(|t| t == "checkmark").map(|_| {
                props
                    .get("toggle-state")
                    .and_then(|v| i32::try_from(v).ok())
                    == Some(1)
            });
            entries.push(MenuEntry {
                id,
                label: text("label").unwrap_or_default().replace('_', ""),
                checked,
            });
            todo.extend(children);
        }
        entries.sort_by_key(|e| e.id);
        entries
    }

    /// Clicks the menu entry whose label starts with `label`, as a panel would.
    pub async fn click(&self, label: &str) {
        self.send_click(label)
            .await
            .expect("click the tray menu entry");
    }

    /// Clicks an entry that ends the app: it may leave the bus before it answers the click
    /// (`NoReply`), which is what quitting looks like from here; whether it ended is the
    /// caller's to check.
    pub async fn click_to_quit(&self, label: &str) {
        match self.send_click(label).await {
            Ok(_) => {}
            Err(zbus::Error::MethodError(name, ..))
                if name.as_str() == "org.freedesktop.DBus.Error.NoReply" => {}
            Err(error) => panic!("click the tray menu entry: {error}"),
        }
    }

    async fn send_click(&self, label: &str) -> zbus::Result<zbus::Message> {
        let entry = self
            .menu()
            .await
            .into_iter()
            .find(|e| e.label.starts_with(label))
            .unwrap_or_else(|| panic!("a tray menu entry {label:?}"));
        let (bus, path) = self.menu_path().await.expect("the tray menu");
        self.connection
            .call_method(
                Some(bus.as_str()),
                path.as_str(),
                Some("com.canonical.dbusmenu"),
                "Event",
                &(entry.id, "clicked", Value::from(0i32), 0u32),
            )
            .await
    }
}
