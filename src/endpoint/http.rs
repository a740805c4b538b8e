//! The daemon's aggregated server over streamable HTTP, for clients that connect rather than
//! launch: on loopback only, both protocol eras (2025-11-25 sessions, 2026-07-28 stateless),
//! every request carrying the bearer token from a 0600 file (unless the user waived it), and
//! `Host` and `Origin` checked so a web page cannot reach it through DNS rebinding.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use hmac::Mac as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::server::{AggregatedServer, Following, Source};
use crate::control::SharedDaemon;
use crate::durable::{self, IoAt, ReadError};

/// The token's file in the config dir.
pub const TOKEN_FILE: &str = "endpoint-token";

/// The path clients POST to.
pub const PATH: &str = "/mcp";

/// Browser origins that may call it: pages on this machine (they still need the token).
const LOCAL_ORIGINS: &[&str] = &["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// How requests prove they come from the user.
#[derive(Clone)]
pub enum Access {
    /// `Authorization: Bearer <token>`, compared in constant time.
    Token(String),
    /// Anyone on this machine (for clients that cannot send headers; said with a warning).
    Waived,
}

/// Why the endpoint cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpEndpointError {
    #[error("{addr} is not loopback; the MCP endpoint is served on 127.0.0.1 or [::1] only")]
    NotLoopback { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] ReadError),
    #[error(transparent)]
    Io(#[from] IoAt),
}

/// The endpoint's token: read from `<config dir>/endpoint-token`, or made (32 random bytes,
/// base64url) and written there, 0600, the first time.
pub fn token(config_dir: &Path) -> Result<String, HttpEndpointError> {
    let path = token_path(config_dir);
    match durable::read_bounded(&path, 4096) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            if !text.is_empty() {
                return Ok(text);
            }
        }
        Err(ReadError::Io(io)) if io.source.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error.into()),
    }
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    durable::replace_file(&path, token.as_bytes())?;
    Ok(token)
}

pub fn token_path(config_dir: &Path) -> PathBuf {
    config_dir.join(TOKEN_FILE)
}

/// The endpoint while it serves; [`HttpEndpoint::close`] stops it.
pub struct HttpEndpoint {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    following: Following,
}

impl HttpEndpoint {
    /// Serves `daemon`'s tools at `http://addr/mcp` until closed (or the daemon stops).
    pub async fn start(
        daemon: Arc<SharedDaemon>,
        addr: SocketAddr,
        access: Access,
    ) -> Result<Self, HttpEndpointError> {
        if !addr.ip().is_loopback() {
            return Err(HttpEndpointError::NotLoopback { addr });
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| HttpEndpointError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| HttpEndpointError::Bind { addr, source })?;
        let (server, following) = AggregatedServer::start(Source::Local(daemon));
        let stop = CancellationToken::new();
        let router = router(server, access, stop.child_token());
        // Without nodelay every streamed answer waits out Nagle and a delayed ACK (~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(Self {
            addr,
            stop,
            task,
            following,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Stops serving: open sessions end, then the follower.
    pub async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
        self.following.close().await;
    }
}

/// `/mcp`, behind the token check (built apart so tests can drive it without a socket).
pub fn router(server: AggregatedServer, access: Access, stop: CancellationToken) -> axum::Router {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_origins(LOCAL_ORIGINS.iter().map(|o| o.to_string()))
        .with_cancellation_token(stop);
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let check = Arc::new(Check::new(access));
    axum::Router::new()
        .nest_service(PATH, mcp)
        .layer(axum::middleware::from_fn(move |request, next| {
            let check = check.clone();
            async move { check.admit(request, next).await }
        }))
}

/// The token check: the expected token's MAC under a key of this process's own, so comparing
/// a request's takes the same time however much of it is right.
struct Check {
    key: [u8; 32],
    expected: Option<Vec<u8>>,
}

impl Check {
    fn new(access: Access) -> Self {
        let key = rand::random();
        let expected = match access {
            Access::Token(token) => Some(mac(&key, token.as_bytes())),
            Access::Waived => None,
        };
        Self { key, expected }
    }

    async fn admit(&self, request: Request, next: Next) -> Response {
        let Some(expected) = &self.expected else {
            return relay(request, next).await;
        };
        let given = bearer(request.headers()).unwrap_or_default();
        let mut verifier = hmac_of(&self.key);
        verifier.update(given.as_bytes());
        if verifier.verify_slice(expected).is_ok() {
            return relay(request, next).await;
        }
        let why = if given.is_empty() {
            "this endpoint needs `Authorization: Bearer <token>`, the token in the config dir's endpoint-token file"
        } else {
            "the bearer token is not this endpoint's"
        };
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            why,
        )
            .into_response()
    }
}

/// Passes an admitted request on. A session's `DELETE` is answered 204 rather than rmcp's 202:
/// the Python SDK logs anything but 200 or 204 as a failed termination.
async fn relay(request: Request, next: Next) -> Response {
    let deleting = request.method() == axum::http::Method::DELETE;
    let mut response = next.run(request).await;
    if deleting && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn hmac_of(key: &[u8; 32]) -> hmac::Hmac<sha2::Sha256> {
    // An HMAC takes a key of any length: this cannot fail.
    <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

fn mac(key: &[u8; 32], bytes: &[u8]) -> Vec<u8> {
    let mut mac = hmac_of(key);
    mac.update(bytes);
    mac.finalize().into_bytes().to_vec()
}
