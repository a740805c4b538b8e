//! Opening a session: the transport for the connector's endpoint, and which protocol era (and
//! for HTTP, which transport) its server speaks, detected once and remembered.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ProtocolVersion;
use rmcp::service::RunningService;
use rmcp::transport::auth::AuthClient;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport as _, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient};

use super::http::header_map;
use super::{Handshake, ProgressTap, SessionError, SessionEvents, legacy_sse, reuse};
use crate::connector::{ConnectorSpec, Endpoint};
use crate::registry::model::RemoteKind;
use crate::signin::TokenStore;

pub(super) type Connected = (RunningService<RoleClient, SessionEvents>, Handshake);

/// A signed-in connector's HTTP client: the reusing client, its token added by rmcp.
type Signed = AuthClient<reuse::ReusingClient>;

/// The shared HTTP client for one session's transport.
fn reusing(http: &reqwest::Client, events: &SessionEvents) -> reuse::ReusingClient {
    reuse::ReusingClient::new(
        http.clone(),
        events.listening.clone(),
        events.faults.clone(),
    )
}

pub(super) async fn connect(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
    known: Option<Handshake>,
    tokens: Option<&Arc<TokenStore>>,
) -> Result<Connected, SessionError> {
    // Once per connection, not per transport or era tried: it asks the authorization server.
    let signed = match (tokens, &spec.endpoint) {
        (Some(store), Endpoint::Http { url, .. }) => {
            crate::signin::authorizer(store, &spec.id, url)
                .await
                .map_err(|e| SessionError::transport(format!("cannot use the sign-in: {e}")))?
                .map(|manager| AuthClient::new(reusing(http, &events), manager))
        }
        _ => None,
    };
    let signed = signed.as_ref();
    if let Some(known) = known {
        let mut attempt = connect_as(spec, http, events.clone(), known, signed).await;
        let over_http = matches!(spec.endpoint, Endpoint::Http { .. });
        if over_http && matches!(attempt, Err(SessionError::Transport { .. })) {
            // A kept-alive connection the server closed (it restarted) fails the first request
            // sent on it; the pool has dropped it now, and a fresh one says whether it changed.
            attempt = connect_as(spec, http, events.clone(), known, signed).await;
        }
        match attempt {
            // It may have been upgraded or replaced: detect afresh, unless it was not reached,
            // did not answer in time or refused the credentials, which would say nothing new.
            Err(error)
                if !matches!(
                    error,
                    SessionError::Unreachable { .. }
                        | SessionError::Timeout(_)
                        | SessionError::Unauthorized(_)
                ) =>
            {
                tracing::debug!(connector = %spec.id, ?known, %error, "the remembered handshake failed; detecting again");
            }
            other => return other,
        }
    }
    detect(spec, http, events, signed).await
}

/// Connects the way the server was reached before.
async fn connect_as(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
    known: Handshake,
    signed: Option<&Signed>,
) -> Result<Connected, SessionError> {
    let headers = match &spec.endpoint {
        Endpoint::Http { headers, .. } => Some(header_map(headers)?),
        Endpoint::Stdio { .. } => None,
    };
    let lifecycle = match known {
        Handshake::LegacySse => {
            let Endpoint::Http { url, .. } = &spec.endpoint else {
                return Err(SessionError::Unsupported("SSE needs a URL".into()));
            };
            let service =
                serve_legacy_sse(spec, http, url, headers.unwrap_or_default(), events).await?;
            return Ok((service, known));
        }
        Handshake::Discover => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        Handshake::Initialize => ClientLifecycleMode::Initialize,
    };
    let service = serve(spec, http, events, headers, lifecycle, signed)
        .await
        .map_err(SessionError::from_init)?;
    Ok((service, known))
}

/// Finds out how the server speaks: the protocol era, and for HTTP the transport.
async fn detect(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
    signed: Option<&Signed>,
) -> Result<Connected, SessionError> {
    let era = |service: RunningService<RoleClient, SessionEvents>| {
        let modern = service
            .peer_info()
            .is_some_and(|i| i.protocol_version.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let handshake = if modern {
            Handshake::Discover
        } else {
            Handshake::Initialize
        };
        (service, handshake)
    };
    let (url, headers, kind) = match &spec.endpoint {
        Endpoint::Http { url, headers, kind } => (url, header_map(headers)?, *kind),
        Endpoint::Stdio { .. } => {
            return serve_with_era_fallback(spec, http, events, None, signed)
                .await
                .map(era)
                .map_err(SessionError::from_init);
        }
    };
    match kind {
        Some(RemoteKind::Sse) => serve_legacy_sse(spec, http, url, headers, events)
            .await
            .map(|service| (service, Handshake::LegacySse)),
        Some(RemoteKind::Http) => {
            serve_with_era_fallback(spec, http, events, Some(headers), signed)
                .await
                .map(era)
                .map_err(SessionError::from_init)
        }
        // The spec's rule when the transport is not known: streamable HTTP first; a 400, 404 or
        // 405 to its POST means an old server, so try the HTTP+SSE transport's GET.
        None => {
            match serve_with_era_fallback(spec, http, events.clone(), Some(headers.clone()), signed)
                .await
            {
                Err(error) if rejected_post(&error) => {
                    serve_legacy_sse(spec, http, url, headers, events)
                        .await
                        .map(|service| (service, Handshake::LegacySse))
                        .map_err(|sse| {
                            SessionError::transport(format!(
                                "neither transport works: streamable HTTP: {}; HTTP+SSE: {sse}",
                                SessionError::from_init(error)
                            ))
                        })
                }
                other => other.map(era).map_err(SessionError::from_init),
            }
        }
    }
}

/// Whether the server refused a streamable HTTP POST the way pre-2025 servers do.
fn rejected_post(error: &rmcp::service::ClientInitializeError) -> bool {
    use rmcp::service::ClientInitializeError;
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    let error = match error {
        ClientInitializeError::TransportError { error, .. } => error,
        // Auto mode tried discover, then initialize: the initialize POST decides.
        ClientInitializeError::LegacyFallbackFailed { fallback, .. } => {
            return rejected_post(fallback);
        }
        _ => return false,
    };
    let mut cause: &(dyn std::error::Error + 'static) = error;
    loop {
        match cause.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
            Some(StreamableHttpError::HttpStatus(status)) => {
                return matches!(status.status, 400 | 404 | 405);
            }
            // rmcp reports some statuses only inside this message ("HTTP 404 Not Found: …").
            Some(StreamableHttpError::UnexpectedServerResponse(message)) => {
                return ["HTTP 400", "HTTP 404", "HTTP 405"]
                    .iter()
                    .any(|status| message.starts_with(status));
            }
            _ => {}
        }
        match cause.source() {
            Some(inner) => cause = inner,
            None => return false,
        }
    }
}

async fn serve_legacy_sse(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    url: &str,
    headers: reqwest::header::HeaderMap,
    events: SessionEvents,
) -> Result<RunningService<RoleClient, SessionEvents>, SessionError> {
    use legacy_sse::SseTransportError;
    let transport = legacy_sse::connect(http, url, headers, spec.connect_timeout)
        .await
        .map_err(|e| match e {
            SseTransportError::Status(status)
                if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN =>
            {
                SessionError::Unauthorized(format!("HTTP {status}"))
            }
            other => SessionError::transport(other.to_string()),
        })?;
    let transport = ProgressTap::new(transport.into_transport(), events.progress.clone());
    events
        .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
        .await
        .map_err(SessionError::from_init)
}

async fn serve_with_era_fallback(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
    headers: Option<reqwest::header::HeaderMap>,
    signed: Option<&Signed>,
) -> Result<RunningService<RoleClient, SessionEvents>, rmcp::service::ClientInitializeError> {
    // Speak the newest era where the server does, the 2025-11-25 handshake otherwise; rmcp
    // detects which per the spec's backward-compatibility rules.
    let auto = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    };
    let first = serve(spec, http, events.clone(), headers.clone(), auto, signed).await;
    let fall_back = match &first {
        // A server that knows `server/discover` but lists only initialize-era versions: rmcp
        // gives up instead of falling back, so fall back here, with a fresh transport.
        Err(rmcp::service::ClientInitializeError::NoCompatibleProtocolVersion {
            server_supported,
            ..
        }) => server_supported
            .iter()
            .any(|v| v.as_str() < ProtocolVersion::V_2026_07_28.as_str()),
        // A server that answers any unknown method with an empty result: not a discover
        // result, so not a 2026-era server. rmcp gives up here too.
        Err(rmcp::service::ClientInitializeError::ExpectedInitResult(_)) => true,
        _ => false,
    };
    if !fall_back {
        return first;
    }
    let initialize = ClientLifecycleMode::Initialize;
    serve(spec, http, events, headers, initialize, signed).await
}

/// Opens a streamable HTTP or stdio transport to the spec's endpoint and runs the handshake.
async fn serve(
    spec: &ConnectorSpec,
    http: &reqwest::Client,
    events: SessionEvents,
    headers: Option<reqwest::header::HeaderMap>,
    lifecycle: ClientLifecycleMode,
    signed: Option<&Signed>,
) -> Result<RunningService<RoleClient, SessionEvents>, rmcp::service::ClientInitializeError> {
    use rmcp::service::ClientInitializeError;
    let refused = |message: String| ClientInitializeError::ConnectionClosed(message);
    match &spec.endpoint {
        Endpoint::Http { url, .. } => {
            let custom: HashMap<HeaderName, HeaderValue> = headers
                .unwrap_or_default()
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .custom_headers(custom)
                .reinit_on_expired_session(true);
            // A signed-in connector's requests carry its token, renewed ahead of expiry and
            // once on a 401; any other goes unauthenticated (or with its own headers).
            match signed {
                Some(signed) => {
                    let transport =
                        StreamableHttpClientTransport::with_client(signed.clone(), config);
                    let transport = ProgressTap::new(transport, events.progress.clone());
                    events.serve_with_lifecycle(transport, lifecycle).await
                }
                None => {
                    let client = reusing(http, &events);
                    let transport = StreamableHttpClientTransport::with_client(client, config);
                    let transport = ProgressTap::new(transport, events.progress.clone());
                    events.serve_with_lifecycle(transport, lifecycle).await
                }
            }
        }
        Endpoint::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).envs(env);
            if let Some(cwd) = cwd {
                cmd.current_dir(cwd);
            }
            let mut wrapped = process_wrap::tokio::CommandWrap::from(cmd);
            #[cfg(unix)]
            wrapped.wrap(process_wrap::tokio::ProcessGroup::leader());
            wrapped.wrap(super::group::RecordExit::new(&events.group_leader));
            let (transport, stderr) = TokioChildProcess::builder(wrapped)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| refused(format!("cannot start {command}: {e}")))?;
            if let Some(pid) = transport.id() {
                events.group_leader.set(pid);
            }
            if let Some(stderr) = stderr {
                events.stderr.follow(stderr, spec.id.clone());
            }
            let transport = ProgressTap::new(transport, events.progress.clone());
            events.serve_with_lifecycle(transport, lifecycle).await
        }
    }
}
