//! The daemon's side of signing in: which URL a connector signs in at, starting and waiting
//! for the flow, signing out, and who is signed in (never a token).

use std::time::Duration;

use serde::Serialize;

use super::{Daemon, DaemonError};
use crate::connector::Endpoint;
use crate::engine::EngineSnapshot;
use crate::health::Health;
use crate::signin::ClientIdentity;

/// A sign-in under way: the page the user approves it on.
#[derive(Debug, Clone, Serialize)]
pub struct SignInStarted {
    pub connector: String,
    pub url: String,
}

/// Whether a remote connector is signed in, as `auth status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SignInStatus {
    pub connector: String,
    pub signed_in: bool,
    /// Where its tokens are (or would be) kept.
    pub kept_in: String,
}

impl Daemon {
    /// The URL remote connector `id` signs in at, and who Switchboard is to its server.
    fn sign_in_url(&self, id: &str) -> Result<(String, ClientIdentity), DaemonError> {
        let specs = self.specs.borrow();
        let spec = specs
            .iter()
            .find(|spec| spec.id == id)
            .ok_or_else(|| DaemonError::UnknownConnector(id.to_string()))?;
        match &spec.endpoint {
            Endpoint::Http { url, .. } => Ok((url.clone(), spec.info.sign_in.clone())),
            Endpoint::Stdio { .. } => Err(DaemonError::Invalid {
                field: "id",
                message: format!("{id} is a local (stdio) server: only remote servers sign in"),
            }),
        }
    }

    /// Starts signing connector `id` in; with `open_browser`, opens the page in the browser.
    /// Starting one ends any other sign-in still waiting (one tab at a time).
    pub async fn sign_in(
        &self,
        id: &str,
        open_browser: bool,
    ) -> Result<SignInStarted, DaemonError> {
        let (url, mut identity) = self.sign_in_url(id)?;
        // A step-up: what was granted, and what the server asked for since.
        for scope in self.sign_ins.store().step_up_scopes(id).await {
            if !identity.scopes.contains(&scope) {
                identity.scopes.push(scope);
            }
        }
        let page = self
            .sign_ins
            .start(id, &url, &identity, self.engine.rechecker())
            .await?;
        if open_browser && let Err(error) = open::that_detached(&page) {
            // The page is in the answer too: the caller can show it to be opened by hand.
            tracing::warn!(connector = id, %error, "could not open the browser");
        }
        Ok(SignInStarted {
            connector: id.to_string(),
            url: page,
        })
    }

    /// Waits for connector `id`'s sign-in to end, then for the connector to be tried with its
    /// tokens (at most its connect timeout); its state then. An error says why the sign-in did
    /// not complete.
    pub async fn sign_in_finished(&self, id: &str) -> Result<Health, DaemonError> {
        self.sign_ins.wait(id).await?;
        let patience = self
            .specs
            .borrow()
            .iter()
            .find(|spec| spec.id == id)
            .map_or(Duration::ZERO, |spec| spec.connect_timeout);
        let state = |snapshot: &EngineSnapshot| {
            snapshot
                .connectors
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.state)
        };
        let mut snapshots = self.engine.subscribe();
        // Past the patience, the state as it stands is the answer.
        let _ = tokio::time::timeout(
            patience,
            snapshots
                .wait_for(|s| !matches!(state(s), Some(Health::NeedsSignIn | Health::Connecting))),
        )
        .await;
        Ok(state(&self.engine.snapshot()).unwrap_or(Health::Down))
    }

    /// Forgets connector `id`'s tokens; it needs a sign-in again.
    pub async fn sign_out(&self, id: &str) -> Result<(), DaemonError> {
        self.sign_in_url(id)?;
        self.sign_ins
            .store()
            .sign_out(id)
            .await
            .map_err(crate::signin::SignInError::from)?;
        self.engine.recheck_all("signed out").await;
        Ok(())
    }

    /// Every remote connector: signed in or not.
    pub async fn sign_in_status(&self) -> Result<Vec<SignInStatus>, DaemonError> {
        let remote: Vec<(String, String)> = self
            .specs
            .borrow()
            .iter()
            .filter_map(|spec| match &spec.endpoint {
                Endpoint::Http { url, .. } => Some((spec.id.clone(), url.clone())),
                Endpoint::Stdio { .. } => None,
            })
            .collect();
        let store = self.sign_ins.store();
        let mut status = Vec::with_capacity(remote.len());
        for (connector, url) in remote {
            let signed_in = store
                .is_signed_in(&connector, &url)
                .await
                .map_err(crate::signin::SignInError::from)?;
            status.push(SignInStatus {
                connector,
                signed_in,
                kept_in: store.location(),
            });
        }
        Ok(status)
    }
}
