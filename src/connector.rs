//! The desired set: what Switchboard should be connected to, whichever source said so.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use crate::manifest::Manifest;
use crate::registry::RegistrySnapshot;
use crate::registry::model::{Launch, RemoteKind};

/// Connect (handshake + tool list) deadline when a source gives none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tool call deadline when a source gives none.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest connect or call timeout a registry entry or manifest may set: deadlines are
/// added to clocks, and a value near `u64::MAX` would overflow them.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// Where a connector's definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Registry,
    Manifest,
}

/// How to reach a connector.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Http {
        url: String,
        /// `Some(Sse)` for servers that speak only the deprecated HTTP+SSE transport.
        kind: Option<RemoteKind>,
        headers: IndexMap<String, String>,
    },
    Stdio {
        command: String,
        args: Vec<String>,
        env: IndexMap<String, String>,
        cwd: Option<String>,
    },
}

impl Endpoint {
    pub fn transport(&self) -> &'static str {
        match self {
            Self::Http {
                kind: Some(RemoteKind::Sse),
                ..
            } => "sse",
            Self::Http { .. } => "http",
            Self::Stdio { .. } => "stdio",
        }
    }
}

/// One connector Switchboard should run.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorSpec {
    pub id: String,
    pub endpoint: Endpoint,
    pub enabled: bool,
    pub connect_timeout: Duration,
    pub call_timeout: Duration,
    pub source: Source,
    /// Set when the source requires a credential that is not available: the variable to set.
    /// Such a connector is reported unauthorized without being contacted.
    pub missing_credential: Option<String>,
    /// What its source says of it beyond how to reach it.
    pub info: ConnectorInfo,
}

/// What a connector's source says about it beyond how to reach it (the manifest's
/// `displayName`, `description`, `tags` and `quotas`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// What the UI calls it; its id when `None`.
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub quotas: Quotas,
    /// Who Switchboard is to its authorization server, where the source says.
    pub sign_in: crate::signin::ClientIdentity,
}

/// Call limits the source asks for (`{"concurrent": 2, "perMinute": 60, "perHour": 1000}`),
/// enforced on every call through the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quotas {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<u32>,
}

/// The most calls a rate may allow: each allowed call of the last hour is remembered.
pub const MAX_RATE: u32 = 100_000;
/// The most concurrent calls a quota may allow.
pub const MAX_CONCURRENT: u32 = 1024;

impl Quotas {
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }

    /// What is wrong with these limits, if anything.
    pub fn check(&self) -> Result<(), String> {
        let limits = [
            ("concurrent", self.concurrent, MAX_CONCURRENT),
            ("perMinute", self.per_minute, MAX_RATE),
            ("perHour", self.per_hour, MAX_RATE),
        ];
        for (name, value, max) in limits {
            match value {
                Some(0) => return Err(format!("{name}: 0 would refuse every call; leave it out")),
                Some(n) if n > max => return Err(format!("{name}: {n} is above the most, {max}")),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether a connector's secrets are there, never what they are: all the UI is told of them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Credential {
    /// It has them: a token (from the keyring or the environment), or headers or environment
    /// variables in its registry entry whose names say they hold secrets.
    Set,
    /// It needs a token that is not there; `variable` is what to set.
    Unset { variable: String },
}

impl ConnectorSpec {
    /// Whether it sends an `Authorization` header of its own (a registry header, a manifest
    /// connector's token).
    pub fn sends_own_authorization(&self) -> bool {
        matches!(&self.endpoint, Endpoint::Http { headers, .. }
            if headers.keys().any(|name| name.eq_ignore_ascii_case("authorization")))
    }

    /// `None` for a connector that asks for no secret.
    pub fn credential(&self) -> Option<Credential> {
        if let Some(variable) = &self.missing_credential {
            return Some(Credential::Unset {
                variable: variable.clone(),
            });
        }
        let values = match &self.endpoint {
            Endpoint::Http { headers, .. } => headers,
            Endpoint::Stdio { env, .. } => env,
        };
        let has_secrets = values
            .iter()
            .any(|(name, value)| crate::credentials::looks_secret(name) && !value.is_empty());
        has_secrets.then_some(Credential::Set)
    }
}

/// The manifest's connectors as specs, their tokens looked up ([`crate::credentials::lookup`]:
/// the keyring may block, so on a blocking thread). Done once per manifest, not per registry
/// edit.
pub async fn manifest_specs(manifest: Arc<Manifest>) -> Vec<ConnectorSpec> {
    tokio::task::spawn_blocking(move || manifest.specs(crate::credentials::lookup))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "looking up the manifest's credentials failed");
            Vec::new()
        })
}

/// The desired set: the manifest's connectors (from [`manifest_specs`]), with the registry's
/// manual toggles applied, and the registry's own servers. A registry server named like a
/// manifest connector replaces it: the user's local definition wins.
pub fn desired_set(manifest: &[ConnectorSpec], registry: &RegistrySnapshot) -> Vec<ConnectorSpec> {
    let mut specs: Vec<ConnectorSpec> = manifest
        .iter()
        .filter(|spec| {
            let shadowed = registry.servers.keys().any(|name| name.as_str() == spec.id);
            if shadowed {
                tracing::warn!(connector = %spec.id, "a registry server replaces the manifest connector of the same id");
            }
            !shadowed
        })
        .cloned()
        .map(|mut spec| {
            if let Some(enabled) = registry.overrides.get(&spec.id).and_then(|o| o.enabled) {
                spec.enabled = enabled;
            }
            spec
        })
        .collect();
    specs.extend(from_registry(registry));
    specs
}

/// The registry's servers as connectors (manual toggles included via `enabled`).
pub fn from_registry(registry: &RegistrySnapshot) -> Vec<ConnectorSpec> {
    registry
        .servers
        .iter()
        .map(|(name, entry)| ConnectorSpec {
            id: name.to_string(),
            endpoint: match &entry.launch {
                Launch::Stdio {
                    command,
                    args,
                    env,
                    cwd,
                } => Endpoint::Stdio {
                    command: command.clone(),
                    args: args.clone(),
                    env: env.clone(),
                    cwd: cwd.clone(),
                },
                Launch::Remote { url, kind, headers } => Endpoint::Http {
                    url: url.clone(),
                    kind: Some(*kind),
                    headers: headers.clone(),
                },
            },
            enabled: entry.enabled,
            connect_timeout: entry
                .timeouts
                .connect_ms
                .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_millis),
            call_timeout: entry
                .timeouts
                .call_ms
                .map_or(DEFAULT_CALL_TIMEOUT, Duration::from_millis),
            source: Source::Registry,
            missing_credential: None,
            info: ConnectorInfo {
                tags: entry.tags.clone(),
                quotas: entry.quotas,
                sign_in: entry.oauth.clone().unwrap_or_default(),
                ..ConnectorInfo::default()
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(endpoint: Endpoint, missing_credential: Option<&str>) -> ConnectorSpec {
        ConnectorSpec {
            id: "wiki".into(),
            endpoint,
            enabled: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            source: Source::Manifest,
            missing_credential: missing_credential.map(String::from),
            info: ConnectorInfo::default(),
        }
    }

    fn http(headers: &[(&str, &str)]) -> Endpoint {
        Endpoint::Http {
            url: "https://wiki.example/mcp".into(),
            kind: None,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_credential_is_told_as_set_or_unset_and_never_shown() {
        let set = spec(http(&[("Authorization", "Bearer s3cret")]), None);
        assert_eq!(set.credential(), Some(Credential::Set));
        let told = serde_json::to_string(&set.credential()).expect("json");
        assert_eq!(told, r#"{"state":"set"}"#);

        let unset = spec(http(&[]), Some("WIKI_TOKEN"));
        assert_eq!(
            unset.credential(),
            Some(Credential::Unset {
                variable: "WIKI_TOKEN".into()
            })
        );

        assert_eq!(spec(http(&[]), None).credential(), None);
        let stdio = |env: &[(&str, &str)]| Endpoint::Stdio {
            command: "server".into(),
            args: vec![],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: None,
        };
        assert_eq!(spec(stdio(&[]), None).credential(), None);
        assert_eq!(
            spec(stdio(&[("GITHUB_TOKEN", "x")]), None).credential(),
            Some(Credential::Set)
        );
        assert_eq!(
            spec(stdio(&[("TZ", "UTC")]), None).credential(),
            None,
            "a setting is not a token"
        );
        assert_eq!(
            spec(http(&[("X-Team", "core")]), None).credential(),
            None,
            "nor is a plain header"
        );
    }
}
