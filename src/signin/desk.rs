//! The daemon's sign-ins, one at a time: starting one ends any other still waiting for its
//! browser (that tab's redirect is then refused), so however many connectors need a sign-in
//! after a wake, there is one tab to finish, never a storm of them.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{ClientIdentity, SIGN_IN_TIMEOUT, SignInError, TokenStore};
use crate::engine::Rechecker;

type Outcome = Option<Result<(), SignInError>>;

/// The sign-in under way, if any; its outcome once it has one.
pub struct SignInDesk {
    store: Arc<TokenStore>,
    http: reqwest::Client,
    current: Mutex<Option<Current>>,
}

struct Current {
    connector: String,
    outcome: watch::Receiver<Outcome>,
    end: CancellationToken,
}

impl SignInDesk {
    pub fn new(store: Arc<TokenStore>, http: reqwest::Client) -> Self {
        Self {
            store,
            http,
            current: Mutex::default(),
        }
    }

    pub fn store(&self) -> &Arc<TokenStore> {
        &self.store
    }

    /// Starts signing connector `id` in at `url` and returns the page to approve it on. Once
    /// the browser is back and the tokens are stored, every connector is re-checked.
    pub async fn start(
        &self,
        id: &str,
        url: &str,
        identity: &ClientIdentity,
        recheck: Rechecker,
    ) -> Result<String, SignInError> {
        let started = super::begin(id, url, identity, &self.store, &self.http, None).await?;
        let page = started.url().to_string();
        let (outcome, watched) = watch::channel(None);
        let end = CancellationToken::new();
        let replaced = self.current.lock().ok().and_then(|mut current| {
            current.replace(Current {
                connector: id.to_string(),
                outcome: watched,
                end: end.clone(),
            })
        });
        if let Some(replaced) = replaced {
            replaced.end.cancel();
        }
        let connector = id.to_string();
        tokio::spawn(async move {
            let finished = tokio::select! {
                _ = end.cancelled() => Err(SignInError::Replaced),
                finished = started.finish(SIGN_IN_TIMEOUT) => finished,
            };
            match &finished {
                Ok(()) => {
                    tracing::info!(connector, "signed in");
                    recheck.recheck_all("signed in").await;
                }
                Err(error) => tracing::warn!(connector, %error, "sign-in did not complete"),
            }
            let _ = outcome.send(Some(finished));
        });
        Ok(page)
    }

    /// Waits for connector `id`'s sign-in (the last one started) to end, and says how.
    pub async fn wait(&self, id: &str) -> Result<(), SignInError> {
        let watched = self
            .current
            .lock()
            .ok()
            .and_then(|current| {
                current
                    .as_ref()
                    .filter(|c| c.connector == id)
                    .map(|c| c.outcome.clone())
            })
            .ok_or(SignInError::NotStarted)?;
        let mut watched = watched;
        let outcome = watched
            .wait_for(Option::is_some)
            .await
            .map_err(|_| SignInError::Replaced)?
            .clone();
        outcome.unwrap_or(Err(SignInError::Replaced))
    }
}
