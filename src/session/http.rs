//! The one HTTP client every connector shares, and connector headers made into HTTP headers.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use super::SessionError;

/// The client every HTTP connector shares. No overall `.timeout()`: it would cut long-lived SSE
/// streams; deadlines are per request instead. Trusts the platform's certificates, plus those in
/// the PEM file `SWITCHBOARD_CA_FILE` names (a company CA, a local development CA).
pub fn http_client() -> Result<reqwest::Client, HttpClientError> {
    let extra = match std::env::var_os("SWITCHBOARD_CA_FILE") {
        // A CA bundle of every public root is about 200 KB.
        Some(path) => crate::durable::read_bounded(path.as_ref(), 4 * 1024 * 1024)
            .map_err(|e| HttpClientError(format!("SWITCHBOARD_CA_FILE {e}")))?,
        None => Vec::new(),
    };
    http_client_trusting(&extra)
}

/// [`http_client`], also trusting the certificates of a PEM bundle (may be empty).
pub fn http_client_trusting(pem: &[u8]) -> Result<reqwest::Client, HttpClientError> {
    let mut builder = reqwest::Client::builder()
        .redirect(same_origin_redirects())
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")));
    if !pem.is_empty() {
        for certificate in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| HttpClientError(format!("not a PEM certificate bundle: {e}")))?
        {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| HttpClientError(e.to_string()))
}

/// Redirects are followed only within the origin that was asked (at most 5): a connector's
/// headers (tokens among them) and a manifest request never travel to another origin. A
/// redirect elsewhere comes back as the 3xx it is, and the caller reports it.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() <= 5 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// The shared HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct HttpClientError(String);

pub(super) fn header_map(
    headers: &indexmap::IndexMap<String, String>,
) -> Result<reqwest::header::HeaderMap, SessionError> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| SessionError::Unsupported(format!("bad header name {name:?}")))?;
        let mut value = HeaderValue::try_from(value.as_str())
            .map_err(|_| SessionError::Unsupported(format!("bad value for header {name}")))?;
        // Kept out of debug output and HTTP/2 header compression tables.
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}
