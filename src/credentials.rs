//! Connector tokens: where they are looked up (the OS keyring — Keychain, Windows Credential
//! Manager, Secret Service; service `switchboard`, account = the connector id — then the
//! environment), and storing them in the keyring. Tokens are referenced, never stored in
//! Switchboard's own files.

/// `url` as it may be shown: userinfo (`https://user:token@…`) and the values of query
/// parameters whose names look secret (`?api_key=…`) replaced by `<redacted>`.
pub fn redacted_url(url: &str) -> String {
    use crate::registry::model::REDACTED;
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    let had_userinfo = !parsed.username().is_empty() || parsed.password().is_some();
    let query: Option<Vec<(String, String)>> = parsed.query().map(|_| {
        parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if looks_secret(&k) {
                    REDACTED.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect()
    });
    if let Some(pairs) = query {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let _ = parsed.set_password(None);
    let _ = parsed.set_username("");
    let shown = parsed.to_string();
    match (had_userinfo, shown.split_once("://")) {
        (true, Some((scheme, rest))) => format!("{scheme}://{REDACTED}@{rest}"),
        _ => shown,
    }
}

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

/// Prefixes of well-known tokens, caught wherever they stand in a command line.
const TOKEN_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "github_pat_",
    "glpat-",
    "sk-",
    "xoxb-",
    "xoxp-",
    "AKIA",
];

/// A stdio server's arguments as they may be shown: the value of a secret-looking option
/// (`--token VALUE`, `--api-key=VALUE`, `-H "Authorization: Bearer …"`) and anything shaped like
/// a well-known token (`ghp_…`, `sk-…`) replaced by `<redacted>`.
pub fn redacted_args(args: &[String]) -> Vec<String> {
    use crate::registry::model::REDACTED;
    let mut shown = Vec::with_capacity(args.len());
    let mut secret_next = false;
    for arg in args {
        let is_option = arg.starts_with('-');
        let value = if secret_next && !is_option {
            REDACTED.to_string()
        } else if let Some((option, _)) = arg.split_once('=').filter(|_| is_option)
            && looks_secret(option)
        {
            format!("{option}={REDACTED}")
        } else if let Some((name, _)) = arg.split_once(':')
            && !name.contains(char::is_whitespace)
            && !name.contains('/')
            && looks_secret(name)
        {
            format!("{name}: {REDACTED}")
        } else if TOKEN_PREFIXES
            .iter()
            .any(|p| arg.starts_with(p) && arg.len() > p.len() + 8)
        {
            REDACTED.to_string()
        } else {
            arg.clone()
        };
        secret_next = is_option && !arg.contains('=') && looks_secret(arg);
        shown.push(value);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_a_command_line_are_masked_and_the_rest_kept() {
        let args: Vec<String> = [
            "-y",
            "@modelcontextprotocol/server-github",
            "--token",
            "ghx-not-a-known-prefix",
            "--api-key=abc123",
            "--header",
            "Authorization: Bearer xyz",
            "ghp_abcdefghijklmnopqrstuvwxyz012345",
            "--port",
            "8080",
            "https://example.com/mcp",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            redacted_args(&args),
            [
                "-y",
                "@modelcontextprotocol/server-github",
                "--token",
                "<redacted>",
                "--api-key=<redacted>",
                "--header",
                "Authorization: <redacted>",
                "<redacted>",
                "--port",
                "8080",
                "https://example.com/mcp",
            ]
        );
    }

    #[test]
    fn urls_are_shown_without_their_credentials() {
        assert_eq!(
            redacted_url("https://x-access-token:ghp_abc@api.example.com/mcp?api_key=k&page=2"),
            "https://<redacted>@api.example.com/mcp?api_key=%3Credacted%3E&page=2"
        );
        assert_eq!(
            redacted_url("http://127.0.0.1:8080/mcp"),
            "http://127.0.0.1:8080/mcp"
        );
        assert_eq!(redacted_url("not a url"), "not a url");
    }
}
