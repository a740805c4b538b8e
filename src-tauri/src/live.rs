//! Carries the engine's changes to the window (an `overview` event), the tray icon and desktop
//! notifications, as they happen: no polling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::alerts::{Alert, Alerts, settle_from_env};
use switchboard::daemon::Daemon;
use switchboard::desired::ManifestView;
use switchboard::engine::{EngineEvent, EngineSnapshot};
use switchboard::registry::RegistrySnapshot;
use tauri::tray::TrayIcon;
use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::{broadcast, watch};

use crate::tray;
use switchboard::overview::{self, Overview};

/// The event the window listens to; its payload is an [`Overview`].
pub const OVERVIEW_EVENT: &str = "overview";

/// At most this many window and tray updates a second: a burst of changes becomes one.
const COALESCE: Duration = Duration::from_millis(100);

/// What is followed, taken from the daemon when it starts.
pub struct Sources {
    engine: watch::Receiver<Arc<EngineSnapshot>>,
    registry: watch::Receiver<Arc<RegistrySnapshot>>,
    manifest: watch::Receiver<Option<ManifestView>>,
    events: broadcast::Receiver<EngineEvent>,
}

impl Sources {
    pub fn of(daemon: &Daemon) -> Self {
        Self {
            engine: daemon.engine().subscribe(),
            registry: daemon.registry().subscribe(),
            manifest: daemon.manifest(),
            events: daemon.engine().events(),
        }
    }

    fn overview(&self) -> Overview {
        overview::overview(
            &self.engine.borrow(),
            &self.registry.borrow(),
            self.manifest.borrow().as_ref(),
        )
    }
}

/// Runs until the engine stops.
pub async fn follow<R: Runtime>(
    app: AppHandle<R>,
    tray: Option<TrayIcon<R>>,
    mut sources: Sources,
) {
    let mut alerts = Alerts::new(settle_from_env());
    let mut shown_tray = None;
    let mut sent: Option<Overview> = None;
    loop {
        let overview = sources.overview();
        if sent.as_ref() != Some(&overview) {
            crate::window::tell(&app, OVERVIEW_EVENT, &overview);
            if let Some(tray) = &tray
                && let Err(error) = tray::update(&app, tray, &overview.connectors, &mut shown_tray)
            {
                tracing::warn!(%error, "cannot update the tray icon");
            }
            sent = Some(overview);
        }
        let next_alert = alerts.next_due().map(tokio::time::Instant::from_std);
        tokio::select! {
            changed = sources.engine.changed() => if changed.is_err() { return },
            changed = sources.registry.changed() => if changed.is_err() { return },
            changed = sources.manifest.changed() => if changed.is_err() { return },
            event = sources.events.recv() => match event {
                Ok(event) => alerts.observe(&event, Instant::now()),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = sleep_until(next_alert) => {
                for alert in alerts.due(Instant::now()) {
                    notify(&app, &alert);
                }
            }
        }
        tokio::time::sleep(COALESCE).await;
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn notify<R: Runtime>(app: &AppHandle<R>, alert: &Alert) {
    let (title, body) = match alert {
        Alert::Down { id, reason } => (
            format!("{id} is down"),
            reason
                .clone()
                .unwrap_or_else(|| "It stopped answering.".into()),
        ),
        Alert::Recovered { id } => (format!("{id} is back"), "It answers again.".into()),
    };
    tracing::info!(title, body, "notification");
    if let Err(error) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!(%error, "no notification service");
    }
}
