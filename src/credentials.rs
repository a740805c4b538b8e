//! Connector tokens: where they are looked up (the OS keyring — Keychain, Windows Credential
//! Manager, Secret Service; service `switchboard`, account = the connector id — then the
//! environment), and storing them in the keyring. Tokens are referenced, never stored in
//! Switchboard's own files.

/// The keyring's service name for every Switchboard token.
pub const SERVICE: &str = "switchboard";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    #[error("no OS keyring is available here ({0}); set {1} instead")]
    NoKeyring(String, String),
    #[error("the OS keyring refused: {0}")]
    Keyring(String),
}

fn entry(id: &str) -> Result<keyring::Entry, CredentialError> {
    keyring::Entry::new(SERVICE, id).map_err(|e| match e {
        keyring::Error::NoDefaultStore | keyring::Error::NoStorageAccess(_) => {
            CredentialError::NoKeyring(e.to_string(), variable(id))
        }
        other => CredentialError::Keyring(other.to_string()),
    })
}

/// The connector's token from the keyring, if there is a keyring and it holds one.
pub fn from_keyring(id: &str) -> Option<String> {
    match entry(id).and_then(|e| {
        e.get_password()
            .map_err(|e| CredentialError::Keyring(e.to_string()))
    }) {
        Ok(token) => Some(token),
        Err(e) => {
            // Expected on machines without a keyring, and for connectors with no stored token.
            tracing::debug!(connector = id, error = %e, "no token in the OS keyring");
            None
        }
    }
}

/// Stores (or replaces) a connector's token in the keyring.
pub fn store(id: &str, token: &str) -> Result<(), CredentialError> {
    entry(id)?
        .set_password(token)
        .map_err(|e| CredentialError::Keyring(e.to_string()))
}

/// Removes a connector's token from the keyring.
pub fn delete(id: &str) -> Result<(), CredentialError> {
    entry(id)?
        .delete_credential()
        .map_err(|e| CredentialError::Keyring(e.to_string()))
}

/// The environment variable holding connector `id`'s token: `SWITCHBOARD_TOKEN_<ID>`, the id
/// upper-cased with every other character turned into `_`.
pub fn variable(id: &str) -> String {
    let suffix: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("SWITCHBOARD_TOKEN_{suffix}")
}

/// A connector's token: from the OS keyring (a blocking call: off the async runtime, please) (service `switchboard`, account = the connector id),
/// else its own variable, else the shared `CONNECTORS_API_KEY` the replaced system used for every
/// connector. A machine without a keyring (a headless server) just skips the first.
pub fn lookup(id: &str) -> Option<String> {
    from_keyring(id)
        .or_else(|| std::env::var(variable(id)).ok())
        .or_else(|| std::env::var("CONNECTORS_API_KEY").ok())
        .filter(|token| !token.is_empty())
}

/// Whether an environment variable or header of this name holds a secret (a token, a key, a
/// password…), by its name: `GITHUB_TOKEN` and `Authorization` do, `TZ` and `X-Team` do not.
pub fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token",
        "secret",
        "key",
        "password",
        "passwd",
        "auth",
        "credential",
        "cookie",
        "session",
    ]
    .iter()
    .any(|word| name.contains(word))
}
