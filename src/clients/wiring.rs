//! Pointing a client at Switchboard as the CLI and the window's Clients panel both do it: which
//! of the client's servers Switchboard already serves, which program the entry starts, and a
//! report of what installing did (or, previewed, would do).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::{AiClient, ClientError, ServeCommand, Uninstalled, plan_install};
use crate::import::Places;
use crate::registry::RegistrySnapshot;
use crate::registry::model::{Launch, ServerName};

/// Whether the registry serves what a client's entry `name` launches: the same name, or the
/// same command and arguments, or the same URL.
pub fn served_by(registry: &RegistrySnapshot) -> impl Fn(&str, &Value) -> bool + '_ {
    move |name, entry| {
        if ServerName::new(name).is_ok_and(|n| registry.servers.contains_key(&n)) {
            return true;
        }
        let command = entry["command"].as_str();
        let args: Vec<&str> = entry["args"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let url = entry["url"]
            .as_str()
            .or_else(|| entry["serverUrl"].as_str());
        registry
            .servers
            .values()
            .any(|server| match &server.launch {
                Launch::Stdio {
                    command: c,
                    args: a,
                    ..
                } => {
                    command == Some(c.as_str())
                        && args == a.iter().map(String::as_str).collect::<Vec<_>>()
                }
                Launch::Remote { url: u, .. } => url == Some(u.as_str()),
            })
    }
}

/// The `switchboard` CLI clients are to start: this program, or (for the app) the CLI
/// installed beside it.
pub fn serve_program() -> Result<PathBuf, ClientError> {
    let this = std::env::current_exe().map_err(|e| ClientError::Unusable {
        path: PathBuf::from("."),
        reason: format!("cannot tell where this program is: {e}"),
    })?;
    if this.file_stem().is_some_and(|s| s == "switchboard") {
        return Ok(this);
    }
    let beside = this.with_file_name(format!("switchboard{}", std::env::consts::EXE_SUFFIX));
    if beside.is_file() {
        return Ok(beside);
    }
    Err(ClientError::Unusable {
        path: beside,
        reason: "the switchboard command is not installed beside the app".into(),
    })
}

/// What installing into one client did, or would do.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub client: &'static str,
    pub name: &'static str,
    pub path: PathBuf,
    /// The entry's command line (program and arguments).
    pub entry: String,
    /// Whether the file changes at all (not: it already routes through Switchboard).
    pub changes: bool,
    pub switched_off: Vec<String>,
    /// Its servers Switchboard serves too, left on there (both run).
    pub duplicates: Vec<String>,
    /// Where the original is kept.
    pub backup: Option<PathBuf>,
    /// Whether it was written (`false` for a preview).
    pub written: bool,
}

/// Plans installing into `client` and, with `apply`, does it.
pub fn install_reporting(
    client: AiClient,
    places: &Places,
    config_dir: &Path,
    registry: &RegistrySnapshot,
    take_over: bool,
    apply: bool,
) -> Result<InstallReport, ClientError> {
    let serve = ServeCommand::new(&serve_program()?, config_dir);
    let plan = plan_install(client, places, &serve, take_over, &served_by(registry))?;
    if apply {
        plan.apply()?;
    }
    Ok(InstallReport {
        client: client.id(),
        name: client.name(),
        entry: std::iter::once(serve.program.clone())
            .chain(serve.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        changes: plan.changes_anything(),
        switched_off: plan.switched_off.clone(),
        duplicates: plan.duplicates.clone(),
        backup: plan.before.is_some().then(|| plan.backup_path()),
        written: apply && plan.changes_anything(),
        path: plan.path,
    })
}

/// What uninstalling from one client did.
#[derive(Debug, Clone, Serialize)]
pub struct UninstallReport {
    pub client: &'static str,
    pub path: PathBuf,
    /// `restored` (the original is back byte for byte), `removed` (only the entry went, the
    /// file having changed since) or `not_installed`.
    pub outcome: &'static str,
    pub restored_servers: Vec<String>,
}

pub fn uninstall_reporting(
    client: AiClient,
    places: &Places,
    config_dir: &Path,
    registry: &RegistrySnapshot,
) -> Result<UninstallReport, ClientError> {
    let serve = ServeCommand::new(&serve_program()?, config_dir);
    let (outcome, restored_servers) =
        match super::uninstall(client, places, &serve, &served_by(registry))? {
            Uninstalled::Restored => ("restored", Vec::new()),
            Uninstalled::Removed { restored_servers } => ("removed", restored_servers),
            Uninstalled::NotInstalled => ("not_installed", Vec::new()),
        };
    Ok(UninstallReport {
        client: client.id(),
        path: client.config_path(places),
        outcome,
        restored_servers,
    })
}
