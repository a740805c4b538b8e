//! Carries the engine's changes to the window (an `overview` event), the tray icon and desktop
//! notifications, as they happen: no polling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::alerts::{Alert, Alerts, settle_from_env};
use switchboard::daemon::Daemon;
use switchboard::engine::EngineEvent;
use switchboard::overview::Overview;
use tauri::tray::TrayIcon;
use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::{broadcast, watch};

use crate::tray;

/// The event the window listens to; its payload is an [`Overview`].
pub const OVERVIEW_EVENT: &str = "overview";

/// At most this many window and tray updates a second: a burst of changes becomes one.
const COALESCE: Duration = Duration::from_millis(100);

/// What is followed, taken from the daemon when it starts: its overview, and the engine's
/// events (for notifications).
pub struct Sources {
    overviews: watch::Receiver<Arc<Overview>>,
    events: broadcast::Receiver<EngineEvent>,
}

impl Sources {
    pub fn of(daemon: &Daemon) -> Self {
        Self {
            overviews: daemon.overviews(),
            events: daemon.engine().events(),
        }
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
    let mut sent: Option<Arc<Overview>> = None;
    loop {
        let overview = sources.overviews.borrow_and_update().clone();
        if sent.as_ref() != Some(&overview) {
            crate::window::tell(&app, OVERVIEW_EVENT, &overview);
            if let Some(tray) = &tray
                && let Err(error) = tray::update(
                    &app,
                    tray,
                    &overview.connectors,
                    overview.served,
                    &mut shown_tray,
                )
            {
                tracing::warn!(%error, "cannot update the tray icon");
            }
            sent = Some(overview);
        }
        let next_alert = alerts.next_due().map(tokio::time::Instant::from_std);
        tokio::select! {
            changed = sources.overviews.changed() => if changed.is_err() { return },
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
        Alert::SignInNeeded { ids } => (
            match ids.as_slice() {
                [one] => format!("{one} needs a sign-in"),
                many => format!("{} connectors need a sign-in", many.len()),
            },
            format!(
                "Sign in from the tray menu or the window: {}.",
                ids.join(", ")
            ),
        ),
        Alert::Recovered { id } => (format!("{id} is back"), "It answers again.".into()),
    };
    tracing::info!(title, body, "notification");
    if let Err(error) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!(%error, "no notification service");
    }
}
