//! Listing a server's tools (and resources, prompts) within bounds: a hostile or broken server can page forever, cycle
//! its cursor or list a million tools, and each is reported by what it did.

use std::collections::HashSet;
use std::future::Future;

use rmcp::RoleClient;
use rmcp::model::{PaginatedRequestParams, Tool};
use rmcp::service::{Peer, ServiceError};

use super::SessionError;

/// The most tools Switchboard takes from one server (the largest real ones list a few hundred).
pub const MAX_TOOLS: usize = 2_000;
/// The most `tools/list` pages one listing may take.
pub const MAX_PAGES: usize = 200;

/// Every tool `peer` lists, following cursors; repeats of a name are dropped (the first kept),
/// each said once in the log for `connector`.
pub(super) async fn list_tools(
    peer: &Peer<RoleClient>,
    connector: &str,
) -> Result<Vec<Tool>, SessionError> {
    let tools = all_pages("tools/list", "tools", |params| async {
        let page = peer.list_tools(Some(params)).await?;
        Ok((page.tools, page.next_cursor))
    })
    .await?;
    Ok(without_repeats(tools, connector))
}

/// Every item of a paginated list (`method`, listing `what`), following cursors within the
/// bounds above: a server that pages forever, cycles its cursor or lists too much is told so.
pub(super) async fn all_pages<T, F, Fut>(
    method: &str,
    what: &str,
    mut page: F,
) -> Result<Vec<T>, SessionError>
where
    F: FnMut(PaginatedRequestParams) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), ServiceError>>,
{
    let mut items = Vec::new();
    let mut cursors = HashSet::new();
    let mut cursor = None;
    for page_number in 1..=MAX_PAGES {
        let params = PaginatedRequestParams::default().with_cursor(cursor.take());
        let (listed, next) = page(params).await.map_err(SessionError::from_service)?;
        items.extend(listed);
        if items.len() > MAX_TOOLS {
            return Err(SessionError::OverLimit(format!(
                "the server lists more than {MAX_TOOLS} {what}, the most Switchboard takes \
                 from one server"
            )));
        }
        match next {
            None => return Ok(items),
            Some(next) if !cursors.insert(next.clone()) => {
                return Err(SessionError::OverLimit(format!(
                    "the server's {method} sent a cursor it had sent before (page \
                     {page_number}): the list never ends"
                )));
            }
            Some(next) => cursor = Some(next),
        }
    }
    Err(SessionError::OverLimit(format!(
        "the server's {method} still had more after {MAX_PAGES} pages"
    )))
}

fn without_repeats(tools: Vec<Tool>, connector: &str) -> Vec<Tool> {
    let mut seen = HashSet::new();
    let mut repeated = Vec::new();
    let kept = tools
        .into_iter()
        .filter(|tool| {
            let first = seen.insert(tool.name.clone());
            if !first {
                repeated.push(tool.name.clone());
            }
            first
        })
        .collect();
    if !repeated.is_empty() {
        tracing::warn!(
            connector,
            repeated = ?repeated,
            "the server lists these tools more than once; the first of each is kept"
        );
    }
    kept
}
