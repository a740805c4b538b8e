//! What the aggregated server serves at one moment: every live tool under its served name, in
//! name order, paged by name (so a page boundary survives the set changing between pages).

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::Tool;

use super::naming::{Names, Origin};
use crate::overview::ToolView;

/// Tools per `tools/list` page: one page for most fleets, a few for thousands of tools.
pub const PAGE_SIZE: usize = 500;

/// How many names that left are remembered, to say why a late call for one fails.
const DEPARTED_KEPT: usize = 10_000;

#[derive(Debug, Default)]
pub struct Served {
    names: Names,
    /// In served-name order; each definition as its server gave it, but for the name.
    tools: Vec<Tool>,
    /// Names served before and not now (bounded), so a call racing a change can name the
    /// connector it was for.
    departed: HashMap<String, Origin>,
}

impl Served {
    /// The set for `tools`, remembering what `previous` served that has left.
    pub fn new(tools: Vec<ToolView>, previous: Option<&Served>) -> Self {
        let mut definitions: HashMap<Origin, Tool> = tools
            .into_iter()
            .filter(|view| view.enabled)
            .map(|view| {
                let origin = Origin {
                    connector: view.connector,
                    tool: view.tool,
                };
                (origin, view.definition)
            })
            .collect();
        let names = Names::assign(definitions.keys().cloned());
        let tools = names
            .iter()
            .filter_map(|(name, origin)| {
                let mut tool = definitions.remove(origin)?;
                tool.name = name.to_string().into();
                Some(tool)
            })
            .collect();
        let mut departed = previous.map(|p| p.departed.clone()).unwrap_or_default();
        if let Some(previous) = previous {
            for (name, origin) in previous.names.iter() {
                if names.origin(name).is_none() {
                    departed.insert(name.to_string(), origin.clone());
                }
            }
        }
        departed.retain(|name, _| names.origin(name).is_none());
        if departed.len() > DEPARTED_KEPT {
            departed.clear();
        }
        Self {
            names,
            tools,
            departed,
        }
    }

    /// The tool served as `name`, or `Err` with the one it stood for if it has left.
    pub fn origin(&self, name: &str) -> Result<&Origin, Option<&Origin>> {
        self.names
            .origin(name)
            .ok_or_else(|| self.departed.get(name))
    }

    /// The definition served as `name`.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        let at = self
            .tools
            .binary_search_by(|t| t.name.as_ref().cmp(name))
            .ok()?;
        self.tools.get(at)
    }

    /// The page after the one that ended with `cursor` (the first without), and the cursor of
    /// the next page if there is one.
    pub fn page(&self, cursor: Option<&str>) -> (Vec<Tool>, Option<String>) {
        let start = match cursor {
            None => 0,
            Some(after) => self.tools.partition_point(|t| t.name.as_ref() <= after),
        };
        let end = (start + PAGE_SIZE).min(self.tools.len());
        let page = self.tools[start..end].to_vec();
        let next = (end < self.tools.len()).then(|| page.last().map(|t| t.name.to_string()));
        (page, next.flatten())
    }

    /// Whether `other` serves exactly the same tools (a client need not hear of it).
    pub fn same_as(&self, other: &Served) -> bool {
        self.tools == other.tools
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// The served set, shared by everything answering clients and swapped whole on change.
pub type Shared = Arc<std::sync::RwLock<Arc<Served>>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn view(connector: &str, tool: &str) -> ToolView {
        let definition = Tool::new(
            tool.to_string(),
            format!("{tool} of {connector}"),
            Arc::new(serde_json::Map::new()),
        );
        ToolView {
            name: format!("{connector}.{tool}"),
            connector: connector.into(),
            tool: tool.into(),
            description: None,
            input_schema: serde_json::json!({}),
            definition,
            enabled: true,
            context_tokens: 10,
        }
    }

    #[test]
    fn pages_follow_name_order_and_cover_every_tool_once() {
        let views = (0..1_234).map(|i| view("c", &format!("t{i:04}"))).collect();
        let served = Served::new(views, None);
        let (mut seen, mut cursor) = (Vec::new(), None);
        loop {
            let (page, next) = served.page(cursor.as_deref());
            assert!(page.len() <= PAGE_SIZE);
            seen.extend(page.into_iter().map(|t| t.name.to_string()));
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 1_234);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, no repeats");
        assert_eq!(seen[0], "c_t0000");
    }

    #[test]
    fn definitions_pass_through_with_only_the_name_changed() {
        let served = Served::new(vec![view("wiki", "pages.get")], None);
        let (page, _) = served.page(None);
        assert_eq!(page[0].name, "wiki_pages_get");
        assert_eq!(page[0].description.as_deref(), Some("pages.get of wiki"));
        assert_eq!(served.tool("wiki_pages_get"), Some(&page[0]));
        assert_eq!(served.tool("wiki_pages.get"), None);
    }

    #[test]
    fn tools_switched_off_are_not_served() {
        let mut off = view("wiki", "delete");
        off.enabled = false;
        let served = Served::new(vec![view("wiki", "search"), off], None);
        assert!(served.tool("wiki_search").is_some());
        assert!(
            served.tool("wiki_delete").is_none(),
            "switched off by the user"
        );
    }

    #[test]
    fn a_name_that_left_still_says_what_it_was() {
        let before = Served::new(vec![view("wiki", "search"), view("docs", "get")], None);
        let after = Served::new(vec![view("docs", "get")], Some(&before));
        assert_eq!(
            after.origin("wiki_search").expect_err("gone"),
            Some(&Origin {
                connector: "wiki".into(),
                tool: "search".into()
            })
        );
        assert!(after.origin("docs_get").is_ok());
        assert_eq!(after.origin("never_was").expect_err("unknown"), None);
        let back = Served::new(vec![view("wiki", "search")], Some(&after));
        assert!(back.origin("wiki_search").is_ok(), "served again");
    }
}
