//! Where signed-in connectors' OAuth tokens live: the OS keyring (service `switchboard`, account
//! `oauth:<connector id>`), or, where there is none (a headless machine), the 0600 file
//! `oauth-tokens.json` in the config dir, said once on stderr. A connector's tokens are kept
//! with the server URL they were granted for and handed out for that URL only: a connector
//! pointed elsewhere starts signed out rather than sending its tokens to another server.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rmcp::transport::auth::{AuthError, CredentialStore, StoredCredentials};
use serde::{Deserialize, Serialize};

/// The file tokens are kept in where there is no keyring.
pub const TOKEN_FILE: &str = "oauth-tokens.json";
/// `SWITCHBOARD_TOKEN_STORE=file` keeps tokens in [`TOKEN_FILE`] even where a keyring is.
pub const STORE_VARIABLE: &str = "SWITCHBOARD_TOKEN_STORE";
/// More than any number of connectors' tokens take; a larger file is refused, not read.
const MAX_TOKEN_FILE: u64 = 1 << 20;

/// One connector's grant: the tokens and the server URL they are for.
#[derive(Clone, Serialize, Deserialize)]
struct Grant {
    resource: String,
    credentials: StoredCredentials,
}

#[derive(Default, Serialize, Deserialize)]
struct TokenFile {
    connectors: BTreeMap<String, Grant>,
}

enum Backend {
    Keyring,
    File(PathBuf),
}

/// Every connector's OAuth tokens; cheap to share (`Arc`), one per config dir.
pub struct TokenStore {
    backend: Backend,
    /// Held across the file's read-modify-write, so two saves never lose one another.
    file: tokio::sync::Mutex<()>,
    /// Why a connector's sign-in ended (its refresh token was refused), until it signs in again.
    ended: Mutex<HashMap<String, String>>,
    /// Scopes a connector's server asked for beyond what it granted (`insufficient_scope`),
    /// for its next sign-in to ask for too.
    wanted: Mutex<HashMap<String, Vec<String>>>,
    /// Each grant as last read or written: every request of a signed-in session asks for its
    /// token, which must not cost a keyring round trip (or a file read) each time.
    cache: Mutex<HashMap<String, Option<Grant>>>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

impl TokenStore {
    /// The keyring where one answers, else `dir`'s token file.
    pub fn in_dir(dir: &Path) -> Arc<Self> {
        let forced_file = std::env::var(STORE_VARIABLE).is_ok_and(|v| v == "file");
        // Not even asked when the file is chosen: asking may make a keyring prompt to unlock.
        let refusal = if forced_file {
            Some(format!("{STORE_VARIABLE}=file"))
        } else {
            keyring_refusal()
        };
        let backend = match refusal {
            None => Backend::Keyring,
            Some(refusal) => {
                let path = dir.join(TOKEN_FILE);
                tracing::debug!(%refusal, path = %path.display(), "sign-in tokens go to a file");
                Backend::File(path)
            }
        };
        Arc::new(Self {
            backend,
            file: tokio::sync::Mutex::new(()),
            ended: Mutex::default(),
            wanted: Mutex::default(),
            cache: Mutex::default(),
        })
    }

    /// Tokens kept in `path` whatever the machine has (tests, the conformance client).
    pub fn in_file(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            backend: Backend::File(path),
            file: tokio::sync::Mutex::new(()),
            ended: Mutex::default(),
            wanted: Mutex::default(),
            cache: Mutex::default(),
        })
    }

    /// Where tokens are kept, as it may be shown.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Keyring => format!("the OS keyring (service {})", crate::credentials::SERVICE),
            Backend::File(path) => path.display().to_string(),
        }
    }

    /// The rmcp credential store for connector `id` at `resource`.
    pub fn for_connector(self: &Arc<Self>, id: &str, resource: &str) -> ConnectorTokens {
        ConnectorTokens {
            store: self.clone(),
            id: id.to_string(),
            resource: resource.to_string(),
        }
    }

    /// Whether connector `id` holds tokens for `resource`.
    pub async fn is_signed_in(&self, id: &str, resource: &str) -> Result<bool, AuthError> {
        Ok(self
            .grant(id)
            .await?
            .is_some_and(|g| g.resource == resource && g.credentials.token_response.is_some()))
    }

    /// Forgets connector `id`'s tokens.
    pub async fn sign_out(&self, id: &str) -> Result<(), AuthError> {
        self.put(id, None).await
    }

    /// Why connector `id`'s sign-in ended, if the authorization server ended it.
    pub fn ended(&self, id: &str) -> Option<String> {
        self.ended.lock().ok()?.get(id).cloned()
    }

    /// Notes that connector `id`'s server wants `scopes` granted too.
    pub fn want(&self, id: &str, scopes: Vec<String>) {
        if let Ok(mut wanted) = self.wanted.lock() {
            let list = wanted.entry(id.to_string()).or_default();
            for scope in scopes {
                if !list.contains(&scope) {
                    list.push(scope);
                }
            }
        }
    }

    /// The scopes connector `id`'s server asked for beyond its grant, since its last sign-in.
    pub fn wanted(&self, id: &str) -> Vec<String> {
        self.wanted
            .lock()
            .ok()
            .and_then(|w| w.get(id).cloned())
            .unwrap_or_default()
    }

    /// What a step-up sign-in of connector `id` asks for: the scopes granted so far and those its
    /// server asked for since; empty when it asked for nothing more.
    pub async fn step_up_scopes(&self, id: &str) -> Vec<String> {
        let wanted = self.wanted(id);
        if wanted.is_empty() {
            return wanted;
        }
        let mut scopes = match self.grant(id).await {
            Ok(Some(grant)) => grant.credentials.granted_scopes,
            _ => Vec::new(),
        };
        for scope in wanted {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    fn end(&self, id: &str, why: String) {
        if let Ok(mut ended) = self.ended.lock() {
            ended.insert(id.to_string(), why);
        }
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>, AuthError> {
        if let Some(cached) = self.cache.lock().ok().and_then(|c| c.get(id).cloned()) {
            return Ok(cached);
        }
        let grant = self.read_grant(id).await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id.to_string(), grant.clone());
        }
        Ok(grant)
    }

    async fn read_grant(&self, id: &str) -> Result<Option<Grant>, AuthError> {
        match &self.backend {
            Backend::Keyring => {
                let account = account(id);
                let read = tokio::task::spawn_blocking(move || {
                    match keyring::Entry::new(crate::credentials::SERVICE, &account)
                        .and_then(|e| e.get_password())
                    {
                        Ok(json) => Ok(Some(json)),
                        Err(keyring::Error::NoEntry) => Ok(None),
                        Err(e) => Err(e.to_string()),
                    }
                })
                .await
                .map_err(|e| store_error(e.to_string()))?
                .map_err(store_error)?;
                read.map(|json| serde_json::from_str(&json).map_err(|e| store_error(e.to_string())))
                    .transpose()
            }
            Backend::File(path) => Ok(read_file(path)?.connectors.remove(id)),
        }
    }

    /// Sets (or with `None` removes) connector `id`'s grant.
    async fn put(&self, id: &str, grant: Option<Grant>) -> Result<(), AuthError> {
        // Forgotten first: whatever happens below, the next read goes to the store itself.
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(id);
        }
        self.write_grant(id, grant).await
    }

    async fn write_grant(&self, id: &str, grant: Option<Grant>) -> Result<(), AuthError> {
        match &self.backend {
            Backend::Keyring => {
                let account = account(id);
                let json = grant
                    .map(|g| serde_json::to_string(&g))
                    .transpose()
                    .map_err(|e| store_error(e.to_string()))?;
                tokio::task::spawn_blocking(move || {
                    let entry = keyring::Entry::new(crate::credentials::SERVICE, &account)?;
                    match json {
                        Some(json) => entry.set_password(&json),
                        None => match entry.delete_credential() {
                            Err(keyring::Error::NoEntry) => Ok(()),
                            other => other,
                        },
                    }
                })
                .await
                .map_err(|e| store_error(e.to_string()))?
                .map_err(|e| store_error(e.to_string()))
            }
            Backend::File(path) => {
                let _held = self.file.lock().await;
                let mut file = read_file(path)?;
                let changed = match grant {
                    Some(grant) => {
                        file.connectors.insert(id.to_string(), grant);
                        true
                    }
                    None => file.connectors.remove(id).is_some(),
                };
                if !changed {
                    return Ok(());
                }
                if !path.exists() {
                    // Said once: when the first sign-in is kept here.
                    eprintln!(
                        "switchboard: sign-in tokens are kept in {} (0600), not in an OS keyring",
                        path.display()
                    );
                }
                let bytes =
                    serde_json::to_vec_pretty(&file).map_err(|e| store_error(e.to_string()))?;
                crate::durable::replace_file(path, &bytes).map_err(|e| store_error(e.to_string()))
            }
        }
    }
}

/// Why the keyring cannot be used here, or `None` where it answers.
fn keyring_refusal() -> Option<String> {
    match keyring::Entry::new(crate::credentials::SERVICE, "oauth:probe")
        .and_then(|entry| entry.get_password())
    {
        Ok(_) | Err(keyring::Error::NoEntry) => None,
        Err(e) => Some(e.to_string()),
    }
}

fn account(id: &str) -> String {
    format!("oauth:{id}")
}

fn store_error(why: String) -> AuthError {
    AuthError::CredentialStoreError(crate::session::bounded(&why))
}

fn read_file(path: &Path) -> Result<TokenFile, AuthError> {
    match crate::durable::read_bounded(path, MAX_TOKEN_FILE) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| store_error(format!("{}: {e}", path.display()))),
        Err(e) if e.is_not_found() => Ok(TokenFile::default()),
        Err(e) => Err(store_error(e.to_string())),
    }
}

/// One connector's tokens, as rmcp's authorization manager loads and saves them.
#[derive(Clone)]
pub struct ConnectorTokens {
    store: Arc<TokenStore>,
    id: String,
    resource: String,
}

#[async_trait::async_trait]
impl CredentialStore for ConnectorTokens {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        Ok(self
            .store
            .grant(&self.id)
            .await?
            .filter(|grant| grant.resource == self.resource)
            .map(|grant| grant.credentials))
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        if credentials.token_response.is_some() {
            if let Ok(mut ended) = self.store.ended.lock() {
                ended.remove(&self.id);
            }
            if let Ok(mut wanted) = self.store.wanted.lock() {
                wanted.remove(&self.id);
            }
        }
        let grant = Grant {
            resource: self.resource.clone(),
            credentials,
        };
        self.store.put(&self.id, Some(grant)).await
    }

    async fn clear(&self) -> Result<(), AuthError> {
        self.store.put(&self.id, None).await
    }

    async fn on_refresh_token_rejected(
        &self,
        rejected: &StoredCredentials,
    ) -> Result<(), AuthError> {
        self.store.end(
            &self.id,
            "the authorization server refused to renew the sign-in (its refresh token was revoked or expired)"
                .into(),
        );
        // Tokens that can no longer be renewed are of no use; keep the client registration.
        match self.load().await? {
            Some(current) if current.token_received_at == rejected.token_received_at => {
                let kept = StoredCredentials::new(current.client_id.clone(), None, vec![], None)
                    .with_issuer(current.issuer.clone());
                self.save(kept).await
            }
            _ => Ok(()),
        }
    }
}
