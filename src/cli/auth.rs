//! `auth login | status | logout`: signing connectors in to OAuth-protected servers, through
//! the daemon that owns their sessions (or, with none running, an engine for the one command).

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;
use serde_json::Value;

use super::connectors::Fleet;
use switchboard::wire::Request;

#[derive(Deserialize)]
struct Started {
    url: String,
}

#[derive(Deserialize)]
struct Status {
    connector: String,
    signed_in: bool,
    kept_in: String,
}

pub async fn login(dir: &Path, id: &str, open_browser: bool) -> Result<()> {
    let mut fleet = Fleet::open(dir, None).await?;
    let outcome = login_in(&mut fleet, id, open_browser).await;
    fleet.close().await?;
    outcome
}

async fn login_in(fleet: &mut Fleet, id: &str, open_browser: bool) -> Result<()> {
    let started: Started = serde_json::from_value(
        fleet
            .ask(Request::SignIn {
                id: id.to_string(),
                open_browser,
            })
            .await
            .with_context(|| format!("cannot start signing {id} in"))?,
    )?;
    if open_browser {
        errln!("switchboard: opening your browser to sign {id} in; if it did not open, go to:");
    } else {
        errln!("switchboard: to sign {id} in, open this page in your browser:");
    }
    outln!("{}", started.url);
    let state = fleet
        .ask(Request::SignInWait { id: id.to_string() })
        .await
        .with_context(|| format!("{id} was not signed in"))?;
    outln!("signed in: {id} is {}", state.as_str().unwrap_or("unknown"));
    Ok(())
}

pub async fn status(dir: &Path, json: bool) -> Result<()> {
    let mut fleet = Fleet::open(dir, None).await?;
    let answer = fleet.ask(Request::SignInStatus {}).await;
    fleet.close().await?;
    let answer: Value = answer?;
    if json {
        outln!("{answer}");
        return Ok(());
    }
    let rows: Vec<Status> = serde_json::from_value(answer)?;
    if rows.is_empty() {
        outln!("no remote connectors");
    }
    for row in &rows {
        let said = if row.signed_in {
            "signed in"
        } else {
            "not signed in"
        };
        outln!("{:<24} {said}", row.connector);
    }
    if let Some(row) = rows.first() {
        outln!("tokens are kept in {}", row.kept_in);
    }
    Ok(())
}

pub async fn logout(dir: &Path, id: &str) -> Result<()> {
    let mut fleet = Fleet::open(dir, None).await?;
    let outcome = fleet.ask(Request::SignOut { id: id.to_string() }).await;
    fleet.close().await?;
    outcome.with_context(|| format!("cannot sign {id} out"))?;
    outln!("signed out: {id} needs a sign-in again");
    Ok(())
}
