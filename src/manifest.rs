//! The connector manifest ("service map"): parsed, validated and signature-checked.
//!
//! The shape is the replaced system's, so existing service maps load unchanged; unknown fields
//! are ignored. Validation errors name the connector and the field. Fetching, caching and
//! stale-on-error live in [`loader`].

pub mod loader;

mod signature;

pub use signature::{jcs_bytes, publisher_bytes, sign};

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::Value;

use crate::connector::{
    ConnectorInfo, ConnectorSpec, DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, Endpoint, Quotas,
    Source,
};
use crate::registry::model::RemoteKind;

/// Largest manifest accepted, from a file or a URL.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// The longest freshness a manifest may claim (a year); `ttlSeconds` beyond it is read as this.
pub const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("manifest does not parse: {0}")]
    Syntax(String),
    /// Every problem found, each naming its connector and field.
    #[error("manifest is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("manifest has no signature, and a signing key is configured")]
    Unsigned,
    #[error("manifest signature does not match")]
    BadSignature,
}

/// How a connector's credential is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `<header>: <token>`.
    ApiKey { header: String },
}

/// One connector of a manifest, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestConnector {
    pub id: String,
    /// `displayName`, or the older `name`, and the rest of what the UI shows of it.
    pub info: ConnectorInfo,
    pub enabled: bool,
    /// Sent on every request to the connector (besides its credential's header).
    pub headers: indexmap::IndexMap<String, String>,
    pub endpoint: String,
    /// `None`: try streamable HTTP, fall back to SSE.
    pub transport: Option<RemoteKind>,
    pub auth: Option<AuthScheme>,
    pub connect_timeout: Duration,
    pub call_timeout: Duration,
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub id: String,
    pub generated_at: SystemTime,
    pub ttl: Duration,
    pub connectors: Vec<ManifestConnector>,
}

impl Manifest {
    /// When the manifest itself says it stops being fresh.
    pub fn expires_at(&self) -> SystemTime {
        // Unchecked, a far `generatedAt` plus the ttl could overflow: then it is stale now.
        self.generated_at
            .checked_add(self.ttl)
            .unwrap_or(self.generated_at)
    }

    /// Parses and validates `text`; with a `key`, also requires a valid signature.
    pub fn parse(text: &str, key: Option<&[u8]>) -> Result<Self, ManifestError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        if let Some(key) = key {
            signature::verify(&value, key)?;
        }
        let raw: ServiceMapV1 = serde_json::from_value(value)
            .map_err(|e| ManifestError::Invalid(vec![e.to_string()]))?;
        raw.validate()
    }

    /// The manifest's enabled-or-not connectors as connector specs; `credential` finds each
    /// one's token (the spec then carries the header).
    pub fn specs(&self, credential: impl Fn(&str) -> Option<String>) -> Vec<ConnectorSpec> {
        self.connectors
            .iter()
            .map(|c| {
                let mut headers = c.headers.clone();
                let token = c.auth.as_ref().and_then(|_| credential(&c.id));
                let missing_credential = (c.auth.is_some() && token.is_none()).then(|| {
                    format!(
                        "{} (or CONNECTORS_API_KEY)",
                        crate::credentials::variable(&c.id)
                    )
                });
                if let (Some(auth), Some(token)) = (&c.auth, token) {
                    match auth {
                        AuthScheme::Bearer => {
                            headers.insert("Authorization".into(), format!("Bearer {token}"))
                        }
                        AuthScheme::ApiKey { header } => headers.insert(header.clone(), token),
                    };
                }
                ConnectorSpec {
                    id: c.id.clone(),
                    endpoint: Endpoint::Http {
                        url: c.endpoint.clone(),
                        kind: c.transport,
                        headers,
                    },
                    enabled: c.enabled,
                    connect_timeout: c.connect_timeout,
                    call_timeout: c.call_timeout,
                    source: Source::Manifest,
                    missing_credential,
                    info: c.info.clone(),
                }
            })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceMapV1 {
    #[serde(default)]
    id: String,
    generated_at: String,
    ttl_seconds: u64,
    connectors: Vec<Value>,
}

/// A connector in either shape publishers write: the older one (`name`, `status`, `ttl`) and
/// the current one (`displayName`, `enabled`, `ttlSeconds`, `headers`, `quotas`, `tags`,
/// `description`, `metadata`). Per-connector TTLs and metadata are read and not used.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectorV1 {
    id: String,
    name: Option<String>,
    display_name: Option<String>,
    status: Option<String>,
    enabled: Option<bool>,
    endpoint: String,
    transport: Option<String>,
    auth: Option<AuthV1>,
    #[serde(default)]
    timeouts: TimeoutsV1,
    #[serde(default)]
    headers: indexmap::IndexMap<String, String>,
    #[serde(default)]
    quotas: QuotasV1,
    #[serde(default)]
    tags: Vec<String>,
    description: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct QuotasV1 {
    concurrent: Option<u32>,
    per_minute: Option<u32>,
    per_hour: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthV1 {
    #[serde(rename = "type")]
    kind: String,
    header_name: Option<String>,
    /// For `oauth2`: who Switchboard is to the server's authorization server.
    #[serde(flatten)]
    client: crate::signin::ClientIdentity,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TimeoutsV1 {
    connect_ms: Option<u64>,
    call_ms: Option<u64>,
}

impl ServiceMapV1 {
    fn validate(self) -> Result<Manifest, ManifestError> {
        let mut problems = Vec::new();
        let generated_at = humantime::parse_rfc3339_weak(&self.generated_at)
            .map_err(|e| problems.push(format!("generatedAt {:?}: {e}", self.generated_at)))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut connectors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (index, raw) in self.connectors.into_iter().enumerate() {
            let label_id = raw
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let at = format!("connectors[{index}] (id {label_id:?})");
            match serde_json::from_value::<ConnectorV1>(raw) {
                Err(e) => problems.push(format!("{at}: {e}")),
                Ok(c) => match c.validate() {
                    Err(field_problems) => {
                        problems.extend(field_problems.into_iter().map(|p| format!("{at}: {p}")))
                    }
                    Ok(c) if !seen.insert(c.id.clone()) => {
                        problems.push(format!("{at}: id: {:?} appears twice", c.id))
                    }
                    Ok(c) => connectors.push(c),
                },
            }
        }
        if !problems.is_empty() {
            return Err(ManifestError::Invalid(problems));
        }
        Ok(Manifest {
            id: self.id,
            generated_at,
            // Any longer is as good as forever, and keeps `expires_at` far from overflowing.
            ttl: Duration::from_secs(self.ttl_seconds.min(MAX_TTL_SECONDS)),
            connectors,
        })
    }
}

impl ConnectorV1 {
    fn validate(self) -> Result<ManifestConnector, Vec<String>> {
        let mut problems = Vec::new();
        if self.id.is_empty() || self.id.contains('.') || self.id.chars().any(char::is_control) {
            problems.push(format!(
                "id: {:?} must be non-empty, without '.' or control characters",
                self.id
            ));
        }
        let by_status = match self.status.as_deref() {
            None => None,
            Some("enabled") => Some(true),
            Some("disabled") => Some(false),
            Some(other) => {
                problems.push(format!(
                    "status: {other:?} is neither \"enabled\" nor \"disabled\""
                ));
                Some(false)
            }
        };
        let enabled = match (self.enabled, by_status) {
            (Some(enabled), Some(by_status)) if enabled != by_status => {
                problems.push(format!(
                    "enabled: {enabled} disagrees with status {:?}",
                    self.status.as_deref().unwrap_or_default()
                ));
                false
            }
            (enabled, by_status) => enabled.or(by_status).unwrap_or(true),
        };
        if let Err(invalid) = crate::registry::model::check_headers(&self.headers) {
            problems.push(format!("headers: {invalid}"));
        }
        if let Some(tag) = self
            .tags
            .iter()
            .find(|t| t.is_empty() || t.chars().any(char::is_control))
        {
            problems.push(format!("tags: {tag:?} is empty or has control characters"));
        }
        let quotas = Quotas {
            concurrent: self.quotas.concurrent,
            per_minute: self.quotas.per_minute,
            per_hour: self.quotas.per_hour,
        };
        if let Err(reason) = quotas.check() {
            problems.push(format!("quotas: {reason}"));
        }
        if let Err(reason) = check_endpoint(&self.endpoint) {
            problems.push(format!("endpoint: {reason}"));
        }
        let transport = match self.transport.as_deref() {
            None => None,
            Some("streamable-http") => Some(RemoteKind::Http),
            Some("sse") => Some(RemoteKind::Sse),
            Some(other) => {
                problems.push(format!(
                    "transport: {other:?} is neither \"streamable-http\" nor \"sse\""
                ));
                None
            }
        };
        let mut sign_in = crate::signin::ClientIdentity::default();
        let auth = match self.auth {
            None => None,
            Some(AuthV1 {
                kind,
                header_name,
                client,
            }) => match (kind.as_str(), header_name) {
                ("none", _) => None,
                // Signed in by the user (`auth login`): no token to look up.
                ("oauth2", _) => {
                    if let Some(problem) = client.problem() {
                        problems.push(problem.replace("oauth.", "auth."));
                    }
                    sign_in = client;
                    None
                }
                ("bearer", _) => Some(AuthScheme::Bearer),
                ("apiKey", Some(header)) if !header.trim().is_empty() => {
                    Some(AuthScheme::ApiKey { header })
                }
                ("apiKey", _) => {
                    problems.push("auth.headerName: required for type \"apiKey\"".into());
                    None
                }
                (other, _) => {
                    problems.push(format!(
                        "auth.type: {other:?} is none of \"bearer\", \"apiKey\", \"oauth2\", \"none\""
                    ));
                    None
                }
            },
        };
        let timeout = |field: &str,
                       ms: Option<u64>,
                       default: Duration,
                       problems: &mut Vec<String>| {
            match ms {
                Some(ms) if ms == 0 || ms > crate::connector::MAX_TIMEOUT_MS => {
                    problems.push(format!(
                        "timeouts.{field}: must be 1 to {} ms",
                        crate::connector::MAX_TIMEOUT_MS
                    ));
                    default
                }
                Some(ms) => Duration::from_millis(ms),
                None => default,
            }
        };
        let connect_timeout = timeout(
            "connectMs",
            self.timeouts.connect_ms,
            DEFAULT_CONNECT_TIMEOUT,
            &mut problems,
        );
        let call_timeout = timeout(
            "callMs",
            self.timeouts.call_ms,
            DEFAULT_CALL_TIMEOUT,
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ManifestConnector {
            id: self.id,
            info: ConnectorInfo {
                display_name: self.display_name.or(self.name),
                description: self.description,
                tags: self.tags,
                quotas,
                sign_in,
            },
            enabled,
            headers: self.headers,
            endpoint: self.endpoint,
            transport,
            auth,
            connect_timeout,
            call_timeout,
        })
    }
}

/// An endpoint must be https, or http to this machine only.
fn check_endpoint(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!("{raw:?} is plain http to another host; use https")),
        other => Err(format!("{raw:?} has scheme {other:?}; expected https")),
    }
}

pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = r#"{"id":"01J","brand":"acme","generatedAt":"2026-11-25T00:00:00Z","ttlSeconds":300,
      "connectors":[{"id":"wiki","version":"1","name":"Wiki","scopes":["read"],"status":"enabled","ttl":300,
        "endpoint":"https://wiki.example/mcp","transport":"streamable-http",
        "auth":{"type":"bearer","headerName":"Authorization"},"timeouts":{"connectMs":5000,"callMs":30000},
        "quotas":{"concurrent":4},"metadata":{},"futureField":true},
        {"id":"crm","status":"disabled","endpoint":"http://127.0.0.1:9/mcp","auth":{"type":"apiKey","headerName":"X-Api-Key"}}]}"#;

    #[test]
    fn the_service_map_shape_loads_with_unknown_fields_ignored() {
        let manifest = Manifest::parse(MAP, None).expect("a valid map");
        assert_eq!(manifest.connectors.len(), 2);
        let wiki = &manifest.connectors[0];
        assert_eq!(wiki.connect_timeout, Duration::from_secs(5));
        assert_eq!(wiki.auth, Some(AuthScheme::Bearer));
        assert!(!manifest.connectors[1].enabled);
        assert_eq!(
            manifest.expires_at(),
            humantime::parse_rfc3339("2026-11-25T00:05:00Z").unwrap()
        );
    }

    #[test]
    fn an_oauth2_connector_is_signed_in_not_given_a_token() {
        let map = MAP.replace(
            r#""auth":{"type":"bearer","headerName":"Authorization"}"#,
            r#""auth":{"type":"oauth2","clientId":"switchboard","scopes":["wiki.read"]}"#,
        );
        let manifest = Manifest::parse(&map, None).expect("a valid map");
        let specs = manifest.specs(|_| Some("a-token".into()));
        let wiki = specs.iter().find(|s| s.id == "wiki").unwrap();
        assert_eq!(wiki.missing_credential, None, "no token is looked for");
        let Endpoint::Http { headers, .. } = &wiki.endpoint else {
            panic!("wiki is remote")
        };
        assert!(!headers.contains_key("Authorization"), "{headers:?}");
        assert_eq!(wiki.info.sign_in.client_id.as_deref(), Some("switchboard"));
        assert_eq!(wiki.info.sign_in.scopes, ["wiki.read"]);
        let bad = MAP.replace(
            r#""auth":{"type":"bearer","headerName":"Authorization"}"#,
            r#""auth":{"type":"oauth2","clientMetadataUrl":"ftp://x"}"#,
        );
        let err = Manifest::parse(&bad, None).unwrap_err().to_string();
        assert!(err.contains("auth.clientMetadataUrl"), "{err}");
    }

    #[test]
    fn validation_errors_name_the_connector_and_field() {
        let bad = MAP
            .replace("\"status\":\"enabled\"", "\"status\":\"maybe\"")
            .replace("http://127.0.0.1:9/mcp", "http://intranet.example/mcp");
        let ManifestError::Invalid(problems) = Manifest::parse(&bad, None).unwrap_err() else {
            panic!("expected validation errors")
        };
        assert!(
            problems[0].contains("connectors[0] (id \"wiki\"): status"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("connectors[1] (id \"crm\"): endpoint"),
            "{problems:?}"
        );
    }

    #[test]
    fn signatures_are_checked_when_a_key_is_set() {
        let key = b"shared secret";
        let mut doc: Value = serde_json::from_str(MAP).unwrap();
        doc["signature"] = sign(&doc, key).into();
        let signed = doc.to_string();
        Manifest::parse(&signed, Some(key)).expect("a good signature passes");
        assert_eq!(
            Manifest::parse(MAP, Some(key)),
            Err(ManifestError::Unsigned)
        );
        assert_eq!(
            Manifest::parse(&signed, Some(b"other key")),
            Err(ManifestError::BadSignature)
        );
        doc["ttlSeconds"] = 9999.into();
        assert_eq!(
            Manifest::parse(&doc.to_string(), Some(key)),
            Err(ManifestError::BadSignature),
            "a changed field breaks the signature"
        );
        // Key order and whitespace do not: the signature covers the canonical form.
        let reordered = format!(
            "{{\"signature\":{},{}",
            serde_json::to_string(&signed_sig(&signed)).unwrap(),
            &MAP[1..]
        );
        Manifest::parse(&reordered, Some(key)).expect("canonical form ignores key order");
    }

    fn signed_sig(signed: &str) -> String {
        let v: Value = serde_json::from_str(signed).unwrap();
        v["signature"].as_str().unwrap().to_string()
    }

    #[test]
    fn credentials_become_headers_by_scheme() {
        let manifest = Manifest::parse(MAP, None).unwrap();
        let specs = manifest.specs(|id| Some(format!("token-{id}")));
        let header = |i: usize| match &specs[i].endpoint {
            Endpoint::Http { headers, .. } => headers.clone(),
            Endpoint::Stdio { .. } => unreachable!(),
        };
        assert_eq!(header(0)["Authorization"], "Bearer token-wiki");
        assert_eq!(header(1)["X-Api-Key"], "token-crm");
        assert_eq!(
            crate::credentials::variable("my-wiki.v2"),
            "SWITCHBOARD_TOKEN_MY_WIKI_V2"
        );
    }
}
