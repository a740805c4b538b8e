//! The HTTP endpoint as the user set it (in the window or with `switchboard endpoint`): on or
//! off, its port, and whether requests need the token. Kept in `<config dir>/endpoint.json`;
//! the daemon serves what it says from its start, and a change takes effect at once. A change
//! that cannot be applied (the port is taken) is not kept, and what served before goes on.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::http::{self, Access, HttpEndpoint, HttpEndpointError};
use crate::control::SharedDaemon;
use crate::durable::{self, IoAt, ReadError};
use crate::wire::WireError;

/// The setting's file in the config dir.
pub const SETTING_FILE: &str = "endpoint.json";

/// The port offered until the user picks another: fixed, so a client's URL stays right.
pub const DEFAULT_PORT: u16 = 7420;

/// Ports a user may choose: not privileged, not "any".
const PORTS: std::ops::RangeInclusive<u16> = 1024..=65535;

/// What the user chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointSetting {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Off only for clients that cannot send a header: then any program here can call tools.
    #[serde(default = "required")]
    pub require_token: bool,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

fn required() -> bool {
    true
}

impl EndpointSetting {
    /// This setting with what a `set_endpoint` gave; what it left out stays.
    pub fn changed(self, enabled: bool, port: Option<u16>, require_token: Option<bool>) -> Self {
        Self {
            enabled,
            port: port.unwrap_or(self.port),
            require_token: require_token.unwrap_or(self.require_token),
        }
    }
}

impl Default for EndpointSetting {
    fn default() -> Self {
        Self {
            enabled: false,
            port: DEFAULT_PORT,
            require_token: true,
        }
    }
}

/// The setting, and what serves now.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    #[serde(flatten)]
    pub setting: EndpointSetting,
    /// Where clients reach it now, while it serves.
    pub url: Option<String>,
    /// Where the token is (never the token itself), while one is required.
    pub token_file: Option<PathBuf>,
    /// Why it does not serve as set.
    pub problem: Option<String>,
}

impl EndpointStatus {
    /// A kept setting, with nothing serving it (no daemon runs here).
    pub fn kept(setting: EndpointSetting) -> Self {
        Self {
            setting,
            url: None,
            token_file: None,
            problem: None,
        }
    }
}

/// The setting kept in `dir`; the default (off) when there is none.
pub fn load(dir: &Path) -> Result<EndpointSetting, WireError> {
    let path = dir.join(SETTING_FILE);
    let bytes = match durable::read_bounded(&path, 64 * 1024) {
        Ok(bytes) => bytes,
        Err(ReadError::Io(io)) if io.source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(EndpointSetting::default());
        }
        Err(error) => return Err(WireError::new("endpoint", error.to_string())),
    };
    let setting: EndpointSetting = serde_json::from_slice(&bytes)
        .map_err(|e| WireError::new("endpoint", format!("{}: {e}", path.display())))?;
    checked(setting)
}

/// Keeps `setting` in `dir`, replacing the file whole.
pub fn save(dir: &Path, setting: &EndpointSetting) -> Result<(), IoAt> {
    let mut text = serde_json::to_vec_pretty(setting).unwrap_or_default();
    text.push(b'\n');
    durable::replace_file(&dir.join(SETTING_FILE), &text)
}

/// Keeps a change of the setting in `dir` without serving it (for the daemon's next start).
pub fn keep_change(
    dir: &Path,
    enabled: bool,
    port: Option<u16>,
    require_token: Option<bool>,
) -> Result<EndpointSetting, WireError> {
    let next = checked(load(dir)?.changed(enabled, port, require_token))?;
    save(dir, &next).map_err(|e| WireError::new("endpoint", e.to_string()))?;
    Ok(next)
}

/// `setting` if its port is one a user may choose.
pub fn checked(setting: EndpointSetting) -> Result<EndpointSetting, WireError> {
    if PORTS.contains(&setting.port) {
        return Ok(setting);
    }
    Err(WireError {
        field: Some("port".into()),
        ..WireError::new(
            "invalid",
            format!(
                "port {} cannot be the endpoint's: choose one from {} to {}",
                setting.port,
                PORTS.start(),
                PORTS.end()
            ),
        )
    })
}

/// The daemon's endpoint, started and stopped as the setting says.
pub struct EndpointSwitch {
    dir: PathBuf,
    state: Mutex<Serving>,
}

#[derive(Default)]
struct Serving {
    setting: EndpointSetting,
    endpoint: Option<HttpEndpoint>,
    problem: Option<String>,
}

impl EndpointSwitch {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            state: Mutex::default(),
        }
    }

    /// Serves what the kept setting says (the daemon's start). What fails is logged and said
    /// in the status; the daemon goes on without it.
    pub async fn restore(&self, daemon: &Arc<SharedDaemon>) {
        let mut state = self.state.lock().await;
        match load(&self.dir) {
            Ok(setting) => {
                state.setting = setting;
                if let Err(error) = self.start(&mut state, daemon, setting).await {
                    tracing::error!(%error, "the MCP endpoint cannot serve as set");
                    state.problem = Some(error.message);
                }
            }
            Err(error) => {
                tracing::error!(%error, "the MCP endpoint setting cannot be read; it is off");
                state.problem = Some(error.message);
            }
        }
    }

    /// Serves at `addr` for this run only (`sync --http`), whatever the setting says.
    pub async fn serve_at(
        &self,
        daemon: &Arc<SharedDaemon>,
        addr: SocketAddr,
        require_token: bool,
    ) -> Result<String, HttpEndpointError> {
        let mut state = self.state.lock().await;
        let endpoint =
            HttpEndpoint::start(daemon.clone(), addr, self.access(require_token)?).await?;
        let url = endpoint.url();
        state.setting = EndpointSetting {
            enabled: true,
            port: endpoint.addr.port(),
            require_token,
        };
        state.endpoint = Some(endpoint);
        Ok(url)
    }

    pub async fn status(&self) -> EndpointStatus {
        let state = self.state.lock().await;
        self.status_of(&state)
    }

    /// Serves as `next` says and keeps it; when it cannot, the endpoint serves as before and
    /// nothing is kept.
    pub async fn set(
        &self,
        daemon: &Arc<SharedDaemon>,
        next: EndpointSetting,
    ) -> Result<EndpointStatus, WireError> {
        let next = checked(next)?;
        let mut state = self.state.lock().await;
        let previous = state.setting;
        let serving = state.endpoint.is_some();
        let restart = previous != next || serving != next.enabled;
        if restart {
            self.stop(&mut state).await;
            if let Err(error) = self.start(&mut state, daemon, next).await {
                self.serve_again(&mut state, daemon, previous).await;
                return Err(error);
            }
        }
        // A change that cannot be kept is not applied either: it would be undone at the next
        // start, unasked.
        if let Err(error) = save(&self.dir, &next) {
            if restart {
                self.stop(&mut state).await;
                self.serve_again(&mut state, daemon, previous).await;
            }
            return Err(WireError::new("endpoint", error.to_string()));
        }
        state.setting = next;
        state.problem = None;
        Ok(self.status_of(&state))
    }

    /// Serves as `previous` said again, after a change that could not be made.
    async fn serve_again(
        &self,
        state: &mut Serving,
        daemon: &Arc<SharedDaemon>,
        previous: EndpointSetting,
    ) {
        if let Err(again) = self.start(state, daemon, previous).await {
            state.problem = Some(again.message);
        }
    }

    /// Stops serving (the daemon's shutdown).
    pub async fn close(&self) {
        let mut state = self.state.lock().await;
        self.stop(&mut state).await;
    }

    async fn start(
        &self,
        state: &mut Serving,
        daemon: &Arc<SharedDaemon>,
        setting: EndpointSetting,
    ) -> Result<(), WireError> {
        if !setting.enabled {
            return Ok(());
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, setting.port));
        let access = self.access(setting.require_token).map_err(endpoint_error)?;
        let endpoint = HttpEndpoint::start(daemon.clone(), addr, access)
            .await
            .map_err(endpoint_error)?;
        if !setting.require_token {
            tracing::warn!(
                url = %endpoint.url(),
                "the MCP endpoint takes requests without a token: any program on this machine \
                 can call every tool"
            );
        }
        tracing::info!(url = %endpoint.url(), "MCP endpoint serving");
        state.endpoint = Some(endpoint);
        Ok(())
    }

    async fn stop(&self, state: &mut Serving) {
        if let Some(endpoint) = state.endpoint.take() {
            endpoint.close().await;
            tracing::info!("MCP endpoint stopped");
        }
    }

    fn access(&self, require_token: bool) -> Result<Access, HttpEndpointError> {
        Ok(if require_token {
            Access::Token(http::token(&self.dir)?)
        } else {
            Access::Waived
        })
    }

    fn status_of(&self, state: &Serving) -> EndpointStatus {
        let serving = state.endpoint.as_ref();
        EndpointStatus {
            setting: state.setting,
            url: serving.map(HttpEndpoint::url),
            token_file: (serving.is_some() && state.setting.require_token)
                .then(|| http::token_path(&self.dir)),
            problem: state.problem.clone(),
        }
    }
}

fn endpoint_error(error: HttpEndpointError) -> WireError {
    match &error {
        HttpEndpointError::Bind { addr, source }
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            WireError {
                field: Some("port".into()),
                ..WireError::new(
                    "endpoint",
                    format!(
                        "port {} is in use by another program: choose another port",
                        addr.port()
                    ),
                )
            }
        }
        _ => WireError::new("endpoint", error.to_string()),
    }
}
