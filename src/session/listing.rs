//! Listing a server's tools within bounds: a hostile or broken server can page forever, cycle
//! its cursor or list a million tools, and each is reported by what it did.

use std::collections::HashSet;

use rmcp::RoleClient;
use rmcp::model::{PaginatedRequestParams, Tool};
use rmcp::service::Peer;

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
    let mut tools: Vec<Tool> = Vec::new();
    let mut cursors = HashSet::new();
    let mut cursor = None;
    for page in 1..=MAX_PAGES {
        let params = PaginatedRequestParams::default().with_cursor(cursor.take());
        let listed = peer
            .list_tools(Some(params))
            .await
            .map_err(SessionError::from_service)?;
        tools.extend(listed.tools);
        if tools.len() > MAX_TOOLS {
            return Err(SessionError::OverLimit(format!(
                "the server lists more than {MAX_TOOLS} tools, the most Switchboard takes \
                 from one server"
            )));
        }
        match listed.next_cursor {
            None => return Ok(without_repeats(tools, connector)),
            Some(next) if !cursors.insert(next.clone()) => {
                return Err(SessionError::OverLimit(format!(
                    "the server's tools/list sent a cursor it had sent before (page {page}): \
                     the list never ends"
                )));
            }
            Some(next) => cursor = Some(next),
        }
    }
    Err(SessionError::OverLimit(format!(
        "the server's tools/list still had more after {MAX_PAGES} pages"
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
