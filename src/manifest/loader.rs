//! Fetching the manifest from a file or a URL, and keeping the last good one.
//!
//! URLs are fetched through the shared client with `If-None-Match`/`If-Modified-Since`, a bounded
//! body and a per-attempt deadline, retried with exponential backoff and full jitter. Freshness
//! is the sooner of `generatedAt + ttlSeconds` and `Cache-Control: max-age`. A failed, invalid or
//! badly signed refresh keeps the last good manifest and says why it is stale; the last good one
//! is cached on disk (0600) so an offline start still knows its connectors.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::backoff::full_jitter;
use serde::{Deserialize, Serialize};

use super::{MAX_MANIFEST_BYTES, Manifest, is_loopback};
use crate::durable;

/// Where the manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    File(PathBuf),
    Url(url::Url),
}

impl ManifestSource {
    /// `https://…`, `http://` to this machine, or a file path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !(raw.starts_with("http://") || raw.starts_with("https://")) {
            return Ok(Self::File(PathBuf::from(raw)));
        }
        let url = url::Url::parse(raw).map_err(|e| format!("manifest URL {raw:?}: {e}"))?;
        if url.scheme() == "http" && !is_loopback(&url) {
            return Err(format!(
                "manifest URL {raw:?} is plain http to another host; use https"
            ));
        }
        Ok(Self::Url(url))
    }

    fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Url(url) => url.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoaderOptions {
    /// HMAC-SHA256 key; when set, unsigned or badly signed manifests are refused.
    pub key: Option<Vec<u8>>,
    /// Tries per refresh (first attempt included).
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Deadline of one attempt, body included.
    pub request_timeout: Duration,
    /// Where the last good manifest is kept between runs (`None`: not kept).
    pub cache_path: Option<PathBuf>,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        Self {
            key: None,
            attempts: 3,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            cache_path: None,
        }
    }
}

/// The manifest in use.
#[derive(Debug, Clone)]
pub struct ManifestState {
    pub manifest: Arc<Manifest>,
    /// Refresh after this.
    pub fresh_until: SystemTime,
    /// Why this is not the current manifest from the source (failed refresh, or loaded from the
    /// disk cache and not refreshed yet); `None` when it is.
    pub stale: Option<String>,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq)]
pub enum Refresh {
    /// A new or changed manifest is in use.
    Updated,
    /// The source said nothing changed (HTTP 304).
    NotModified,
    /// The refresh failed; the last good manifest stays in use, marked stale with this reason.
    Stale(String),
    /// The refresh failed and there is no last good manifest.
    Failed(String),
}

/// Why one attempt failed, and whether another attempt could help.
struct AttemptError {
    reason: String,
    retry: bool,
}

/// What a successful attempt brought.
enum Fetched {
    Body {
        text: String,
        etag: Option<String>,
        last_modified: Option<String>,
        max_age: Option<Duration>,
    },
    NotModified {
        max_age: Option<Duration>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheFileV1 {
    source: String,
    etag: Option<String>,
    last_modified: Option<String>,
    body: String,
}

/// Keeps one source's manifest current.
pub struct ManifestLoader {
    source: ManifestSource,
    http: reqwest::Client,
    options: LoaderOptions,
    current: Option<ManifestState>,
    etag: Option<String>,
    last_modified: Option<String>,
}

impl ManifestLoader {
    /// A loader that starts from the disk cache, if it holds a valid manifest of this source.
    pub fn new(source: ManifestSource, http: reqwest::Client, options: LoaderOptions) -> Self {
        let mut loader = Self {
            source,
            http,
            options,
            current: None,
            etag: None,
            last_modified: None,
        };
        loader.load_cache();
        loader
    }

    pub fn current(&self) -> Option<&ManifestState> {
        self.current.as_ref()
    }

    /// Fetches the manifest, retrying with backoff; on failure the last good one stays.
    pub async fn refresh(&mut self) -> Refresh {
        let mut last_error = String::new();
        for attempt in 0..self.options.attempts.max(1) {
            if attempt > 0 {
                let options = &self.options;
                let delay = full_jitter(options.backoff_base, options.backoff_cap, attempt);
                tokio::time::sleep(delay).await;
            }
            match self.attempt().await {
                Ok(fetched) => match self.accept(fetched) {
                    Ok(outcome) => return outcome,
                    // A manifest that parsed but is invalid will not fix itself on retry.
                    Err(reason) => return self.keep_last_good(reason),
                },
                Err(AttemptError { reason, retry }) => {
                    tracing::debug!(source = %self.source.describe(), attempt, %reason, "manifest fetch failed");
                    last_error = reason;
                    if !retry {
                        break;
                    }
                }
            }
        }
        self.keep_last_good(last_error)
    }

    fn keep_last_good(&mut self, reason: String) -> Refresh {
        let reason = format!("{}: {reason}", self.source.describe());
        match &mut self.current {
            Some(state) => {
                tracing::warn!(%reason, "manifest refresh failed; keeping the last good one");
                state.stale = Some(reason.clone());
                Refresh::Stale(reason)
            }
            None => Refresh::Failed(reason),
        }
    }

    fn accept(&mut self, fetched: Fetched) -> Result<Refresh, String> {
        let now = SystemTime::now();
        match fetched {
            Fetched::NotModified { max_age } => {
                let Some(state) = &mut self.current else {
                    return Err(
                        "the server answered 304 to a request that had no validators".into(),
                    );
                };
                state.fresh_until = fresh_until(&state.manifest, max_age, now);
                state.stale = None;
                Ok(Refresh::NotModified)
            }
            Fetched::Body {
                text,
                etag,
                last_modified,
                max_age,
            } => {
                let manifest = Manifest::parse(&text, self.options.key.as_deref())
                    .map_err(|e| e.to_string())?;
                self.current = Some(ManifestState {
                    fresh_until: fresh_until(&manifest, max_age, now),
                    manifest: Arc::new(manifest),
                    stale: None,
                });
                self.etag = etag;
                self.last_modified = last_modified;
                self.save_cache(&text);
                Ok(Refresh::Updated)
            }
        }
    }

    async fn attempt(&self) -> Result<Fetched, AttemptError> {
        match &self.source {
            ManifestSource::File(path) => read_file(path).map(|text| Fetched::Body {
                text,
                etag: None,
                last_modified: None,
                max_age: None,
            }),
            ManifestSource::Url(url) => self.fetch(url).await,
        }
    }

    async fn fetch(&self, url: &url::Url) -> Result<Fetched, AttemptError> {
        let retry = |reason: String| AttemptError {
            reason,
            retry: true,
        };
        let mut request = self
            .http
            .get(url.clone())
            .timeout(self.options.request_timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        // Validators only help when there is a manifest to fall back to on 304.
        if self.current.is_some() {
            if let Some(etag) = &self.etag {
                request = request.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(date) = &self.last_modified {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, date);
            }
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| retry(describe_reqwest(&e)))?;
        let status = response.status();
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let max_age = header(reqwest::header::CACHE_CONTROL).and_then(|cc| parse_max_age(&cc));
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified { max_age });
        }
        if !status.is_success() {
            let transient = status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT;
            return Err(AttemptError {
                reason: format!("HTTP {status}"),
                retry: transient,
            });
        }
        let (etag, last_modified) = (
            header(reqwest::header::ETAG),
            header(reqwest::header::LAST_MODIFIED),
        );
        if response
            .content_length()
            .is_some_and(|len| len > MAX_MANIFEST_BYTES as u64)
        {
            return Err(AttemptError {
                reason: format!("body is over the {MAX_MANIFEST_BYTES}-byte limit"),
                retry: false,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| retry(describe_reqwest(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_MANIFEST_BYTES {
                return Err(AttemptError {
                    reason: format!("body is over the {MAX_MANIFEST_BYTES}-byte limit"),
                    retry: false,
                });
            }
        }
        let text = String::from_utf8(body).map_err(|_| AttemptError {
            reason: "body is not UTF-8".into(),
            retry: false,
        })?;
        Ok(Fetched::Body {
            text,
            etag,
            last_modified,
            max_age,
        })
    }

    fn load_cache(&mut self) {
        let Some(path) = &self.options.cache_path else {
            return;
        };
        // The cache holds one manifest and its envelope: twice a manifest's limit is plenty.
        let Ok(bytes) = durable::read_bounded(path, 2 * MAX_MANIFEST_BYTES as u64) else {
            return;
        };
        let cached = match serde_json::from_slice::<CacheFileV1>(&bytes) {
            Ok(cached) if cached.source == self.source.describe() => cached,
            Ok(_) => return, // another source's manifest
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable manifest cache");
                return;
            }
        };
        // The cache gets no pass on validation or the signature.
        match Manifest::parse(&cached.body, self.options.key.as_deref()) {
            Ok(manifest) => {
                self.current = Some(ManifestState {
                    manifest: Arc::new(manifest),
                    fresh_until: SystemTime::UNIX_EPOCH,
                    stale: Some(format!(
                        "loaded from the cache at {}; not refreshed yet",
                        path.display()
                    )),
                });
                self.etag = cached.etag;
                self.last_modified = cached.last_modified;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an invalid manifest cache")
            }
        }
    }

    fn save_cache(&self, body: &str) {
        let Some(path) = &self.options.cache_path else {
            return;
        };
        let cache = CacheFileV1 {
            source: self.source.describe(),
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
            body: body.to_string(),
        };
        let written = serde_json::to_vec(&cache)
            .map_err(|e| e.to_string())
            .and_then(|bytes| durable::replace_file(path, &bytes).map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "could not cache the manifest");
        }
    }
}

fn read_file(path: &Path) -> Result<String, AttemptError> {
    let fail = |reason: String| AttemptError {
        reason,
        retry: false,
    };
    let bytes = durable::read_bounded(path, MAX_MANIFEST_BYTES as u64).map_err(|e| match e {
        durable::ReadError::TooLarge { limit, .. } => {
            fail(format!("file is over the {limit}-byte limit"))
        }
        durable::ReadError::Io(e) => fail(e.source.to_string()),
    })?;
    String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))
}

fn fresh_until(manifest: &Manifest, max_age: Option<Duration>, now: SystemTime) -> SystemTime {
    let by_ttl = manifest.expires_at();
    match max_age {
        // `max-age` comes from the server: 2^64-1 must not overflow the clock.
        Some(age) => now
            .checked_add(age)
            .map_or(by_ttl, |by_age| by_ttl.min(by_age)),
        None => by_ttl,
    }
}

fn parse_max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| {
                value
                    .trim_matches('"')
                    .parse()
                    .ok()
                    .map(Duration::from_secs)
            })
            .flatten()
    })
}

fn describe_reqwest(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    crate::session::innermost_cause(error).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=60"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_max_age("no-store"), None);
        assert_eq!(parse_max_age("MAX-AGE=\"5\""), Some(Duration::from_secs(5)));
    }

    #[test]
    fn plain_http_is_only_for_this_machine() {
        assert!(ManifestSource::parse("http://127.0.0.1:8080/map.json").is_ok());
        assert!(ManifestSource::parse("http://localhost/map.json").is_ok());
        assert!(ManifestSource::parse("http://intranet.example/map.json").is_err());
        assert!(matches!(
            ManifestSource::parse("maps/dev.json"),
            Ok(ManifestSource::File(_))
        ));
    }
}
