//! Edits: the only way the registry changes, journaled exactly as they are applied.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{ConnectorOverride, ServerEntry, ServerName, ServersFileV1};

/// One change to the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Edit {
    /// Adds a server; fails if the name is taken.
    Add {
        name: ServerName,
        entry: ServerEntry,
    },
    /// Adds or replaces a server.
    Upsert {
        name: ServerName,
        entry: ServerEntry,
    },
    /// Removes a server; fails if there is none of that name.
    Remove { name: ServerName },
    /// Turns a server on or off; fails if there is none of that name.
    SetEnabled { name: ServerName, enabled: bool },
    /// Sets (or with `None` clears) the manual toggle of a manifest connector.
    SetOverride {
        connector: String,
        enabled: Option<bool>,
    },
    /// Sets (or with `None` clears) the manifest to follow: a URL or a file path.
    SetManifest { source: Option<String> },
    /// Switches one tool of a connector on or off for AI clients: in the registry server's
    /// entry, or for a manifest connector in its override.
    SetToolEnabled {
        connector: String,
        tool: String,
        enabled: bool,
    },
}

/// Why an edit could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EditRejected {
    #[error("a server named {0:?} already exists")]
    AlreadyExists(String),
    #[error("no server named {0:?}")]
    NotFound(String),
    #[error("server {name:?}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("connector id {0:?} is empty or has control characters")]
    InvalidConnector(String),
    #[error("manifest {0:?} is empty or has control characters")]
    InvalidManifest(String),
    #[error("tool name {0:?} is empty or has control characters")]
    InvalidTool(String),
}

impl Edit {
    /// Applies one edit to `file`, or says why it does not apply and leaves `file` as it was.
    pub fn apply(&self, file: &mut ServersFileV1) -> Result<(), EditRejected> {
        match self {
            Edit::Add { name, entry } => {
                if file.mcp_servers.contains_key(name) {
                    return Err(EditRejected::AlreadyExists(name.to_string()));
                }
                check_entry(name, entry)?;
                file.mcp_servers
                    .insert(name.clone(), Arc::new(entry.clone()));
            }
            Edit::Upsert { name, entry } => {
                check_entry(name, entry)?;
                file.mcp_servers
                    .insert(name.clone(), Arc::new(entry.clone()));
            }
            Edit::Remove { name } => {
                file.mcp_servers
                    .shift_remove(name)
                    .ok_or_else(|| EditRejected::NotFound(name.to_string()))?;
            }
            Edit::SetEnabled { name, enabled } => {
                let entry = file
                    .mcp_servers
                    .get_mut(name)
                    .ok_or_else(|| EditRejected::NotFound(name.to_string()))?;
                Arc::make_mut(entry).enabled = *enabled;
            }
            Edit::SetOverride { connector, enabled } => {
                if connector.is_empty() || connector.chars().any(char::is_control) {
                    return Err(EditRejected::InvalidConnector(connector.clone()));
                }
                match enabled {
                    Some(on) => {
                        file.connector_overrides
                            .entry(connector.clone())
                            .or_insert_with(|| ConnectorOverride {
                                enabled: None,
                                disabled_tools: Vec::new(),
                                extra: Default::default(),
                            })
                            .enabled = Some(*on);
                    }
                    None => {
                        if let Some(current) = file.connector_overrides.get_mut(connector) {
                            current.enabled = None;
                            if current.is_empty() {
                                file.connector_overrides.shift_remove(connector);
                            }
                        }
                    }
                }
            }
            Edit::SetToolEnabled {
                connector,
                tool,
                enabled,
            } => {
                if !super::model::is_tool_name(tool) {
                    return Err(EditRejected::InvalidTool(tool.clone()));
                }
                let server = ServerName::new(connector)
                    .ok()
                    .and_then(|name| file.mcp_servers.get_mut(&name));
                let disabled = match server {
                    Some(entry) => &mut Arc::make_mut(entry).disabled_tools,
                    None => {
                        if connector.is_empty() || connector.chars().any(char::is_control) {
                            return Err(EditRejected::InvalidConnector(connector.clone()));
                        }
                        &mut file
                            .connector_overrides
                            .entry(connector.clone())
                            .or_insert_with(|| ConnectorOverride {
                                enabled: None,
                                disabled_tools: Vec::new(),
                                extra: Default::default(),
                            })
                            .disabled_tools
                    }
                };
                disabled.retain(|t| t != tool);
                if !enabled {
                    disabled.push(tool.clone());
                }
                if file
                    .connector_overrides
                    .get(connector)
                    .is_some_and(ConnectorOverride::is_empty)
                {
                    file.connector_overrides.shift_remove(connector);
                }
            }
            Edit::SetManifest { source } => {
                if let Some(source) = source
                    && (source.trim().is_empty() || source.chars().any(char::is_control))
                {
                    return Err(EditRejected::InvalidManifest(source.clone()));
                }
                file.switchboard.manifest.clone_from(source);
            }
        }
        Ok(())
    }

    /// Applies a journaled edit during replay. The edit was valid when it was written; if an
    /// external change to `servers.json` since made it moot (its server is gone), it is skipped.
    pub fn replay(&self, file: &mut ServersFileV1) {
        let outcome = match self {
            Edit::Add { name, entry } => Edit::Upsert {
                name: name.clone(),
                entry: entry.clone(),
            }
            .apply(file),
            other => other.apply(file),
        };
        if let Err(reason) = outcome {
            tracing::warn!(%reason, "journaled edit no longer applies; skipped");
        }
    }
}

/// Applies a batch all or nothing.
pub fn apply_batch(edits: &[Edit], file: &mut ServersFileV1) -> Result<(), EditRejected> {
    if let [single] = edits {
        return single.apply(file);
    }
    let mut trial = file.clone();
    for edit in edits {
        edit.apply(&mut trial)?;
    }
    *file = trial;
    Ok(())
}

fn check_entry(name: &ServerName, entry: &ServerEntry) -> Result<(), EditRejected> {
    entry.validate().map_err(|invalid| EditRejected::Invalid {
        name: name.to_string(),
        reason: invalid.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::RemoteKind;

    fn name(s: &str) -> ServerName {
        ServerName::new(s).unwrap()
    }

    #[test]
    fn a_failing_batch_changes_nothing() {
        let mut file = ServersFileV1::default();
        let entry = ServerEntry::remote("http://127.0.0.1:9/mcp", RemoteKind::Http);
        let batch = [
            Edit::Add {
                name: name("a"),
                entry: entry.clone(),
            },
            Edit::Remove {
                name: name("missing"),
            },
        ];
        let err = apply_batch(&batch, &mut file).unwrap_err();
        assert_eq!(err, EditRejected::NotFound("missing".into()));
        assert!(file.mcp_servers.is_empty(), "half a batch was applied");
    }

    #[test]
    fn invalid_entries_built_in_code_are_rejected() {
        let mut file = ServersFileV1::default();
        let bad = ServerEntry::remote("ftp://x", RemoteKind::Http);
        let err = Edit::Upsert {
            name: name("a"),
            entry: bad,
        }
        .apply(&mut file)
        .unwrap_err();
        assert!(matches!(err, EditRejected::Invalid { .. }), "{err}");
    }

    #[test]
    fn the_manifest_setting_is_set_cleared_and_checked() {
        let mut file = ServersFileV1::default();
        let set = |source: Option<&str>| Edit::SetManifest {
            source: source.map(str::to_string),
        };
        set(Some("https://maps.example/service-map.json"))
            .apply(&mut file)
            .unwrap();
        assert_eq!(
            file.switchboard.manifest.as_deref(),
            Some("https://maps.example/service-map.json")
        );
        let text = serde_json::to_string(&file).unwrap();
        assert!(
            text.contains(r#""manifest":"https://maps.example/service-map.json""#),
            "{text}"
        );
        let bad = set(Some("https://x\n.example")).apply(&mut file);
        assert!(
            matches!(bad, Err(EditRejected::InvalidManifest(_))),
            "{bad:?}"
        );
        set(None).apply(&mut file).unwrap();
        assert_eq!(file.switchboard.manifest, None);
    }

    #[test]
    fn add_refuses_a_taken_name_and_overrides_toggle() {
        let mut file = ServersFileV1::default();
        let entry = ServerEntry::stdio("node", vec!["server.js".into()]);
        Edit::Add {
            name: name("a"),
            entry: entry.clone(),
        }
        .apply(&mut file)
        .unwrap();
        let again = Edit::Add {
            name: name("a"),
            entry,
        }
        .apply(&mut file);
        assert_eq!(again, Err(EditRejected::AlreadyExists("a".into())));
        Edit::SetOverride {
            connector: "wiki".into(),
            enabled: Some(false),
        }
        .apply(&mut file)
        .unwrap();
        assert_eq!(file.connector_overrides["wiki"].enabled, Some(false));
        Edit::SetOverride {
            connector: "wiki".into(),
            enabled: None,
        }
        .apply(&mut file)
        .unwrap();
        assert!(file.connector_overrides.is_empty());
    }
}
