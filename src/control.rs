//! The daemon's door for its clients: [`answer`] carries out one [`Request`] against a running
//! [`Daemon`]; [`socket`] serves it on a control socket only its user can reach; [`client`] is the
//! other end (the CLI). The window process's line and the CLI's socket speak the same wire.

pub mod client;
pub use client::ControlClient;
#[cfg(unix)]
mod mcp;
mod sideband;
pub mod socket;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{RwLock, RwLockReadGuard, broadcast};

use crate::call_log::CallOrigin;
use crate::clients::{self, AiClient};
use crate::daemon::{Daemon, DaemonError};
use crate::endpoint::setting::{self, EndpointStatus, EndpointSwitch};
use crate::import::{ImportSource, Places};
use crate::wire::{Down, Request, WireError};
use crate::{offerings, overview};

/// The daemon while it runs, shared by everything that answers its clients (`None` once it is
/// shutting down: they are then told so, with the code `stopped`), and what subscribed clients
/// (the window) are told.
pub struct SharedDaemon {
    daemon: RwLock<Option<Daemon>>,
    events: broadcast::Sender<Down>,
    endpoint: EndpointSwitch,
}

impl SharedDaemon {
    pub fn new(daemon: Daemon) -> Self {
        Self {
            endpoint: EndpointSwitch::new(&daemon.registry().paths().dir),
            daemon: RwLock::new(Some(daemon)),
            events: broadcast::channel(64).0,
        }
    }

    /// The daemon's HTTP endpoint (off until restored from its setting, or started).
    pub fn endpoint(&self) -> &EndpointSwitch {
        &self.endpoint
    }

    /// The running daemon, held for as long as the guard lives (a shutdown waits for it).
    pub async fn get(&self) -> Result<RwLockReadGuard<'_, Daemon>, WireError> {
        RwLockReadGuard::try_map(self.daemon.read().await, Option::as_ref)
            .map_err(|_| WireError::new("stopped", "Switchboard is shutting down".into()))
    }

    /// Takes the daemon out, for its shutdown; later requests are told it stopped.
    pub async fn take(&self) -> Option<Daemon> {
        self.daemon.write().await.take()
    }

    /// Tells every subscribed client (an event for the window's page, or `Show`).
    pub fn tell(&self, down: Down) {
        // No subscriber (no window open) is fine.
        let _ = self.events.send(down);
    }

    /// What [`SharedDaemon::tell`] sends, from now on.
    pub fn events(&self) -> broadcast::Receiver<Down> {
        self.events.subscribe()
    }

    /// Answers `request` from the daemon, if it still runs.
    pub async fn answer(self: &Arc<Self>, request: Request) -> Result<Value, WireError> {
        match request {
            Request::Endpoint {} => reply(self.endpoint.status().await),
            Request::SetEndpoint {
                enabled,
                port,
                require_token,
            } => {
                let current = self.endpoint.status().await.setting;
                let next = current.changed(enabled, port, require_token);
                reply(self.endpoint.set(self, next).await?)
            }
            request => answer(&*self.get().await?, request).await,
        }
    }
}

/// Carries out `request`: one delegation to the daemon each, the answer as JSON.
pub async fn answer(daemon: &Daemon, request: Request) -> Result<Value, WireError> {
    match request {
        Request::Overview {} => reply(daemon.overview()),
        Request::SetEnabled { id, enabled } => reply(daemon.set_enabled(&id, enabled).await?),
        Request::SyncNow { wait } => {
            daemon.engine().recheck_all("asked by a client").await;
            if wait {
                daemon.settled().await;
                reply(daemon.overview())
            } else {
                reply(())
            }
        }
        Request::Tools {} => reply(overview::tools(
            &daemon.engine().snapshot(),
            &daemon.registry().snapshot(),
        )),
        // Progress and questions need the connection to go on: the socket answers those itself.
        Request::CallTool {
            tool,
            arguments,
            client,
            correlation,
            ..
        } => {
            let origin = CallOrigin {
                client,
                correlation,
            };
            let sideband = crate::session::Sideband::default();
            reply(
                daemon
                    .call_tool_as(&tool, arguments, origin, sideband)
                    .await?,
            )
        }
        Request::CallLog {} => reply(daemon.call_log()),
        Request::Resources {} => reply(offerings::resources(daemon.engine()).await),
        Request::ResourceTemplates {} => {
            reply(offerings::resource_templates(daemon.engine()).await)
        }
        Request::ReadResource { connector, uri } => reply(
            offerings::read_resource(daemon.engine(), &connector, &uri)
                .await
                .map_err(DaemonError::from)?,
        ),
        Request::Clients {} => {
            let places = places()?;
            let all = AiClient::ALL
                .into_iter()
                .map(|c| clients::status(c, &places));
            reply(all.collect::<Vec<_>>())
        }
        Request::InstallClient {
            client,
            take_over,
            apply,
        } => {
            let (client, places) = (ai_client(&client)?, places()?);
            let dir = &daemon.registry().paths().dir;
            let registry = daemon.registry().snapshot();
            reply(
                clients::install_reporting(client, &places, dir, &registry, take_over, apply)
                    .map_err(client_error)?,
            )
        }
        Request::UninstallClient { client } => {
            let (client, places) = (ai_client(&client)?, places()?);
            let dir = &daemon.registry().paths().dir;
            let registry = daemon.registry().snapshot();
            reply(
                clients::uninstall_reporting(client, &places, dir, &registry)
                    .map_err(client_error)?,
            )
        }
        Request::Prompts {} => reply(offerings::prompts(daemon.engine()).await),
        Request::GetPrompt {
            connector,
            name,
            arguments,
        } => reply(
            offerings::get_prompt(daemon.engine(), &connector, &name, arguments)
                .await
                .map_err(DaemonError::from)?,
        ),
        Request::SetToolEnabled { tool, enabled } => {
            let Some((connector, tool)) = crate::catalog::split_qualified(&tool) else {
                return Err(WireError {
                    field: Some("tool".into()),
                    ..WireError::new("invalid", format!("{tool:?} is not CONNECTOR.TOOL"))
                });
            };
            reply(daemon.set_tool_enabled(connector, tool, enabled).await?)
        }
        Request::LatencySvg { id, dark, window_s } => {
            let window = window_s.map(std::time::Duration::from_secs);
            reply(daemon.latency_svg(&id, dark, window))
        }
        Request::RegistryEntries {} => {
            reply(overview::registry_entries(&daemon.registry().snapshot()))
        }
        Request::SaveServer {
            original,
            name,
            entry,
        } => reply(
            daemon
                .save_server(original.as_deref(), &name, entry)
                .await?,
        ),
        Request::RemoveServer { name } => reply(daemon.remove_server(&name).await?),
        Request::SetManifest { source } => reply(daemon.set_manifest(source.as_deref()).await?),
        Request::ImportPreview { from } => {
            let plan = daemon.import_preview(import_source(from).as_ref())?;
            reply(overview::import_items(&plan))
        }
        Request::ImportApply { from } => {
            reply(daemon.import_apply(import_source(from).as_ref()).await?)
        }
        Request::SignIn { id, open_browser } => reply(daemon.sign_in(&id, open_browser).await?),
        Request::SignInWait { id } => reply(daemon.sign_in_finished(&id).await?),
        Request::SignOut { id } => reply(daemon.sign_out(&id).await?),
        Request::SignInStatus {} => reply(daemon.sign_in_status().await?),
        // Without a running endpoint (an engine of a command's own): the setting alone.
        Request::Endpoint {} => reply(EndpointStatus::kept(setting::load(
            &daemon.registry().paths().dir,
        )?)),
        Request::SetEndpoint {
            enabled,
            port,
            require_token,
        } => {
            let dir = &daemon.registry().paths().dir;
            let kept = setting::keep_change(dir, enabled, port, require_token)?;
            reply(EndpointStatus::kept(kept))
        }
    }
}

pub(crate) fn ai_client(id: &str) -> Result<AiClient, WireError> {
    id.parse().map_err(|e: String| WireError {
        field: Some("client".into()),
        ..WireError::new("invalid", e)
    })
}

fn places() -> Result<Places, WireError> {
    Places::detect()
        .ok_or_else(|| WireError::new("client", "cannot tell where the home directory is".into()))
}

fn client_error(error: clients::ClientError) -> WireError {
    WireError::new("client", error.to_string())
}

fn reply(answer: impl Serialize) -> Result<Value, WireError> {
    serde_json::to_value(answer)
        .map_err(|e| WireError::new("internal", format!("the answer cannot be sent: {e}")))
}

/// The UI offers only the known sources; anything else means every client found.
fn import_source(from: Option<String>) -> Option<ImportSource> {
    from.and_then(|from| from.parse().ok())
}
