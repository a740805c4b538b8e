//! Signing in to OAuth-protected servers (MCP authorization, both protocol eras), on rmcp's
//! `auth` feature: discovery from the server's 401 challenge (`resource_metadata`, `scope`) or
//! its well-known metadata, client registration in the spec's order (a pre-registered id, a
//! client ID metadata document, dynamic registration), the authorization code with PKCE S256,
//! the `resource` indicator and the issuer check. The browser lands on [`redirect`]; the tokens
//! go to [`tokens`], and sessions send them through rmcp's `AuthClient`, which renews them
//! ahead of expiry and once on a 401.

mod desk;
mod redirect;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::auth::{
    AuthError, AuthorizationManager, AuthorizationRequest, AuthorizationSession,
};

pub use desk::SignInDesk;
pub use tokens::TokenStore;

/// How long a started sign-in waits for the browser to come back.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest challenge header the probe takes; a longer one is ignored (discovery then goes
/// by the well-known metadata).
const MAX_CHALLENGE: usize = 8 * 1024;

/// Who Switchboard is to the authorization server, where the connector says (the registry's
/// `oauth` block, the manifest's `auth` of type `oauth2`): otherwise it registers itself
/// dynamically and asks for the scopes the server names.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientIdentity {
    /// A client id registered with the authorization server beforehand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Never read from or written to a file (the conformance suite hands one over).
    #[serde(skip)]
    pub client_secret: Option<String>,
    /// The HTTPS URL of a client ID metadata document, used where the server supports them.
    #[serde(
        default,
        rename = "clientMetadataUrl",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata_url: Option<String>,
    /// Scopes to ask for; otherwise the challenge's or the server's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

impl ClientIdentity {
    /// Why it cannot be used as given, naming the field.
    pub fn problem(&self) -> Option<String> {
        if self
            .client_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Some("oauth.clientId: empty".into());
        }
        if let Some(url) = &self.metadata_url {
            let https =
                url::Url::parse(url).is_ok_and(|u| u.scheme() == "https" && u.path().len() > 1);
            if !https {
                return Some(format!(
                    "oauth.clientMetadataUrl: {url:?} is not an https URL with a path"
                ));
            }
        }
        self.scopes
            .iter()
            .find(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
            .map(|s| format!("oauth.scopes: {s:?} is empty or has spaces"))
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    #[error("the sign-in's redirect listener failed: {0}")]
    Redirect(String),
    #[error("no sign-in within {} s: the browser did not come back", .0.as_secs())]
    TimedOut(Duration),
    #[error("the authorization server refused the sign-in: {0}")]
    Refused(String),
    #[error("{0}")]
    OAuth(String),
    #[error("the sign-in was replaced by another one")]
    Replaced,
    #[error("no sign-in was started for this connector")]
    NotStarted,
}

impl From<AuthError> for SignInError {
    fn from(error: AuthError) -> Self {
        Self::OAuth(crate::session::bounded(&error.to_string()))
    }
}

/// A sign-in waiting for the browser: open [`Started::url`], then [`Started::finish`].
pub struct Started {
    session: AuthorizationSession,
    redirect: redirect::Redirect,
    state: String,
    url: String,
}

/// Starts signing connector `id` in to the server at `url`: discovery (from `challenge`, the
/// server's `WWW-Authenticate`, or without one from a challenge asked for now), registration,
/// PKCE.
pub async fn begin(
    id: &str,
    url: &str,
    identity: &ClientIdentity,
    store: &Arc<TokenStore>,
    http: &reqwest::Client,
    challenge: Option<&str>,
) -> Result<Started, SignInError> {
    let redirect = redirect::Redirect::bind().await?;
    let challenge = match challenge {
        Some(given) => Some(given.to_string()),
        None => ask_challenge(http, url).await,
    };
    let mut manager = AuthorizationManager::new(url).await?;
    manager.set_credential_store(store.for_connector(id, url));
    let resolution = manager
        .resolve_metadata_from_challenge(challenge.as_deref())
        .await?;
    manager.set_metadata(resolution.metadata);
    let mut request = AuthorizationRequest::new(redirect.uri()).with_client_name("Switchboard");
    if let Some(client_id) = &identity.client_id {
        request = request.with_preregistered_client(client_id);
    }
    if let Some(secret) = &identity.client_secret {
        request = request.with_client_secret(secret);
    }
    if let Some(metadata_url) = &identity.metadata_url {
        request = request.with_client_metadata_url(metadata_url);
    }
    if !identity.scopes.is_empty() {
        request = request.with_scopes(identity.scopes.clone());
    }
    let session = AuthorizationSession::new(manager, request)
        .await
        .map_err(|(_, error)| SignInError::from(error))?;
    let url = session.get_authorization_url().to_string();
    let state = url::Url::parse(&url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(|| SignInError::OAuth("the authorization URL carries no state".into()))?;
    Ok(Started {
        session,
        redirect,
        state,
        url,
    })
}

impl Started {
    /// The page the user approves the sign-in on.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits (at most `within`) for the browser to come back, then trades the code for tokens,
    /// which are stored.
    pub async fn finish(self, within: Duration) -> Result<(), SignInError> {
        let landed = self.redirect.landed(self.state, within).await?;
        self.session.handle_callback_url(&landed).await?;
        Ok(())
    }
}

/// The authorization manager for a signed-in connector's session, `None` where it holds no
/// tokens for `url` (its requests then go unauthenticated, and a 401 says it needs sign-in).
pub async fn authorizer(
    store: &Arc<TokenStore>,
    id: &str,
    url: &str,
) -> Result<Option<AuthorizationManager>, SignInError> {
    if !store.is_signed_in(id, url).await? {
        return Ok(None);
    }
    let mut manager = AuthorizationManager::new(url).await?;
    manager.set_credential_store(store.for_connector(id, url));
    Ok(manager.initialize_from_store().await?.then_some(manager))
}

/// The server's 401 challenge to an unauthenticated request, where it sends one.
async fn ask_challenge(http: &reqwest::Client, url: &str) -> Option<String> {
    const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"switchboard","version":"0"}}}"#;
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .ok()?;
    if response.status() != reqwest::StatusCode::UNAUTHORIZED {
        return None;
    }
    let header = response.headers().get(reqwest::header::WWW_AUTHENTICATE)?;
    (header.len() <= MAX_CHALLENGE)
        .then(|| header.to_str().ok().map(str::to_string))
        .flatten()
}

/// The scopes a `WWW-Authenticate` challenge names (`scope="a b"`).
pub fn challenged_scopes(challenge: &str) -> Vec<String> {
    let Some((_, rest)) = challenge.split_once("scope=") else {
        return Vec::new();
    };
    let value = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or_default(),
        None => rest.split([',', ' ']).next().unwrap_or_default(),
    };
    value.split_whitespace().map(str::to_string).collect()
}

/// Whether a challenge asks for more scope than the token has (a 403 `insufficient_scope`).
pub fn is_insufficient_scope(challenge: &str) -> bool {
    challenge.contains("insufficient_scope")
}
