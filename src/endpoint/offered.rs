//! Resources and prompts as the aggregated server serves them: every live connector's, asked
//! when a client asks, resource URIs mapped to `switchboard://<connector>/…` ([`super::uris`])
//! and prompts named like tools (`<connector>_<prompt>`, [`super::naming`]).

use rmcp::ErrorData;
use rmcp::model::{
    CacheScope, GetPromptRequestParams, GetPromptResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, Prompt, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ResultType,
};

use super::naming::{Names, Origin};
use super::upstream::{Upstream, decode};
use super::uris;
use crate::offerings::Offered;
use crate::wire::{Request, WireError};

/// Nothing here is cached on the way: a client may not cache it either.
const TTL_MS: u64 = 0;

async fn ask<T: serde::de::DeserializeOwned>(
    upstream: &Upstream,
    request: Request,
) -> Result<T, ErrorData> {
    let answer = upstream.ask(request).await.map_err(internal)?;
    decode(answer).map_err(internal)
}

fn internal(error: WireError) -> ErrorData {
    ErrorData::internal_error(error.message, None)
}

/// The items with the URI `uri` points at mapped to the one they are served under.
fn served<T>(listed: Vec<Offered<T>>, uri: impl Fn(&mut T) -> &mut String) -> Vec<T> {
    listed
        .into_iter()
        .map(|offered| {
            let mut item = offered.item;
            let own = uri(&mut item);
            *own = uris::served(&offered.connector, own);
            item
        })
        .collect()
}

pub async fn resources(upstream: &Upstream) -> Result<ListResourcesResult, ErrorData> {
    let listed: Vec<Offered<Resource>> = ask(upstream, Request::Resources {}).await?;
    let resources = served(listed, |r| &mut r.uri);
    Ok(ListResourcesResult::with_all_items(resources)
        .with_ttl_ms(TTL_MS)
        .with_cache_scope(CacheScope::Private))
}

pub async fn resource_templates(
    upstream: &Upstream,
) -> Result<ListResourceTemplatesResult, ErrorData> {
    let listed: Vec<Offered<ResourceTemplate>> =
        ask(upstream, Request::ResourceTemplates {}).await?;
    let templates = served(listed, |t| &mut t.uri_template);
    Ok(ListResourceTemplatesResult::with_all_items(templates)
        .with_ttl_ms(TTL_MS)
        .with_cache_scope(CacheScope::Private))
}

pub async fn read_resource(
    upstream: &Upstream,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let Some((connector, own)) = uris::origin(uri) else {
        return Err(ErrorData::resource_not_found(
            format!("{uri:?} is not a resource Switchboard serves (switchboard://CONNECTOR/URI)"),
            None,
        ));
    };
    let request = Request::ReadResource {
        connector: connector.clone(),
        uri: own,
    };
    let mut read: ReadResourceResult = ask(upstream, request).await?;
    for contents in &mut read.contents {
        match contents {
            ResourceContents::TextResourceContents { uri, .. }
            | ResourceContents::BlobResourceContents { uri, .. } => {
                *uri = uris::served(&connector, uri);
            }
            // Kinds of contents this build does not know carry their URI where it cannot see.
            _ => {}
        }
    }
    // Complete, whatever era the server answered in (rmcp drops it for older clients).
    read.result_type = Some(ResultType::COMPLETE);
    Ok(read
        .with_ttl_ms(TTL_MS)
        .with_cache_scope(CacheScope::Private))
}

/// Every live prompt and the name it is served under.
async fn named_prompts(upstream: &Upstream) -> Result<(Vec<Offered<Prompt>>, Names), ErrorData> {
    let listed: Vec<Offered<Prompt>> = ask(upstream, Request::Prompts {}).await?;
    let names = Names::assign(listed.iter().map(|o| Origin {
        connector: o.connector.clone(),
        tool: o.item.name.clone(),
    }));
    Ok((listed, names))
}

pub async fn prompts(upstream: &Upstream) -> Result<ListPromptsResult, ErrorData> {
    let (listed, names) = named_prompts(upstream).await?;
    let mut prompts = Vec::with_capacity(listed.len());
    for (name, origin) in names.iter() {
        let found = listed
            .iter()
            .find(|o| o.connector == origin.connector && o.item.name == origin.tool);
        if let Some(offered) = found {
            let mut prompt = offered.item.clone();
            prompt.name = name.to_string();
            prompts.push(prompt);
        }
    }
    Ok(ListPromptsResult::with_all_items(prompts)
        .with_ttl_ms(TTL_MS)
        .with_cache_scope(CacheScope::Private))
}

pub async fn get_prompt(
    upstream: &Upstream,
    request: GetPromptRequestParams,
) -> Result<GetPromptResult, ErrorData> {
    let (_, names) = named_prompts(upstream).await?;
    let Some(origin) = names.origin(&request.name) else {
        return Err(ErrorData::invalid_params(
            format!("no prompt named {:?}", request.name),
            None,
        ));
    };
    let asked = Request::GetPrompt {
        connector: origin.connector.clone(),
        name: origin.tool.clone(),
        arguments: request.arguments,
    };
    let mut got: GetPromptResult = ask(upstream, asked).await?;
    got.result_type = Some(ResultType::COMPLETE);
    Ok(got)
}
