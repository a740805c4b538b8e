//! Resources and prompts of every live connector, for the aggregated server: asked of the
//! servers that offer them when a client asks (unlike tools, nothing is cached), all at once,
//! each within its own deadline. A connector that fails is left out and logged, never the
//! whole list.

use futures::future::join_all;
use rmcp::model::{GetPromptResult, Prompt, ReadResourceResult, Resource, ResourceTemplate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::{CallError, Engine};
use crate::session::{Caller, Offers, SessionError};

/// One item and the connector it comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offered<T> {
    pub connector: String,
    pub item: T,
}

async fn gather<T, Fut>(
    engine: &Engine,
    offers: impl Fn(Offers) -> bool,
    what: &str,
    list: impl Fn(Caller) -> Fut,
) -> Vec<Offered<T>>
where
    Fut: std::future::Future<Output = Result<Vec<T>, SessionError>>,
{
    let asked = engine
        .live_callers()
        .into_iter()
        .filter(|(_, caller)| offers(caller.offers()))
        .map(|(connector, caller)| {
            let listing = list(caller);
            async move { (connector, listing.await) }
        });
    let mut all = Vec::new();
    for (connector, listed) in join_all(asked).await {
        match listed {
            Ok(items) => all.extend(items.into_iter().map(|item| Offered {
                connector: connector.clone(),
                item,
            })),
            Err(error) => tracing::warn!(%connector, %error, "could not list its {what}"),
        }
    }
    all
}

pub async fn resources(engine: &Engine) -> Vec<Offered<Resource>> {
    gather(
        engine,
        |o| o.resources,
        "resources",
        |c| async move { c.resources().await },
    )
    .await
}

pub async fn resource_templates(engine: &Engine) -> Vec<Offered<ResourceTemplate>> {
    gather(
        engine,
        |o| o.resources,
        "resource templates",
        |c| async move { c.resource_templates().await },
    )
    .await
}

pub async fn prompts(engine: &Engine) -> Vec<Offered<Prompt>> {
    gather(
        engine,
        |o| o.prompts,
        "prompts",
        |c| async move { c.prompts().await },
    )
    .await
}

pub async fn read_resource(
    engine: &Engine,
    connector: &str,
    uri: &str,
) -> Result<ReadResourceResult, CallError> {
    Ok(engine.caller(connector)?.read_resource(uri).await?)
}

pub async fn get_prompt(
    engine: &Engine,
    connector: &str,
    name: &str,
    arguments: Option<Map<String, Value>>,
) -> Result<GetPromptResult, CallError> {
    Ok(engine
        .caller(connector)?
        .get_prompt(name, arguments)
        .await?)
}
