//! What a server offers besides tools: its resources (and resource templates) and prompts,
//! listed within the same bounds as its tools, read and got within the connector's deadline.

use std::future::Future;

use rmcp::model::{
    GetPromptRequestParams, GetPromptResult, Prompt, ReadResourceRequestParams, ReadResourceResult,
    Resource, ResourceTemplate,
};
use serde_json::{Map, Value};

use super::listing::all_pages;
use super::{Caller, SessionError};

/// What a server said it has, in its capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offers {
    pub resources: bool,
    pub prompts: bool,
}

impl Caller {
    pub fn offers(&self) -> Offers {
        let Some(info) = self.peer.peer_info() else {
            return Offers::default();
        };
        Offers {
            resources: info.capabilities.resources.is_some(),
            prompts: info.capabilities.prompts.is_some(),
        }
    }

    pub async fn resources(&self) -> Result<Vec<Resource>, SessionError> {
        self.bounded(all_pages("resources/list", "resources", |params| async {
            let page = self.peer.list_resources(Some(params)).await?;
            Ok((page.resources, page.next_cursor))
        }))
        .await
    }

    pub async fn resource_templates(&self) -> Result<Vec<ResourceTemplate>, SessionError> {
        self.bounded(all_pages(
            "resources/templates/list",
            "resource templates",
            |params| async {
                let page = self.peer.list_resource_templates(Some(params)).await?;
                Ok((page.resource_templates, page.next_cursor))
            },
        ))
        .await
    }

    pub async fn prompts(&self) -> Result<Vec<Prompt>, SessionError> {
        self.bounded(all_pages("prompts/list", "prompts", |params| async {
            let page = self.peer.list_prompts(Some(params)).await?;
            Ok((page.prompts, page.next_cursor))
        }))
        .await
    }

    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, SessionError> {
        let params = ReadResourceRequestParams::new(uri.to_string());
        self.bounded(async {
            self.peer
                .read_resource(params)
                .await
                .map_err(SessionError::from_service)
        })
        .await
    }

    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
    ) -> Result<GetPromptResult, SessionError> {
        let mut params = GetPromptRequestParams::new(name.to_string());
        params.arguments = arguments;
        self.bounded(async {
            self.peer
                .get_prompt(params)
                .await
                .map_err(SessionError::from_service)
        })
        .await
    }

    /// `work` within the connector's call deadline; an answer counts as the server being there.
    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, SessionError>>,
    ) -> Result<T, SessionError> {
        let answer = tokio::time::timeout(self.call_timeout, work)
            .await
            .map_err(|_| SessionError::Timeout(self.call_timeout))??;
        self.activity.answered();
        Ok(answer)
    }
}
